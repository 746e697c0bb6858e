"""Hints diagnosed from the numbers: how a wrong answer relates to the right one.

``compare(name, ours, expected, ...)`` grades one array and returns a Part.
When the two differ, ``hint`` looks for the relations typical slips leave:

* the expected gradient is ~0 everywhere     -> f does not read x
* ours is all zeros                          -> the gradient is never written
* ours matches a known wrong answer          -> that answer's sentence
                                                (the exercise supplies them)
* ours = c * expected for one number c       -> c = -1: sign flipped;
                                                c = 1/B: averaged instead of summed;
                                                c = B: summed where a mean is taken;
                                                c = 2 or 1/2: a factor 1/2
* ours = expected.T (or the transposed shape) -> a missing .T
* the wrong entries all lie where a condition holds (e.g. where logits < 0)
* ours matches the gradient of the student's *own* forward -> the backward
  is consistent, the forward is what is wrong (a gradient check alone passes)
"""
import contextlib

import numpy as np

from .. import gradcheck
from .report import FAIL, PASS, Part

CLOSE = 1e-6       # relative error under which "ours is that array" is believed
TOL32 = 1e-5       # a float32 answer (or one computed from float32 inputs) passes below this relative error;
                   # float64 answers pass below gradcheck.TOL = 1e-7 (a forward difference does not)


_SINGLE = [False]   # the precision of the case being judged (checks.judge sets it per case)


@contextlib.contextmanager
def inputs_float32(flag):
    """Within: compare() judges at float32 precision when ``flag`` (the case's inputs were float32)."""
    _SINGLE.append(bool(flag))
    try:
        yield
    finally:
        _SINGLE.pop()


def _close(a, b):
    return a.shape == b.shape and gradcheck.rel_error(a, b, floor=1e-12) < CLOSE


def _ratio_hint(c, factors):
    """The sentence for ours = c * expected, or ''."""
    sign = "the sign is flipped and " if c < 0 else ""
    a = abs(c)
    for name, (value, noun) in factors.items():
        if value > 1 and np.isclose(a, 1.0 / value, rtol=1e-6):
            minus = "-" if c < 0 else ""
            return (f"ours = {c:.6g} x expected = {minus}expected / {name} ({name} = {value}): "
                    f"{sign}averaged over {noun} instead of summed.")
        if value > 1 and np.isclose(a, value, rtol=1e-6):
            return (f"ours = {c:.6g} x expected ({name} = {value}): {sign}summed over {noun} where the mean "
                    f"is taken: a factor 1/{name} is missing.")
    if np.isclose(c, -1.0, rtol=1e-6):
        return "ours = -expected: the sign is flipped."
    if np.isclose(a, 2.0, rtol=1e-6):
        return (f"ours = {c:.6g} x expected: {sign}a factor 1/2 is missing "
                "(a derivative of a square, or the 1/2 in exp(logvar/2)).")
    if np.isclose(a, 0.5, rtol=1e-6):
        return f"ours = {c:.6g} x expected: {sign}an extra factor 1/2."
    if np.isclose(a, 1.0, rtol=1e-6):
        return ""
    return f"ours = {c:.6g} x expected everywhere: one constant factor is wrong."


def hint(ours, expected, factors=None, alternatives=None, where=None):
    """One sentence on what is probably wrong with ours (same shape as expected), or ''."""
    ours, expected = np.asarray(ours, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    n_ours, n_exp = np.linalg.norm(ours), np.linalg.norm(expected)
    if n_exp <= 1e-9 * max(1.0, n_ours) and n_ours > 1e-9:
        return ("the expected (numerical) gradient is ~0 everywhere: f does not read x. "
                "Does f compute with x itself, not a copy of it or another array?")
    if n_ours == 0.0:
        return "ours is all zeros: the gradient is never written (or written to another variable)."
    for sentence, alt in (alternatives or {}).items():
        if _close(ours, np.asarray(alt, dtype=np.float64)):
            return sentence
    if ours.ndim == 2 and ours.shape[0] == ours.shape[1] and not _close(expected, expected.T) and _close(ours, expected.T):
        return "ours is the transpose of the expected: a missing .T (or the factors of a product swapped)."
    c = float(np.vdot(ours, expected) / np.vdot(expected, expected)) if n_exp > 0 else 0.0
    if n_exp > 0 and _close(ours, c * expected):
        sentence = _ratio_hint(c, factors or {})
        if sentence:
            return sentence
    bad = np.abs(ours - expected) > CLOSE * max(np.abs(expected).max(), 1e-12)
    for condition, mask in (where or {}).items():
        mask, advice = mask if isinstance(mask, tuple) else (mask, "")
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), bad.shape)
        if bad.any() and not bad[~mask].any() and not mask.all():
            return (f"only the entries {condition} are wrong ({int(bad.sum())} of {bad.size}); the others are right"
                    + (f": {advice}" if advice else "") + ".")
    return ""


