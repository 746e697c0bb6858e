"""ELBO estimators, each returning its value and its partial derivatives.

The model hands every estimator the same quantities for one batch:

    log_px : (K, B)    log p(x | z_k) for K samples z_k per example
    z      : (K, B, Z) the samples z_k = mu + sigma * eps_k
    mu, logvar : (B, Z) the encoder's output, q(z|x) = N(mu, diag(exp(logvar)))

and gets back an :class:`Estimate`: the per-example objective ``elbo`` (B,)
and its partial derivatives with respect to each input *as an independent
variable*.  The model then runs the chain rule: the decoder gets ``dlog_px``,
the reparameterization gets the decoder's dz plus ``dz`` here, and the
encoder gets that plus the direct ``dmu``, ``dlogvar``.  Adding an estimator
touches this file only.  ``beta`` weights the prior/posterior terms
(beta = 1 is the ELBO; beta < 1 is KL warm-up).  ``prior`` is the prior
object (numpyvae/prior.py; default N(0, I)): its log-density, gradient and,
for "analytic", its closed-form KL.

A flowed posterior hands in log q_K(z|x) itself (it is not a function of z,
mu, logvar): its estimators, ``flow_mc`` and ``flow_iwae`` (FLOW_ESTIMATORS,
under the names "mc" and "iwae"), take (log_px, z, log_q) and return
``dlog_q`` for the flow's backward pass (derivations/13-planar-flows.md).

Seed eq. (4*): ELBO = E_q[log p(x|z) + log p(z) - log q(z|x)]   -> "mc"
Seed eq. (7*): ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z))       -> "analytic"
"""
import functools
import math
from dataclasses import dataclass

import numpy as np

from . import distributions as dist
from .errors import InputError
from .prior import StandardNormal
from .validate import as_float_array, check_float, exp_safe_logvar

# The formulas without argument checks: an estimator's inputs were checked once, at its entry.
gaussian_log_prob = dist.gaussian_log_prob.kernel
gaussian_log_prob_grads = dist.gaussian_log_prob_grads.kernel
STANDARD_NORMAL = StandardNormal()


@dataclass
class Estimate:
    """An estimator's value and partial derivatives (all of the per-example objective).

    elbo    : (B,)       the objective for each example (with beta = 1, a lower bound on log p(x))
    recon   : (B,)       mean_k log p(x|z_k), the reconstruction term of eq. (7*)
    kl      : (B,)       the KL term: closed form ("analytic"), else the sampled
                         mean_k [log q(z_k|x) - log p(z_k)]; recon - kl is the
                         ELBO at beta = 1 whatever beta the objective used
    dlog_px : (K, B)     d elbo / d log p(x|z_k)
    dz      : (K, B, Z) or None, d elbo / d z_k through the terms other than log p(x|z)
    dmu, dlogvar : (B, Z) direct partials (not through z)
    reparameterized : False means the encoder gets no gradient through z (score function)
    dlog_q  : (K, B) or None, d elbo / d log q(z_k|x) when log q is handed in (the flow estimators)
    dlog_pz : (K, B) or None, d elbo / d log p(z_k) with z_k held fixed: what a learned
              prior's parameters get (None for "analytic", whose prior has none)
    """

    elbo: np.ndarray
    dlog_px: np.ndarray
    dz: object
    dmu: np.ndarray
    dlogvar: np.ndarray
    recon: np.ndarray = None
    kl: np.ndarray = None
    reparameterized: bool = True
    dlog_q: np.ndarray = None
    dlog_pz: np.ndarray = None


