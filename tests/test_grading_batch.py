"""A course's batch: 40 submissions with planted mistakes, cheats, hangs, exits and corrupt files,
graded in one command (issue 16): CSV and Gradescope JSON written, every total right, the same
denominator for all.

About a minute of two cores, so the README's `pytest` skips it; .ci/run's grading step runs it
(NUMPYVAE_GRADING_TOOLS=1).  tests/test_grading.py checks each kind on its own in the main run.
"""
import csv
import json
import os

import pytest

import homework_submissions as hs
from numpyvae.exercises.__main__ import main

pytestmark = pytest.mark.skipif(
    os.environ.get("NUMPYVAE_GRADING_TOOLS") != "1",
    reason="the 40-submission batch takes about a minute; .ci/run's grading step runs it "
           "(set NUMPYVAE_GRADING_TOOLS=1 to run it here)")


def submissions():
    """{file name: (contents, expected total of 10)}."""
    hw1 = hs.load(hs.HW1)
    r, u = hs.right(hw1), hs.untouched(hw1)
    tanh_src = next(hs.src(c) for c in r["cells"] if hs.src(c).startswith("class Tanh"))
    relu_hang = hs.RELU_OUTPUT_MASK.replace("return dout * (self.out > 0)", "while True:\n            pass")
    one = hs.right(hw1)
    one["metadata"]["numpyvae"] = {"exercises": ["linear"]}
    subs = {
        "right-plain": (r, 10),
        "right-magics": (hs.append(r, "%matplotlib inline\n!ls\nprint('hello')\n", at=1), 10),
        "right-relu-output-mask": (hs.replace_cell(r, "class ReLU", hs.RELU_OUTPUT_MASK), 10),
        "right-metadata-edited": (one, 10),
        "right-exit-cell": (hs.append(r, hs.EXIT_CELL, at=4), 10),
        "right-stdout-no-newline": (hs.append(r, hs.STDOUT_NO_NEWLINE), 10),
        "right-4gb-cell": (hs.append(r, hs.ALLOCATE_4GB), 10),
        "right-deleter": (hs.append(r, "import glob, os\n_x = [os.remove(f) for f in glob.glob('*')]\n"), 10),
        "right-forged-line": (hs.append(r, hs.FORGE_RESULT), 10),
        "right-float32": (hs.replace_cell(r, "class Tanh", tanh_src.replace(
            "return dout * (1 - self.out ** 2)", "return (dout * (1 - self.out ** 2)).astype(np.float32)")), 10),
        "untouched": (u, 0),
        "untouched-patching-grader": (hs.append(u, hs.PATCH_GRADER, at=3), 0),
        "untouched-forged-result": (hs.append(u, hs.FORGE_RESULT), 0),
        "slip-db-mean": (hs.edit(r, "self.db = dout.sum(axis=0)", "self.db = dout.mean(axis=0)"), 9),
        "slip-dW-transposed": (hs.edit(r, "self.dW = self.x.T @ dout", "self.dW = dout.T @ self.x"), 9),
        "slip-dx-sign": (hs.edit(r, "return dout @ self.W.T", "return -(dout @ self.W.T)"), 9),
        "slip-tanh-1-minus-out": (hs.edit(r, "return dout * (1 - self.out ** 2)", "return dout * (1 - self.out)"), 9),
        "slip-tanh-forward-difference": (hs.replace_cell(r, "class Tanh", hs.TANH_FORWARD_DIFFERENCE), 9),
        "slip-relu-wrong-mask": (hs.replace_cell(r, "class ReLU", hs.RELU_WRONG_MASK), 9),
        "slip-bernoulli-grad-sign": (hs.edit(r, "return x - np.exp(-np.logaddexp(0, -logits))",
                                             "return np.exp(-np.logaddexp(0, -logits)) - x"), 9),
        "slip-bernoulli-overflow": (hs.edit(r, "return np.sum(x * logits - np.logaddexp(0, logits), axis=-1)",
                                            "return np.sum(x * np.log(1 / (1 + np.exp(-logits))) + (1 - x) * "
                                            "np.log(1 - 1 / (1 + np.exp(-logits))), axis=-1)"), 9),
        "slip-one-entry-of-large-W": (hs.replace_cell(r, "class Linear", hs.LINEAR_ONE_WRONG_ENTRY), 9),
        "slip-syntax-error": (hs.edit(r, *hs.SYNTAX_ERROR), 8),
        "slip-two-mistakes": (hs.edit(hs.edit(r, "self.db = dout.sum(axis=0)", "self.db = dout.mean(axis=0)"),
                                      "return dout * (1 - self.out ** 2)", "return dout * (1 - self.out)"), 8),
        "cheat-tanh-import": (hs.replace_cell(r, "class Tanh", hs.TANH_IMPORT), 8),
        "cheat-tanh-importlib": (hs.replace_cell(r, "class Tanh", hs.TANH_IMPORTLIB), 8),
        "cheat-relu-exec-source": (hs.replace_cell(r, "class ReLU", hs.RELU_EXEC), 8),
        "cheat-bernoulli-reference": (hs.replace_cell(r, "def bernoulli_log_prob", hs.BERNOULLI_REFERENCE), 7),
        "cheat-linear-reference": (hs.replace_cell(r, "class Linear", hs.LINEAR_CALLS_REFERENCE), 7),
        "cheat-all": (hs.replace_cell(hs.replace_cell(hs.replace_cell(u, "class Tanh", hs.TANH_IMPORT), "class Linear",
                                                      hs.LINEAR_CALLS_REFERENCE), "def bernoulli_log_prob",
                                      hs.BERNOULLI_REFERENCE), 0),
        "hang-tanh-backward": (hs.edit(r, *hs.TANH_ENDLESS), 8),
        "hang-relu-backward": (hs.replace_cell(r, "class ReLU", relu_hang), 8),
        "exit-in-tanh-backward": (hs.replace_cell(r, "class Tanh", tanh_src.replace(
            "return dout * (1 - self.out ** 2)", "import os; os._exit(0)")), 8),
        "memory-in-relu-backward": (hs.replace_cell(r, "class ReLU", hs.RELU_OUTPUT_MASK.replace(
            "return dout * (self.out > 0)", "_b = np.ones(4 * 1024 ** 3 // 8)\n        return dout")), 9),
        "missing-tanh": ({**r, "cells": [c for c in r["cells"] if "Tanh" not in hs.src(c)]}, 8),
        "corrupt-json": ("{not json", 0),
        "empty": ("", 0),
        "not-a-notebook": ('{"hello": "world"}', 0),
        "nested": ("[" * 100000 + "]" * 100000, 0),
        "cells-not-a-list": ('{"nbformat": 4, "cells": {"a": 1}}', 0),
    }
    return subs


