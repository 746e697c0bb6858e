"""A latent model where everything is exact: probabilistic PCA.

    z ~ N(0, I_Z),      x | z ~ N(W z + b, s2 I_D)

Then x ~ N(b, C) with C = W W^T + s2 I (derivations/01-marginal-likelihood.md),
the posterior p(z|x) is Gaussian (derivations/03-jensen-elbo.md), and the ELBO
of a diagonal-Gaussian q(z|x) = N(m, diag(exp(logvar))) has a closed form
(derivations/06-reparameterization.md).  The derivation notes check the
estimators against these formulas.  Shapes: W (D, Z), b (D,), x (D,) or (N, D).
"""
import math

import numpy as np

from .distributions import LOG2PI, gaussian_log_prob, kl_std_normal, std_normal_log_prob
from .errors import InputError
from .validate import as_float_array, check_positive_int, check_rng


class LinearGaussian:
    """Probabilistic PCA with loading matrix W (D, Z), offset b (D,), noise variance s2 > 0."""

    def __init__(self, W, b, s2):
        self.W = as_float_array("W", W, ndim=2, dtype=np.float64)
        self.b = as_float_array("b", b, ndim=1, dtype=np.float64)
        if self.b.shape[0] != self.W.shape[0]:
            raise InputError(f"b: expected shape ({self.W.shape[0]},), got {self.b.shape}")
        self.s2 = float(as_float_array("s2", s2, ndim=0, lo=1e-300))
        self.D, self.Z = self.W.shape

    @classmethod
    def random(cls, D, Z, rng, s2=0.5):
        """A model with W, b ~ N(0, 1) entries, drawn from ``rng``."""
        D, Z = check_positive_int("D", D), check_positive_int("Z", Z)
        rng = check_rng("rng", rng)
        return cls(rng.standard_normal((D, Z)), rng.standard_normal(D), s2)

    def log_px_given_z(self, x, z):
        """log N(x; W z + b, s2 I); x (N, D) or (D,), z (..., N, Z) or (..., Z) -> (..., N) or (...)."""
        return gaussian_log_prob(x, z @ self.W.T + self.b, np.full(self.D, math.log(self.s2)))

    def log_joint(self, x, z):
        """log p(x, z) = log p(x|z) + log p(z)."""
        return self.log_px_given_z(x, z) + std_normal_log_prob(z)

    def marginal_cov(self):
        """C = W W^T + s2 I, the covariance of x (D, D)."""
        return self.W @ self.W.T + self.s2 * np.eye(self.D)

    def log_marginal(self, x):
        """log p(x) = log N(x; b, C); x (N, D) -> (N,) or (D,) -> scalar.  Eq. (1*) in closed form."""
        C = self.marginal_cov()
        diff = np.asarray(x, dtype=np.float64) - self.b
        _, logdet = np.linalg.slogdet(C)
        maha = np.sum(diff * np.linalg.solve(C, diff.T).T, axis=-1)
        return -0.5 * (self.D * LOG2PI + logdet + maha)

    def posterior(self, x):
        """Exact p(z|x) = N(mean, cov): cov = (I + W^T W / s2)^-1, mean = cov W^T (x - b) / s2."""
        cov = np.linalg.inv(np.eye(self.Z) + self.W.T @ self.W / self.s2)
        mean = (np.asarray(x, dtype=np.float64) - self.b) @ self.W @ cov / self.s2
        return mean, cov

    def expected_log_px(self, x, m, logvar):
        """E_q[log p(x|z)] for q = N(m, diag(exp(logvar))):

        -1/2 [D log(2 pi s2) + (||x - W m - b||^2 + sum_j exp(logvar_j) ||W[:, j]||^2) / s2]
        """
        resid = x - m @ self.W.T - self.b
        spread = np.exp(logvar) @ np.sum(self.W ** 2, axis=0)
        return -0.5 * (self.D * (LOG2PI + math.log(self.s2)) + (np.sum(resid ** 2, axis=-1) + spread) / self.s2)

    def elbo(self, x, m, logvar):
        """Closed-form ELBO = E_q[log p(x|z)] - KL(q || N(0, I)).  Eq. (7*)."""
        return self.expected_log_px(x, m, logvar) - kl_std_normal(m, logvar)

    def elbo_grads(self, x, m, logvar):
        """Exact gradient of ``elbo``: (d/dm, d/dlogvar), each shaped like m.

        d/dm      = W^T (x - W m - b) / s2 - m
        d/dlogvar = -1/2 exp(logvar) ||W[:, j]||^2 / s2 - 1/2 (exp(logvar) - 1)
        """
        resid = x - m @ self.W.T - self.b
        dm = resid @ self.W / self.s2 - m
        var = np.exp(logvar)
        dlogvar = -0.5 * var * np.sum(self.W ** 2, axis=0) / self.s2 - 0.5 * (var - 1)
        return dm, dlogvar

    def kl_to_posterior(self, x, m, logvar):
        """KL(q(z|x) || p(z|x)) between N(m, diag(exp(logvar))) and the exact posterior."""
        mean, cov = self.posterior(x)
        prec = np.linalg.inv(cov)
        diff = mean - m
        _, logdet_cov = np.linalg.slogdet(cov)
        return 0.5 * (np.exp(logvar) @ np.diag(prec) + np.sum(diff @ prec * diff, axis=-1)
                      - self.Z + logdet_cov - np.sum(logvar, axis=-1))

    def sample(self, n, rng):
        """(z, x): n draws of z ~ N(0, I), x ~ p(x|z); shapes (n, Z), (n, D)."""
        rng = check_rng("rng", rng)
        z = rng.standard_normal((check_positive_int("n", n), self.Z))
        return z, z @ self.W.T + self.b + math.sqrt(self.s2) * rng.standard_normal((n, self.D))