def checks_inputs(kernel):
    """Decorator: refuse inputs that are not finite arrays of shapes (K, B), (K, B, Z), (B, Z), (B, Z).

    The undecorated estimator stays available as ``estimator.kernel``; the VAE
    calls that one, having built these arrays from inputs it had checked.
    """
    @functools.wraps(kernel)
    def public(log_px, z, mu, logvar, beta=1.0, prior=None):
        log_px, z, mu, logvar = (as_float_array(n, a) for n, a in
                                 (("log_px", log_px), ("z", z), ("mu", mu), ("logvar", logvar)))
        if (log_px.ndim != 2 or z.ndim != 3 or z.shape[:2] != log_px.shape
                or mu.shape != z.shape[1:] or logvar.shape != mu.shape):
            raise InputError(f"log_px, z, mu, logvar: expected shapes (K, B), (K, B, Z), (B, Z), (B, Z), got "
                             f"{log_px.shape}, {z.shape}, {mu.shape}, {logvar.shape}")
        if log_px.shape[0] == 0 or log_px.shape[1] == 0:
            raise InputError(f"log_px: expected at least one sample and one example, got shape {log_px.shape}")
        exp_safe_logvar("logvar", logvar)
        beta = check_float("beta", beta, lo=0.0, hi=1e6)
        with np.errstate(over="ignore", invalid="ignore"):
            est = kernel(log_px, z, mu, logvar, beta, prior)
        if not np.all(np.isfinite(est.elbo)):
            raise InputError(f"log_px, z, mu, logvar: values so extreme that the {kernel.__name__} objective "
                             f"overflowed (got {est.elbo[~np.isfinite(est.elbo)][0]}); expected moderate values")
        return est

    public.kernel = kernel
    return public


def log_weights(log_px, z, mu, logvar, beta=1.0, prior=None):
    """f_k = log p(x|z_k) + beta [log p(z_k) - log q(z_k|x)], shape (K, B).  Seed eq. (4*)."""
    prior = prior or STANDARD_NORMAL
    return log_px + beta * (prior.log_prob(z) - gaussian_log_prob(z, mu, logvar))


def _sampled_kl(z, mu, logvar, prior):
    """mean_k [log q(z_k|x) - log p(z_k)], the Monte Carlo estimate of the KL term; (B,)."""
    return (gaussian_log_prob(z, mu, logvar) - prior.log_prob(z)).mean(axis=0)


def _log_ratio_grads(z, mu, logvar, prior):
    """Partials of g(z, mu, logvar) = log p(z) - log q(z; mu, logvar).

    d g / d z      = d log p(z)/dz + (z - mu) exp(-logvar)     (-z + ... for N(0, I))
    d g / d mu     = -(z - mu) exp(-logvar)
    d g / d logvar = 1/2 - 1/2 (z - mu)^2 exp(-logvar)
    """
    dq_dmu, dq_dlogvar = gaussian_log_prob_grads(z, mu, logvar)
    return prior.log_prob_grad(z) + dq_dmu, -dq_dmu, -dq_dlogvar


@checks_inputs
def analytic(log_px, z, mu, logvar, beta=1.0, prior=None):
    """Estimator B of Kingma & Welling: mean_k log p(x|z_k) - beta KL(q || p(z)).  Eq. (7*)."""
    prior = prior or STANDARD_NORMAL
    if not prior.has_closed_form_kl:
        raise InputError(f"estimator: 'analytic' needs a closed-form KL, which the prior "
                         f"{type(prior).__name__} does not have; use 'mc' or 'iwae'")
    K = log_px.shape[0]
    kl = prior.kl(mu, logvar)
    dkl_dmu, dkl_dlogvar = prior.kl_grads(mu, logvar)
    recon = log_px.mean(axis=0)
    return Estimate(elbo=recon - beta * kl,
                    dlog_px=np.full_like(log_px, 1.0 / K),
                    dz=None, dmu=-beta * dkl_dmu, dlogvar=-beta * dkl_dlogvar, recon=recon, kl=kl)


