"""Categorical latents: the formulas, each with its gradient written out (derivations/15-discrete-latents.md).

Shapes: logits (..., N, K) hold N independent categorical latents of K
classes each; a sample z is one-hot, (..., N, K); the last axis is the class
axis.  Everything is written on logits with a stable log-sum-exp, so no
probability is ever taken the log of.  These are kernels: no argument
checks (the model checks its inputs once, at its public methods).

    q_nk = softmax(l_n)_k                              (15.1)
    log q(z) = sum_n sum_k z_nk log q_nk               (15.1)
    d log q(z) / d l_nk = z_nk - q_nk                  (15.3)
    g = -log(E), E ~ Exponential(1)  is Gumbel(0, 1)   (15.6)
    z = onehot(argmax_k (l_nk + g_nk)) ~ q             (15.6, the Gumbel-max trick)
    y = softmax((l + g) / tau)                         (15.7, Gumbel-softmax)
    dL/dl = (1/tau) y * (dL/dy - <y, dL/dy>)           (15.8)
    KL(q || uniform) = sum_n sum_k q_nk (log q_nk + log K)        (15.2)
    dKL/dl_nk = q_nk (log q_nk - sum_j q_nj log q_nj)              (15.2)
"""
import numpy as np

from ..layers import log_softmax  # noqa: F401 (the categorical's log q, also used as cat.log_softmax)


def softmax(logits):
    """softmax along the last axis (the class probabilities q)."""
    return np.exp(log_softmax(logits))


def gumbel(rng, shape, dtype=np.float64):
    """Gumbel(0, 1) noise g = -log E with E ~ Exponential(1), E >= the smallest normal float (g finite)."""
    e = rng.standard_exponential(shape)
    return (-np.log(np.maximum(e, np.finfo(np.float64).tiny))).astype(dtype, copy=False)


def one_hot_argmax(a):
    """onehot(argmax of a along the last axis), same shape and dtype as a (ties: the first)."""
    z = np.zeros_like(a)
    np.put_along_axis(z, a.argmax(axis=-1)[..., None], 1, axis=-1)
    return z


def gumbel_max(logits, g):
    """Hard samples z = onehot(argmax(l + g)), (S, B, N, K): exact draws from q when g is Gumbel(0, 1)."""
    return one_hot_argmax(logits + g)


def gumbel_softmax(logits, g, tau):
    """Relaxed samples y = softmax((l + g) / tau): logits (B, N, K), g (S, B, N, K) -> y (S, B, N, K), cache."""
    y = softmax((logits + g) / tau)
    return y, (y, tau)


def gumbel_softmax_backward(dy, cache):
    """dy (S, B, N, K) -> dl (B, N, K), g held fixed: (1/tau) y (dy - <y, dy>), summed over the S samples.

    The softmax Jacobian dy_k/da_j = y_k (delta_kj - y_j) applied to dy, then
    a = (l + g) / tau gives the factor 1/tau.
    """
    y, tau = cache
    return (y * (dy - (y * dy).sum(axis=-1, keepdims=True))).sum(axis=0) / tau


def log_prob(z, logits):
    """log q(z) = sum_n <z_n, log softmax(l_n)>: z (..., N, K) one-hot, logits (B, N, K) -> (...)."""
    return (z * log_softmax(logits)).sum(axis=(-2, -1))


def log_prob_grad(z, logits):
    """d log q(z) / d l = z - softmax(l): (..., N, K)."""
    return z - softmax(logits)


def kl_uniform(logits):
    """KL(q || uniform over K classes, independently for each of N latents): (B, N, K) -> (B,)."""
    lq = log_softmax(logits)
    return (np.exp(lq) * (lq + np.log(logits.shape[-1]))).sum(axis=(-2, -1))


def kl_uniform_grad(logits):
    """dKL/dl_nk = q_nk (log q_nk - sum_j q_nj log q_nj): (B, N, K)."""
    lq = log_softmax(logits)
    q = np.exp(lq)
    return q * (lq - (q * lq).sum(axis=-1, keepdims=True))
