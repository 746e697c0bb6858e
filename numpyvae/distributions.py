"""Log-densities the VAE needs, each with its gradient written out.

Shapes: a leading sample axis is allowed everywhere; the last axis is the
one summed over (pixels D, or latent dimensions Z).  ``log2pi = log(2*pi)``.

Functions come in forward/backward pairs where a cache helps, or return the
value and its partial derivatives together where they share terms.  The
bodies are the formulas and nothing else.  Called from outside, each checks
its arrays first (``@checks_arrays``: finite real numbers whose shapes
broadcast, x in [0, 1] for the Bernoulli) and raises InputError otherwise;
the VAE, which checked its batch once, calls ``function.kernel``, the same
formula without the checks.
"""
import numpy as np

from .layers import sigmoid, softplus
from .validate import checks_arrays

LOG2PI = float(np.log(2 * np.pi))


# ---- p(x|z): Bernoulli on logits (derivations/07-backprop.md) ----------------

@checks_arrays(unit_interval=("x",))
def bernoulli_log_prob(x, logits):
    """log p(x|z) = sum_d x_d l_d - softplus(l_d), for x in [0, 1].

    x: (..., D), logits: (..., D) -> (...,).  Written on logits so that
    log sigmoid is never formed: log s(l) = -softplus(-l), log(1-s(l)) = -softplus(l).
    """
    return np.sum(x * logits - softplus(logits), axis=-1)


@checks_arrays(unit_interval=("x",))
def bernoulli_log_prob_grad(x, logits):
    """d log p(x|z) / d logits = x - sigmoid(logits), shape (..., D)."""
    return x - sigmoid(logits)


# ---- p(x|z): Gaussian with mean and log-variance ------------------------------

@checks_arrays()
def gaussian_log_prob(x, mean, logvar):
    """log N(x; mean, diag(exp(logvar))) = -1/2 sum_d [log2pi + logvar + (x-mean)^2 exp(-logvar)].

    x, mean, logvar: (..., D) -> (...,).
    """
    diff = x - mean
    return -0.5 * np.sum(LOG2PI + logvar + diff * diff * np.exp(-logvar), axis=-1)


@checks_arrays()
def gaussian_log_prob_grads(x, mean, logvar):
    """Partial derivatives of gaussian_log_prob.

    d/dmean   = (x - mean) exp(-logvar)
    d/dlogvar = -1/2 + 1/2 (x - mean)^2 exp(-logvar)
    d/dx      = -(x - mean) exp(-logvar)     (used when x is a sample z)
    Returns (dmean, dlogvar), each (..., D).
    """
    prec_diff = (x - mean) * np.exp(-logvar)
    return prec_diff, 0.5 * (prec_diff * (x - mean) - 1)


@checks_arrays()
def std_normal_log_prob(z):
    """log N(z; 0, I) = -1/2 sum_j [log2pi + z_j^2]; z: (..., Z) -> (...,).  Gradient: -z."""
    return -0.5 * np.sum(LOG2PI + z * z, axis=-1)


# ---- q(z|x): diagonal Gaussian, reparameterized (derivations/06-reparameterization.md)

@checks_arrays()
def reparameterize(mu, logvar, eps):
    """z = mu + sigma * eps with sigma = exp(logvar / 2).

    mu, logvar: (B, Z); eps: (K, B, Z) -> z: (K, B, Z), cache.
    """
    sigma = np.exp(0.5 * logvar)
    z = mu + sigma * eps
    return z, (sigma, eps)


@checks_arrays(skip=("cache",))
def reparameterize_backward(dz, cache):
    """Chain rule through z = mu + exp(logvar/2) * eps, with eps held fixed.

    dz/dmu = 1 and dz/dlogvar = 1/2 sigma eps, summed over the K samples.
    dz: (K, B, Z) -> dmu, dlogvar: (B, Z).
    """
    sigma, eps = cache
    dmu = dz.sum(axis=0)
    dlogvar = 0.5 * sigma * (dz * eps).sum(axis=0)
    return dmu, dlogvar


@checks_arrays()
def kl_std_normal(mu, logvar):
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) = 1/2 sum_j [mu^2 + exp(logvar) - 1 - logvar].

    mu, logvar: (B, Z) -> (B,).  derivations/05-kl-closed-form.md
    """
    return 0.5 * np.sum(mu * mu + np.exp(logvar) - 1 - logvar, axis=-1)


@checks_arrays()
def kl_std_normal_grads(mu, logvar):
    """dKL/dmu = mu, dKL/dlogvar = 1/2 (exp(logvar) - 1); each (B, Z)."""
    return mu, 0.5 * (np.exp(logvar) - 1)