@checks_inputs
def mc(log_px, z, mu, logvar, beta=1.0, prior=None):
    """Estimator A: mean_k f_k, everything sampled.  Eq. (4*).

    mu and logvar reach the objective twice: through z (the model's chain
    rule) and directly through log q (``dmu``, ``dlogvar`` here).
    """
    prior = prior or STANDARD_NORMAL
    K = log_px.shape[0]
    dg_dz, dg_dmu, dg_dlogvar = _log_ratio_grads(z, mu, logvar, prior)
    w = beta / K
    return Estimate(elbo=log_weights(log_px, z, mu, logvar, beta, prior).mean(axis=0),
                    dlog_px=np.full_like(log_px, 1.0 / K),
                    dz=w * dg_dz, dmu=w * dg_dmu.sum(axis=0), dlogvar=w * dg_dlogvar.sum(axis=0),
                    recon=log_px.mean(axis=0), kl=_sampled_kl(z, mu, logvar, prior),
                    dlog_pz=np.full_like(log_px, w))


@checks_inputs
def stl(log_px, z, mu, logvar, beta=1.0, prior=None):
    """"Sticking the landing" (Roeder et al. 2017): the mc objective, path derivative only.

    The direct partials of log q with respect to mu, logvar (the score
    term, zero in expectation) are dropped; the gradient flows through z.
    """
    est = mc.kernel(log_px, z, mu, logvar, beta, prior)
    est.dmu = np.zeros_like(mu)
    est.dlogvar = np.zeros_like(logvar)
    return est


