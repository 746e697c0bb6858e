"""The prior p(z), as an object the VAE and the estimators are handed.

* ``StandardNormal``: p(z) = N(0, I), with the closed-form KL from a diagonal Gaussian.
* ``MixturePrior``: a mixture of C diagonal Gaussians with learned means,
  log-variances and mixture logits (the GMVAE prior).
* ``VampPrior`` (Tomczak & Welling 2018): the mean of the encoder's
  posteriors at C learned pseudo-inputs u_c,  p(z) = (1/C) sum_c q(z|u_c).

The two learned priors have no closed-form KL (``has_closed_form_kl =
False``): the estimators then use the sampled KL, mean_k [log q(z_k|x) -
log p(z_k)] at the reparameterized z_k ("mc", "stl"; the "iwae" bound weights
the same terms), derivations/14-learned-priors-and-cvae.md.

A learned prior has ``params`` (name -> live array) and, per call,

    density() -> (MixtureDensity, cache)      the mixture's components for this call
    density_backward(z, dlog_pz, cache, grads, encoder_grads)
        adds d(sum dlog_pz * log p(z)) / d(its parameters) into the caller's
        ``grads`` (and, for the VampPrior, the encoder's into ``encoder_grads``)

``log_prob``, ``log_prob_grad`` and ``sample`` work on their own (they call
``density()``); the VAE calls ``density()`` once per step and hands the
estimator that.  Nothing of a call is kept on the prior.
"""
import math
import types
from collections import OrderedDict

import numpy as np

from . import distributions as dist
from .errors import InputError
from .layers import log_softmax
from .posterior import clip_logvar
from .validate import as_float_array, check_positive_int, check_rng

# rows of z handled at once by MixtureDensity: chunk * C * Z numbers in the (z - m)^2 array
MAX_CHUNK_NUMBERS = 2**22


class StandardNormal:
    """p(z) = N(0, I): log-density, its gradient, samples, and the closed-form KL from a diagonal Gaussian."""

    has_closed_form_kl = True
    params = types.MappingProxyType({})          # nothing learned

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


