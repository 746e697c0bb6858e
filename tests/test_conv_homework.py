"""Homework 3's grader (numpyvae/exercises/conv_checks.py): a right Conv2d passes; each typical slip
fails with the sentence that names it."""
import itertools

import numpy as np
import pytest

from numpyvae.exercises.conv_checks import conv_backward_loops, conv_forward_loops, grade_conv2d
from numpyvae.exercises.report import PASS


def student(flip_dx=False, crop_shift=0, no_stride=False, first_only=False, db_batch_only=False, swap_channels=False,
            accumulate=False, flip_forward=False, no_bias=False, nudge=0.0):
    """A student's Conv2d by plain loops, with one planted slip (or none)."""

    class Conv2d:
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
            self.s, self.p, self.k = stride, padding, kernel_size
            self.W = np.zeros((out_channels, in_channels, kernel_size, kernel_size))
            self.b = np.zeros(out_channels)
            self.dW, self.db = np.zeros_like(self.W), np.zeros_like(self.b)

        def forward(self, x):
            self.x = x
            W = self.W[:, :, ::-1, ::-1] if flip_forward else self.W
            out = conv_forward_loops(x, W, self.b if not no_bias else 0 * self.b, self.s, self.p)
            return out

        def backward(self, dout):
            x, s, p, k = self.x, self.s, self.p, self.k
            N, C, H, Wd = x.shape
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            dxp = np.zeros((N, C, H + 2 * p + k, Wd + 2 * p + k))
            dW = np.zeros_like(self.W)
            Wk = self.W[:, :, ::-1, ::-1] if flip_dx else self.W
            step = 1 if no_stride else s
            for n, i, j in itertools.product(range(N), range(dout.shape[2]), range(dout.shape[3])):
                if first_only and n > 0:
                    continue
                window = xp[n, :, s * i:s * i + k, s * j:s * j + k]
                dW += dout[n, :, i, j][:, None, None, None] * window[None]
                dxp[n, :, step * i:step * i + k, step * j:step * j + k] += np.einsum("f,fcuv->cuv", dout[n, :, i, j], Wk)
            c = p + crop_shift
            dx = dxp[:, :, c:c + H, c:c + Wd]
            db = dout.sum(axis=0).sum(axis=(1, 2)) if not db_batch_only else dout.sum(axis=0)
            dW = dW.transpose(1, 0, 2, 3).copy() if swap_channels else dW
            if nudge:
                dW = dW.copy()
                dW.flat[0] += nudge
            if accumulate:
                self.dW = self.dW + dW if self.dW.shape == dW.shape else dW
                self.db = self.db + db if np.shape(self.db) == np.shape(db) else db
            else:
                self.dW, self.db = dW, db
            return dx

    return Conv2d


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


@pytest.mark.parametrize("stride,padding", [(2, 1), (1, 1), (1, 0), (3, 2)])
def test_a_right_conv2d_passes_every_part(stride, padding):
    report = grade_conv2d(student(), seed=1, stride=stride, padding=padding)
    assert all(p.verdict == PASS for p in report.parts), str(report)
    assert [p.name for p in report.parts] == ["forward", "dx", "dW", "db"]


@pytest.mark.parametrize("slip,part,words", [
    (dict(flip_dx=True), "dx", "flipped"),
    (dict(flip_forward=True), "forward", "kernel is flipped in forward"),
    (dict(no_bias=True), "forward", "bias"),
    (dict(crop_shift=-1), "dx", "wrong offset"),
    (dict(crop_shift=1), "dx", "off by one in the padding"),
    (dict(no_stride=True), "dx", "stride is missing"),
    (dict(first_only=True), "dW", "only the first example"),
    (dict(db_batch_only=True), "db", "output positions"),
    (dict(swap_channels=True), "dW", "channel axes are swapped"),
    (dict(accumulate=True), "dW", "accumulated"),
])
def test_each_typical_slip_fails_with_its_sentence(slip, part, words):
    report = grade_conv2d(student(**slip), seed=2)
    got = verdicts(report)
    assert got[part][0] != PASS, f"{slip}: {part} passed\n{report}"
    assert words in got[part][1], f"{slip}: ours hint {got[part][1]!r} vs expected one saying {words!r}"


def test_a_small_error_in_one_entry_fails():
    report = grade_conv2d(student(nudge=1e-3), seed=3)
    assert verdicts(report)["dW"][0] != PASS, str(report)
