"""Numerical gradient checks: centred differences against the hand-written backward.

The textbook centred difference (``order=2``)

    df/dx_i ~ [f(x + h e_i) - f(x - h e_i)] / (2h)                          error O(h^2)

and the five-point centred stencil (``order=4``, the default for the checks)

    df/dx_i ~ [-f(x + 2h e_i) + 8 f(x + h e_i) - 8 f(x - h e_i) + f(x - 2h e_i)] / (12h)
                                                                             error O(h^4)

Both have two error sources: truncation (h^2 or h^4 times a higher
derivative) and rounding (machine epsilon * |f| / h).  The five-point stencil
lets h be larger (1e-3) for the same truncation, so rounding shrinks too.
Run them in float64: in float32 the rounding error of f swamps the difference.

The relative error of two gradient arrays a, b is

    ||a - b|| / max(||a|| + ||b||, floor),     floor = 1e-4 * max(1, |f|)

A gradient whose norm is below the floor counts as zero: there the absolute
error is what is compared, 1e-7 * floor = 1e-11 * max(1, |f|), the size of
the stencil's rounding noise (about 1e-16 * |f| / h).  A correct float64
backward gives < 1e-7.
"""
from dataclasses import dataclass

import numpy as np

from . import distributions as dist
from .estimators import ESTIMATORS, log_weights
from .errors import InputError
from .validate import check_float


STENCILS = {2: ((1, -1), (1, -1), 2), 4: ((2, 1, -1, -2), (-1, 8, -8, 1), 12)}
H = {2: 1e-5, 4: 1e-3}
FLOOR = 1e-4
TOL = 1e-7          # a correct float64 backward stays below this relative error


def numerical_gradient(f, x, h=None, order=4):
    """Centred-difference gradient of the scalar function f() with respect to array x.

    ``x`` is perturbed in place, one entry at a time, and restored;
    ``f`` takes no argument and must read x.  order: 2 or 4 (see above);
    h defaults to 1e-5 (order 2) or 1e-3 (order 4).  Returns an array like x.
    """
    if x.dtype != np.float64:
        raise InputError(f"x: gradient checks need float64, got {x.dtype}")
    if order not in STENCILS:
        raise InputError(f"order: expected 2 or 4, got {order!r}")
    h = H[order] if h is None else check_float("h", h, lo=0.0, lo_open=True, hi=1.0)
    steps, weights, denom = STENCILS[order]
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        total = 0.0
        for step, weight in zip(steps, weights):
            x[i] = old + step * h
            total += weight * f()
        x[i] = old
        grad[i] = total / (denom * h)
    return grad


