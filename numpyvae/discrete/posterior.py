"""q(z|x) and p(z) for N categorical latents of K classes: the posterior and prior objects of the seam.

    h (B, N*K) --params--> logits l (B, N, K)
    g (S, B, N, K) Gumbel --sample--> z = onehot(argmax(l + g))        "hard": exact draws from q
                                      y = softmax((l + g) / tau)      "relaxed": Gumbel-softmax
                                      z hard forward, y's backward     "straight_through"

The model wires them in as docs/model-seam.md describes for the Gaussian
ones; the estimator decides which sample and which backward it wants.
"""
import math

import numpy as np

from . import categorical as cat

SAMPLE_MODES = ("hard", "relaxed", "straight_through")


class Categorical:
    """q(z|x) = prod_n Cat(z_n; softmax(l_n)), with the logits l (B, N, K) read from the encoder's h (B, N*K)."""

    def __init__(self, n_latents, n_classes):
        self.n_latents, self.n_classes = n_latents, n_classes

    def n_outputs(self):
        """How many numbers per example the encoder must produce: N*K logits."""
        return self.n_latents * self.n_classes

    def params(self, h):
        """h (B, N*K) -> logits (B, N, K)."""
        return h.reshape(len(h), self.n_latents, self.n_classes)

    def params_backward(self, dlogits):
        """dlogits (B, N, K) -> dh (B, N*K)."""
        return dlogits.reshape(len(dlogits), -1)

    def draw_noise(self, rng, s, batch, dtype):
        """Gumbel(0, 1) noise g of shape (s, batch, N, K) from ``rng``."""
        return cat.gumbel(rng, (s, batch, self.n_latents, self.n_classes), dtype)

    def sample(self, logits, g, mode, tau=None):
        """z (S, B, N, K) and the cache its backward needs (None for "hard": no path through z)."""
        if mode == "hard":
            return cat.gumbel_max(logits, g), None
        y, cache = cat.gumbel_softmax(logits, g, tau)
        if mode == "relaxed":
            return y, cache
        return cat.one_hot_argmax(y), cache            # straight-through: the hard sample forward ...

    def sample_backward(self, dz, cache):
        """dz (S, B, N, K) -> dlogits (B, N, K) through y = softmax((l + g)/tau), g fixed.

        For "relaxed" this is the chain rule; for "straight_through" the
        decoder's gradient at the hard z is passed back as if it were taken
        at y: a surrogate, not the derivative of any sampled objective (15.9).
        """
        return cat.gumbel_softmax_backward(dz, cache)

    def log_prob(self, z, logits):
        """log q(z|x) (S, B) for one-hot z (S, B, N, K)."""
        return cat.log_prob(z, logits)

    def log_prob_grad(self, z, logits):
        """d log q(z|x) / d logits, (S, B, N, K): the score."""
        return cat.log_prob_grad(z, logits)


class UniformCategorical:
    """p(z) = prod_n (1/K): log p(z) = -N log K for every one-hot z, and the closed-form KL from q."""

    def __init__(self, n_latents, n_classes):
        self.n_latents, self.n_classes = n_latents, n_classes

    def log_prob(self, z):
        """log p(z) = -N log K, shape z.shape[:-2]."""
        return np.full(z.shape[:-2], -self.n_latents * math.log(self.n_classes), dtype=z.dtype)

    def kl(self, logits):
        """KL(q(z|x) || p(z)) (B,), the sum over the N independent latents (15.2)."""
        return cat.kl_uniform(logits)

    def kl_grad(self, logits):
        """dKL/dlogits (B, N, K)."""
        return cat.kl_uniform_grad(logits)

    def sample(self, rng, n, dtype):
        """n one-hot draws (n, N, K) from the uniform prior."""
        k = rng.integers(0, self.n_classes, size=(n, self.n_latents))
        return np.eye(self.n_classes, dtype=dtype)[k]

    def configurations(self, dtype):
        """Every latent configuration, one-hot: (K**N, N, K), in the order of itertools.product."""
        idx = np.indices((self.n_classes,) * self.n_latents).reshape(self.n_latents, -1).T
        return np.eye(self.n_classes, dtype=dtype)[idx]
