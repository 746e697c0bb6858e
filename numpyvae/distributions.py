"""Log-densities the VAE needs, each with its gradient written out.

Shapes: a leading sample axis is allowed everywhere; the last axis is the
one summed over (pixels D, or latent dimensions Z).  ``log2pi = log(2*pi)``.

Functions come in forward/backward pairs where a cache helps, or return the
value and its partial derivatives together where they share terms.  Every
function checks its arrays first (finite real numbers whose shapes
broadcast, x in [0, 1] for the Bernoulli) and raises InputError otherwise.
"""
import numpy as np

from .errors import InputError
from .layers import sigmoid, softplus
from .validate import as_float_array

LOG2PI = float(np.log(2 * np.pi))


def _checked(unit_interval=(), **arrays):
    """The named arrays as finite float arrays whose shapes broadcast together.

    Names in ``unit_interval`` must lie in [0, 1]; a ``logvar`` must keep
    exp(+-logvar) finite in its dtype (|logvar| < 709 in float64, 88 in float32).
    """
    out = [as_float_array(name, a, lo=0.0 if name in unit_interval else None,
                          hi=1.0 if name in unit_interval else None) for name, a in arrays.items()]
    for name, a in zip(arrays, out):
        limit = float(np.log(np.finfo(a.dtype).max))
        if name == "logvar" and a.size and np.abs(a).max() >= limit:
            raise InputError(f"logvar: expected |logvar| < {limit:.1f} so that exp(logvar) is finite "
                             f"in {a.dtype}, found {a.flat[np.abs(a).argmax()]}")
    try:
        np.broadcast_shapes(*(a.shape for a in out))
    except ValueError:
        shapes = ", ".join(f"{name} {a.shape}" for name, a in zip(arrays, out))
        raise InputError(f"{', '.join(arrays)}: expected shapes that broadcast together, got {shapes}") from None
    return out


# ---- p(x|z): Bernoulli on logits (derivations/07-backprop.md) ----------------

def bernoulli_log_prob(x, logits):
    """log p(x|z) = sum_d x_d l_d - softplus(l_d), for x in [0, 1].

    x: (..., D), logits: (..., D) -> (...,).  Written on logits so that
    log sigmoid is never formed: log s(l) = -softplus(-l), log(1-s(l)) = -softplus(l).
    """
    x, logits = _checked(("x",), x=x, logits=logits)
    return np.sum(x * logits - softplus(logits), axis=-1)


def bernoulli_log_prob_grad(x, logits):
    """d log p(x|z) / d logits = x - sigmoid(logits), shape (..., D)."""
    x, logits = _checked(("x",), x=x, logits=logits)
    return x - sigmoid(logits)


# ---- p(x|z): Gaussian with mean and log-variance ------------------------------

def gaussian_log_prob(x, mean, logvar):
    """log N(x; mean, diag(exp(logvar))) = -1/2 sum_d [log2pi + logvar + (x-mean)^2 exp(-logvar)].

    x, mean, logvar: (..., D) -> (...,).
    """
    x, mean, logvar = _checked(x=x, mean=mean, logvar=logvar)
    diff = x - mean
    return -0.5 * np.sum(LOG2PI + logvar + diff * diff * np.exp(-logvar), axis=-1)


def gaussian_log_prob_grads(x, mean, logvar):
    """Partial derivatives of gaussian_log_prob.

    d/dmean   = (x - mean) exp(-logvar)
    d/dlogvar = -1/2 + 1/2 (x - mean)^2 exp(-logvar)
    d/dx      = -(x - mean) exp(-logvar)     (used when x is a sample z)
    Returns (dmean, dlogvar), each (..., D).
    """
    x, mean, logvar = _checked(x=x, mean=mean, logvar=logvar)
    prec_diff = (x - mean) * np.exp(-logvar)
    return prec_diff, 0.5 * (prec_diff * (x - mean) - 1)


def std_normal_log_prob(z):
    """log N(z; 0, I) = -1/2 sum_j [log2pi + z_j^2]; z: (..., Z) -> (...,).  Gradient: -z."""
    (z,) = _checked(z=z)
    return -0.5 * np.sum(LOG2PI + z * z, axis=-1)


# ---- q(z|x): diagonal Gaussian, reparameterized (derivations/06-reparameterization.md)

def reparameterize(mu, logvar, eps):
    """z = mu + sigma * eps with sigma = exp(logvar / 2).

    mu, logvar: (B, Z); eps: (K, B, Z) -> z: (K, B, Z), cache.
    """
    mu, logvar, eps = _checked(mu=mu, logvar=logvar, eps=eps)
    sigma = np.exp(0.5 * logvar)
    z = mu + sigma * eps
    return z, (sigma, eps)


def reparameterize_backward(dz, cache):
    """Chain rule through z = mu + exp(logvar/2) * eps, with eps held fixed.

    dz/dmu = 1 and dz/dlogvar = 1/2 sigma eps, summed over the K samples.
    dz: (K, B, Z) -> dmu, dlogvar: (B, Z).
    """
    sigma, eps = cache
    (dz,) = _checked(dz=dz)
    dmu = dz.sum(axis=0)
    dlogvar = 0.5 * sigma * (dz * eps).sum(axis=0)
    return dmu, dlogvar


def kl_std_normal(mu, logvar):
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) = 1/2 sum_j [mu^2 + exp(logvar) - 1 - logvar].

    mu, logvar: (B, Z) -> (B,).  derivations/05-kl-closed-form.md
    """
    mu, logvar = _checked(mu=mu, logvar=logvar)
    return 0.5 * np.sum(mu * mu + np.exp(logvar) - 1 - logvar, axis=-1)


def kl_std_normal_grads(mu, logvar):
    """dKL/dmu = mu, dKL/dlogvar = 1/2 (exp(logvar) - 1); each (B, Z)."""
    mu, logvar = _checked(mu=mu, logvar=logvar)
    return mu, 0.5 * (np.exp(logvar) - 1)