class MixtureDensity:
    """p(z) = sum_c pi_c N(z; m_c, diag(exp(s_c))): means m (C, Z), logvars s (C, Z), log_weights log pi (C,).

    a_c(z) = log pi_c + log N(z; m_c, s_c);   log p(z) = logsumexp_c a_c(z);
    r_c(z) = exp(a_c(z) - log p(z)), the responsibilities (they sum to 1 over c).
    Derivations/14, eqs. (14.1)-(14.4).  z may carry any leading axes (..., Z).
    """

    has_closed_form_kl = False

    def __init__(self, means, logvars, log_weights):
        self.means, self.logvars, self.log_weights = means, logvars, log_weights
        self.precisions = np.exp(-logvars)                                      # 1 / v_c
        C, Z = means.shape
        self.chunk = max(1, MAX_CHUNK_NUMBERS // (C * Z))

    def _components(self, z):
        """z (N, Z) -> a (N, C), diff (N, C, Z) = z - m_c.  Eq. (14.1)."""
        diff = z[:, None, :] - self.means[None]
        a = self.log_weights - 0.5 * np.sum(dist.LOG2PI + self.logvars + diff * diff * self.precisions, axis=-1)
        return a, diff

    def _responsibilities(self, a):
        """log p (N,) by a stable log-sum-exp, and r (N, C) = exp(a - log p).  Eq. (14.2)."""
        m = np.max(a, axis=1, keepdims=True)
        log_p = m[:, 0] + np.log(np.sum(np.exp(a - m), axis=1))
        return log_p, np.exp(a - log_p[:, None])

    def _rows(self, z):
        flat = z.reshape(-1, z.shape[-1])
        for start in range(0, len(flat), self.chunk):
            yield start, flat[start:start + self.chunk]

    def log_prob(self, z):
        """log p(z): (..., Z) -> (...)."""
        out = np.empty(z.shape[:-1], dtype=z.dtype).reshape(-1)
        for start, rows in self._rows(z):
            out[start:start + len(rows)] = self._responsibilities(self._components(rows)[0])[0]
        return out.reshape(z.shape[:-1])

    def log_prob_grad(self, z):
        """d log p(z) / dz = -sum_c r_c (z - m_c) / v_c: (..., Z).  Eq. (14.3)."""
        out = np.empty_like(z).reshape(-1, z.shape[-1])
        for start, rows in self._rows(z):
            a, diff = self._components(rows)
            r = self._responsibilities(a)[1]
            out[start:start + len(rows)] = -np.einsum("nc,ncz->nz", r, diff * self.precisions)
        return out.reshape(z.shape)

    def backward(self, z, dlog_p):
        """Gradients of sum_n dlog_p[n] log p(z_n) w.r.t. the means, logvars and log_weights.  Eq. (14.4).

            d/dm_c      = sum_n g_n r_nc (z_n - m_c) / v_c
            d/ds_c      = sum_n g_n r_nc [(z_n - m_c)^2 / v_c - 1] / 2
            d/dlog pi_c = sum_n g_n r_nc
        z (..., Z), dlog_p (...) -> (dmeans (C, Z), dlogvars (C, Z), dlog_weights (C,)).
        """
        dmeans, dlogvars = np.zeros_like(self.means), np.zeros_like(self.logvars)
        dlog_weights = np.zeros_like(self.log_weights)
        g = dlog_p.reshape(-1)
        for start, rows in self._rows(z):
            a, diff = self._components(rows)
            gr = g[start:start + len(rows), None] * self._responsibilities(a)[1]      # (N, C)
            scaled = diff * self.precisions                                        # (z - m_c) / v_c
            dmeans += np.einsum("nc,ncz->cz", gr, scaled)
            dlogvars += 0.5 * (np.einsum("nc,ncz->cz", gr, scaled * diff) - gr.sum(axis=0)[:, None])
            dlog_weights += gr.sum(axis=0)
        return dmeans, dlogvars, dlog_weights

    def sample(self, rng, n, z_dim=None, dtype=None):
        """n draws: a component c ~ pi, then z = m_c + exp(s_c / 2) * eps; (n, Z) (z_dim, dtype as the means')."""
        pi = np.exp(self.log_weights.astype(np.float64))
        c = rng.choice(len(pi), size=n, p=pi / pi.sum())
        eps = rng.standard_normal((n, self.means.shape[1]), dtype=self.means.dtype)
        return self.means[c] + np.exp(0.5 * self.logvars[c]) * eps


class _LearnedPrior:
    """What the learned priors share: the standalone methods, built on ``density()``."""

    has_closed_form_kl = False

    def _check_z(self, z):
        z = as_float_array("z", z, dtype=self.dtype)
        if z.ndim == 0 or z.shape[-1] != self.z_dim:
            raise InputError(f"z: expected shape (..., {self.z_dim}), got {z.shape}")
        return z

    def log_prob(self, z):
        """log p(z): (..., Z) -> (...)."""
        return self.density()[0].log_prob(self._check_z(z))

    def log_prob_grad(self, z):
        """d log p(z) / dz: (..., Z)."""
        return self.density()[0].log_prob_grad(self._check_z(z))

    def sample(self, rng, n, z_dim=None, dtype=None):
        """n draws z ~ p(z), (n, Z) (z_dim and dtype, if given, must be the prior's)."""
        if z_dim is not None and z_dim != self.z_dim:
            raise InputError(f"z_dim: this prior has {self.z_dim} latent dimensions, got {z_dim}")
        n = check_positive_int("n", n)
        return self.density()[0].sample(check_rng("rng", rng), n)

    def new_grad_buffers(self):
        """Zeroed buffers, name -> array like params[name]."""
        return OrderedDict((name, np.zeros_like(p)) for name, p in self.params.items())


class MixturePrior(_LearnedPrior):
    """p(z) = sum_c softmax(logits)_c N(z; means_c, diag(exp(logvars_c))), every parameter learned.

    components C, z_dim Z.  params: "means" (C, Z) ~ N(0, 1) from rng,
    "logvars" (C, Z) = 0 (clipped to +-LOGVAR_LIMIT when used), "logits" (C,) = 0.
    """

    def __init__(self, components, z_dim, rng, dtype=np.float64):
        self.components, self.z_dim = check_positive_int("components", components), check_positive_int("z_dim", z_dim)
        self.dtype = np.dtype(dtype).type
        self.params = OrderedDict(means=rng.standard_normal((self.components, z_dim)).astype(self.dtype),
                                  logvars=np.zeros((self.components, z_dim), dtype=self.dtype),
                                  logits=np.zeros(self.components, dtype=self.dtype))

    def density(self):
        """The mixture of this call, and what density_backward needs (the clip mask, pi)."""
        p = self.params
        logvars, inside = clip_logvar(p["logvars"])
        log_pi = log_softmax(p["logits"])
        return MixtureDensity(p["means"], logvars, log_pi), (inside, np.exp(log_pi))

    def density_backward(self, z, dlog_pz, density, cache, grads, encoder_grads=None):
        """Add the gradients of sum dlog_pz * log p(z) into grads["means"], ["logvars"], ["logits"].

        Through the log-softmax: d/dl_c = d/dlog pi_c - pi_c sum_c' d/dlog pi_c'.  Eq. (14.5).
        """
        inside, pi = cache
        dmeans, dlogvars, dlog_pi = density.backward(z, dlog_pz)
        grads["means"] += dmeans
        grads["logvars"] += dlogvars * inside
        grads["logits"] += dlog_pi - pi * dlog_pi.sum()


class VampPrior(_LearnedPrior):
    """p(z) = (1/C) sum_c q(z | u_c): the encoder's posteriors at C learned pseudo-inputs u_c (C, D).

    encoder   : the VAE's encoder Network (shared, not copied: its weights are the VAE's);
    posterior : the VAE's posterior object (h -> mu, logvar).
    params: "pseudo_inputs" (C, D) ~ N(0.05, 0.01^2) from rng (Tomczak & Welling's initialisation).
    The gradient reaches u_c through the encoder (derivations/14, eq. (14.6)), and the
    encoder's own parameters get the prior's share of their gradient too.
    """

    def __init__(self, components, x_dim, z_dim, encoder, posterior, rng, dtype=np.float64):
        self.components = check_positive_int("components", components)
        self.x_dim, self.z_dim = check_positive_int("x_dim", x_dim), check_positive_int("z_dim", z_dim)
        self.encoder, self.posterior = encoder, posterior
        self.dtype = np.dtype(dtype).type
        self.params = OrderedDict(
            pseudo_inputs=(0.05 + 0.01 * rng.standard_normal((self.components, x_dim))).astype(self.dtype))

    def density(self):
        """The encoder applied to the pseudo-inputs with a cache of its own: the C components, equal weights."""
        h, net_cache = self.encoder.call(self.params["pseudo_inputs"])
        (mu, logvar), post_cache = self.posterior.params(h)
        log_w = np.full(self.components, -math.log(self.components), dtype=mu.dtype)
        return MixtureDensity(mu, logvar, log_w), (net_cache, post_cache)

    def density_backward(self, z, dlog_pz, density, cache, grads, encoder_grads):
        """Add the gradient of sum dlog_pz * log p(z) into grads["pseudo_inputs"] and the encoder's buffers.

        d/du_c = (d mu_c / d u_c)^T d/dmu_c + (d logvar_c / d u_c)^T d/dlogvar_c, by the encoder's
        backward pass (call_backward adds into encoder_grads, the buffers the data's pass uses).
        """
        net_cache, post_cache = cache
        dmu, dlogvar, _ = density.backward(z, dlog_pz)                     # the weights are fixed: 1/C
        dh = self.posterior.params_backward(dmu, dlogvar, post_cache)
        grads["pseudo_inputs"] += self.encoder.call_backward(dh, net_cache, encoder_grads, need_dx=True)


PRIORS = {"standard_normal": StandardNormal, "mixture": MixturePrior, "vampprior": VampPrior}
