"""Layers with hand-written backward passes (derivations/07-backprop.md).

Every layer has two interfaces to the same formulas:

* per call (what the VAE uses): ``out, cache = layer.call(x)`` writes nothing
  on the layer, and ``dx = layer.call_backward(dout, cache, grads)`` *adds*
  the parameter gradients into the caller's buffers ``grads`` (a dict
  name -> array shaped like ``layer.params[name]``; None: no parameter
  gradients).  Two calls, or two threads, never share a cache.
* step through (CS231n style, for lectures and homework): ``forward(x)``
  keeps the cache on the layer and ``backward(dout) -> dx`` fills the layer's
  own gradient buffers, ``dW`` and ``db`` beside ``W`` and ``b``.

Shapes: ``x`` is (N, D_in), ``out`` and ``dout`` (N, D_out) for ``Linear``;
activations keep the shape of their input, whatever it is.
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


class Layer:
    """The interface every layer has; subclasses write ``call`` and ``call_backward`` (and ``params``).

    ``params``: dict name -> parameter array (empty for a layer without
    parameters).  ``output_shape(in_shape)`` maps one example's shape to its
    output's (the Network builder uses it to size the next layer).
    """

    params = {}

    def output_shape(self, in_shape):
        return tuple(in_shape)

    def call(self, x):
        raise NotImplementedError

    def call_backward(self, dout, cache, grads=None, need_dx=True):
        raise NotImplementedError

    def own_grads(self):
        """The layer's own gradient buffers, ``d<name>`` beside each parameter (made on first use)."""
        for name, p in self.params.items():
            if getattr(self, "d" + name, None) is None or getattr(self, "d" + name).shape != p.shape:
                setattr(self, "d" + name, np.zeros_like(p))
        self.grads = {name: getattr(self, "d" + name) for name in self.params}
        return self.grads

    def forward(self, x):
        """Step-through forward: out = call(x), the cache kept on the layer for ``backward``."""
        out, self.cache = self.call(x)
        self.out_shape = out.shape
        return out

    def backward(self, dout, need_dx=True):
        """Step-through backward: dx, with the layer's own d<name> buffers overwritten by this gradient."""
        _check_dout(self, dout, getattr(self, "out_shape", None))
        grads = self.own_grads()
        for g in grads.values():
            g[...] = 0
        return self.call_backward(dout, self.cache, grads, need_dx)


class Linear(Layer):
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
        self.params = {"W": self.W, "b": self.b}
        self.own_grads()                                             # dW, db

    def output_shape(self, in_shape):
        if tuple(in_shape) != (self.W.shape[0],):
            raise InputError(f"x: expected {self.W.shape[0]} features per example, got shape {tuple(in_shape)} "
                             "(put a Flatten before a Linear)")
        return (self.W.shape[1],)

    def call(self, x):
        """x: (N, D_in) -> out: (N, D_out), cache = x."""
        if getattr(x, "ndim", 0) != 2 or x.shape[1] != self.W.shape[0]:
            raise InputError(f"x: expected shape (N, {self.W.shape[0]}), got {getattr(x, 'shape', type(x).__name__)}")
        if self.b.shape != (self.W.shape[1],):      # W or b replaced by an array of another width
            raise InputError(f"W, b: shapes {self.W.shape} and {self.b.shape} do not fit together (was one replaced "
                             "by an array of another width?); write into the parameters in place")
        out = x @ self.W
        out += self.b
        return out, x

    def call_backward(self, dout, cache, grads=None, need_dx=True):
        """dout: (N, D_out) -> dx = dout W^T: (N, D_in); adds dW = x^T dout, db = sum_n dout into grads.

        need_dx=False skips dx (returns None): the data at the encoder's input
        needs no gradient, and dx is the largest product of the backward pass.
        """
        x = cache
        if grads is not None:
            grads["W"] += x.T @ dout
            grads["b"] += np.sum(dout, axis=0)
        return dout @ self.W.T if need_dx else None


class ReLU(Layer):
    """out = max(x, 0); dx = dout * [x > 0]."""

    # the step-through forward's cache under its name in the formula (lectures subclass and read it)
    mask = property(lambda self: getattr(self, "cache", None), doc="[x > 0] of the last forward")

    def call(self, x):
        return np.maximum(x, 0, dtype=x.dtype), x > 0

    def call_backward(self, dout, mask, grads=None, need_dx=True):
        return dout * mask


