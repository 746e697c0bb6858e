"""Homework 5: the Gumbel-softmax sample and its gradient (derivations/15-discrete-latents.md, (15.7), (15.8)).

The student writes, for one categorical latent per row,

    gumbel_softmax(logits, g, tau) -> y             y = softmax((logits + g) / tau) along the classes
    gumbel_softmax_backward(dy, y, tau) -> dlogits  (1/tau) y * (dy - sum_j y_j dy_j), g held fixed

with logits, g, dy, y of shape (B, K).  Split as every exercise of ``checks`` is:

* ``gumbel_cases(seed, hidden)``: the public case (B, K = 4, 5, tau = 0.7; B != K, so a sum over the
  wrong axis shows) and, with the manifest's ``hidden`` seed, hidden ones: B = 1, tau = 0.1 and
  tau = 2.5, K = 10, float32 inputs; every case also has logits of +-800 (a softmax without its
  max subtracted overflows);
* ``gumbel_run(objects, case)`` (the student's process): calls the two functions; the backward
  gets the *reference* y (computed here with NumPy, not by the student's forward), so a wrong
  forward does not fail the backward too;
* ``gumbel_judge(case, out)`` (the judge's process): y by the definition written here, dlogits by
  centred differences of sum(dy * y(logits)) in float64; the typical slips, each with the
  sentence that names it: tau missing (forward or backward), tau multiplied instead of divided,
  the noise subtracted, the softmax or the sum taken over the batch axis, the Jacobian's sign,
  its centring term missing.
"""
import numpy as np

from .diagnose import compare
from .guard import NotWritten, StudentError, call

PARTS = ("y", "y, large logits", "dlogits")
BIG = np.array([[800.0, -800.0, 0.0, 40.0, -40.0]])


def softmax(a, axis=-1):
    """softmax with the max subtracted (the judge's own, independent of the package)."""
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def gumbel_cases(seed=0, hidden=None):
    """Public: B, K, tau = 4, 5, 0.7.  Hidden: (1, 3, 0.1), (6, 10, 2.5), float32 (3, 4, 0.5)."""
    shapes = [(4, 5, 0.7)] + ([(1, 3, 0.1), (6, 10, 2.5), (3, 4, 0.5)] if hidden is not None else [])
    cases = []
    for k, (B, K, tau) in enumerate(shapes):
        rng = np.random.default_rng(seed) if k == 0 else np.random.default_rng([int(hidden), int(seed), k])
        cases.append({"logits": rng.normal(scale=2.0, size=(B, K)), "g": -np.log(rng.standard_exponential((B, K))),
                      "dy": rng.normal(size=(B, K)), "tau": tau, "big": BIG, "gbig": np.zeros_like(BIG),
                      "dtype": "float32" if k == 3 else "float64",
                      "label": "the public case" if k == 0 else f"hidden case {k} (B={B}, K={K}, tau={tau}"
                      + (", float32)" if k == 3 else ")")})
    return cases


def _cast(case, names):
    dtype = np.dtype(case.get("dtype", "float64"))
    return [np.asarray(case[n]).astype(dtype) for n in names]


def _array(value):
    if value is None:
        return None
    try:
        arr = np.asarray(value)
    except Exception:
        return f"a {type(value).__name__}"
    return arr if arr.dtype.kind in "biuf" else f"an array of {arr.dtype}"


def gumbel_run(objects, case):
    from .checks import Failed
    forward, backward = objects
    logits, g, dy, big, gbig = _cast(case, ["logits", "g", "dy", "big", "gbig"])
    tau = float(case["tau"])
    out, failed = {}, []
    for part, args in (("y", (logits, g, tau)), ("y, large logits", (big, gbig, 0.5))):
        try:
            out[part] = _array(call("gumbel_softmax(logits, g, tau)", forward, *args))
        except (StudentError, NotWritten) as err:
            failed.append(Failed.of([part], err))
    y = softmax((logits.astype(np.float64) + g) / tau).astype(logits.dtype)
    try:
        out["dlogits"] = _array(call("gumbel_softmax_backward(dy, y, tau)", backward, dy, y, tau))
    except (StudentError, NotWritten) as err:
        failed.append(Failed.of(["dlogits"], err))
    out["failed"] = failed
    return out


def gumbel_judge(case, out):
    from .checks import _grad
    logits, g, dy, big = (np.asarray(case[n], dtype=np.float64) for n in ("logits", "g", "dy", "big"))
    if case.get("dtype") == "float32":
        logits, g, dy = (a.astype(np.float32).astype(np.float64) for a in (logits, g, dy))
    tau = float(case["tau"])
    y = softmax((logits + g) / tau)
    lv = logits.copy()
    dlogits = _grad(lambda: float(np.sum(dy * softmax((lv + g) / tau))), lv)
    centred = dy - (y * dy).sum(axis=1, keepdims=True)
    B = {"tau": (tau, "tau")} if tau != 1 else None
    y_alternatives = {
        "tau is missing: y = softmax((logits + g) / tau), not softmax(logits + g).": softmax(logits + g),
        "tau multiplies instead of dividing: (logits + g) / tau.": softmax((logits + g) * tau),
        "the noise is subtracted: y = softmax((logits + g) / tau).": softmax((logits - g) / tau),
        "the softmax is taken over the batch (axis 0): normalise over the classes, the last axis.":
            softmax((logits + g) / tau, axis=0)}
    d_alternatives = {
        "the softmax Jacobian's sign: dL/da_k = y_k (dy_k - sum_j y_j dy_j); ours adds the sum.":
            y * (dy + (y * dy).sum(axis=1, keepdims=True)) / tau,
        "the factor 1/tau is missing: a = (logits + g) / tau, so da/dlogits = 1/tau.": y * centred,
        "multiplied by tau instead of divided: da/dlogits = 1/tau.": y * centred * tau,
        "the centring term is missing: the softmax Jacobian is diag(y) - y y^T, so subtract sum_j y_j dy_j.":
            y * dy / tau,
        "the sum sum_j y_j dy_j is over the batch (axis 0): take it over the classes of each row.":
            y * (dy - (y * dy).sum(axis=0, keepdims=True)) / tau}

    def large():
        part = compare("y, large logits", out["y, large logits"], softmax(big / 0.5))
        if not part.passed and "not finite" in part.detail:
            part.hint = ("exp of a large number overflows: subtract the row's maximum from (logits + g) / tau "
                         "before exp (the softmax does not change).")
        return part
    return [
        ("y", lambda: compare("y", out["y"], y, alternatives=y_alternatives)),
        ("y, large logits", large),
        ("dlogits", lambda: compare("dlogits", out["dlogits"], dlogits, B, d_alternatives)),
    ]


def grade_gumbel_softmax(gumbel_softmax, gumbel_softmax_backward, seed=0, hidden=None):
    """Grade gumbel_softmax(logits, g, tau) and gumbel_softmax_backward(dy, y, tau): a Report."""
    from .checks import _note, grade_in_process
    return _note(grade_in_process("gumbel_softmax", (gumbel_softmax, gumbel_softmax_backward), seed, hidden), hidden)


def check_gumbel_softmax(gumbel_softmax, gumbel_softmax_backward, seed=0, hidden=None):
    """Print the Gumbel-softmax exercise's verdicts; AssertionError if a part failed."""
    from .checks import _checked
    return _checked(grade_gumbel_softmax(gumbel_softmax, gumbel_softmax_backward, seed, hidden))