def shape_hint(ours, expected):
    """A sentence on a wrong shape, or ''."""
    if ours.ndim == 2 and ours.shape == expected.shape[::-1]:
        if np.allclose(ours.T, expected, rtol=1e-6, atol=1e-12):
            return "ours is the transpose of the expected: a missing .T (or the factors of the product swapped)."
        return "ours has the transposed shape: a missing .T (or the factors of the product swapped)."
    if ours.ndim == expected.ndim + 1 and ours.shape[1:] == expected.shape:
        return "ours has an extra leading axis: sum over the batch axis (axis=0)."
    if ours.ndim == expected.ndim + 1 and ours.shape[:-1] == expected.shape:
        return "ours has an extra last axis: sum over it (axis=-1)."
    if ours.size == 1 and expected.size > 1:
        return "ours is a single number where one value per entry is expected: summed over an axis too many."
    return ""


def compare(name, ours, expected, factors=None, alternatives=None, where=None, own=None, planted_nan=False,
            single=None):
    """Grade the array ``ours`` against ``expected``: a Part with a detail and a hint.

    factors     : {"B": (4, "the batch")} -- sizes a slip may multiply or divide by
    alternatives: {sentence: array} -- known wrong answers, each with its hint
    where       : {"where x < 0": mask or (mask, advice)} -- conditions the wrong entries may share
    own         : the gradient of the student's own forward (self-consistency), or None
    planted_nan : the grader filled ours with NaN before the call (all NaN = never written)
    single      : the inputs were float32: judged at float32 precision (TOL32) whatever ours's dtype;
                  a float32 answer to float64 inputs is judged at TOL32 too, with a note saying so
    """
    expected = np.asarray(expected, dtype=np.float64)
    if ours is None:
        return Part(name, FAIL, "ours is None", "nothing was returned or stored: a missing return statement?")
    try:
        dtype = np.asarray(ours).dtype
        ours = np.asarray(ours, dtype=np.float64)
    except (TypeError, ValueError):
        return Part(name, FAIL, f"ours is a {type(ours).__name__}, expected an array of shape {expected.shape}")
    single = _SINGLE[-1] if single is None else single
    low = single or dtype in (np.float32, np.float16)
    note = (f" (ours is {dtype}, the inputs float64: judged at float32 precision, relative error < {TOL32:g})"
            if low and not single else "")
    if ours.shape != expected.shape:
        known = [s for s, alt in (alternatives or {}).items() if _close(ours, np.asarray(alt, dtype=np.float64))]
        return Part(name, FAIL, f"ours has shape {ours.shape}, expected {expected.shape}",
                    known[0] if known else shape_hint(ours, expected))
    if not np.all(np.isfinite(ours)):
        i = tuple(int(k) for k in np.argwhere(~np.isfinite(ours))[0])
        if planted_nan and np.all(np.isnan(ours)):
            sentence = "it still holds the NaN the grader put there before the call: this gradient is never written."
        else:
            sentence = "NaN or inf: an overflow (exp of a large number?), a log of a negative number, or 0/0."
        return Part(name, FAIL, f"ours is not finite at index {i}: ours {ours[i]} vs expected {expected[i]:.10g}",
                    sentence)
    floor = gradcheck.FLOOR * max(1.0, float(np.abs(expected).max(initial=0)))     # as gradcheck: 1e-4 * max(1, |scale|)
    check = gradcheck.compare(name, ours, expected, floor=floor)
    detail = str(check)[len(name) + 2:] + note
    if (check.error < TOL32) if low else check.passed:
        return Part(name, PASS, f"relative error {check.error:.1e}{note}")
    sentence = hint(ours, expected, factors, alternatives, where)
    if own is not None and _close(ours, np.asarray(own, dtype=np.float64)):
        sentence += (" Ours matches the gradient of your own forward, so a gradient check of your code alone "
                     "passes: the forward is what is wrong.")
    return Part(name, FAIL, detail, sentence.strip())
