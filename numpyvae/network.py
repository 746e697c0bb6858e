"""A network: a sequence of layers built from a specification (the MLP is one instance).

A specification is a list of layer entries, plain data that a checkpoint can
store as JSON, for example the encoder of a small convolutional VAE:

    [{"layer": "reshape", "shape": [1, 28, 28]},
     {"layer": "conv2d", "out_channels": 32, "kernel_size": 4, "stride": 2, "padding": 1},
     {"layer": "relu"},
     {"layer": "flatten"},
     {"layer": "linear", "units": 40}]

Each layer's input size is the previous layer's output size, worked out
from the network's input shape, so an entry names only what it adds.
Parameters are named ``"{k}.{name}"`` where k counts the layers that have
parameters (``0.W``, ``0.b``, ``1.W``, ...): for an MLP that is the k-th
Linear, as in the checkpoints numpyvae has always written.

Like a layer, a network has a per-call pair, ``call(x) -> (out, caches)``
and ``call_backward(dout, caches, grads, need_dx) -> dx`` (gradients added
into the caller's buffers, keyed by parameter name), and the step-through
pair ``forward``/``backward`` that keeps the caches on the network and fills
each layer's own ``dW``, ``db``.
"""
from collections import OrderedDict

import numpy as np

from .conv import Conv2d, ConvTranspose2d
from .errors import InputError
from .layers import ACTIVATIONS, INITS, Flatten, Linear, Reshape
from .validate import check_choice, check_positive_int

# the entries a specification may use, and the keys each takes (beyond "layer"): (required, optional)
LAYER_KEYS = {
    "linear": (("units",), ()),
    "conv2d": (("out_channels", "kernel_size"), ("stride", "padding")),
    "conv_transpose2d": (("out_channels", "kernel_size"), ("stride", "padding", "output_padding")),
    "flatten": ((), ()),
    "reshape": (("shape",), ()),
    **{name: ((), ()) for name in ACTIVATIONS},
}
# the deepest specification: every layer is a few Python objects (a typo must not build a million)
MAX_LAYERS = 300


def _entry(where, entry):
    """One specification entry checked: a dict with a known "layer" and exactly its keys."""
    if not isinstance(entry, dict) or "layer" not in entry:
        raise InputError(f"{where}: expected a dict with a 'layer' key, got {entry!r:.80}")
    kind = check_choice(f"{where}.layer", entry["layer"], LAYER_KEYS)
    required, optional = LAYER_KEYS[kind]
    missing = [k for k in required if k not in entry]
    unknown = sorted(set(entry) - {"layer", *required, *optional})
    if missing or unknown:
        raise InputError(f"{where}: a {kind!r} entry needs {list(required)} and may have {list(optional)}; "
                         f"missing {missing}, unknown {unknown}")
    return kind


def plan(spec, in_shape, name="spec"):
    """Walk a specification without building it: [(kind, output shape, number of parameters)].

    Every entry and every shape is checked here, before any weight is allocated.
    """
    if not isinstance(spec, (list, tuple)) or not spec:
        raise InputError(f"{name}: expected a non-empty list of layer entries, got {spec!r:.80}")
    if len(spec) > MAX_LAYERS:
        raise InputError(f"{name}: expected at most {MAX_LAYERS} layers, got {len(spec)}")
    shape, steps = tuple(in_shape), []
    for i, entry in enumerate(spec):
        where = f"{name}[{i}]"
        kind = _entry(where, entry)
        n_params = 0
        if kind == "linear":
            units = check_positive_int(f"{where}.units", entry["units"])
            if len(shape) != 1:
                raise InputError(f"{where}: a linear layer needs feature rows, got per-example shape {shape} "
                                 "(put a flatten before it)")
            n_params, shape = (shape[0] + 1) * units, (units,)
        elif kind in ("conv2d", "conv_transpose2d"):
            layer = _build(where, entry, shape, rng=np.random.default_rng(0), dtype=np.float32, init=None,
                           allocate=False)
            kh, kw = layer["kernel"]
            n_params = shape[0] * entry["out_channels"] * kh * kw + entry["out_channels"]
            shape = layer["out_shape"]
        elif kind == "flatten":
            shape = (int(np.prod(shape)),)
        elif kind == "reshape":
            shape = Reshape(entry["shape"]).output_shape(shape)
        steps.append((kind, shape, n_params))
    return steps