class LeakyReLU(Layer):
    """out = x if x > 0 else slope * x; dx = dout * (1 or slope)."""

    # the step-through forward's cache under its name in the formula (lectures subclass and read it)
    mask = property(lambda self: getattr(self, "cache", None), doc="[x > 0] of the last forward")

    def __init__(self, slope=0.01):
        self.slope = check_float("slope", slope)

    def call(self, x):
        mask = x > 0
        return np.where(mask, x, self.slope * x), mask

    def call_backward(self, dout, mask, grads=None, need_dx=True):
        return np.where(mask, dout, self.slope * dout)


class Tanh(Layer):
    """out = tanh(x); dx = dout * (1 - out^2)."""

    # the step-through forward's cache under its name in the formula (lectures subclass and read it)
    out = property(lambda self: getattr(self, "cache", None), doc="tanh(x) of the last forward")

    def call(self, x):
        out = np.tanh(x)
        return out, out

    def call_backward(self, dout, out, grads=None, need_dx=True):
        return dout * (1 - out * out)


def sigmoid(x):
    """Logistic function without overflow: exp is only taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softplus(x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), finite for any finite x."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def log_softmax(logits):
    """log softmax along the last axis, shifted by the max (finite for any finite logits)."""
    a = logits - logits.max(axis=-1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=-1, keepdims=True))


class Sigmoid(Layer):
    """out = 1 / (1 + exp(-x)); dx = dout * out * (1 - out)."""

    # the step-through forward's cache under its name in the formula (lectures subclass and read it)
    out = property(lambda self: getattr(self, "cache", None), doc="sigmoid(x) of the last forward")

    def call(self, x):
        out = sigmoid(x)
        return out, out

    def call_backward(self, dout, out, grads=None, need_dx=True):
        return dout * out * (1 - out)


class Softplus(Layer):
    """out = log(1 + exp(x)); dx = dout * sigmoid(x)."""

    # the step-through forward's cache under its name in the formula (lectures subclass and read it)
    x = property(lambda self: getattr(self, "cache", None), doc="the input of the last forward")

    def call(self, x):
        return softplus(x), x

    def call_backward(self, dout, x, grads=None, need_dx=True):
        return dout * sigmoid(x)


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid, "softplus": Softplus}


# ---- shape layers: the bridge between images (N, C, H, W) and feature rows (N, D) --------------

class Flatten(Layer):
    """(N, C, H, W) (or any (N, ...)) -> (N, C*H*W); backward reshapes back."""

    def output_shape(self, in_shape):
        return (int(np.prod(in_shape)),)

    def call(self, x):
        return x.reshape(len(x), -1), x.shape

    def call_backward(self, dout, x_shape, grads=None, need_dx=True):
        return dout.reshape(x_shape)


class Reshape(Layer):
    """(N, prod(shape)) -> (N, *shape), e.g. a row of 784 pixels -> one 1x28x28 image; backward undoes it."""

    def __init__(self, shape):
        if not isinstance(shape, (tuple, list)) or not shape:
            raise InputError(f"shape: expected a tuple of positive ints, got {shape!r:.80}")
        self.shape = tuple(check_positive_int(f"shape[{i}]", s) for i, s in enumerate(shape))

    def output_shape(self, in_shape):
        if int(np.prod(in_shape)) != int(np.prod(self.shape)):
            raise InputError(f"shape: cannot reshape {tuple(in_shape)} ({int(np.prod(in_shape))} numbers per "
                             f"example) to {self.shape} ({int(np.prod(self.shape))})")
        return self.shape

    def call(self, x):
        if x.ndim < 1 or int(np.prod(x.shape[1:])) != int(np.prod(self.shape)):
            raise InputError(f"x: expected (N, ...) with {int(np.prod(self.shape))} numbers per example, "
                             f"got shape {x.shape}")
        return x.reshape(len(x), *self.shape), x.shape

    def call_backward(self, dout, x_shape, grads=None, need_dx=True):
        return dout.reshape(x_shape)
