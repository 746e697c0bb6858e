"""An autoregressive prior over a grid of codes, in the manner of MADE (Germain et al. 2015), by hand.

Codes c_1..c_M, each one of K classes, one-hot in x (B, M*K).  One hidden layer whose weights are masked
so that the logits of position m see only the codes before it:

    degree of input (m, k) and output (m, k): m (1..M);   degree of hidden unit j: 1..M-1 (cycled)
    mask1[j, (m, k)] = [deg_j >= m]      mask2[(m, k), j] = [m > deg_j]
    a = (W1 * mask1) x + b1,  h = relu(a),  o = (W2 * mask2) h + b2          o: (B, M, K) logits
    log p(c) = sum_m log softmax(o_m)[c_m]                                   (a product of conditionals)

Because o_m depends on c_<m only, p(c) sums to one over all K**M grids (the tests check it by
enumeration) and can be sampled position by position.  Backward pass of the loss -mean_b log p(c_b):

    do = -(onehot(c) - softmax(o)) / B;  dW2 = (do^T h) * mask2;  db2 = sum_b do
    da = (do (W2 * mask2)) * [a > 0];    dW1 = (da^T x) * mask1;  db1 = sum_b da
"""
from collections import OrderedDict

import numpy as np

from . import categorical as cat
from ..errors import InputError
from ..params import Params
from ..validate import as_float_array, check_dtype, check_positive_int, check_rng


class MADE:
    """p(c) over M >= 2 positions of K classes, one masked hidden layer of ``hidden`` ReLU units."""

    def __init__(self, n_positions, n_classes, hidden=64, dtype=np.float64, seed=0):
        self.M = check_positive_int("n_positions", n_positions, minimum=2)
        self.K = check_positive_int("n_classes", n_classes, minimum=2)
        self.H = check_positive_int("hidden", hidden)
        self.dtype = check_dtype("dtype", dtype)
        rng = np.random.default_rng(check_positive_int("seed", seed, minimum=0))
        deg_in = np.repeat(np.arange(1, self.M + 1), self.K)                  # (M*K,)
        deg_h = np.arange(self.H) % (self.M - 1) + 1                          # 1..M-1
        self.mask1 = (deg_h[:, None] >= deg_in[None, :]).astype(self.dtype)   # (H, M*K)
        self.mask2 = (deg_in[:, None] > deg_h[None, :]).astype(self.dtype)    # (M*K, H)
        n = self.M * self.K
        self.params = Params([("W1", (rng.normal(size=(self.H, n)) * np.sqrt(2.0 / n)).astype(self.dtype)),
                              ("b1", np.zeros(self.H, self.dtype)),
                              ("W2", (rng.normal(size=(n, self.H)) * np.sqrt(1.0 / self.H)).astype(self.dtype)),
                              ("b2", np.zeros(n, self.dtype))])
        self._grads = OrderedDict((k, np.zeros_like(v)) for k, v in self.params.items())

    def check_codes(self, codes, name="codes"):
        """(B, M) whole numbers in 0 .. K-1."""
        c = as_float_array(name, codes, ndim=2, lo=0, hi=self.K - 1)
        if c.shape[1] != self.M or c.shape[0] == 0 or np.any(c != np.round(c)):
            raise InputError(f"{name}: expected (batch >= 1, {self.M}) whole numbers in 0..{self.K - 1}, "
                             f"got shape {c.shape}")
        return c.astype(np.intp)

    def _one_hot(self, c):
        return np.eye(self.K, dtype=self.dtype)[c].reshape(len(c), -1)

    def _forward(self, x):
        p = self.params
        a = x @ (p["W1"] * self.mask1).T + p["b1"]
        h = np.maximum(a, 0)
        o = h @ (p["W2"] * self.mask2).T + p["b2"]
        return o.reshape(len(x), self.M, self.K), (x, a, h)

    def log_prob(self, codes):
        """log p(c) (B,) in nats."""
        c = self.check_codes(codes)
        o, _ = self._forward(self._one_hot(c))
        return np.take_along_axis(cat.log_softmax(o), c[..., None], axis=-1)[..., 0].sum(axis=1)

    def loss_and_grads(self, codes):
        """-mean_b log p(c_b) and its gradient (the model's own buffers, overwritten)."""
        c = self.check_codes(codes)
        x = self._one_hot(c)
        o, (x, a, h) = self._forward(x)
        B = len(c)
        onehot = x.reshape(B, self.M, self.K)
        loss = -float((onehot * cat.log_softmax(o)).sum() / B)
        do = (-(onehot - cat.softmax(o)) / B).reshape(B, -1)
        g, p = self._grads, self.params
        g["W2"][...] = (do.T @ h) * self.mask2
        g["b2"][...] = do.sum(axis=0)
        da = (do @ (p["W2"] * self.mask2)) * (a > 0)
        g["W1"][...] = (da.T @ x) * self.mask1
        g["b1"][...] = da.sum(axis=0)
        return loss, g

    def sample(self, n, rng):
        """n grids of codes (n, M), drawn position by position (Gumbel-max on each conditional)."""
        n, rng = check_positive_int("n", n), check_rng("rng", rng)
        c = np.zeros((n, self.M), dtype=np.intp)
        for m in range(self.M):
            o, _ = self._forward(self._one_hot(c))
            c[:, m] = np.argmax(o[:, m] + cat.gumbel(rng, (n, self.K)), axis=1)
        return c
