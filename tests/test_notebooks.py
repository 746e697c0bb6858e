"""The lecture notebooks are stored executed, fresh, and with the figures they promise.

Static checks only (fast): pytest's nbval run (setup.cfg) re-executes every
cell; these tests check that what a reader sees on GitHub is what that code
produces.  "Stale" is defined in notebooks/README.md: the stamp that
scripts/run_notebooks.py writes into a notebook's metadata (hashes of its
code cells and of the numpyvae package) no longer matches.
"""
import copy
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

# figures (image/png outputs) each lecture promises; notebooks/README.md states the same numbers
FIGURES = {
    "01-the-elbo-on-an-exact-model.ipynb": 3,
    "02-layers-and-backward-passes.ipynb": 4,
    "03-the-reparameterization-trick.ipynb": 5,
    "04-monte-carlo-kl-and-iwae.ipynb": 4,
    "05-training-a-vae.ipynb": 5,
    "06-latent-space-beta-and-collapse.ipynb": 6,
    "07-convolutional-vaes.ipynb": 5,
    "08-normalizing-flows.ipynb": 4,
    "09-learned-priors-and-conditioning.ipynb": 5,
    "10-discrete-latents.ipynb": 4,
}


def _runner():
    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "scripts" / "run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUNNER = _runner()
RERUN = "python scripts/run_notebooks.py"


def _load(name):
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))


def _text(value):
    return value if isinstance(value, str) else "".join(value)


def _images(nb):
    return sum("image/png" in out.get("data", {}) for cell in nb["cells"] if cell["cell_type"] == "code"
               for out in cell.get("outputs", []))


def problems(name, nb, package_hash=None):
    """Everything wrong with the stored notebook ``nb`` (a list of sentences; empty when fine).

    package_hash: the current hash of the package files the stamp lists (None: compute it).
    """
    found, rerun = [], f"run `{RERUN} notebooks/{name}`"
    code = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    counts = [cell.get("execution_count") for cell in code]
    if counts != list(range(1, len(code) + 1)):
        found.append(f"{name}: execution counts are {counts}, expected 1..{len(code)} in order "
                     f"(not executed top to bottom from a clean kernel); {rerun}")
    for i, cell in enumerate(code):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"{name}: code cell {i + 1} stored an error {out.get('ename')}: {out.get('evalue')}")
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                found.append(f"{name}: code cell {i + 1} wrote to stderr: {_text(out.get('text', ''))[:200]!r}")
    stamp = nb.get("metadata", {}).get("numpyvae")
    if not stamp:
        found.append(f"{name}: no execution stamp in its metadata (outputs missing or not stored by the script); {rerun}")
    else:
        if stamp.get("cells_hash") != RUNNER.cells_hash(nb):
            found.append(f"{name}: stale: its cells (code or markdown) changed since the outputs were stored; {rerun}")
        files = stamp.get("package_files") or {}
        current = RUNNER.package_hash(files) if package_hash is None else package_hash
        if not isinstance(files, dict) or not any(f.endswith(".py") for f in files):
            found.append(f"{name}: the stamp lists no numpyvae module the run imported; {rerun}")
        elif stamp.get("package_hash") != current:
            changed = [f for f, h in sorted(files.items()) if RUNNER.file_hash(f) != h]
            found.append(f"{name}: stale: the numpyvae package changed since the outputs were stored "
                         f"({', '.join(changed) or 'its stamp'}); {rerun}")
    expected = FIGURES.get(name)
    if expected is not None and _images(nb) != expected:
        found.append(f"{name}: {_images(nb)} figures stored (image/png outputs), expected {expected}; {rerun}")
    first = _text(code[0]["source"]) if code else ""
    if not first.lstrip().startswith("%matplotlib inline"):
        found.append(f"{name}: the first code cell must start with %matplotlib inline (an inherited "
                     f"MPLBACKEND=Agg would otherwise hide every figure)")
    if any("matplotlib.use(" in _text(cell["source"]) for cell in code):
        found.append(f"{name}: calls matplotlib.use(...), which replaces the inline backend")
    return found


def test_the_lecture_series_is_the_six_notebooks():
    stored = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert stored == sorted(FIGURES), f"notebooks/*.ipynb: ours {stored} vs expected {sorted(FIGURES)}"


def test_readme_lists_every_lecture_with_its_figure_count():
    readme = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    for name, count in FIGURES.items():
        line = next((ln for ln in readme.splitlines() if name in ln), None)
        assert line is not None, f"notebooks/README.md does not list {name}"
        stated = re.search(r"(\d+) figures", line)
        assert stated and int(stated.group(1)) == count, \
            f"notebooks/README.md, {name}: states {stated.group(0) if stated else 'no figure count'}, expected {count} figures"


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_is_stored_executed_fresh_and_with_its_figures(name):
    found = problems(name, _load(name))
    assert not found, "\n".join(found)