def _build(where, entry, in_shape, rng, dtype, init, allocate=True):
    """The layer object of one entry (allocate=False: only its kernel and output shape, for ``plan``)."""
    kind = entry["layer"]
    if kind == "linear":
        return Linear(in_shape[0], entry["units"], init=init, rng=rng, dtype=dtype)
    if kind in ("conv2d", "conv_transpose2d"):
        if len(in_shape) != 3:
            raise InputError(f"{where}: a {kind} layer needs images (C, H, W), got per-example shape "
                             f"{tuple(in_shape)} (put a reshape before it)")
        args = {k: v for k, v in entry.items() if k != "layer"}
        cls = Conv2d if kind == "conv2d" else ConvTranspose2d
        try:
            if not allocate:                 # the arguments checked and the shape worked out on a 1-channel copy
                layer = cls(1, 1, **{k: v for k, v in args.items() if k != "out_channels"}, rng=rng, dtype=dtype)
                layer.out_channels = check_positive_int("out_channels", entry["out_channels"])
                return {"kernel": layer.kernel, "out_shape": layer.output_shape(in_shape)}
            return cls(in_shape[0], rng=rng, dtype=dtype, **args)
        except InputError as err:
            raise InputError(f"{where}: {err}") from None
    if kind == "flatten":
        return Flatten()
    if kind == "reshape":
        return Reshape(entry["shape"])
    return ACTIVATIONS[kind]()


class Network:
    """Layers in sequence, built from ``spec`` for examples of shape ``in_shape``.

    in_shape : one example's shape, e.g. (784,) or (1, 28, 28).
    init     : "glorot" or "normal" for the Linear layers (conv layers use Glorot).
    ``layers`` lists every layer; ``params`` maps "{k}.{name}" to the live
    parameter arrays; ``out_shape`` is one example's output shape.
    """

    def __init__(self, spec, in_shape, init="glorot", rng=None, dtype=np.float32, name="spec"):
        check_choice("init", init, INITS)
        rng = rng if rng is not None else np.random.default_rng(0)
        steps = plan(spec, in_shape, name)
        self.spec = [dict(entry) for entry in spec]
        self.in_shape, self.out_shape = tuple(in_shape), steps[-1][1]
        self.layers, shape = [], self.in_shape
        for i, (entry, (_, out_shape, _)) in enumerate(zip(spec, steps)):
            self.layers.append(_build(f"{name}[{i}]", entry, shape, rng, dtype, init))
            shape = out_shape
        self.params, self._owner = OrderedDict(), OrderedDict()
        for k, layer in enumerate(layer for layer in self.layers if layer.params):
            for pname, p in layer.params.items():
                self.params[f"{k}.{pname}"] = p
                self._owner[f"{k}.{pname}"] = (layer, pname)

    @property
    def linears(self):
        """The Linear layers in order."""
        return [layer for layer in self.layers if isinstance(layer, Linear)]

    def is_dense(self):
        """True when every layer is a Linear or an elementwise activation (an MLP)."""
        return all(isinstance(layer, (Linear, *ACTIVATIONS.values())) for layer in self.layers)

    def own_grads(self):
        """dict name -> each layer's own gradient buffer (what ``backward`` fills)."""
        return OrderedDict((name, layer.own_grads()[pname]) for name, (layer, pname) in self._owner.items())

    # ---- per call -------------------------------------------------------------------------

    def call(self, x):
        """x: (N, *in_shape) -> out (N, *out_shape), caches (one per layer)."""
        caches = []
        for layer in self.layers:
            x, cache = layer.call(x)
            caches.append(cache)
        return x, caches

    def call_backward(self, dout, caches, grads=None, need_dx=True):
        """The chain rule through the layers in reverse: dout (N, *out_shape) -> dx (N, *in_shape).

        grads: dict "{k}.{name}" -> buffer; each layer's gradients are added
        into its entries (None: no parameter gradients).  need_dx=False stops
        at the first layer's parameters and returns None.
        """
        k = sum(1 for layer in self.layers if layer.params)
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            mine = None
            if layer.params:
                k -= 1
                if grads is not None:
                    mine = {pname: grads[f"{k}.{pname}"] for pname in layer.params}
            dout = layer.call_backward(dout, caches[i], mine, need_dx or i > 0)
        return dout if need_dx else None

    # ---- step through ---------------------------------------------------------------------

    def forward(self, x):
        """Step-through forward: the caches are kept on the network for ``backward``."""
        out, self.caches = self.call(x)
        self.out_shape_last = out.shape
        return out

    def backward(self, dout, need_dx=True):
        """Step-through backward: dx, and every layer's own dW, db overwritten with this gradient."""
        if getattr(self, "caches", None) is None:
            raise InputError("Network.backward: call forward first (nothing is cached)")
        if getattr(dout, "shape", None) != self.out_shape_last:
            raise InputError(f"dout: expected shape {self.out_shape_last} (the output of forward), "
                             f"got {getattr(dout, 'shape', type(dout).__name__)}")
        grads = self.own_grads()
        for g in grads.values():
            g[...] = 0
        return self.call_backward(dout, self.caches, grads, need_dx)


def mlp_spec(sizes, activation="relu"):
    """Linear(sizes[0] -> sizes[1]), activation, ..., Linear(-> sizes[-1]): no activation after the last."""
    spec = []
    for i, units in enumerate(sizes[1:]):
        spec.append({"layer": "linear", "units": units})
        if i < len(sizes) - 2:
            spec.append({"layer": activation})
    return spec
