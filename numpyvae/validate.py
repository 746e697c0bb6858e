"""Argument checks shared by the public functions.

Each check raises :class:`numpyvae.errors.InputError` with a message that
names the argument and says what was expected, e.g.
``x: expected a 2-D array (batch, x_dim), got shape (3,)``.
"""
import functools
import inspect

import numpy as np

from .errors import InputError

FLOAT_DTYPES = (np.float32, np.float64)


def as_float_array(name, x, ndim=None, dtype=None, finite=True, lo=None, hi=None):
    """Return ``x`` as a floating ndarray after checking it.

    name  : str, used in the error message.
    ndim  : required number of dimensions, or None.
    dtype : float32/float64 to cast to, or None to keep a float dtype
            (integers and bools are converted to float64).
    finite: refuse NaN and +/-inf.
    lo, hi: inclusive bounds on the values, or None.
    """
    if isinstance(x, np.ndarray) and x.dtype == object or isinstance(x, (str, bytes)):
        raise InputError(f"{name}: expected a numeric array, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{name}: expected a numeric array ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    given = arr
    with np.errstate(over="ignore"):          # a value beyond float32 becomes inf: reported below
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        elif arr.dtype.kind != "f" or arr.dtype not in FLOAT_DTYPES:
            arr = arr.astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise InputError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    if lo is not None and hi is not None and arr.size and lo <= arr.min() and arr.max() <= hi:
        return arr                            # NaN fails both comparisons, inf is out of bounds: all checked
    if finite and not np.all(np.isfinite(arr)):
        i = tuple(int(j) for j in np.argwhere(~np.isfinite(arr))[0])
        value = given[i] if given.shape == arr.shape else arr[i]
        beyond = f", beyond the range of {arr.dtype}" if np.isfinite(value) else ""
        raise InputError(f"{name}: expected finite values, found {value} at index {i}{beyond}")
    if lo is not None and arr.size and arr.min() < lo:
        raise InputError(f"{name}: expected values >= {lo}, found minimum {arr.min()}")
    if hi is not None and arr.size and arr.max() > hi:
        raise InputError(f"{name}: expected values <= {hi}, found maximum {arr.max()}")
    return arr


def check_shape(name, arr, shape):
    """Refuse ``arr`` unless its shape equals ``shape`` (None matches any size)."""
    ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape))
    if not ok:
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise InputError(f"{name}: expected shape {want}, got {arr.shape}")
    return arr


def check_positive_int(name, value, minimum=1):
    """Refuse anything that is not an integer >= minimum (bools included)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(name, value, choices):
    """Refuse a name that is not one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"{name}: expected one of {sorted(choices)}, got {value!r}")
    return value


def check_dtype(name, dtype):
    """Return np.float32 or np.float64, refusing any other dtype."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InputError(f"{name}: expected float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InputError(f"{name}: expected float32 or float64, got {dt}")
    return dt.type


def check_rng(name, rng):
    """Refuse anything that is not a numpy.random.Generator."""
    if not isinstance(rng, np.random.Generator):
        raise InputError(f"{name}: expected a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def check_float(name, value, lo=None, hi=None, lo_open=False, hi_open=False):
    """A real number (int or float, not bool, not NaN/inf) within the bounds; returned as float.

    lo_open / hi_open make the bound strict (value > lo, value < hi).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name}: expected a real number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise InputError(f"{name}: expected a finite number, got {v}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise InputError(f"{name}: expected a number {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and (v >= hi if hi_open else v > hi):
        raise InputError(f"{name}: expected a number {'<' if hi_open else '<='} {hi}, got {v}")
    return v


def exp_safe_logvar(name, arr):
    """Refuse a log-variance whose exp(+-logvar) would overflow its dtype."""
    limit = float(np.log(np.finfo(arr.dtype).max))
    if arr.size and np.abs(arr).max() >= limit:
        raise InputError(f"{name}: expected |{name}| < {limit:.1f} so that exp({name}) is finite "
                         f"in {arr.dtype}, found {arr.flat[np.abs(arr).argmax()]}")


def check_arrays(names, values, unit_interval=()):
    """The named values as finite float arrays whose shapes broadcast together.

    Names in ``unit_interval`` must lie in [0, 1]; names ending in ``logvar``
    must keep exp(+-logvar) finite in their dtype (|logvar| < 709 in float64,
    88 in float32).
    """
    out = [as_float_array(n, v, lo=0.0 if n in unit_interval else None, hi=1.0 if n in unit_interval else None)
           for n, v in zip(names, values)]
    for n, a in zip(names, out):
        if n.endswith("logvar"):
            exp_safe_logvar(n, a)
    try:
        np.broadcast_shapes(*(a.shape for a in out))
    except ValueError:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, out))
        raise InputError(f"{', '.join(names)}: expected shapes that broadcast together, got {shapes}") from None
    return out


def checks_arrays(unit_interval=(), skip=()):
    """Decorator: the public function checks its array arguments, then runs the pure kernel.

    The decorated function refuses anything but finite real arrays whose shapes
    broadcast (see :func:`check_arrays`), and refuses to return a result that
    overflowed to NaN or inf (InputError); the undecorated formula stays
    available as ``function.kernel`` for callers that checked their inputs
    once already (the VAE checks x and eps at its own entry points).
    Arguments named in ``skip`` (caches) are passed through unchecked.
    """
    def wrap(kernel):
        names = [n for n in inspect.signature(kernel).parameters]

        @functools.wraps(kernel)
        def public(*args):
            if len(args) != len(names):
                raise InputError(f"{kernel.__name__}: expected the arguments ({', '.join(names)}), "
                                 f"got {len(args)} values")
            arrays = [(n, a) for n, a in zip(names, args) if n not in skip]
            checked = iter(check_arrays([n for n, _ in arrays], [a for _, a in arrays], unit_interval))
            with np.errstate(over="ignore", invalid="ignore"):
                result = kernel(*(a if n in skip else next(checked) for n, a in zip(names, args)))
            for r in (result if isinstance(result, tuple) else (result,)):
                if isinstance(r, (np.ndarray, np.floating)) and r.dtype.kind == "f" and not np.all(np.isfinite(r)):
                    raise InputError(f"{', '.join(n for n, _ in arrays)}: {kernel.__name__} overflowed to "
                                     f"NaN or inf in {r.dtype}; expected values small enough for a finite result")
            return result

        public.kernel = kernel
        return public
    return wrap
