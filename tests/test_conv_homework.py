"""Homework 3's grader (numpyvae/exercises/conv_checks.py, the exercise "conv2d"): a right Conv2d
passes every case, public and hidden; each typical slip fails with the sentence that names it; small
errors fail; the expected values (loops) agree with centred differences and with numpyvae.conv."""
import csv
import itertools
import json
import os

import numpy as np
import pytest

from numpyvae.exercises import checks
from numpyvae.exercises.conv_checks import (check_conv2d, conv2d_case, conv2d_cases, conv_backward_loops,
                                            conv_forward_loops, grade_conv2d)
from numpyvae.exercises.report import PASS
from numpyvae.gradcheck import numerical_gradient


def student(flip_dx=False, crop_shift=0, no_stride=False, no_stride_dW=False, pad_shift_dW=0, first_only=False,
            db_batch_only=False, swap_channels=False, accumulate=False, flip_forward=False, no_bias=False,
            nudge_dW=0.0, nudge_dx=0.0, fitted=False, flip_dW=False, db_positions_only=False):
    """A student's Conv2d by plain loops, with one planted slip (or none)."""

    class Conv2d:
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
            self.s, self.p, self.k = (2, 1, 3) if fitted else (stride, padding, kernel_size)
            self.W = np.zeros((out_channels, in_channels, kernel_size, kernel_size))
            self.b = np.zeros(out_channels)
            self.dW, self.db = np.zeros_like(self.W), np.zeros_like(self.b)

        def forward(self, x):
            self.x = x
            W = self.W[:, :, ::-1, ::-1] if flip_forward else self.W
            return conv_forward_loops(x, W, self.b if not no_bias else 0 * self.b, self.s, self.p)

        def backward(self, dout):
            x, s, p, k = self.x, self.s, self.p, self.k
            N, C, H, Wd = x.shape
            m = 2                                                    # room for a window read off by one
            xp = np.pad(x, ((0, 0), (0, 0), (p + m, p + m), (p + m, p + m)))
            dxp = np.zeros((N, C, H + 2 * p + k + 2 * m, Wd + 2 * p + k + 2 * m))
            dW = np.zeros_like(self.W)
            Wk = self.W[:, :, ::-1, ::-1] if flip_dx else self.W
            step = 1 if no_stride else s
            step_dW = 1 if no_stride_dW else s
            for n, i, j in itertools.product(range(N), range(dout.shape[2]), range(dout.shape[3])):
                r, c = m + step_dW * i + pad_shift_dW, m + step_dW * j + pad_shift_dW
                if not (first_only and n > 0):
                    dW += dout[n, :, i, j][:, None, None, None] * xp[n, :, r:r + k, c:c + k][None]
                dxp[n, :, step * i:step * i + k, step * j:step * j + k] += np.einsum("f,fcuv->cuv", dout[n, :, i, j], Wk)
            c = p + crop_shift
            dx = dxp[:, :, c:c + H, c:c + Wd].copy()
            db = dout.sum(axis=0).sum(axis=(1, 2)) if not db_batch_only else dout.sum(axis=0)
            db = dout[0].sum(axis=(1, 2)) if first_only else db
            db = dout.sum(axis=(2, 3)) if db_positions_only else db
            dW = dW[:, :, ::-1, ::-1].copy() if flip_dW else dW
            dW = dW.transpose(1, 0, 2, 3).copy() if swap_channels else dW
            if nudge_dW:
                dW.flat[5] *= 1 + nudge_dW
            if nudge_dx:
                dx[-1, -1, -1, -1] *= 1 + nudge_dx
            if accumulate:
                self.dW = self.dW + dW if self.dW.shape == dW.shape else dW
                self.db = self.db + db if np.shape(self.db) == np.shape(db) else db
            else:
                self.dW, self.db = dW, db
            return dx

    return Conv2d


def grade_on(Conv2d, N=4, C=2, F=3, k=3, H=7, W=6, stride=2, padding=1, seed=2):
    """The Report of the conv2d exercise on one case of the given sizes (judged as `grade` judges)."""
    ex = checks.EXERCISES["conv2d"]
    case = conv2d_case(np.random.default_rng(seed), N, C, F, k, H, W, stride, padding)
    return checks.judge(ex, [case], [ex.run((Conv2d,), case)])


