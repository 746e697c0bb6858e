"""Making grey images binary, for the Bernoulli decoder: a fixed threshold, or a fresh draw each time."""
from ..errors import InputError
from ..validate import as_float_array, check_choice, check_rng

BINARIZE = ("none", "threshold", "dynamic")


def binarize(x, mode="none", rng=None, threshold=0.5):
    """Make images x (any shape, finite values in [0, 1]) binary, keeping shape and float dtype.

    none      : x unchanged.
    threshold : 1 where x > threshold, else 0 (one fixed binarization).
    dynamic   : a fresh Bernoulli(x) draw from ``rng`` (a numpy Generator,
                required) at every call: called once per minibatch, each epoch
                sees a new binarization (the scheme of Burda et al., IWAE).
    """
    if not isinstance(mode, str):
        raise InputError(f"mode: expected one of {sorted(BINARIZE)}, got {mode!r}")
    check_choice("mode", mode, BINARIZE)
    x = as_float_array("x", x, lo=0.0, hi=1.0)
    if mode == "none":
        return x
    if mode == "threshold":
        threshold = float(as_float_array("threshold", threshold, ndim=0, lo=0.0, hi=1.0))
        return (x > threshold).astype(x.dtype)
    rng = check_rng("rng", rng)
    return (rng.random(x.shape, dtype=x.dtype) < x).astype(x.dtype)
