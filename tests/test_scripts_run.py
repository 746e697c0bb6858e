"""The measurement scripts the derivation notes quote run as documented (issue 17, item 11)."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_estimator_variance_script_runs_and_writes_its_table(tmp_path, capsys):
    out = tmp_path / "estimator-variance.md"
    _load("estimator_variance").main(["--epochs", "1", "--draws", "3", "--k-marginal", "20", "--out", str(out)])
    text = out.read_text(encoding="utf-8")
    for words in ("train -ELBO", "test -ELBO", "| analytic |", "| score |", "| IWAE, k = 50 |", "k = 20 |"):
        assert words in text, f"{out.name}: expected {words!r} in\n{text}"


def test_the_quoted_command_uses_options_the_script_has():
    text = (ROOT / "derivations" / "results" / "estimator-variance.md").read_text(encoding="utf-8")
    command = text.split("Made by `", 1)[1].split("`", 1)[0]
    assert command.startswith("python scripts/estimator_variance.py"), command
    parser_options = (ROOT / "scripts" / "estimator_variance.py").read_text(encoding="utf-8")
    for token in command.split():
        if token.startswith("--"):
            assert f'"{token}"' in parser_options, f"the quoted command's {token} is not an option of the script"
