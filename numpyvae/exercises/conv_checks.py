"""Homework 3: grade a student's Conv2d (forward, dx, dW, db) with hints diagnosed from the numbers.

The student's class is ``Conv2d(in_channels, out_channels, kernel_size, stride, padding)`` with
``W`` (F, C, k, k) and ``b`` (F,), ``forward(x)`` for x (N, C, H, W) and ``backward(dout) -> dx``
filling ``dW`` and ``db`` (derivations/12-convolution.md, eqs. C1 and C3).  The grader sets W and b
itself.  Expected values: the definition (C1) and (C3) written as loops, here, independently of
``numpyvae.conv``; the expected gradients are also centred differences of the loop forward.

Wrong answers that typical slips give are computed the same way, each with the sentence that says
what went wrong: the kernel not flipped (or flipped where it must not be), the batch not summed, the
stride or the padding off, the channel axes swapped.
"""
import itertools

import numpy as np

from ..gradcheck import numerical_gradient
from .diagnose import compare
from .guard import NotWritten, StudentError, call
from .report import FAIL, Part


def conv_forward_loops(x, W, b, stride, padding):
    """Eq. (C1) as loops: out[n,f,i,j] = b[f] + sum_{c,u,v} W[f,c,u,v] xp[n,c,s i+u,s j+v]."""
    N, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    Ho, Wo = (H + 2 * padding - kh) // stride + 1, (Wd + 2 * padding - kw) // stride + 1
    out = np.empty((N, F, Ho, Wo))
    for i, j in itertools.product(range(Ho), range(Wo)):
        window = xp[:, :, stride * i:stride * i + kh, stride * j:stride * j + kw]      # (N, C, kh, kw)
        out[:, :, i, j] = np.einsum("ncuv,fcuv->nf", window, W) + b
    return out


def conv_backward_loops(x, W, dout, stride, padding, crop=None, flip=False):
    """Eq. (C3) as loops: dW, db, dx.  ``crop`` (default: padding) is where dx is cut from the padded
    gradient, ``flip`` uses the kernel rotated by 180 degrees: both only to make wrong answers."""
    N, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    Wk = W[:, :, ::-1, ::-1] if flip else W
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxp = np.zeros_like(xp)
    dW = np.zeros_like(W)
    for i, j in itertools.product(range(dout.shape[2]), range(dout.shape[3])):
        rows, cols = slice(stride * i, stride * i + kh), slice(stride * j, stride * j + kw)
        dW += np.einsum("nf,ncuv->fcuv", dout[:, :, i, j], xp[:, :, rows, cols])
        dxp[:, :, rows, cols] += np.einsum("nf,fcuv->ncuv", dout[:, :, i, j], Wk)
    c = padding if crop is None else crop
    dx = np.zeros_like(x)
    part = dxp[:, :, c:c + H, c:c + Wd]
    dx[:, :, :part.shape[2], :part.shape[3]] = part
    return dx, dW, dout.sum(axis=(0, 2, 3))


def conv2d_cases(seed=0, hidden=None, stride=2, padding=1):
    """Public: N, C, F, k, H, W = 4, 2, 3, 3, 7, 6 with the given stride and padding.  Hidden (from
    the manifest's seed): batch 1, stride 1 without padding, a 2x2 kernel, float32 inputs."""
    shapes = [(4, 2, 3, 3, 7, 6, stride, padding, "float64")]
    if hidden is not None:
        shapes += [(1, 3, 2, 3, 5, 5, 1, 0, "float64"), (2, 1, 4, 2, 6, 7, 1, 1, "float64"),
                   (3, 2, 2, 3, 6, 6, 2, 1, "float32")]
    cases = []
    for k, (N, C, F, ks, H, Wd, s, p, dtype) in enumerate(shapes):
        rng = np.random.default_rng(seed) if k == 0 else np.random.default_rng([int(hidden), int(seed), k])
        x = rng.standard_normal((N, C, H, Wd))
        W, b = rng.standard_normal((F, C, ks, ks)), rng.standard_normal(F)
        g = rng.standard_normal(conv_forward_loops(x, W, b, s, p).shape)
        cases.append({"x": x, "W": W, "b": b, "g": g, "stride": s, "padding": p, "dtype": dtype,
                      "label": "the public case" if k == 0 else
                      f"hidden case {k} (N={N}, C={C}, F={F}, k={ks}, stride {s}, padding {p}"
                      + (", float32)" if dtype == "float32" else ")")})
    return cases


def conv2d_run(objects, case):
    """Calls the student's Conv2d on one case (runner side): forward, then forward + backward twice."""
    from .checks import Failed, _array, _cast
    (Conv2d,) = objects
    x, W, b, g = _cast(case, "xWbg")
    F, C, k, _ = W.shape
    s, p = case["stride"], case["padding"]
    out = {}
    try:
        layer = call(f"Conv2d({C}, {F}, {k}, {s}, {p})", Conv2d, C, F, k, s, p)
        layer.W, layer.b = W.copy(), b.copy()
        out["forward"] = _array(call("Conv2d.forward(x)", layer.forward, x.copy()))
    except (StudentError, NotWritten) as err:
        return {"failed": [Failed.of(["forward", "dx", "dW", "db"], err)]}
    try:
        for _ in range(2):                                  # twice: the gradients are assigned, not accumulated
            call("Conv2d.forward(x)", layer.forward, x.copy())
            out["dx"] = _array(call("Conv2d.backward(dout)", layer.backward, g.copy()))
    except (StudentError, NotWritten) as err:
        out["failed"] = [Failed.of(["dx", "dW", "db"], err)]
        return out
    for name in ("dW", "db"):
        got = getattr(layer, name, None)
        out[name] = Failed((name,), FAIL, f"Conv2d has no attribute {name} after backward",
                           f"store the gradient in self.{name} inside backward.") if got is None else _array(got)
    return out


