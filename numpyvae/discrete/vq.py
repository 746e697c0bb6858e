"""Vector quantization (van den Oord et al. 2017): the VQ-VAE's bottleneck, its losses and its backward pass.

derivations/15-discrete-latents.md, "Vector quantization".  The encoder gives M vectors z_e of dimension
d per example; each is replaced by its nearest of K codebook vectors e_k:

    k*_m = argmin_k ||z_e,m - e_k||^2,     z_q,m = e_{k*_m}
    loss = -log p(x | z_q) + sum_m ||sg[z_e,m] - z_q,m||^2 + beta sum_m ||z_e,m - sg[z_q,m]||^2
                              (codebook loss: moves the codes)   (commitment loss: holds the encoder)

sg[.] is "stop gradient": a constant in the backward pass.  The arg min has no gradient, so the
decoder's gradient with respect to z_q is copied to z_e unchanged (straight-through):

    d loss / d z_e = d(-log p)/d z_q + 2 beta (z_e - z_q)
    d loss / d e_k = sum over the positions m with k*_m = k of 2 (e_k - z_e,m)

The codebook gets no gradient from the reconstruction term.  Usage: how many positions chose each
code; perplexity exp(-sum_k u_k log u_k) of the usage frequencies u (K when every code is used
equally, 1 when one code takes all); dead codes: those no position chose.
"""
import numpy as np


def nearest(z_e, E):
    """Indices k* (B, M) of the nearest code to every z_e (B, M, d) among the rows of E (K, d)."""
    d2 = (z_e * z_e).sum(-1)[..., None] - 2 * z_e @ E.T + (E * E).sum(-1)
    return d2.argmin(axis=-1)


def quantize(z_e, E, beta):
    """z_q (B, M, d), the codebook and commitment losses (B,) each, and the cache of the backward pass."""
    k = nearest(z_e, E)
    z_q = E[k]
    sq = ((z_e - z_q) ** 2).sum(axis=(1, 2))            # both losses have this value; they differ in the backward
    return z_q, sq, beta * sq, (z_e, z_q, k, beta)


def quantize_backward(dz_q, dcodebook, dcommit, cache, n_codes):
    """dz_q (B, M, d): d loss / d z_q from the decoder; dcodebook, dcommit (B,): d loss / d each loss term.
    Returns d loss / d z_e (B, M, d) (straight-through plus the commitment term) and d loss / d E (K, d)."""
    z_e, z_q, k, beta = cache
    dz_e = dz_q + 2 * beta * dcommit[:, None, None] * (z_e - z_q)
    g = (2 * dcodebook[:, None, None] * (z_q - z_e)).reshape(-1, z_e.shape[-1])
    dE = np.zeros((n_codes, z_e.shape[-1]), dtype=z_e.dtype)
    np.add.at(dE, k.ravel(), g)
    return dz_e, dE


def usage(k, n_codes):
    """Counts (K,) of how many positions chose each code, the perplexity of their frequencies, dead codes."""
    counts = np.bincount(np.asarray(k).ravel(), minlength=n_codes)
    u = counts / counts.sum()
    nz = u[u > 0]
    return counts, float(np.exp(-(nz * np.log(nz)).sum())), int((counts == 0).sum())


def ema_update(E, counts, sums, z_e, k, decay, eps=1e-5):
    """The codebook by exponential moving averages instead of the codebook loss (van den Oord et al. 2017, app. A.1).

    With n_k the number of positions that chose code k in this batch and s_k the sum of their z_e:
        N_k <- decay N_k + (1 - decay) n_k,     m_k <- decay m_k + (1 - decay) s_k,
        e_k = m_k / N~_k,  N~_k = (N_k + eps) n / (n + K eps)  (n = sum_k N_k; Laplace smoothing, so an
        unused code is not divided by zero).
    ``counts`` (K,) and ``sums`` (K, d) are the running N and m, updated in place; E (K, d) is overwritten.
    With decay = 0 every chosen code becomes the mean of the z_e that chose it.
    """
    K, d = E.shape
    n_k = np.bincount(k.ravel(), minlength=K).astype(E.dtype)
    s_k = np.zeros((K, d), dtype=E.dtype)
    np.add.at(s_k, k.ravel(), z_e.reshape(-1, d))
    counts *= decay
    counts += (1 - decay) * n_k
    sums *= decay
    sums += (1 - decay) * s_k
    n = counts.sum()
    smoothed = (counts + eps) * n / (n + K * eps)
    E[...] = sums / smoothed[:, None]
    return E