def verdicts(report):
    return {p.name: (p.verdict, p.hint) for p in report.parts}


def test_the_loops_agree_with_the_package():
    from numpyvae.conv import Conv2d
    rng = np.random.default_rng(0)
    layer = Conv2d(2, 3, 3, stride=2, padding=1, rng=rng, dtype=np.float64)
    layer.b[...] = rng.standard_normal(3)
    x = rng.standard_normal((2, 2, 7, 6))
    out = layer.forward(x)
    assert np.allclose(out, conv_forward_loops(x, layer.W, layer.b, 2, 1), rtol=1e-13, atol=1e-13)
    g = rng.standard_normal(out.shape)
    dx = layer.backward(g)
    dx2, dW2, db2 = conv_backward_loops(x, layer.W, g, 2, 1)
    for name, ours, expected in (("dx", dx2, dx), ("dW", dW2, layer.dW), ("db", db2, layer.db)):
        assert np.allclose(ours, expected, rtol=1e-12, atol=1e-12), f"{name}: loops vs package differ"


def test_the_judges_loops_agree_with_centred_differences_in_every_case():
    """The expected values the judge uses, against an independent truth: centred differences of the
    forward loops (C1), in every public and hidden case (strides 1-3, paddings 0-2, batch 1, ...)."""
    for case in conv2d_cases(0, hidden=1):
        x, W, b, g = (case[n].astype(np.float64) for n in "xWbg")
        s, p = case["stride"], case["padding"]
        f = lambda: float(np.sum(conv_forward_loops(x, W, b, s, p) * g))
        for name, ours, wrt in zip(("dx", "dW", "db"), conv_backward_loops(x, W, g, s, p), (x, W, b)):
            num = numerical_gradient(f, wrt)
            err = np.max(np.abs(ours - num)) / max(np.max(np.abs(num)), 1e-12)
            assert err < 1e-7, f"{case['label']}: {name}: loops vs centred differences, relative error {err:.2e}"


def test_the_cases_cover_what_the_guide_states():
    cases = conv2d_cases(0, hidden=1)
    assert {c["stride"] for c in cases} == {1, 2, 3} and {c["padding"] for c in cases} == {0, 1, 2}
    assert any(c["x"].shape[0] == 1 for c in cases), "no case of batch 1"
    assert all(c["x"].shape[2] != c["x"].shape[3] for c in cases), "a square image"
    assert any(c["dtype"] == "float32" for c in cases) and any(c["W"].shape[0] == c["W"].shape[1] for c in cases)
    assert any((c["x"].shape[2] + 2 * c["padding"] - c["W"].shape[2]) % c["stride"] for c in cases), \
        "no case where the stride leaves the last row unread"
    assert len(conv2d_cases(0)) == 1, "without the manifest's seed only the public case runs"
    other = conv2d_cases(0, hidden=2)
    assert any(a["x"].shape != b["x"].shape or not np.array_equal(a["x"], b["x"]) for a, b in zip(cases, other)), \
        "the hidden cases do not depend on the manifest's seed"


@pytest.mark.parametrize("hidden", [None, 1, 20261204])
def test_a_right_conv2d_passes_every_part(hidden):
    report = grade_conv2d(student(), seed=1, hidden=hidden)
    assert all(p.verdict == PASS for p in report.parts), str(report)
    assert [p.name for p in report.parts] == ["forward", "dx", "dW", "db"]
    assert ("hidden checks run when graded" in report.note) == (hidden is None), report.note


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 2), (3, 2), (2, 0)])
def test_a_right_conv2d_passes_other_strides_and_paddings(stride, padding):
    report = grade_on(student(), stride=stride, padding=padding, H=8, W=7)
    assert report.passed, str(report)


