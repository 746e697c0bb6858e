"""The grader as a TA needs it, attacked as a hostile student would (issue 16).

Each test grades a submission built by tests/homework_submissions.py with the real grader (a
runner process per exercise) and states the points it must get.  Before issue 16 each of these
changed a grade (scripts/grading_adversary.py --old prints the old grades).
"""
import csv
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import homework_submissions as hs
from numpyvae import InputError
from numpyvae.exercises import checks, manifest
from numpyvae.exercises.__main__ import main
from numpyvae.exercises.grader import grade_submission
from numpyvae.exercises.notebook import make_student, read_notebook

HW1, HW2 = hs.load(hs.HW1), hs.load(hs.HW2)
R1, R2, U1 = hs.right(HW1), hs.right(HW2), hs.untouched(HW1)
A1 = manifest.from_master(hs.HW1, hidden_seed=12345)
A2 = manifest.from_master(hs.HW2, hidden_seed=12345)


def part_of_hw1(*keys):
    """An assignment of some of homework 1's exercises: the tests that watch one exercise grade two, not four."""
    return manifest.Assignment("hw1-part", {k: A1.points[k] for k in keys}, A1.hidden_seed)


TANH_RELU = part_of_hw1("tanh", "relu")


def graded(tmp_path, nb, assignment=A1, name="submission.ipynb", timeout=20):
    path = tmp_path / name
    path.write_text(json.dumps(nb) if isinstance(nb, dict) else nb)
    return grade_submission(str(path), assignment, timeout=timeout, jobs=2)


def points(g, exercise):
    return sum(v for (key, _), v in g.points.items() if key == exercise)


def show(g):
    return "\n".join(str(r) for r in g.reports) + f"\ntotal {g.score} of {g.max_score}; notes {g.notes}"


def assert_points(g, expected, total=None):
    """expected: {exercise: points}; total: the whole score (if given)."""
    ours = {e: points(g, e) for e in expected}
    assert ours == expected, f"ours {ours} vs expected {expected}\n{show(g)}"
    if total is not None:
        assert g.score == total, f"total: ours {g.score} vs expected {total}\n{show(g)}"
    assert g.max_score == sum(sum(p.values()) for p in g.assignment.points.values())


# ---- the assignment comes from the instructor -----------------------------------------------

def test_masters_get_every_point_and_the_denominator_is_the_masters(tmp_path):
    for nb, assignment, total in ((R1, A1, 10), (R2, A2, 20)):
        g = graded(tmp_path, nb, assignment)
        assert g.score == g.max_score == total, f"ours {g.score} of {g.max_score} vs expected {total} of {total}\n{show(g)}"


def test_untouched_handout_scores_zero_provided_code_is_no_part(tmp_path):
    g = graded(tmp_path, U1)
    assert g.score == 0 and g.max_score == 10, f"ours {g.score} of {g.max_score} vs expected 0 of 10\n{show(g)}"
    linear = next(r for r in g.reports if r.exercise == "Linear")
    forward = next(p for p in linear.parts if p.name == "forward")
    assert forward.passed and "provided code" in forward.detail, f"ours {forward} vs expected PASS, provided, no points"


def test_the_submissions_metadata_changes_nothing(tmp_path):
    one = hs.right(HW1)
    one["metadata"]["numpyvae"] = {"exercises": ["linear"], "assignment": {"linear": {"dx": 100}}}
    assert graded(tmp_path, one).score == 10
    no_tanh = hs.right(HW1)
    no_tanh["metadata"].pop("numpyvae")
    no_tanh["cells"] = [c for c in no_tanh["cells"] if "Tanh" not in hs.src(c)]
    g = graded(tmp_path, no_tanh)
    assert_points(g, {"tanh": 0, "linear": 3, "relu": 2, "bernoulli": 3}, total=8)
    assert "defines no Tanh" in show(g)


def test_a_syntax_error_costs_its_exercise_and_keeps_the_denominator(tmp_path):
    g = graded(tmp_path, hs.edit(R1, *hs.SYNTAX_ERROR))
    assert_points(g, {"tanh": 0, "linear": 3, "relu": 2, "bernoulli": 3}, total=8)
    assert any("SyntaxError" in n for n in g.notes), g.notes


