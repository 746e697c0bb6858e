"""Homework 3: a student's Conv2d (forward provided; dx, dW, db graded), as an exercise of the grader.

The student's class is ``Conv2d(in_channels, out_channels, kernel_size, stride, padding)`` with
``W`` (F, C, k, k) and ``b`` (F,), ``forward(x)`` for x (N, C, H, W) and ``backward(dout) -> dx``
filling ``dW`` and ``db`` (derivations/12-convolution.md, eqs. C1 and C3).  Split as every
exercise of ``checks`` is:

* ``conv2d_cases(seed, hidden)``: the public case (N, C, F, k, H, W = 4, 2, 3, 3, 7, 6, stride 2,
  padding 1; no two sizes equal, so a swapped axis shows) and, with the manifest's ``hidden``
  seed, hidden ones: batch 1, strides 1, 2, 3, paddings 0, 1, 2, non-square images, a stride that
  does not divide the padded image (a last row no window reaches), C = F, float32 inputs;
* ``conv2d_run(objects, case)`` (the student's process): builds their Conv2d, sets W and b, runs
  forward and backward twice, returns plain arrays;
* ``conv2d_judge(case, out)`` (the judge's process): the expected values are the definition (C1)
  and (C3) written as loops here, never the student's code nor ``numpyvae.conv``
  (tests/test_conv_homework.py checks the loops against centred differences and the package);
  wrong answers that typical slips give are computed the same way, each with the sentence that
  says what went wrong: the kernel not flipped (or flipped where it must not be), the batch not
  summed, the stride or the padding off by one, the channel axes swapped, gradients accumulated.

``grade_conv2d`` / ``check_conv2d`` are what the notebook's test cell calls (the public case, plus
the hidden ones given a ``hidden`` seed), like ``checks.check_linear``.
"""
import itertools

import numpy as np

from .diagnose import compare
from .guard import NotWritten, StudentError, call
from .report import FAIL, Part

PARTS = ("forward", "dx", "dW", "db")


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
    """Eq. (C3) as loops: dx, dW, db.  ``crop`` (default: padding) is where dx is cut from the padded
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


def _no_stride_dx(x, W, g, padding):
    """dx as if every output pixel's window started at (i, j): the stride forgotten in the backward pass."""
    N, C, H, Wd = x.shape
    kh, kw = W.shape[2:]
    size = (max(H + 2 * padding, g.shape[2] + kh - 1), max(Wd + 2 * padding, g.shape[3] + kw - 1))
    dxp = np.zeros((N, C, *size))
    for i, j in itertools.product(range(g.shape[2]), range(g.shape[3])):
        dxp[:, :, i:i + kh, j:j + kw] += np.einsum("nf,fcuv->ncuv", g[:, :, i, j], W)
    return dxp[:, :, padding:padding + H, padding:padding + Wd]


def _dW_shifted(x, g, kh, kw, stride, padding, shift=(0, 0), step=None):
    """dW with every window read ``shift`` rows/columns later (the padding off by one: x padded by
    padding - shift) or at (step i, step j) (step 1: the stride forgotten in dW).  Zeros outside."""
    s = stride if step is None else step
    m = 2                                                  # a margin of zeros so a shifted window stays inside
    xp = np.pad(x, ((0, 0), (0, 0), (padding + m, padding + m), (padding + m, padding + m)))
    dW = np.zeros((g.shape[1], x.shape[1], kh, kw))
    for i, j in itertools.product(range(g.shape[2]), range(g.shape[3])):
        r, c = m + s * i + shift[0], m + s * j + shift[1]
        dW += np.einsum("nf,ncuv->fcuv", g[:, :, i, j], xp[:, :, r:r + kh, c:c + kw])
    return dW


# ---- the cases --------------------------------------------------------------------------------

def conv2d_case(rng, N, C, F, k, H, W, stride, padding, dtype="float64", label="the public case"):
    """One case: x (N, C, H, W), W (F, C, k, k), b (F,), dout g of the output's shape, drawn from ``rng``."""
    Ho, Wo = (H + 2 * padding - k) // stride + 1, (W + 2 * padding - k) // stride + 1
    return {"x": rng.standard_normal((N, C, H, W)), "W": rng.standard_normal((F, C, k, k)),
            "b": rng.standard_normal(F), "g": rng.standard_normal((N, F, Ho, Wo)),
            "stride": int(stride), "padding": int(padding), "dtype": dtype, "label": label}


