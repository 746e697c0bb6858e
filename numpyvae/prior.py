"""The prior p(z): the standard normal N(0, I), as an object the VAE and the estimators are handed.

A learned prior (a mixture, the VampPrior) is another object with the same
methods; ``kl`` is offered only where a closed form exists (the "analytic"
estimator needs it, the sampled ones do not).
"""
from . import distributions as dist


class StandardNormal:
    """p(z) = N(0, I): log-density, its gradient, samples, and the closed-form KL from a diagonal Gaussian."""

    has_closed_form_kl = True

    def log_prob(self, z):
        """log p(z) = -1/2 sum_j [log 2 pi + z_j^2]: (..., Z) -> (...)."""
        return dist.std_normal_log_prob.kernel(z)

    def log_prob_grad(self, z):
        """d log p(z) / dz = -z."""
        return -z

    def sample(self, rng, n, z_dim, dtype):
        """n draws z ~ N(0, I), (n, Z)."""
        return rng.standard_normal((n, z_dim), dtype=dtype)

    def kl(self, mu, logvar):
        """KL(N(mu, diag(exp(logvar))) || N(0, I)) (B,), eq. (7*)'s closed form (derivations/05)."""
        return dist.kl_std_normal.kernel(mu, logvar)

    def kl_grads(self, mu, logvar):
        """dKL/dmu = mu, dKL/dlogvar = (exp(logvar) - 1) / 2."""
        return dist.kl_std_normal_grads.kernel(mu, logvar)


PRIORS = {"standard_normal": StandardNormal}