def test_manifest_refuses_what_is_not_a_graded_part(tmp_path):
    with pytest.raises(InputError, match="provided code in the handout"):
        manifest.check_points({"linear": {"forward": 1}}, "m")
    with pytest.raises(InputError, match="unknown exercise 'nope'"):
        manifest.check_points({"nope": ["dx"]}, "m")
    with pytest.raises(InputError, match="finite number >= 0"):
        manifest.check_points({"linear": {"dx": float("nan")}}, "m")
    out = tmp_path / "hw1.json"
    assert main(["make-manifest", hs.HW1, "--out", str(out), "--hidden-seed", "7"]) == 0
    loaded = manifest.load(str(out))
    assert loaded.points == A1.points and loaded.hidden_seed == 7, f"ours {loaded.to_json()}"
    assert main(["make-manifest", hs.HW1, "--out", str(out)]) == 2          # never overwrites a manifest


# ---- the reference is not the answer ---------------------------------------------------------

def test_reference_imported_or_called_gets_zero_with_a_reason(tmp_path):
    nb = hs.replace_cell(hs.replace_cell(hs.replace_cell(R1, "class Tanh", hs.TANH_IMPORT), "class Linear",
                                         hs.LINEAR_CALLS_REFERENCE), "def bernoulli_log_prob", hs.BERNOULLI_REFERENCE)
    g = graded(tmp_path, nb)
    assert_points(g, {"tanh": 0, "linear": 0, "bernoulli": 0, "relu": 2}, total=2)
    text = show(g)
    assert "called the package's own implementation (numpyvae/layers.py: Tanh.call" in text, text
    assert "numpyvae/distributions.py: bernoulli_log_prob" in text and "Linear.call_backward" in text, text


def test_reference_reached_through_importlib_strings_and_exec_of_its_source(tmp_path):
    nb = hs.replace_cell(hs.replace_cell(R1, "class Tanh", hs.TANH_IMPORTLIB), "class ReLU", hs.RELU_EXEC)
    g = graded(tmp_path, nb)
    assert_points(g, {"tanh": 0, "relu": 0, "linear": 3, "bernoulli": 3}, total=6)
    assert "numpyvae/layers.py: ReLU.call" in show(g) and "imported: numpyvae.layers" in show(g), show(g)


def test_vae_and_kl_references_are_detected(tmp_path):
    nb = hs.replace_cell(hs.replace_cell(R2, "def sigmoid", hs.VAE_REFERENCE), "def kl_std_normal", hs.KL_REFERENCE)
    g = graded(tmp_path, nb, A2)
    assert_points(g, {"vae": 0, "kl": 0, "reparameterize": 3, "fixed_gaussian": 2, "kl_diag": 4}, total=9)
    assert "VAE.loss_and_grads" in show(g) and "kl_std_normal_grads" in show(g), show(g)


def test_every_forbidden_function_exists():
    """A rename in the package must not silently open a way to the answer key."""
    from numpyvae.exercises.runner import forbidden_code
    for key, ex in checks.EXERCISES.items():
        for entry in ex.forbidden:
            assert forbidden_code([entry]), f"{key}: forbidden {entry} names no function of the package"


def test_switching_the_call_trace_off_is_detected(tmp_path):
    nb = hs.replace_cell(R1, "class Tanh", "import sys\n" + hs.TANH_IMPORT.replace(
        "from numpyvae.layers import Tanh", "from numpyvae.layers import Tanh as _T") + '''
class Tanh(_T):
    def forward(self, x):
        sys.setprofile(None)
        return super().forward(x)
''')
    g = graded(tmp_path, nb, part_of_hw1("tanh"))
    assert points(g, "tanh") == 0 and "switched off" in show(g), show(g)


# ---- student code cannot change a verdict ------------------------------------------------------

def test_patching_the_grader_from_a_cell_changes_nothing(tmp_path):
    assert graded(tmp_path, hs.append(U1, hs.PATCH_GRADER, at=3)).score == 0


def test_a_forged_result_line_and_exit_changes_nothing(tmp_path):
    g = graded(tmp_path, hs.append(U1, hs.FORGE_RESULT))
    assert g.score == 0, show(g)
    g = graded(tmp_path, hs.append(R1, hs.FORGE_RESULT), TANH_RELU)  # top-level calls are not run when graded
    assert g.score == 4, show(g)
    exiting = hs.replace_cell(R1, "class Tanh", hs.src(next(c for c in R1["cells"] if hs.src(c).startswith("class Tanh")))
                              .replace("return dout * (1 - self.out ** 2)", "import os; os._exit(0)"))
    g = graded(tmp_path, exiting, TANH_RELU)
    assert_points(g, {"tanh": 0, "relu": 2}, total=2)
    assert "ended before returning its results" in show(g), show(g)


