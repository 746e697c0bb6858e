"""Layers with hand-written backward passes (derivations/07-backprop.md).

Every layer has ``forward(x)`` that caches what the backward pass needs and
``backward(dout) -> dx`` that returns the gradient with respect to its input.
A layer with parameters stores their gradients beside them: ``W`` and ``dW``,
``b`` and ``db``.  Shapes: ``x`` is (N, D_in), ``out`` and ``dout`` (N, D_out).
"""
import numpy as np

from .errors import InputError
from .validate import as_float_array, check_choice, check_dtype, check_float, check_positive_int, check_rng

INITS = ("glorot", "normal")
# the largest weight matrix built (400 MB in float32): a typo must not eat the machine's memory
MAX_WEIGHTS = 100_000_000


def _check_dout(layer, dout, shape):
    """backward's argument: forward must have run (``shape`` is its output's), and dout must have that shape."""
    if shape is None:
        raise InputError(f"{type(layer).__name__}.backward: call forward first (nothing is cached)")
    if getattr(dout, "shape", None) != shape:
        raise InputError(f"dout: expected shape {shape} (the output of forward), "
                         f"got {getattr(dout, 'shape', type(dout).__name__)}")
    if dout.dtype.kind not in "iuf":          # complex, bool, object: not a gradient of a real loss
        raise InputError(f"dout: expected a real float array, got dtype {dout.dtype}")


class Linear:
    """Affine map out = x @ W + b.

    W : (D_in, D_out), b : (D_out,).
    init="glorot": W ~ U(-a, a) with a = sqrt(6 / (D_in + D_out)), b = 0.
    init="normal": W, b ~ N(0, 0.01**2), as in Kingma & Welling (2013).
    """

    def __init__(self, n_in, n_out, init="glorot", rng=None, dtype=np.float32):
        n_in, n_out = check_positive_int("n_in", n_in), check_positive_int("n_out", n_out)
        if n_in * n_out > MAX_WEIGHTS:
            raise InputError(f"n_in, n_out: {n_in:,} x {n_out:,} weights, expected at most {MAX_WEIGHTS:,}")
        check_choice("init", init, INITS)
        rng = check_rng("rng", rng if rng is not None else np.random.default_rng(0))
        dtype = check_dtype("dtype", dtype)
        if init == "glorot":
            a = np.sqrt(6.0 / (n_in + n_out))
            self.W = rng.uniform(-a, a, size=(n_in, n_out)).astype(dtype)
            self.b = np.zeros(n_out, dtype=dtype)
        else:
            self.W = (0.01 * rng.standard_normal((n_in, n_out))).astype(dtype)
            self.b = (0.01 * rng.standard_normal(n_out)).astype(dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.x = self.out_shape = None

    def forward(self, x):
        """x: (N, D_in) -> out: (N, D_out)."""
        if getattr(x, "ndim", 0) != 2 or x.shape[1] != self.W.shape[0]:
            raise InputError(f"x: expected shape (N, {self.W.shape[0]}), got {getattr(x, 'shape', type(x).__name__)}")
        self.x = x
        out = x @ self.W
        out += self.b
        self.out_shape = out.shape
        return out

    def backward(self, dout, need_dx=True):
        """dout: (N, D_out) -> dx: (N, D_in); fills dW = x^T dout, db = sum_n dout.

        need_dx=False skips dx (returns None): the data at the encoder's input
        needs no gradient, and dx is the largest product of the backward pass.
        """
        _check_dout(self, dout, self.out_shape)
        np.matmul(self.x.T, dout, out=self.dW)
        np.sum(dout, axis=0, out=self.db)
        return dout @ self.W.T if need_dx else None


class ReLU:
    """out = max(x, 0); dx = dout * [x > 0]."""

    mask = None

    def forward(self, x):
        self.mask = x > 0
        return np.maximum(x, 0, dtype=x.dtype)

    def backward(self, dout):
        _check_dout(self, dout, None if self.mask is None else self.mask.shape)
        return dout * self.mask


class LeakyReLU:
    """out = x if x > 0 else slope * x; dx = dout * (1 or slope)."""

    mask = None

    def __init__(self, slope=0.01):
        self.slope = check_float("slope", slope)

    def forward(self, x):
        self.mask = x > 0
        return np.where(self.mask, x, self.slope * x)

    def backward(self, dout):
        _check_dout(self, dout, None if self.mask is None else self.mask.shape)
        return np.where(self.mask, dout, self.slope * dout)


class Tanh:
    """out = tanh(x); dx = dout * (1 - out^2)."""

    out = None

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        _check_dout(self, dout, None if self.out is None else self.out.shape)
        return dout * (1 - self.out * self.out)


def sigmoid(x):
    """Logistic function without overflow: exp is only taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softplus(x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), finite for any finite x."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


class Sigmoid:
    """out = 1 / (1 + exp(-x)); dx = dout * out * (1 - out)."""

    out = None

    def forward(self, x):
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout):
        _check_dout(self, dout, None if self.out is None else self.out.shape)
        return dout * self.out * (1 - self.out)


class Softplus:
    """out = log(1 + exp(x)); dx = dout * sigmoid(x)."""

    x = None

    def forward(self, x):
        self.x = x
        return softplus(x)

    def backward(self, dout):
        _check_dout(self, dout, None if self.x is None else self.x.shape)
        return dout * sigmoid(self.x)


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid, "softplus": Softplus}
