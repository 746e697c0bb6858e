"""A multilayer perceptron: Linear layers with an activation between them."""
import numpy as np

from .layers import ACTIVATIONS, INITS, Linear
from .validate import InputError, check_choice, check_positive_int


class MLP:
    """Stack Linear(sizes[0], sizes[1]), act, Linear(sizes[1], sizes[2]), act, ..., Linear(.., sizes[-1]).

    There is no activation after the last Linear: its output is the raw
    parameter vector (logits, or mu and logvar) that a distribution reads.
    ``linears`` lists the Linear layers in order; ``layers`` all layers.
    """

    def __init__(self, sizes, activation="relu", init="glorot", rng=None, dtype=np.float32):
        if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
            raise InputError(f"sizes: expected a list of at least two sizes (input, output), got {sizes!r:.80}")
        sizes = [check_positive_int(f"sizes[{i}]", s) for i, s in enumerate(sizes)]
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("init", init, INITS)
        self.sizes = sizes
        self.layers, self.linears = [], []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            lin = Linear(n_in, n_out, init=init, rng=rng, dtype=dtype)
            self.layers.append(lin)
            self.linears.append(lin)
            if i < len(sizes) - 2:
                self.layers.append(ACTIVATIONS[activation]())

    def forward(self, x):
        """x: (N, sizes[0]) -> (N, sizes[-1])."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout, need_dx=True):
        """dout: (N, sizes[-1]) -> dx: (N, sizes[0]); fills every Linear's dW, db.

        need_dx=False: stop at the first Linear's weights and return None.
        """
        for layer in reversed(self.layers[1:]):
            dout = layer.backward(dout)
        return self.layers[0].backward(dout, need_dx)