def test_a_hang_or_exit_costs_one_exercise(tmp_path):
    g = graded(tmp_path, hs.edit(R1, *hs.TANH_ENDLESS), timeout=3)
    assert_points(g, {"tanh": 0, "linear": 3, "relu": 2, "bernoulli": 3}, total=8)     # the other exercises count
    assert "did not finish within 3 s" in show(g), show(g)
    assert graded(tmp_path, hs.append(R1, hs.EXIT_CELL, at=4), TANH_RELU).score == 4
    reads = hs.replace_cell(R1, "class ReLU", hs.RELU_OUTPUT_MASK.replace("return dout * (self.out > 0)",
                                                                          "input('y/n? ')\n        return dout"))
    g = graded(tmp_path, reads, TANH_RELU, timeout=10)               # stdin is closed: EOFError, not a hang
    assert_points(g, {"relu": 1, "tanh": 2}, total=3)
    assert "EOFError" in show(g), show(g)


def test_stdout_without_newline_and_a_4gb_cell(tmp_path):
    assert graded(tmp_path, hs.append(R1, hs.STDOUT_NO_NEWLINE), TANH_RELU).score == 4
    g = graded(tmp_path, hs.append(R1, hs.ALLOCATE_4GB), TANH_RELU)
    assert g.score == 4 and any("MemoryError" in n for n in g.notes), show(g)
    hog = hs.replace_cell(R1, "class ReLU", hs.RELU_OUTPUT_MASK.replace(
        "return dout * (self.out > 0)", "_big = np.ones(4 * 1024 ** 3 // 8)\n        return dout * (self.out > 0)"))
    g = graded(tmp_path, hog, TANH_RELU)
    assert_points(g, {"relu": 1, "tanh": 2}, total=3)
    assert "MemoryError" in show(g), show(g)


def test_a_submission_runs_in_its_own_empty_folder(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "a-deleter.ipynb").write_text(json.dumps(hs.append(R1, hs.DELETE_OTHERS.replace("for _f", "_x = [os.remove(f) for f in glob.glob('*')]\nfor _f"))))
    for name in ("b.ipynb", "c.ipynb"):
        (folder / name).write_text(json.dumps(R1))
    table, tanh_only = tmp_path / "grades.csv", tmp_path / "tanh.json"
    tanh_only.write_text(json.dumps({"assignment": "tanh", "exercises": {"tanh": ["forward", "dx"]}, "hidden_seed": 1}))
    assert main(["grade", "--manifest", str(tanh_only), str(folder), "--csv", str(table)]) == 0
    assert sorted(os.listdir(folder)) == ["a-deleter.ipynb", "b.ipynb", "c.ipynb"]
    rows = list(csv.DictReader(open(table)))
    assert [r["total"] for r in rows] == ["2", "2", "2"], rows


# ---- hidden checks -----------------------------------------------------------------------------

def test_an_answer_fitted_to_the_public_case_fails_the_hidden_ones(tmp_path, capsys):
    case = checks.activation_cases(0)[0]
    fitted = f'''class Tanh:
    def forward(self, x):
        return np.tanh(x)

    def backward(self, dout):
        return np.array({(case["g"] * (1 - np.tanh(case["x"]) ** 2)).tolist()})
'''
    namespace = {"np": np}
    exec(fitted, namespace)
    checks.check_activation(namespace["Tanh"], "tanh")                  # the public check passes
    assert "all public checks passed; hidden checks run when graded" in capsys.readouterr().out
    g = graded(tmp_path, hs.replace_cell(R1, "class Tanh", fitted), part_of_hw1("tanh"))
    assert points(g, "tanh") == 1 and "hidden case" in show(g), show(g)


def test_hidden_cases_come_from_the_manifest_seed():
    a = checks.linear_cases(0, 1)[1]["x"]
    b = checks.linear_cases(0, 2)[1]["x"]
    assert a.shape != b.shape or not np.allclose(a, b), "two hidden seeds gave the same hidden case"
    assert len(checks.linear_cases(0)) == 1, "without a hidden seed only the public case runs"


# ---- small errors, ReLU, float32 ------------------------------------------------------------------