def test_forty_submissions_in_one_command(tmp_path):
    subs = submissions()
    assert len(subs) == 40
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name, (nb, _) in subs.items():
        (folder / f"{name}.ipynb").write_text(nb if isinstance(nb, str) else json.dumps(nb))
    manifest, table, results = tmp_path / "hw1.json", tmp_path / "grades.csv", tmp_path / "results"
    results.mkdir()
    assert main(["make-manifest", hs.HW1, "--out", str(manifest), "--hidden-seed", "4242"]) == 0
    code = main(["grade", "--manifest", str(manifest), str(folder), "--csv", str(table), "--json-dir", str(results),
                 "--timeout", "4", "--jobs", "2"])
    assert code == 1
    rows = {os.path.splitext(os.path.basename(r["submission"]))[0]: r for r in csv.DictReader(open(table))}
    wrong = {n: (rows[n]["total"], str(total)) for n, (_, total) in subs.items() if rows[n]["total"] != str(total)}
    assert not wrong, f"ours vs expected totals: {wrong}"
    assert {r["max"] for r in rows.values()} == {"10"}, "the denominator changed between students"
    for name in ("corrupt-json", "empty", "not-a-notebook", "nested", "cells-not-a-list"):
        assert rows[name]["error"], f"{name}: no reason in the CSV"
    files = sorted(os.listdir(results))
    assert len(files) == 40, f"ours {len(files)} results.json vs 40"
    for name, (_, total) in subs.items():
        gs = json.load(open(results / f"{name}.results.json"))
        assert gs["score"] == total and sum(t["max_score"] for t in gs["tests"]) == 10, f"{name}: {gs}"
