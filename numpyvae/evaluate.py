"""Judging a trained model: bounds on a dataset, importance-sampled log p(x), active units.

Used by the trainer (test figures after each epoch) and by the command line
(``numpyvae evaluate``) alike, so both report the same numbers.  Every
function takes a model and a data array (N, D) and returns per-dataset
figures in nats per example.  Nothing here changes the model.
"""
import math

import numpy as np

from . import distributions as dist
from .estimators import _logsumexp, log_weights
from .validate import as_float_array, check_positive_int, check_rng


def bounds(model, x, rng, k=1, batch_size=1000):
    """Mean test figures of ``model`` on x (N, D), z sampled from q(z|x).

    Returns a dict (nats per example):
      neg_elbo : -ELBO (beta = 1): reconstruction + KL, eq. (7*), one sample z per example
      recon    : -E_q[log p(x|z)], the reconstruction term
      kl       : KL(q(z|x) || p(z)), in closed form
      neg_iwae : the IWAE bound -log (1/k) sum_i p(x, z_i)/q(z_i|x), only when k > 1
                 (an upper bound on -log p(x) in expectation, tighter as k grows)
    """
    x = model.check_x(x)
    rng = check_rng("rng", rng)
    k = check_positive_int("k", k)
    batch_size = check_positive_int("batch_size", batch_size)
    recon = kl = iw = 0.0
    for start in range(0, len(x), batch_size):
        est = model.estimate(x[start:start + batch_size], rng, "analytic", 1)
        recon -= float(np.sum(est.recon))
        kl += float(np.sum(est.kl))
        if k > 1:
            iw -= float(np.sum(model.estimate(x[start:start + batch_size], rng, "iwae", k).elbo))
    n = len(x)
    out = {"neg_elbo": (recon + kl) / n, "recon": recon / n, "kl": kl / n}
    if k > 1:
        out["neg_iwae"] = iw / n
    return out


def log_marginal(model, x, k=5000, rng=None, max_rows=32768):
    """Importance-sampled log p(x) with q(z|x) as the proposal -- seed eq. (3*).

        log p(x) ~ log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x)

    x : (N, D) -> (N,) estimates in nats.  The k samples are drawn in chunks
    so that at most ``max_rows`` decoder rows exist at once (k=5000 on 10,000
    images fits in memory); a running log-sum-exp combines the chunks.
    It is the IWAE bound with K = k, so it is a lower bound in expectation
    that tightens as k grows.
    """
    x = model.check_x(x)
    k = check_positive_int("k", k)
    rng = check_rng("rng", rng)
    max_rows = check_positive_int("max_rows", max_rows)
    n_per = max(1, min(len(x), max_rows // min(k, max_rows)))   # examples per pass
    out = np.empty(len(x), dtype=np.float64)
    for start in range(0, len(x), n_per):
        xb = x[start:start + n_per]
        mu, logvar = model.encode(xb)
        B = len(xb)
        total = np.full(B, -np.inf)
        c = max(1, max_rows // B)
        for done in range(0, k, c):
            kc = min(c, k - done)
            z, _ = dist.reparameterize.kernel(mu, logvar, model.draw_eps(rng, kc, B))
            log_px = model.log_px(xb, model.decode(z.reshape(kc * B, -1)).reshape(kc, B, -1))
            f = log_weights(log_px, z, mu, logvar).astype(np.float64)
            total = np.logaddexp(total, _logsumexp(f, axis=0))
        out[start:start + B] = total - math.log(k)
    return out


def active_units(model, x, threshold=1e-2):
    """Burda et al.'s active units: latent u is active if Cov_x(E_q[u]) > threshold.

    E_q[u] is the posterior mean mu_u(x); its variance over the data x (N, D)
    is returned with the count of active units: (count, variances (Z,)).
    """
    threshold = float(as_float_array("threshold", threshold, ndim=0, lo=0.0))
    mu, _ = model.encode(model.check_x(x))
    var = np.var(mu.astype(np.float64), axis=0)
    return int(np.sum(var > threshold)), var