@pytest.mark.parametrize("slip,part,words,where", [
    (dict(flip_dx=True), "dx", "kernel flipped", {}),
    (dict(flip_forward=True), "forward", "kernel is flipped in forward", {}),
    (dict(no_bias=True), "forward", "bias", {}),
    (dict(crop_shift=-1), "dx", "wrong offset", {}),
    (dict(crop_shift=1), "dx", "off by one in the padding", {}),
    (dict(crop_shift=-1), "dx", "off by one in the padding", dict(padding=2)),
    (dict(crop_shift=1), "dx", "off by one in the padding", dict(padding=2, stride=1)),
    (dict(no_stride=True), "dx", "stride is missing in dx", {}),
    (dict(no_stride=True), "dx", "s = 3", dict(stride=3, padding=2, H=9, W=8)),
    (dict(no_stride_dW=True), "dW", "stride is missing in dW", {}),
    (dict(pad_shift_dW=1), "dW", "padded by 0, not padding = 1", {}),
    (dict(pad_shift_dW=-1), "dW", "padded by 3, not padding = 2", dict(padding=2)),
    (dict(first_only=True), "dW", "only the first example", {}),
    (dict(first_only=True), "db", "only the first example", {}),
    (dict(db_batch_only=True), "db", "output positions", {}),
    (dict(db_positions_only=True), "db", "sum over the batch (axis 0) too", {}),
    (dict(flip_dW=True), "dW", "dW is flipped", {}),
    (dict(swap_channels=True), "dW", "channel axes are swapped", {}),
    (dict(swap_channels=True), "dW", "channel axes are swapped", dict(C=3, F=3)),
    (dict(accumulate=True), "dW", "accumulated", {}),
    (dict(accumulate=True), "db", "accumulated", {}),
])
def test_each_typical_slip_fails_with_its_sentence(slip, part, words, where):
    report = grade_on(student(**slip), **where)
    got = verdicts(report)
    assert got[part][0] != PASS, f"{slip} {where}: {part} passed\n{report}"
    assert words in got[part][1], f"{slip} {where}: ours hint {got[part][1]!r} vs expected one saying {words!r}"
    others = [p for p in ("dx", "dW", "db") if p != part and got[p][0] != PASS and not (
        slip.keys() & {"first_only", "accumulate"} and p in ("dW", "db"))]
    if "forward" not in part and "crop_shift" not in slip and "no_stride" not in slip:
        assert not others, f"{slip}: parts {others} failed too\n{report}"


def test_a_slip_that_changes_nothing_names_no_cause():
    """Without padding, dx cut at offset 0 is right: no 'wrong offset' alternative may stand in for it."""
    report = grade_on(student(crop_shift=0), padding=0, stride=1)
    assert report.passed, str(report)


@pytest.mark.parametrize("slip,part,index", [(dict(nudge_dW=1e-5), "dW", "(0, 0, 1, 2)"),
                                             (dict(nudge_dx=1e-5), "dx", "(3, 1, 6, 5)")])
def test_one_wrong_entry_fails_naming_its_index(slip, part, index):
    report = grade_on(student(**slip))
    p = next(p for p in report.parts if p.name == part)
    assert not p.passed and f"index {index}" in p.detail, f"ours {p} vs expected FAIL at index {index}"
    assert [q.passed for q in report.parts if q.name != part] == [True, True, True], str(report)


def test_an_answer_fitted_to_the_public_case_fails_when_graded():
    fitted = student(fitted=True)                 # stride 2, padding 1, k 3 whatever it is given
    assert grade_conv2d(fitted).passed, "the public case is stride 2, padding 1"
    report = grade_conv2d(fitted, hidden=7)
    assert not any(p.passed for p in report.parts if p.name in ("dx", "dW")), str(report)
    assert "hidden case" in str(report), str(report)


def test_a_forward_difference_is_exact_for_a_linear_layer_but_fails_in_float32():
    """Issue 16's small error "a forward difference" has no truncation error here: the convolution is
    linear in x, W and b, so a float64 forward difference is right to rounding (~1e-9) and passes,
    as a derived answer does.  In the float32 hidden case the same code is 1e-1 off and fails."""
    class Conv2d(student()):
        def backward(self, dout):
            h = 1e-6
            f = lambda: float(np.sum(self.forward(self.x) * dout))
            f0 = f()

            def forward_difference(a):
                d = np.zeros_like(a)
                for i in np.ndindex(a.shape):
                    old = a[i]
                    a[i] = old + h
                    d[i] = (f() - f0) / h
                    a[i] = old
                return d
            x = self.x
            self.dW, self.db, dx = forward_difference(self.W), forward_difference(self.b), forward_difference(x)
            self.x = x
            return dx
    assert grade_conv2d(Conv2d).passed
    report = grade_conv2d(Conv2d, hidden=5)
    dx = next(p for p in report.parts if p.name == "dx")
    assert not dx.passed and "float32" in dx.detail, f"ours {dx} vs FAIL in the float32 case"