def _logsumexp(a, axis=0):
    """log sum exp(a) along axis, shifted by the max so nothing overflows (an all -inf column gives -inf)."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):              # log(0) = -inf is the right answer there
        return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(a - m), axis=axis))


@checks_inputs
def iwae(log_px, z, mu, logvar, beta=1.0, prior=None):
    """Importance-weighted bound log (1/K) sum_k exp(f_k) (Burda et al. 2016).

    Its gradient is the mc gradient of each sample weighted by the
    normalised importance weight w_k = exp(f_k) / sum_j exp(f_j).
    derivations/08-iwae.md
    """
    prior = prior or STANDARD_NORMAL
    K = log_px.shape[0]
    f = log_weights(log_px, z, mu, logvar, beta, prior)
    elbo = _logsumexp(f, axis=0) - math.log(K)
    w = np.exp(f - _logsumexp(f, axis=0))            # (K, B), columns sum to 1
    dg_dz, dg_dmu, dg_dlogvar = _log_ratio_grads(z, mu, logvar, prior)
    bw = beta * w[..., None]
    return Estimate(elbo=elbo, dlog_px=w, dz=bw * dg_dz,
                    dmu=(bw * dg_dmu).sum(axis=0), dlogvar=(bw * dg_dlogvar).sum(axis=0),
                    recon=log_px.mean(axis=0), kl=_sampled_kl(z, mu, logvar, prior), dlog_pz=beta * w)


@checks_inputs
def score(log_px, z, mu, logvar, beta=1.0, prior=None):
    """Score-function (REINFORCE) gradient for the encoder -- for teaching only.

    The encoder's gradient is mean_k f_k * grad log q(z_k|x) with z_k held
    fixed: no gradient passes through z (``reparameterized=False``).  It
    is unbiased but has a far larger variance than the reparameterized
    gradient (derivations/06-reparameterization.md measures it).  The
    decoder still gets mean_k grad log p(x|z_k).  ``elbo`` is the mc value.
    """
    prior = prior or STANDARD_NORMAL
    K = log_px.shape[0]
    f = log_weights(log_px, z, mu, logvar, beta, prior)
    dq_dmu, dq_dlogvar = gaussian_log_prob_grads(z, mu, logvar)   # grad of log q(z_k|x)
    fw = f[..., None] / K
    return Estimate(elbo=f.mean(axis=0), dlog_px=np.full_like(log_px, 1.0 / K), dz=None,
                    dmu=(fw * dq_dmu).sum(axis=0), dlogvar=(fw * dq_dlogvar).sum(axis=0),
                    recon=log_px.mean(axis=0), kl=_sampled_kl(z, mu, logvar, prior), reparameterized=False,
                    dlog_pz=np.full_like(log_px, beta / K))


ESTIMATORS = {"analytic": analytic, "mc": mc, "iwae": iwae, "stl": stl, "score": score}


# ---- a posterior that hands in log q itself: the flow ELBO (derivations/13-planar-flows.md) ----
#
# A flowed posterior's log q_K(z_K|x) = log q_0(z_0|x) - sum_k log|det df_k/dz_{k-1}| is not a
# function of (z, mu, logvar), so these estimators take it as an input, log_q (K, B), and return
# d elbo / d log_q for the posterior's own backward pass (numpyvae/posterior.py's PlanarFlow).

def checks_flow_inputs(kernel):
    """Decorator: refuse inputs that are not finite arrays of shapes (K, B), (K, B, Z), (K, B)."""
    @functools.wraps(kernel)
    def public(log_px, z, log_q, beta=1.0, prior=None):
        log_px, z, log_q = (as_float_array(n, a) for n, a in (("log_px", log_px), ("z", z), ("log_q", log_q)))
        if log_px.ndim != 2 or z.ndim != 3 or z.shape[:2] != log_px.shape or log_q.shape != log_px.shape:
            raise InputError(f"log_px, z, log_q: expected shapes (K, B), (K, B, Z), (K, B), got "
                             f"{log_px.shape}, {z.shape}, {log_q.shape}")
        if log_px.shape[0] == 0 or log_px.shape[1] == 0:
            raise InputError(f"log_px: expected at least one sample and one example, got shape {log_px.shape}")
        beta = check_float("beta", beta, lo=0.0, hi=1e6)
        with np.errstate(over="ignore", invalid="ignore"):
            est = kernel(log_px, z, log_q, beta, prior)
        if not np.all(np.isfinite(est.elbo)):
            raise InputError(f"log_px, z, log_q: values so extreme that the {kernel.__name__} objective "
                             f"overflowed; expected moderate values")
        return est

    public.kernel = kernel
    return public


@checks_flow_inputs
def flow_mc(log_px, z, log_q, beta=1.0, prior=None):
    """The flow ELBO, mean_k [log p(x|z_k) + beta (log p(z_k) - log q(z_k|x))], log q handed in.  (13.1)

    With z_k = z_K the flow's output and log q = log q_0(z_0) - sum log-dets, it is
    E_q0[log p(x, z_K) - log q_0(z_0) + sum_k log|det df_k/dz_{k-1}|] at beta = 1.
    """
    prior = prior or STANDARD_NORMAL
    K = log_px.shape[0]
    w = beta / K
    log_pz = prior.log_prob(z)
    return Estimate(elbo=(log_px + beta * (log_pz - log_q)).mean(axis=0),
                    dlog_px=np.full_like(log_px, 1.0 / K), dz=w * prior.log_prob_grad(z), dmu=None, dlogvar=None,
                    recon=log_px.mean(axis=0), kl=(log_q - log_pz).mean(axis=0),
                    dlog_q=np.full_like(log_q, -w))


@checks_flow_inputs
def flow_iwae(log_px, z, log_q, beta=1.0, prior=None):
    """log (1/K) sum_k exp(f_k), f_k = log p(x|z_k) + beta (log p(z_k) - log q(z_k|x)), log q handed in.

    Its gradient weights each sample's by w_k = exp(f_k) / sum_j exp(f_j) (derivations/08-iwae.md).
    """
    prior = prior or STANDARD_NORMAL
    K = log_px.shape[0]
    log_pz = prior.log_prob(z)
    f = log_px + beta * (log_pz - log_q)
    lse = _logsumexp(f, axis=0)
    w = np.exp(f - lse)
    return Estimate(elbo=lse - math.log(K), dlog_px=w,
                    dz=beta * w[..., None] * prior.log_prob_grad(z), dmu=None, dlogvar=None,
                    recon=log_px.mean(axis=0), kl=(log_q - log_pz).mean(axis=0), dlog_q=-beta * w)


# the estimators a flowed posterior takes, under the names of their Gaussian-posterior counterparts
FLOW_ESTIMATORS = {"mc": flow_mc, "iwae": flow_iwae}
