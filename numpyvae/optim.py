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
        """Restore what ``state()`` returned (arrays copied into place)."""
        self.t = int(state["t"])
        for s, d in self.slots.items():
            for k, v in d.items():
                v[...] = state[f"{s}/{k}"]


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
