"""Optimizers that update parameters in place: SGD with momentum, Adagrad, Adam.

Each is built on the model's ``params`` dict and stepped with a grads dict
of the same keys.  ``state()`` / ``load_state()`` expose the slots (moments,
step count) as plain arrays for checkpoints.  Updates use ``out=`` buffers so
the float32 path makes no temporaries beyond one scratch array per parameter.
``_update(p, g, tmp, slots)`` is the rule for any run of elements (arrays of
one shape): the whole parameter, or the part one worker updates.

Every hyperparameter is checked when the optimizer is built, and every
gradient before the first parameter of a step is touched: a NaN or inf
gradient raises InputError naming the parameter, and nothing has changed.
"""
import math

import numpy as np

from .errors import InputError
from .validate import check_float


class Optimizer:
    """Shared bookkeeping: the params, a step count and per-parameter slots."""

    slot_names = ()
    nonnegative_slots = ()

    # the optimizers square the gradient (Adam's v, Adagrad's G): g^2 must stay finite
    squares_gradient = False

    def __init__(self, params, lr):
        if not isinstance(params, dict) or not params or not all(
                isinstance(p, np.ndarray) and p.dtype.kind == "f" for p in params.values()):
            raise InputError("params: expected a non-empty dict name -> float array (a model's params)")
        self.params, self.lr, self.t = params, check_float("lr", lr, lo=0.0, lo_open=True), 0
        self.slots = {s: {k: np.zeros_like(p) for k, p in params.items()} for s in self.slot_names}
        self._arrays = dict(params)          # the arrays it was built on: an entry replaced later is refused
        self._tmp = {k: np.empty_like(p) for k, p in params.items()}

    def step(self, grads, workers=None):
        """Apply one update in place, for every parameter in ``params``.

        grads : dict name -> array of the parameter's shape, the same keys as
                ``params``.  All are checked before any parameter changes.
        workers : None, or a ``numpyvae.parallel.Workers``: the update is then
                split over the parameters' elements, one run per worker (for
                speed).  Every element gets the same arithmetic either way, so
                the parameters come out the same, bit for bit.
        """
        self._check_grads(grads)
        self.t += 1
        if workers is None or workers.n == 1 or not self._contiguous(grads):
            for name, p in self.params.items():
                # in the parameter's dtype (no copy when it already is), as the check judged it
                self._update(p, grads[name].astype(p.dtype, copy=False), self._tmp[name], self._slots(name))
            return
        flat = {name: g.astype(self.params[name].dtype, copy=False).reshape(-1) for name, g in grads.items()}

        def update(name, start, stop):   # for speed: one run of elements, views of every array (no copies)
            run = slice(start, stop)
            self._update(self.params[name].reshape(-1)[run], flat[name][run], self._tmp[name].reshape(-1)[run],
                         {s: a.reshape(-1)[run] for s, a in self._slots(name).items()})
        workers.over_elements(self.params, update)

    def _slots(self, name):
        """dict slot name -> that slot's array for parameter ``name``."""
        return {s: self.slots[s][name] for s in self.slot_names}

    def _contiguous(self, grads):
        """Whether every parameter and gradient is C-contiguous, so that a reshape(-1) is a view, not a copy."""
        return all(a.flags.c_contiguous for d in (self.params, grads) for a in d.values())

    def _check_grads(self, grads):
        """Refuse missing, misshapen, non-real or non-finite gradients (InputError naming the parameter)."""
        if not isinstance(grads, dict) or grads.keys() != self.params.keys():
            if not isinstance(grads, dict):
                raise InputError(f"grads: expected a dict name -> array, got {type(grads).__name__}")
            missing, extra = set(self.params) - set(grads), set(grads) - set(self.params)
            raise InputError(f"grads: expected the keys of params; missing {sorted(missing)[:5]}, "
                             f"unexpected {sorted(map(str, extra))[:5]}")
        changed = [name for name in self.params if self.params[name] is not self._arrays.get(name)]
        if changed or self.params.keys() != self._arrays.keys():
            raise InputError(f"params: {changed[:3] or 'its names'} changed after the optimizer was built (its "
                             "slots belong to the old arrays); write into the arrays in place, or build a new "
                             "optimizer on the new params")
        for name, p in self.params.items():
            g = grads[name]
            if not isinstance(g, np.ndarray) or g.dtype.kind != "f" or g.shape != p.shape:
                got = f"{g.dtype} {g.shape}" if isinstance(g, np.ndarray) else type(g).__name__
                raise InputError(f"grads[{name!r}]: expected a float array of shape {p.shape}, got {got}")
        with np.errstate(over="ignore", invalid="ignore"):
            for name, p in self.params.items():
                g = grads[name]
                if g.dtype != p.dtype:            # judged in the dtype the update is computed in
                    g = g.astype(p.dtype)
                # one read of g: sum(g^2) is finite only if every g and every g^2 is
                flat = g.reshape(-1)
                if not math.isfinite(np.dot(flat, flat)):
                    self._explain_non_finite(name, g, grads[name])

    def _explain_non_finite(self, name, g, given):
        """sum(g^2) overflowed or is NaN: say which entry is at fault (or accept a large finite g).

        g is the gradient in the parameter's dtype, ``given`` as it was passed.
        """
        bad = ~np.isfinite(g)
        if bad.any():
            i = tuple(int(j) for j in np.argwhere(bad)[0])
            beyond = f" (beyond the range of the parameter's {g.dtype})" if np.isfinite(given[i]) else ""
            raise InputError(f"grads[{name!r}]: expected finite values, found {given[i]} at index {i}{beyond}; "
                             "nothing was updated (did the loss diverge?)")
        with np.errstate(over="ignore"):
            square_overflows = ~np.isfinite(g * g)
        if self.squares_gradient and square_overflows.any():
            i = tuple(int(j) for j in np.argwhere(square_overflows)[0])
            raise InputError(f"grads[{name!r}]: {g[i]} at index {i} is too large: its square overflows "
                             f"{g.dtype} (nothing was updated)")

    def state(self):
        """dict of plain arrays: 't' and 'slot/param' for every slot."""
        out = {"t": np.array(self.t)}
        for s, d in self.slots.items():
            out.update({f"{s}/{k}": v for k, v in d.items()})
        return out

    def load_state(self, state):
        """Restore what ``state()`` returned (arrays copied into place).

        Every entry is checked first (a non-negative integer step count; each
        slot present, of the parameter's exact shape, real and finite, and not
        negative where it is a sum of squares); on any mismatch InputError names
        the entry and nothing is changed.
        """
        if not isinstance(state, dict):
            raise InputError(f"optimizer state: expected a mapping, got {type(state).__name__}")
        t = np.asarray(state.get("t"))
        if t.shape != () or t.dtype.kind not in "iu" or int(t) < 0:
            raise InputError(f"optimizer state 't': expected a non-negative integer step count, got {state.get('t')!r:.60}")
        checked = {}
        for s, d in self.slots.items():
            for k, v in d.items():
                key = f"{s}/{k}"
                a = state.get(key)
                if not isinstance(a, np.ndarray) or a.dtype.kind != "f" or a.shape != v.shape:
                    got = "nothing" if a is None else f"{getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}"
                    raise InputError(f"optimizer state {key!r}: expected a float array of shape {v.shape}, got {got}")
                with np.errstate(over="ignore"):
                    a = a.astype(v.dtype)               # checked as it will be stored: 1e300 is inf in float32
                if not np.all(np.isfinite(a)):
                    where = "NaN or inf" if not np.all(np.isfinite(state[key])) else f"values beyond the range of {v.dtype}"
                    raise InputError(f"optimizer state {key!r}: contains {where}")
                if s in self.nonnegative_slots and np.any(a < 0):
                    raise InputError(f"optimizer state {key!r}: a sum of squares, expected values >= 0, "
                                     f"found {a.min()}")
                checked[key] = a
        extra = set(state) - set(checked) - {"t"}
        if extra:
            raise InputError(f"optimizer state: unexpected entries {sorted(extra)[:5]} (a different optimizer?)")
        self.t = int(t)
        for s, d in self.slots.items():
            for k, v in d.items():
                v[...] = checked[f"{s}/{k}"]