def conv2d_cases(seed=0, hidden=None):
    """Public: N, C, F, k, H, W = 4, 2, 3, 3, 7, 6, stride 2, padding 1.  Hidden (sizes drawn from the
    manifest's seed): batch 1 with stride 1, padding 0; stride 3, padding 2; a stride that leaves
    the padded image's last row unread; C = F; float32 inputs; every image non-square."""
    from .checks import _rng
    cases = [conv2d_case(np.random.default_rng(seed), 4, 2, 3, 3, 7, 6, 2, 1)]
    if hidden is None:
        return cases
    r = _rng(seed, hidden, 0)
    H = lambda lo, hi: int(r.integers(lo, hi))
    shapes = [  # N, C, F, k, H, W, stride, padding, dtype
        (1, 3, 2, 3, H(5, 7), H(8, 10), 1, 0, "float64"),
        (2, 1, 4, 3, H(8, 10), H(6, 8), 3, 2, "float64"),
        (3, 2, 5, 3, 8, H(5, 7), 2, 0, "float64"),          # (8 - 3) / 2 is not whole: x's last row is never read
        (2, 3, 3, 3, H(6, 8), H(9, 11), 2, 2, "float64"),   # C = F
        (3, 2, 3, 3, H(5, 7), H(7, 9), 2, 1, "float32"),
    ]
    for k, (N, C, F, kk, Hh, Ww, s, p, dtype) in enumerate(shapes, 1):
        cases.append(conv2d_case(_rng(seed, hidden, k), N, C, F, kk, Hh, Ww, s, p, dtype,
                                 f"hidden case {k} (N={N}, C={C}, F={F}, k={kk}, {Hh}x{Ww} images, stride {s}, "
                                 f"padding {p}" + (", float32 inputs)" if dtype == "float32" else ")")))
    return cases


# ---- the student's side (runner process) ------------------------------------------------------------

def conv2d_run(objects, case):
    """Build the student's Conv2d, set W and b, forward and backward twice; the outputs as arrays."""
    from .checks import Failed, _array, _cast, gradient_attributes
    (Conv2d,) = objects
    x, g, W, b = _cast(case, "xgWb")
    F, C, k, _ = W.shape
    s, p = case["stride"], case["padding"]
    out = {}
    try:
        layer = call(f"Conv2d({C}, {F}, {k}, stride={s}, padding={p})", Conv2d, C, F, k, s, p)
        layer.W, layer.b = W.copy(), b.copy()
        out["forward"] = _array(call("Conv2d.forward(x)", layer.forward, x))
    except (StudentError, NotWritten) as err:
        return {"failed": [Failed.of(PARTS, err)]}
    try:
        for _ in range(2):                                 # twice: gradients are assigned, not accumulated
            call("Conv2d.forward(x)", layer.forward, x)
            out["dx"] = _array(call("Conv2d.backward(dout)", layer.backward, g))
    except (StudentError, NotWritten) as err:
        out["failed"] = [Failed.of(PARTS[1:], err)]
        return out
    out.update(gradient_attributes(layer, "Conv2d"))
    return out


# ---- the judge's side ---------------------------------------------------------------------------

TWICE = "ours doubled on a second backward: the gradient is accumulated (+=) instead of assigned (=)."
FIRST_ONLY = "only the first example is used: sum the gradient over the batch (every n)."


def _distinct(expected, alternatives):
    """The alternatives that differ from the expected answer (a slip that changes nothing here is no hint)."""
    return {s: a for s, a in alternatives.items()
            if np.shape(a) != np.shape(expected) or not np.allclose(a, expected, rtol=1e-9, atol=1e-12)}