def test_the_checks_catch_each_kind_of_stale_or_missing_output():
    """Plant each fault in a copy of a good notebook: every one must be reported."""
    name = "05-training-a-vae.ipynb"
    good = _load(name)
    package_hash = good["metadata"]["numpyvae"]["package_hash"]   # as if the package were unchanged
    good["metadata"]["numpyvae"]["cells_hash"] = RUNNER.cells_hash(good)   # as if just stamped
    assert problems(name, good, package_hash) == [], problems(name, good, package_hash)

    def planted(change):
        nb = copy.deepcopy(good)
        change(nb)
        return problems(name, nb, package_hash)

    code = lambda nb: [c for c in nb["cells"] if c["cell_type"] == "code"]
    edit = lambda nb: code(nb)[2].__setitem__("source", _text(code(nb)[2]["source"]) + "\n# edited")
    faults = {   # fault -> (the change, words the report must contain)
        "code cells changed": (edit, "its cells (code or markdown) changed"),
        "a markdown sentence falsified": (lambda nb: next(c for c in nb["cells"] if c["cell_type"] == "markdown")
                                          .__setitem__("source", "A false sentence."), "its cells (code or markdown) changed"),
        "outputs cleared": (lambda nb: [c.update(outputs=[], execution_count=None) for c in code(nb)],
                            "execution counts"),
        "a figure missing": (lambda nb: next(c for c in code(nb) if any("image/png" in o.get("data", {})
                                                                      for o in c["outputs"])).update(outputs=[]),
                             "figures stored"),
        "executed out of order": (lambda nb: code(nb)[1].update(execution_count=7), "execution counts"),
        "no stamp": (lambda nb: nb["metadata"].pop("numpyvae"), "no execution stamp"),
        "an error stored": (lambda nb: code(nb)[-1]["outputs"].append(
            {"output_type": "error", "ename": "AssertionError", "evalue": "", "traceback": []}), "stored an error"),
        "no inline backend": (lambda nb: code(nb)[0].update(source="import numpy"), "%matplotlib inline"),
    }
    for fault, (change, words) in faults.items():
        found = planted(change)
        print(f"{fault}: {found}")
        assert any(words in sentence for sentence in found), f"planted fault {fault!r}: ours {found} vs expected a report with {words!r}"
    assert any("package changed" in s for s in problems(name, good, "0" * 64)), "a changed package was not reported"
    files = good["metadata"]["numpyvae"]["package_files"]
    assert "numpyvae/vae.py" in files and "numpyvae/data/digits.csv.gz" in files, files
    assert "numpyvae/cli.py" not in files, "the stamp lists a module the notebook never imported"


def test_regenerating_a_current_notebook_changes_no_byte(tmp_path, monkeypatch, capsys):
    """A notebook whose stamp is current is not re-run: its file keeps every byte."""
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A"), nbformat.v4.new_code_cell("1 + 1")])
    files = ["numpyvae/__init__.py"]
    nb.metadata["numpyvae"] = {"cells_hash": RUNNER.cells_hash(nb), "package_files": {f: RUNNER.file_hash(f) for f in files},
                               "package_hash": RUNNER.package_hash(files), "versions": {"numpy": "recorded only"}}
    path = tmp_path / "current.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()
    monkeypatch.setattr(RUNNER, "execute", lambda p: pytest.fail("a current notebook was re-run"))
    RUNNER.main([str(path)])
    assert path.read_bytes() == before, "the file changed"
    # and a stale one (a markdown edit) is re-run
    nb.cells[0].source = "# B"
    nbformat.write(nb, path)
    ran = []
    monkeypatch.setattr(RUNNER, "execute", lambda p: ran.append(p) or 0.0)
    RUNNER.main([str(path)])
    assert ran, "a notebook whose markdown changed was not re-run"


def test_stream_outputs_are_stored_merged():
    outs = [{"output_type": "stream", "name": "stdout", "text": "a\n"},
            {"output_type": "stream", "name": "stdout", "text": ["b", "\n"]},
            {"output_type": "display_data", "data": {}, "metadata": {}},
            {"output_type": "stream", "name": "stdout", "text": "c"}]
    merged = RUNNER.merge_streams(outs)
    assert [o.get("text") for o in merged] == ["a\nb\n", None, "c"], merged
