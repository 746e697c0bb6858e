"""Optimizers that update parameters in place: SGD with momentum, Adagrad, Adam.

Each is built on the model's ``params`` dict and stepped with a grads dict
of the same keys.  ``state()`` / ``load_state()`` expose the slots (moments,
step count) as plain arrays for checkpoints.  Updates use ``out=`` buffers so
the float32 path makes no temporaries beyond one scratch array per parameter.
"""
import math

import numpy as np

from .errors import InputError


class Optimizer:
    """Shared bookkeeping: the params, a step count and per-parameter slots."""

    slot_names = ()
    nonnegative_slots = ()

    def __init__(self, params, lr):
        if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
            raise InputError(f"lr: expected a positive finite number, got {lr!r}")
        self.params, self.lr, self.t = params, float(lr), 0
        self.slots = {s: {k: np.zeros_like(p) for k, p in params.items()} for s in self.slot_names}
        self._tmp = {k: np.empty_like(p) for k, p in params.items()}

    def step(self, grads):
        """Apply one update in place, for every parameter in ``params``."""
        self.t += 1
        for name, p in self.params.items():
            g = grads[name]
            if g.shape != p.shape:
                raise InputError(f"grads[{name!r}]: expected shape {p.shape}, got {g.shape}")
            self._update(name, p, g, self._tmp[name])

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
                if not np.all(np.isfinite(a)):
                    raise InputError(f"optimizer state {key!r}: contains NaN or inf")
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
        self.momentum = float(momentum)

    def _update(self, name, p, g, tmp):
        v = self.slots["velocity"][name]
        v *= self.momentum
        np.multiply(g, self.lr, out=tmp)
        v -= tmp
        p += v


class Adagrad(Optimizer):
    """G <- G + g^2;  p <- p - lr g / (sqrt(G) + eps)  (used by Kingma & Welling 2013)."""

    slot_names = ("sum_sq",)
    nonnegative_slots = ("sum_sq",)

    def __init__(self, params, lr=1e-2, eps=1e-8):
        super().__init__(params, lr)
        self.eps = float(eps)

    def _update(self, name, p, g, tmp):
        G = self.slots["sum_sq"][name]
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

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(params, lr)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def _update(self, name, p, g, tmp):
        m, v = self.slots["m"][name], self.slots["v"][name]
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