def test_small_wrong_answers_fail(tmp_path):
    g = graded(tmp_path, hs.replace_cell(R1, "class Tanh", hs.TANH_FORWARD_DIFFERENCE), part_of_hw1("tanh"))
    assert_points(g, {"tanh": 1}, total=1)
    g = graded(tmp_path, hs.replace_cell(R1, "class Linear", hs.LINEAR_ONE_WRONG_ENTRY), part_of_hw1("linear"))
    assert_points(g, {"linear": 2}, total=2)
    assert "index (3, 5)" in show(g) and "D_in=40" in show(g), show(g)


def test_one_over_b_minus_one_fails_at_b_1000():
    """A 1/(B-1) where 1/B belongs is 0.1 % off at B = 1000: still a FAIL."""
    ex = checks.EXERCISES["vae"]
    case = [c for c in ex.cases(0, 5) if c["x"].shape[0] == 1000][0]
    ns = {}
    exec("import numpy as np\n" + "".join(hs.src(c) for c in hs.edit(R2, *hs.VAE_B_MINUS_ONE)["cells"]
                                         if hs.src(c).startswith("def sigmoid")), ns)
    report = checks.judge(ex, [case], [ex.run((ns["vae_loss_and_grads"],), case)])
    failed = [p.name for p in report.parts if not p.passed]
    assert set(failed) == set(checks.VAE_PARTS[1:]), f"ours failed {failed} vs expected every gradient\n{report}"
    assert all("relative error 1.0e-03" in p.detail or "relative error" in p.detail for p in report.parts)


def test_relu_with_an_output_mask_passes_and_a_wrong_mask_fails(tmp_path):
    g = graded(tmp_path, hs.replace_cell(R1, "class ReLU", hs.RELU_OUTPUT_MASK), part_of_hw1("relu"))
    assert points(g, "relu") == 2, show(g)
    g = graded(tmp_path, hs.replace_cell(R1, "class ReLU", hs.RELU_WRONG_MASK), part_of_hw1("relu"))
    assert points(g, "relu") == 1, show(g)


def test_float32_answers_get_one_verdict_everywhere(tmp_path):
    nb = hs.edit(R2, *hs.VAE_FLOAT32)
    g = graded(tmp_path, nb, A2)
    ns = {}
    exec("import numpy as np\n" + "".join(hs.src(c) for c in nb["cells"] if hs.src(c).startswith("def sigmoid")), ns)
    report = checks.grade_vae_backward(ns["vae_loss_and_grads"])     # what the notebook's check cell runs
    grader = next(r for r in g.reports if r.exercise == "VAE backward")
    assert report.passed and grader.passed, f"ours: check {report.passed}, grade {grader.passed} vs both PASS"
    assert "ours is float32, the inputs float64: judged at float32 precision" in str(report), str(report)


# ---- what a TA runs, and what a careless one types ------------------------------------------------

