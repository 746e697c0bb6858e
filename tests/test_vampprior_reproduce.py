"""reproduce/vampprior_mnist.py: its quick mode trains the three priors on the embedded digits and evaluates them."""
import json
import os
import sys

from datasets_helpers import REPO


def test_quick_mode_trains_every_prior_and_reports_paired_differences(tmp_path):
    sys.path.insert(0, os.path.join(REPO, "reproduce"))
    try:
        import vampprior_mnist
    finally:
        sys.path.pop(0)
    result = vampprior_mnist.main(["--quick", "--out", str(tmp_path)])
    assert set(result["runs"]) == {"standard/0", "mixture/0", "vampprior/0"}
    for name, r in result["runs"].items():
        # the importance-sampled estimate is a tighter bound than the ELBO, up to its noise
        assert r["neg_log_px"] <= r["neg_elbo"] + 3 * (r["neg_elbo_se"] + r["neg_log_px_se"]), (name, r)
        assert 0 <= r["active_units"] <= result["z_dim"] and r["step_ms"] > 0, (name, r)
    assert set(result["paired_log_px_differences"]) == {"mixture - standard", "vampprior - standard"}
    stored = json.loads((tmp_path / "result.json").read_text())
    assert stored["runs"] == result["runs"] and "vampprior" in (tmp_path / "table.md").read_text()


def test_active_units_script_runs_and_prints_its_table(capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location("priors_active_units", os.path.join(REPO, "scripts", "priors_active_units.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--z-dim", "3", "--epochs", "1", "--seeds", "0", "--components", "4"])
    out = capsys.readouterr().out
    for words in ("| standard | 0 |", "| mixture | 0 |", "| vampprior | 0 |", "/3 |", "Cov > 0.01"):
        assert words in out, f"expected {words!r} in\n{out}"
