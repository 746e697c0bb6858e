"""Discrete pixels: a categorical likelihood over L grey levels per pixel, and bits per dimension.

(derivations/15-discrete-latents.md, "Discrete pixels and bits per dimension".)  Kernels: no argument
checks; the model checks x once.

    log p(x|z) = sum_d log softmax(o_d)[x_d]        o_d (L,) the decoder's logits for pixel d, x_d in {0..L-1}
    d log p(x|z) / d o_dl = [x_d = l] - softmax(o_d)_l
    bits per dimension = -log p(x) / (D log 2)      (15.10): nats per image -> bits per pixel
"""
import math

import numpy as np

from .categorical import log_softmax, softmax


def log_prob(x, logits):
    """x (B, D) levels (whole numbers, as floats), logits (..., B, D, L) -> log p(x|z) (..., B)."""
    lp = log_softmax(logits)
    idx = np.broadcast_to(x.astype(np.intp)[..., None], lp.shape[:-1] + (1,))
    return np.take_along_axis(lp, idx, axis=-1)[..., 0].sum(axis=-1)


def log_prob_grad(x, logits):
    """d log p(x|z) / d logits = onehot(x) - softmax(logits), (..., B, D, L)."""
    onehot = np.zeros(logits.shape, dtype=logits.dtype)
    np.put_along_axis(onehot, np.broadcast_to(x.astype(np.intp)[..., None], logits.shape[:-1] + (1,)), 1, axis=-1)
    return onehot - softmax(logits)


def mean_level(logits):
    """E[x_d] / (L - 1), the mean grey level in [0, 1]: (..., D, L) -> (..., D)."""
    L = logits.shape[-1]
    return (softmax(logits) * np.arange(L)).sum(axis=-1) / (L - 1)


def bits_per_dim(log_px, n_dims):
    """-log p(x) / (D log 2): nats per example -> bits per dimension (pixel)."""
    return -np.asarray(log_px, dtype=np.float64) / (n_dims * math.log(2))


def quantize(x, levels):
    """Grey values in [0, 1] -> whole levels 0 .. L-1 (as floats): floor(x * L), L - 1 at x = 1."""
    return np.minimum(np.floor(np.asarray(x, dtype=np.float64) * levels), levels - 1)