class SGD(Optimizer):
    """v <- momentum v - lr g;  p <- p + v  (plain SGD when momentum = 0)."""

    slot_names = ("velocity",)

    def __init__(self, params, lr=1e-2, momentum=0.9):
        super().__init__(params, lr)
        # momentum 1 never forgets a gradient (the velocity grows without bound)
        self.momentum = check_float("momentum", momentum, lo=0.0, hi=1.0, hi_open=True)

    def _update(self, p, g, tmp, slots):
        v = slots["velocity"]
        v *= self.momentum
        np.multiply(g, self.lr, out=tmp)
        v -= tmp
        p += v


class Adagrad(Optimizer):
    """G <- G + g^2;  p <- p - lr g / (sqrt(G) + eps)  (used by Kingma & Welling 2013)."""

    slot_names = ("sum_sq",)
    nonnegative_slots = ("sum_sq",)
    squares_gradient = True

    def __init__(self, params, lr=1e-2, eps=1e-8):
        super().__init__(params, lr)
        # eps > 0 keeps g / (sqrt(G) + eps) defined when G = 0
        self.eps = check_float("eps", eps, lo=0.0, lo_open=True)

    def _update(self, p, g, tmp, slots):
        G = slots["sum_sq"]
        np.multiply(g, g, out=tmp)
        G += tmp
        np.sqrt(G, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.lr
        p -= tmp


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction.

    m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
    p <- p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
    """

    slot_names = ("m", "v")
    nonnegative_slots = ("v",)
    squares_gradient = True

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(params, lr)
        # beta < 1: the bias corrections 1 - beta^t are then > 0; eps > 0: m / (sqrt(v) + eps) is defined at v = 0
        self.beta1 = check_float("beta1", beta1, lo=0.0, hi=1.0, hi_open=True)
        self.beta2 = check_float("beta2", beta2, lo=0.0, hi=1.0, hi_open=True)
        self.eps = check_float("eps", eps, lo=0.0, lo_open=True)

    def _update(self, p, g, tmp, slots):
        m, v = slots["m"], slots["v"]
        b1, b2 = self.beta1, self.beta2
        m *= b1
        np.multiply(g, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        c1, c2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
        np.sqrt(v, out=tmp)
        tmp *= 1.0 / math.sqrt(c2)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr / c1
        p -= tmp


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "adam": Adam}
