"""A multilayer perceptron: Linear layers with an activation between them (a Network, numpyvae/network.py)."""
import numpy as np

from .layers import ACTIVATIONS, INITS
from .network import Network, mlp_spec
from .validate import InputError, check_choice, check_positive_int


class MLP(Network):
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
        super().__init__(mlp_spec(sizes, activation), (sizes[0],), init=init, rng=rng, dtype=dtype)