def test_batch_with_corrupt_empty_fifo_and_non_notebook_files_never_stops(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "a-right.ipynb").write_text(json.dumps(R1))
    (folder / "b-corrupt.ipynb").write_text("{not json")
    (folder / "c-empty.ipynb").write_text("")
    (folder / "d-picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (folder / "e-nested.ipynb").write_text("[" * 100000 + "]" * 100000)
    os.mkfifo(folder / "f-fifo.ipynb")
    (folder / "g-untouched.ipynb").write_text(json.dumps(U1))
    table, results = tmp_path / "grades.csv", tmp_path / "results"
    results.mkdir()
    run = subprocess.run([sys.executable, "-m", "numpyvae.exercises", "grade", "--master", hs.HW1, str(folder),
                          "--csv", str(table), "--json-dir", str(results)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr + run.stdout, run.stderr + run.stdout
    rows = {os.path.basename(r["submission"]): r for r in csv.DictReader(open(table))}
    assert len(rows) == 7 and {r["max"] for r in rows.values()} == {"10"}, rows
    assert rows["a-right.ipynb"]["total"] == "10" and rows["g-untouched.ipynb"]["total"] == "0", rows
    for name, why in (("b-corrupt.ipynb", "not a readable .ipynb"), ("c-empty.ipynb", "is empty"),
                      ("d-picture.png", "not a readable .ipynb"), ("e-nested.ipynb", "nested too deeply"),
                      ("f-fifo.ipynb", "not a regular file")):
        assert rows[name]["total"] == "0" and why in rows[name]["error"], f"{name}: ours {rows[name]} vs {why!r}"
    gs = json.load(open(results / "a-right.results.json"))
    assert gs["score"] == 10 and len(gs["tests"]) == 10 and all(t["score"] == t["max_score"] for t in gs["tests"]), gs
    gs = json.load(open(results / "f-fifo.results.json"))
    assert gs["score"] == 0 and "not a regular file" in gs["output"], gs


@pytest.mark.parametrize("args, message", [
    (["--timeout", "inf"], "expected a number of seconds > 0"),
    (["--timeout", "nan"], "expected a number of seconds > 0"),
    (["--csv", "missing-folder/g.csv"], "does not exist"),
    (["--csv", "."], "is a folder"),
    (["--csv", "/dev/full"], "not a regular file"),
    (["--memory", "10"], "at least 256 MB"),
])
def test_careless_options_are_sentences(tmp_path, capsys, args, message):
    path = tmp_path / "s.ipynb"
    path.write_text(json.dumps(R1))
    os.chdir(tmp_path)
    try:
        code = main(["grade", "--master", hs.HW1, str(path), *args])
    except SystemExit as exc:                                  # argparse's own usage error
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, f"ours exit {code}, {err!r} vs {message!r}"


def test_make_student_never_overwrites_a_master(tmp_path, capsys):
    masters = tmp_path / "masters"
    masters.mkdir()
    for m in (hs.HW1, hs.HW2):
        (masters / os.path.basename(m)).write_bytes(open(m, "rb").read())
    copy = tmp_path / "masters_copy"
    copy.mkdir()
    for m in masters.iterdir():
        (copy / m.name).write_bytes(m.read_bytes())
    link = tmp_path / "link_to_masters"
    link.symlink_to(masters, target_is_directory=True)
    before = {m.name: m.read_bytes() for m in masters.iterdir()}
    assert main(["make-student", str(copy), "--out", str(link)]) == 2
    assert "a master notebook (it has solution regions)" in capsys.readouterr().err
    assert {m.name: m.read_bytes() for m in masters.iterdir()} == before, "a master was overwritten"
    with pytest.raises(InputError, match="is the master notebook itself"):
        make_student(str(masters / "01-backward-passes.ipynb"), str(link / "01-backward-passes.ipynb"))
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    assert main(["make-student", str(copy), "--out", str(existing)]) == 2
    assert "is a file" in capsys.readouterr().err and existing.read_text() == "mine"
    out = tmp_path / "handout"
    assert main(["make-student", str(copy), "--out", str(out)]) == 0
    assert main(["make-student", str(copy), "--out", str(out)]) == 0          # a handout made before: replaced
    student = read_notebook(str(out / "01-backward-passes.ipynb"))
    text = "".join(hs.src(c) for c in student["cells"])
    assert "numpyvae/vae.py" not in text and "BEGIN HIDDEN TESTS" not in text and "hidden=" not in text
    text2 = "".join(hs.src(c) for c in read_notebook(str(out / "02-vae-backward.ipynb"))["cells"])
    assert "numpyvae/vae.py" not in text2 and "loss_and_grads(x, eps=eps)" not in text2, \
        "the handout points at the solution's file"


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.ipynb"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    g = grade_submission(str(fifo), A1, timeout=5)
    assert g.score == 0 and "not a regular file" in g.error, g.error


# ---- homework 3: Conv2d, declared in the registry, graded like the others ----------------------------

def test_conv2d_is_graded_in_a_runner_and_the_references_are_detected(tmp_path):
    conv = manifest.Assignment("hw3", {"conv2d": {"dx": 1, "dW": 1, "db": 1, "forward": 1}}, 99)

    def nb(source):
        return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [hs.code(source)]}
    g = graded(tmp_path, nb(hs.CONV2D_RIGHT), conv)
    assert g.score == 4, show(g)
    assert "hidden case 3 (N=3, C=2, F=2, k=3, stride 2, padding 1, float32)" not in show(g)
    for cheat, what in ((hs.CONV2D_PACKAGE, "numpyvae/conv.py: Conv2d"),
                        (hs.CONV2D_GRADER_LOOPS, "numpyvae/exercises/conv_checks.py: conv_forward_loops")):
        g = graded(tmp_path, nb(cheat), conv)
        assert g.score == 0 and what in show(g), show(g)
    slip = hs.CONV2D_RIGHT.replace("self.dW, self.db = dW, dout.sum(axis=(0, 2, 3))",
                                   "self.dW, self.db = dW, dout.sum(axis=(0, 2, 3)) / dout.shape[0]")
    g = graded(tmp_path, nb(slip), conv)
    assert g.score == 3 and "averaged over the batch" in show(g), show(g)