def rel_error(ours, expected, floor=FLOOR):
    """||ours - expected|| / max(||ours|| + ||expected||, floor)."""
    ours, expected = np.asarray(ours, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    denom = max(np.linalg.norm(ours) + np.linalg.norm(expected), floor)
    return float(np.linalg.norm(ours - expected) / denom)


@dataclass
class Check:
    """The outcome of one gradient check, printable as 'ours vs expected'."""

    name: str
    error: float
    index: tuple
    ours: float
    expected: float

    @property
    def passed(self):
        """The verdict: relative error below TOL (1e-7)."""
        return self.error < TOL

    def __str__(self):
        return (f"{self.name}: relative error {self.error:.2e}; worst entry at index {self.index}: "
                f"ours {self.ours:.10g} vs expected {self.expected:.10g}")


def compare(name, ours, expected, floor=FLOOR):
    """A Check of two gradient arrays, naming the entry where they differ most."""
    ours, expected = np.asarray(ours, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if ours.shape != expected.shape:
        raise InputError(f"{name}: ours has shape {ours.shape}, expected {expected.shape}")
    idx = np.unravel_index(np.argmax(np.abs(ours - expected)), ours.shape) if ours.size else ()
    idx = tuple(int(i) for i in idx)
    return Check(name, rel_error(ours, expected, floor), idx,
                 float(ours[idx]) if ours.size else 0.0, float(expected[idx]) if ours.size else 0.0)


def _replace(layer, where, value):
    """Put value at ``where``: ("attr", name) or ("item", container, key)."""
    if where[0] == "attr":
        setattr(layer, where[1], value)
    else:
        where[1][where[2]] = value


def _changes_output(layer, x, where, arr, out):
    """Does forward(x) change when the array at ``where`` is replaced by a perturbed copy?"""
    _replace(layer, where, arr + 0.5 + np.abs(arr))
    try:
        changed = not np.allclose(layer.forward(x), out)
    except Exception:                               # e.g. a cache whose shape the forward checks
        changed = True
    finally:
        _replace(layer, where, arr)
    return changed


def layer_params(layer, x):
    """Every parameter array of a layer with its gradient: list of (name, array, gradient name).

    A parameter is an array attribute ``P`` with a gradient attribute ``dP``
    (``W``/``dW``, ``b``/``db`` for Linear), or an entry of a dict
    ``layer.params`` whose gradient is the same key of ``layer.grads``.  Any
    other float array the layer holds (directly, or in a dict or list
    attribute) is tried: if replacing it changes ``forward(x)``, it is a
    parameter with no gradient, and InputError names it -- a parameter is
    never silently left unchecked.  Caches (the input, the output, a mask)
    are rewritten by forward and so pass this test.
    """
    found, seen = [], set()
    params, grads = getattr(layer, "params", None), getattr(layer, "grads", None)
    attrs = {n: v for n, v in vars(layer).items() if n not in ("params", "grads", "cache")}
    for name, value in attrs.items():
        if isinstance(value, np.ndarray) and isinstance(attrs.get("d" + name), np.ndarray):
            found.append((name, value, ("attr", "d" + name)))
            seen.update((id(value), id(attrs["d" + name])))
    if isinstance(params, dict):             # entries that are not already an attribute P with its dP
        for key, arr in params.items():
            if id(arr) in seen:
                continue
            if not isinstance(grads, dict) or key not in grads:
                raise InputError(f"layer: parameter params[{key!r}] has no gradient grads[{key!r}]")
            found.append((f"params[{key!r}]", arr, ("item", grads, key)))
            seen.add(id(arr))
    out = layer.forward(x)
    candidates = []
    for name, value in attrs.items():
        if isinstance(value, np.ndarray):
            candidates.append((name, ("attr", name), value))
        elif isinstance(value, dict):
            candidates += [(f"{name}[{k!r}]", ("item", value, k), v) for k, v in value.items()]
        elif isinstance(value, list):
            candidates += [(f"{name}[{i}]", ("item", value, i), v) for i, v in enumerate(value)]
    for name, where, arr in candidates:
        if (isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and arr.size and id(arr) not in seen
                and arr is not x and _changes_output(layer, x, where, arr, out)):
            raise InputError(f"layer: {name} changes the output but has no gradient: name it P with its "
                             f"gradient dP (like W/dW), or list it in a params dict with grads, so it is checked")
    return found


def check_layer(layer, x, rng, h=None):
    """Vector-Jacobian check of a layer: no scalar loss needed.

    With a random upstream gradient g (same shape as the output), the
    scalar f(x) = sum(forward(x) * g) has gradient backward(g).  Checks the
    input gradient and every parameter the layer exposes (``layer_params``:
    W and b for Linear; a parameter without a gradient is refused with
    InputError).  Returns a list of Checks, "x" first.
    """
    params = layer_params(layer, x)
    g = rng.standard_normal(layer.forward(x).shape)
    layer.forward(x)
    dx = layer.backward(g)
    analytic = {"x": (x, dx.copy())}
    for name, arr, grad_at in params:
        grad = getattr(layer, grad_at[1]) if grad_at[0] == "attr" else grad_at[1][grad_at[2]]
        analytic[name] = (arr, np.array(grad, dtype=np.float64, copy=True))
    f = lambda: float(np.sum(layer.forward(x) * g))
    floor = FLOOR * max(1.0, abs(f()))
    return [compare(name, ours, numerical_gradient(f, arr, h), floor) for name, (arr, ours) in analytic.items()]


def check_function(f, grad, x, name="x", h=None):
    """Check grad (array) against the numerical gradient of the scalar f() w.r.t. x."""
    return compare(name, grad, numerical_gradient(f, x, h), FLOOR * max(1.0, abs(f())))


def surrogate_loss(model, x, eps, estimator, frozen, beta=1.0):
    """The scalar whose exact gradient the estimator's gradient is, with eps fixed.

    For "analytic", "mc" and "iwae" this is the loss itself.  "stl" drops the
    direct dependence of log q on (mu, logvar): they are taken from
    ``frozen`` (values at the current parameters) inside log q.  "score" holds
    z fixed at ``frozen["z"]`` and gives the encoder the surrogate
    mean_k stop(f_k) log q(z_k|x).  ``frozen`` is made by ``freeze``.
    """
    x = model.check_x(x)
    eps = eps[None] if eps.ndim == 2 else eps
    if estimator == "score":
        K, B = eps.shape[:2]
        mu, logvar = model.encode(x)
        z = frozen["z"]
        log_px = model.log_px(x, model.decode(z.reshape(K * B, -1)).reshape(K, B, -1))
        log_q = dist.gaussian_log_prob(z, mu, logvar)
        # a learned prior's parameters (and the VampPrior's encoder) reach f through log p(z) at the fixed z;
        # for N(0, I) this term has no parameter in it and adds nothing to the gradient
        log_pz = beta * model.prior.log_prob(z) if model.prior.params else 0.0
        return -float(np.mean(np.mean(log_px + log_pz + frozen["f"] * log_q, axis=0)))
    mu, logvar, z, _, log_px, _ = model.forward(x, eps)
    if estimator == "stl":
        return -float(np.mean(log_weights(log_px, z, frozen["mu"], frozen["logvar"], beta, model.prior).mean(axis=0)))
    return -float(np.mean(ESTIMATORS[estimator](log_px, z, mu, logvar, beta, prior=model.prior).elbo))


def freeze(model, x, eps, beta=1.0):
    """Values at the current parameters that ``surrogate_loss`` holds fixed."""
    x = model.check_x(x)
    mu, logvar, z, _, log_px, _ = model.forward(x, eps[None] if eps.ndim == 2 else eps)
    return {"mu": mu.copy(), "logvar": logvar.copy(), "z": z.copy(),
            "f": log_weights(log_px, z, mu, logvar, beta, model.prior)}


def check_model(model, x, eps, estimator="analytic", beta=1.0, h=None):
    """Whole-model check: worst relative error per parameter, as a list of Checks.

    model must be float64; eps (B, Z) or (K, B, Z) is held fixed.
    """
    if model.dtype != np.float64:
        raise InputError(f"model: gradient checks need a float64 model, got {np.dtype(model.dtype).name}")
    eps = np.asarray(eps, dtype=np.float64)
    _, grads = model.loss_and_grads(x, eps=eps, estimator=estimator, beta=beta)
    grads = {name: g.copy() for name, g in grads.items()}
    if getattr(model, "flow_steps", 0):          # a flow's estimators ("mc", "iwae") differentiate the loss itself
        f = lambda: model.loss_and_grads(x, eps=eps, estimator=estimator, beta=beta)[0]
    else:
        frozen = freeze(model, x, eps, beta)
        f = lambda: surrogate_loss(model, x, eps, estimator, frozen, beta)
    floor = FLOOR * max(1.0, abs(f()))
    return [compare(name, grads[name], numerical_gradient(f, p, h), floor) for name, p in model.params.items()]
