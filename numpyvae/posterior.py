"""The approximate posterior q(z|x): a diagonal Gaussian, reparameterized (derivations/06-reparameterization.md).

The VAE wires a posterior object in the way it wires in an estimator.  The
object turns the encoder's output h into the distribution's parameters, draws
z from them with the reparameterization trick, gives log q(z|x), and runs
the backward pass of each of these steps.  A richer posterior (a flow) is
another object with the same methods.

    h (B, 2Z) --params--> mu, logvar (B, Z) --sample(eps)--> z = mu + exp(logvar/2) * eps  (K, B, Z)
"""
import numpy as np

from . import distributions as dist

# log-variances are clipped to this range (gradient zero outside) so that
# exp(logvar) stays finite even for absurd network outputs.
LOGVAR_LIMIT = 30.0


def clip_logvar(raw):
    """logvar = clip(raw, -L, L); returns it and the mask where the gradient passes."""
    inside = np.abs(raw) < LOGVAR_LIMIT
    return np.clip(raw, -LOGVAR_LIMIT, LOGVAR_LIMIT), inside


class DiagonalGaussian:
    """q(z|x) = N(mu, diag(exp(logvar))), with h = [mu | raw logvar] from the encoder."""

    def n_outputs(self, z_dim):
        """How many numbers per example the encoder must produce: mu and logvar, 2Z."""
        return 2 * z_dim

    def params(self, h):
        """h (B, 2Z) -> (mu, logvar), cache; logvar clipped to [-LOGVAR_LIMIT, LOGVAR_LIMIT]."""
        z_dim = h.shape[1] // 2
        logvar, inside = clip_logvar(h[:, z_dim:])
        return (h[:, :z_dim], logvar), inside

    def params_backward(self, dmu, dlogvar, inside):
        """dmu, dlogvar (B, Z) -> dh (B, 2Z); no gradient where logvar was clipped."""
        return np.concatenate([dmu, dlogvar * inside], axis=1)

    def draw_eps(self, rng, k, batch, z_dim, dtype):
        """eps ~ N(0, I) of shape (k, batch, Z) from ``rng``."""
        return rng.standard_normal((k, batch, z_dim), dtype=dtype)

    def sample(self, mu, logvar, eps):
        """z = mu + sigma * eps (K, B, Z), cache.  The reparameterization trick."""
        return dist.reparameterize.kernel(mu, logvar, eps)

    def sample_backward(self, dz, cache):
        """dz (K, B, Z) -> dmu, dlogvar (B, Z), eps held fixed."""
        return dist.reparameterize_backward.kernel(dz, cache)

    def log_prob(self, z, mu, logvar):
        """log q(z|x) (K, B)."""
        return dist.gaussian_log_prob.kernel(z, mu, logvar)

    def log_prob_grads(self, z, mu, logvar):
        """d log q / d mu and d log q / d logvar at fixed z (d/dz is -d/dmu)."""
        return dist.gaussian_log_prob_grads.kernel(z, mu, logvar)


POSTERIORS = {"diagonal_gaussian": DiagonalGaussian}