def conv2d_judge(case, out):
    from .checks import _f64
    x, g, W, b = _f64(case, "xgWb")
    s, p = case["stride"], case["padding"]
    N, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    out_ref = conv_forward_loops(x, W, b, s, p)
    dx_ref, dW_ref, db_ref = conv_backward_loops(x, W, g, s, p)
    first = conv_backward_loops(x[:1], W, g[:1], s, p)
    batch = {"N": (N, "the batch")}

    dx_alternatives = {
        "dx uses the kernel flipped where it must not be (or not flipped where a convolution of dout flips it): "
        "each dout[n, f, i, j] sends W[f, c, u, v] itself back to xp[n, c, s i + u, s j + v].":
            conv_backward_loops(x, W, g, s, p, flip=True)[0]}
    if p > 0:
        dx_alternatives["dx is cut from the padded gradient at the wrong offset: drop the first `padding` rows "
                        "and columns (the gradient that lands on padding), keep the next H x W."] = \
            conv_backward_loops(x, W, g, s, p, crop=0)[0]
    for c in (p - 1, p + 1):
        if c > 0:
            dx_alternatives[f"dx is off by one in the padding: the padded gradient starts `padding` = {p} rows "
                            f"and columns before x, not {c}."] = conv_backward_loops(x, W, g, s, p, crop=c)[0]
    if s > 1:
        dx_alternatives["the stride is missing in dx: output (i, j) came from the window at (s i, s j), "
                        f"s = {s}, not (i, j)."] = _no_stride_dx(x, W, g, p)

    dW_alternatives = {TWICE: 2 * dW_ref, FIRST_ONLY: first[1],
                       "dW is flipped (rotated by 180 degrees): dW[f, c, u, v] collects x at the window's "
                       "offset (u, v) itself; only dx meets the flipped kernel.": dW_ref[:, :, ::-1, ::-1]}
    if C == F:
        dW_alternatives["the channel axes are swapped: dW[f, c] belongs to filter f and input channel c "
                        "(ours is dW transposed in its first two axes)."] = dW_ref.transpose(1, 0, 2, 3)
    for d in (-1, 1):
        dW_alternatives[f"dW reads x padded by {p - d}, not padding = {p}: the window of output (i, j) starts at "
                        "(s i, s j) of x padded by `padding`, as in forward."] = \
            _dW_shifted(x, g, kh, kw, s, p, (d, d))
    if s > 1:
        dW_alternatives[f"the stride is missing in dW: output (i, j) read the window at (s i, s j), s = {s}, "
                        "not (i, j)."] = _dW_shifted(x, g, kh, kw, s, p, step=1)

    db_alternatives = {TWICE: 2 * db_ref, FIRST_ONLY: first[2],
                       "db is summed over the batch only: sum over the output positions (i, j) too.": g.sum(axis=0),
                       "db is summed over the output positions only: sum over the batch (axis 0) too.":
                           g.sum(axis=(2, 3))}

    def dW():
        ours = out["dW"]
        swapped = dW_ref.transpose(1, 0, 2, 3)
        if ours.shape == swapped.shape and ours.shape != dW_ref.shape:
            same = np.allclose(ours, swapped, rtol=1e-6, atol=1e-9)
            return Part("dW", FAIL, f"ours has shape {ours.shape}, expected {dW_ref.shape} (F, C, k, k)",
                        "the channel axes are swapped: dW[f, c] belongs to filter f and input channel c"
                        + (" (the values are right, transposed)." if same else "."))
        return compare("dW", ours, dW_ref, batch, _distinct(dW_ref, dW_alternatives))

    positions = {"N": (N, "the batch"), "HoWo": (g.shape[2] * g.shape[3], "the output positions")}
    return [
        ("forward", lambda: compare("forward", out["forward"], out_ref, alternatives={
            "the kernel is flipped in forward: a layer's forward is a correlation (W[f,c,u,v] times xp[.., s i + u, "
            "s j + v]); the flip belongs to dx only.": conv_forward_loops(x, W[:, :, ::-1, ::-1], b, s, p),
            "the bias b is not added.": out_ref - b[None, :, None, None]})),
        ("dx", lambda: compare("dx", out["dx"], dx_ref, batch, _distinct(dx_ref, dx_alternatives))),
        ("dW", dW),
        ("db", lambda: compare("db", out["db"], db_ref, positions, _distinct(db_ref, db_alternatives))),
    ]


# ---- what the notebook's test cell calls ---------------------------------------------------------

def grade_conv2d(Conv2d, seed=0, hidden=None):
    """Grade a class Conv2d(in_channels, out_channels, kernel_size, stride, padding): forward, dx, dW, db,
    on the public case (and the hidden ones, given the manifest's ``hidden`` seed).  A Report."""
    from .checks import _note, grade_in_process
    return _note(grade_in_process("conv2d", (Conv2d,), seed, hidden), hidden)


def check_conv2d(Conv2d, seed=0, hidden=None):
    """Print the Conv2d exercise's verdicts; AssertionError if a part failed (NotImplementedError if not written)."""
    from .checks import _checked
    return _checked(grade_conv2d(Conv2d, seed, hidden))
