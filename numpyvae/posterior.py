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
from . import flows

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


class PlanarFlow:
    """q_K(z|x): a diagonal Gaussian q_0 pushed through K planar steps (numpyvae/flows.py), amortized.

    The encoder produces, per example, the base parameters and every step's
    parameters (Rezende & Mohamed 2015, Sec. 4.2):

        h (B, 2Z + K(2Z + 1)) = [mu | raw logvar | u_1..u_K | w_1..w_K | b_1..b_K]

    ``params`` reparameterizes each u to u_hat (w.u_hat > -1: every step
    invertible).  ``sample`` draws z_0 = mu + sigma * eps, flows it to z_K and
    returns log q_K(z_K|x) = log q_0(z_0|x) - sum_k log|det df_k/dz_{k-1}|
    (derivations/13-planar-flows.md, (13.1)); at z_0 = mu + sigma eps,
    log q_0(z_0) = -1/2 sum_j [log 2 pi + logvar_j + eps_j^2], so with eps held
    fixed it depends on logvar only.  The backward passes return the gradient
    of h: the flow's parameters are the encoder's outputs, so their gradients
    go into the encoder's buffers through dh.
    """

    forward, backward = staticmethod(flows.flow_forward), staticmethod(flows.flow_backward)
    inverse = staticmethod(flows.flow_inverse)

    def __init__(self, steps):
        self.steps = steps

    def n_outputs(self, z_dim):
        """2Z for the base Gaussian, then K times (u, w: Z each; b: 1)."""
        return 2 * z_dim + self.steps * (2 * z_dim + 1)

    def params(self, h):
        """h (B, n_outputs) -> (mu, logvar, (u_hat, w, b)), cache.  u_hat, w (B, K, Z); b (B, K)."""
        K = self.steps
        z_dim = (h.shape[1] - K) // (2 * K + 2)
        B = h.shape[0]
        logvar, inside = clip_logvar(h[:, z_dim:2 * z_dim])
        u = h[:, 2 * z_dim:(2 + K) * z_dim].reshape(B, K, z_dim)
        w = h[:, (2 + K) * z_dim:(2 + 2 * K) * z_dim].reshape(B, K, z_dim)
        u_hat, ucache = flows.u_hat_forward(u, w)              # (13.6)
        return (h[:, :z_dim], logvar, (u_hat, w, h[:, -K:] if K else h[:, :0])), (inside, ucache)

    def params_backward(self, dmu, dlogvar, dflow, cache):
        """dmu, dlogvar (B, Z), dflow = (du_hat, dw, db) -> dh (B, n_outputs)."""
        inside, ucache = cache
        du_hat, dw, db = dflow
        du, dw_u = flows.u_hat_backward(du_hat, ucache)        # (13.7)
        B = dmu.shape[0]
        return np.concatenate([dmu, dlogvar * inside, du.reshape(B, -1), (dw + dw_u).reshape(B, -1), db], axis=1)

    def draw_eps(self, rng, k, batch, z_dim, dtype):
        """eps ~ N(0, I) of shape (k, batch, Z) from ``rng``."""
        return rng.standard_normal((k, batch, z_dim), dtype=dtype)

    def sample(self, mu, logvar, flow, eps):
        """z_K (K, B, Z) and log q_K(z_K|x) (K, B) for eps (K, B, Z); cache."""
        z0, rcache = dist.reparameterize.kernel(mu, logvar, eps)
        z, sum_logdet, fcache = self.forward(z0, *flow)
        log_q0 = -0.5 * np.sum(dist.LOG2PI + logvar + eps * eps, axis=-1)
        return (z, log_q0 - sum_logdet), (rcache, fcache)

    def sample_backward(self, dz, dlog_q, cache):
        """dz (K, B, Z), dlog_q (K, B) -> dmu, dlogvar (B, Z), the flow's gradients; eps held fixed."""
        rcache, fcache = cache
        dz0, *dflow = self.backward(dz, -dlog_q, fcache)
        dmu, dlogvar = dist.reparameterize_backward.kernel(dz0, rcache)
        dlogvar = dlogvar - 0.5 * np.sum(dlog_q, axis=0)[:, None]
        return dmu, dlogvar, tuple(dflow)


class RadialFlow(PlanarFlow):
    """q_K(z|x): a diagonal Gaussian pushed through K radial steps (numpyvae/flows.py, (13.10)), amortized.

        h (B, 2Z + K(Z + 2)) = [mu | raw logvar | z0_1..z0_K | a_1..a_K | c_1..c_K]

    with each step's centre z0_k, alpha_k = softplus(a_k) and beta_k = -alpha_k + softplus(c_k)
    (13.13); ``sample`` and ``sample_backward`` are the planar flow's, with the radial steps.
    """

    forward, backward = staticmethod(flows.radial_flow_forward), staticmethod(flows.radial_flow_backward)
    inverse = staticmethod(flows.radial_flow_inverse)

    def n_outputs(self, z_dim):
        """2Z for the base Gaussian, then K times (centre: Z; alpha, beta: 1 each)."""
        return 2 * z_dim + self.steps * (z_dim + 2)

    def params(self, h):
        """h (B, n_outputs) -> (mu, logvar, (centres, alpha, beta)), cache.  centres (B, K, Z); alpha, beta (B, K)."""
        K, B = self.steps, h.shape[0]
        z_dim = (h.shape[1] - 2 * K) // (K + 2)
        logvar, inside = clip_logvar(h[:, z_dim:2 * z_dim])
        centres = h[:, 2 * z_dim:(2 + K) * z_dim].reshape(B, K, z_dim)
        alpha, beta, pcache = flows.radial_params_forward(h[:, (2 + K) * z_dim:(2 + K) * z_dim + K], h[:, -K:])
        return (h[:, :z_dim], logvar, (centres, alpha, beta)), (inside, pcache)

    def params_backward(self, dmu, dlogvar, dflow, cache):
        """dmu, dlogvar (B, Z), dflow = (dcentres, dalpha, dbeta) -> dh (B, n_outputs)."""
        inside, pcache = cache
        dcentres, dalpha, dbeta = dflow
        da, dc = flows.radial_params_backward(dalpha, dbeta, pcache)
        return np.concatenate([dmu, dlogvar * inside, dcentres.reshape(dmu.shape[0], -1), da, dc], axis=1)


POSTERIORS = {"diagonal_gaussian": DiagonalGaussian, "planar_flow": PlanarFlow, "radial_flow": RadialFlow}