def test_the_check_cell_raises_not_implemented_for_an_untouched_handout():
    class Conv2d(student()):
        def backward(self, dout):
            raise NotImplementedError("exercise not done yet")
    with pytest.raises(NotImplementedError, match="Conv2d: not written yet: Conv2d.backward.dout. raises"):
        check_conv2d(Conv2d)
    with pytest.raises(AssertionError, match="FAIL  dx"):
        check_conv2d(student(flip_dx=True))


# ---- the master, graded as a course grades it (a runner process per submission) -------------------

HW3 = os.path.join(os.path.dirname(__file__), "..", "notebooks", "homework", "03-conv-backward.ipynb")

CONV_SUBCLASS_BY_STRINGS = '''import importlib
_P = getattr(importlib.import_module("numpy" + "vae.conv"), "Conv" + "2d")


class Conv2d(_P):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dtype=np.float64)
'''
LOOPS_FROM_THE_GRADER = '''from numpyvae.exercises import conv_checks as _cc


class Conv2d:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        self.s, self.p = stride, padding

    def forward(self, x):
        self.x = x
        return _cc.conv_forward_loops(x, self.W, self.b, self.s, self.p)

    def backward(self, dout):
        dx, self.dW, self.db = _cc.conv_backward_loops(self.x, self.W, dout, self.s, self.p)
        return dx
'''


def test_the_master_graded_in_a_batch(tmp_path):
    """grade --master over a folder: the master's solution 5 of 5; the untouched handout 0 of 5 (its
    provided forward checked, no points); a slip loses its part; the package's Conv2d reached through
    importlib strings, and the grader's own loops, get 0 with the reason; one CSV row each."""
    import homework_submissions as hs
    from numpyvae.exercises.__main__ import main
    master = hs.load(HW3)
    right = hs.right(master)
    subs = {"right": (right, 5), "untouched": (hs.untouched(master), 0),
            "db-batch-only": (hs.edit(right, "dout.sum(axis=(0, 2, 3))", "dout.sum(axis=0)"), 4),
            "package": (hs.replace_cell(right, "class Conv2d", CONV_SUBCLASS_BY_STRINGS), 0),
            "grader-loops": (hs.replace_cell(right, "class Conv2d", LOOPS_FROM_THE_GRADER), 0)}
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name, (nb, _) in subs.items():
        (folder / f"{name}.ipynb").write_text(json.dumps(nb))
    table, results = tmp_path / "grades.csv", tmp_path / "results"
    results.mkdir()
    assert main(["grade", "--master", HW3, str(folder), "--csv", str(table), "--json-dir", str(results),
                 "--details"]) == 1
    with open(table, newline="") as fh:
        rows = {os.path.basename(r["submission"]): r for r in csv.DictReader(fh)}
    for name, (_, total) in subs.items():
        row = rows[f"{name}.ipynb"]
        assert float(row["total"]) == total and float(row["max"]) == 5, f"{name}: ours {row} vs expected {total} of 5"
    verdict = json.loads((results / "package.results.json").read_text())
    text = json.dumps(verdict)
    assert "numpyvae/conv.py: Conv2d.call_backward" in text and "imported: numpyvae.conv" in text, text
    assert "numpyvae/exercises/conv_checks.py: conv_backward_loops" in \
        json.dumps(json.loads((results / "grader-loops.results.json").read_text()))
    untouched = json.loads((results / "untouched.results.json").read_text())
    assert [t["name"] for t in untouched["tests"]] == ["conv2d: dx", "conv2d: dW", "conv2d: db"], untouched