def conv2d_judge(case, out):
    """The expected values from the loops (C1, C3) and each part's verdict (judge side)."""
    from .checks import _f64
    x, W, b, g = _f64(case, "xWbg")
    stride, padding = case["stride"], case["padding"]
    N = x.shape[0]
    out_ref = conv_forward_loops(x, W, b, stride, padding)
    dx_ref, dW_ref, db_ref = conv_backward_loops(x, W, g, stride, padding)
    f = lambda: float(np.sum(conv_forward_loops(x, W, b, stride, padding) * g))      # a second, numerical truth
    assert np.allclose(numerical_gradient(f, W), dW_ref, rtol=1e-6, atol=1e-8)
    twice = "ours doubled on a second backward: the gradient is accumulated (+=) instead of assigned (=)."

    def forward():
        return compare("forward", out["forward"], out_ref, alternatives={
            "the kernel is flipped in forward: a layer's forward is a correlation (W[f,c,u,v] times xp[.., s i + u, "
            "s j + v]); the flip belongs to dx only.": conv_forward_loops(x, W[:, :, ::-1, ::-1], b, stride, padding),
            "the bias b is not added.": out_ref - b[None, :, None, None]})

    def dx():
        alternatives = {
            "dx uses the kernel flipped where it must not be (or not flipped where a convolution of dout flips it): "
            "each dout[n, f, i, j] sends W[f, c, u, v] itself back to xp[n, c, s i + u, s j + v].":
                conv_backward_loops(x, W, g, stride, padding, flip=True)[0],
            "dx is cut from the padded gradient at the wrong offset: drop the first `padding` rows and columns "
            "(the gradient that lands on padding), keep the next H x W.":
                conv_backward_loops(x, W, g, stride, padding, crop=0)[0],
            "dx is off by one in the padding: the padded gradient starts `padding` rows before x, not padding + 1.":
                conv_backward_loops(x, W, g, stride, padding, crop=padding + 1)[0],
        }
        if stride > 1:
            alternatives["the stride is missing in dx: output (i, j) came from the window at (s i, s j), "
                         f"s = {stride}, not (i, j)."] = _no_stride_dx(x, W, g, padding)
        return compare("dx", out["dx"], dx_ref, {"N": (N, "the batch")}, alternatives)

    def param(name, ref):
        def grade():
            got = np.asarray(out[name], dtype=np.float64)
            if name == "dW" and got.shape == ref.transpose(1, 0, 2, 3).shape and got.shape != ref.shape:
                swapped = np.allclose(got, ref.transpose(1, 0, 2, 3), rtol=1e-6, atol=1e-9)
                return Part(name, FAIL, f"dW has shape {got.shape}, expected {ref.shape} (F, C, k, k)",
                            "the channel axes are swapped: dW[f, c] belongs to filter f and input channel c"
                            + (" (the values are right, transposed)." if swapped else "."))
            first = conv_backward_loops(x[:1], W, g[:1], stride, padding)
            alternatives = {twice: 2 * ref,
                            "only the first example is used: sum the gradient over the batch (every n).":
                                first[1] if name == "dW" else first[2]}
            if name == "db":
                alternatives["db is summed over the batch only: sum over the output positions (i, j) too."] = \
                    g.sum(axis=0)
            return compare(name, out[name], ref, {"N": (N, "the batch"), "HoWo": (g.shape[2] * g.shape[3],
                                                                                  "the output positions")},
                           alternatives)
        return grade
    return [("forward", forward), ("dx", dx), ("dW", param("dW", dW_ref)), ("db", param("db", db_ref))]


def grade_conv2d(Conv2d, seed=0, stride=2, padding=1, hidden=None):
    """Grade a class Conv2d(in_channels, out_channels, kernel_size, stride, padding): forward, dx, dW, db.

    Runs the student's code here (what a notebook's check cell does); ``grade`` runs the registered
    exercise "conv2d" in a runner process instead.
    """
    from .checks import EXERCISES, judge
    ex = EXERCISES["conv2d"]
    cases = conv2d_cases(seed, hidden, stride, padding)
    report = judge(ex, cases, [conv2d_run((Conv2d,), c) for c in cases], seed)
    report.exercise = f"Conv2d (stride {stride}, padding {padding})"
    report.note = ("all public checks passed; hidden checks run when graded" if hidden is None
                   else "public and hidden checks ran")
    return report


def _no_stride_dx(x, W, g, padding):
    """dx as if every output pixel's window started at (i, j): the stride forgotten in the backward pass."""
    N, C, H, Wd = x.shape
    kh, kw = W.shape[2:]
    size = (max(H + 2 * padding, g.shape[2] + kh - 1), max(Wd + 2 * padding, g.shape[3] + kw - 1))
    dxp = np.zeros((N, C, *size))
    for i, j in itertools.product(range(g.shape[2]), range(g.shape[3])):
        dxp[:, :, i:i + kh, j:j + kw] += np.einsum("nf,fcuv->ncuv", g[:, :, i, j], W)
    return dxp[:, :, padding:padding + H, padding:padding + Wd]
