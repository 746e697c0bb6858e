"""Gradient estimators for categorical latents (derivations/15-discrete-latents.md).

Each estimator gets, for one batch,

    log_px : (S, B)        log p(x | z_s), the decoder's likelihood of each sample
    z      : (S, B, N, K)  the samples (one-hot, or relaxed y for "gumbel_softmax")
    logits : (B, N, K)     the encoder's output
    kl     : (B,), dkl (B, N, K)   KL(q || p) in closed form and its gradient

and returns a :class:`Estimate`: the per-example objective, d objective /
d log p(x|z_s) for the decoder, the direct d objective / d logits, and
whether the encoder also gets the gradient through z (``through_z``: the
relaxed and straight-through estimators; the score function does not).
The KL term is exact in all of them, so only E_q[log p(x|z)] is estimated.

The objective is ELBO = E_q[log p(x|z)] - KL(q || p)                  (15.2)

    score_ma      (1/S) sum_s (f_s - b) grad log q(z_s),  b a moving average of past f     (15.4)
    score_loo     (1/S) sum_s (f_s - b_s) grad log q(z_s), b_s = mean_{j != s} f_j           (15.5)
    gumbel_softmax  the gradient of the relaxed objective (1/S) sum_s log p(x|y_s) - KL      (15.7)
    straight_through  hard z forward, the relaxed backward                                   (15.9)
    exact         the sum over every configuration, weights q(z|x): no sampling at all       (15.3)
"""
from dataclasses import dataclass

import numpy as np

from . import categorical as cat
from ..errors import InputError
from ..validate import check_float


@dataclass
class Estimate:
    """objective (B,): the value this estimator's gradient belongs to (the hard ELBO estimate, the exact
    ELBO, or the relaxed objective); recon (B,), kl (B,) its two terms; dlog_px (S, B); dlogits (B, N, K)
    direct; through_z: whether the decoder's dz reaches the logits (posterior.sample_backward)."""

    objective: np.ndarray
    recon: np.ndarray
    kl: np.ndarray
    dlog_px: np.ndarray
    dlogits: np.ndarray
    through_z: bool


class MovingAverageBaseline:
    """b <- decay * b + (1 - decay) * mean f, updated *after* the gradient that uses it.

    Because b is built from earlier batches only, it does not depend on the
    current samples, and E[(f(z) - b) grad log q(z)] = E[f grad log q] (15.4).
    ``value`` starts at ``value`` (e.g. the mean of f on an independent draw).
    """

    def __init__(self, decay=0.9, value=0.0):
        self.decay = check_float("decay", decay, lo=0.0, hi=1.0, hi_open=True)
        self.value = check_float("value", value)

    def update(self, f):
        """b <- decay b + (1 - decay) mean(f); a non-finite f is refused (b would stay NaN for good)."""
        mean = float(np.mean(f))
        if not np.isfinite(mean):
            raise InputError(f"f: the moving-average baseline got a non-finite mean {mean}; the baseline is "
                             f"left at {self.value}")
        self.value = self.decay * self.value + (1 - self.decay) * mean


def _score(weights, z, logits):
    """sum_s weights_s * d log q(z_s) / d logits: weights (S, B), z (S, B, N, K) -> (B, N, K)."""
    return (weights[..., None, None] * cat.log_prob_grad(z, logits)).sum(axis=0)


def _estimate(log_px, kl, dkl, dlogits, through_z, weights=None):
    S = log_px.shape[0]
    weights = np.full_like(log_px, 1.0 / S) if weights is None else weights
    recon = (weights * log_px).sum(axis=0)
    return Estimate(objective=recon - kl, recon=recon, kl=kl, dlog_px=weights, dlogits=dlogits - dkl,
                    through_z=through_z)


def score_ma(log_px, z, logits, kl, dkl, baseline):
    """REINFORCE with a moving-average baseline b (a MovingAverageBaseline, updated after use).  (15.4)"""
    if not isinstance(baseline, MovingAverageBaseline):
        raise InputError(f"baseline: 'score_ma' needs a MovingAverageBaseline, got {type(baseline).__name__}")
    S = log_px.shape[0]
    dlogits = _score((log_px - baseline.value) / S, z, logits)
    baseline.update(log_px)                     # after the gradient: b never sees the samples it scores
    return _estimate(log_px, kl, dkl, dlogits, through_z=False)


def score_loo(log_px, z, logits, kl, dkl, baseline=None):
    """REINFORCE with the leave-one-out baseline b_s = mean_{j != s} f_j over S >= 2 samples.  (15.5)"""
    S = log_px.shape[0]
    b = (log_px.sum(axis=0) - log_px) / (S - 1)
    dlogits = _score((log_px - b) / S, z, logits)
    return _estimate(log_px, kl, dkl, dlogits, through_z=False)


def gumbel_softmax(log_px, z, logits, kl, dkl, baseline=None):
    """The relaxed objective's own gradient: log p(x|y_s) through y_s = softmax((l + g_s)/tau).  (15.7)"""
    return _estimate(log_px, kl, dkl, np.zeros_like(logits), through_z=True)


def straight_through(log_px, z, logits, kl, dkl, baseline=None):
    """Straight-through Gumbel-softmax: the hard ELBO estimate, the relaxed backward.  (15.9)"""
    return _estimate(log_px, kl, dkl, np.zeros_like(logits), through_z=True)


def exact(log_px, z, logits, kl, dkl, baseline=None):
    """Every configuration z_c, weighted by q(z_c|x): the ELBO and its gradient with no sampling.  (15.3)

    log_px (C, B) and z (C, 1, N, K) for the C = K**N configurations.
    """
    q = np.exp(cat.log_prob(z, logits))                  # (C, B), columns sum to 1
    return _estimate(log_px, kl, dkl, _score(q * log_px, z, logits), through_z=False, weights=q)


# name -> (estimator, which sample it needs)
ESTIMATORS = {
    "score_ma": (score_ma, "hard"),
    "score_loo": (score_loo, "hard"),
    "gumbel_softmax": (gumbel_softmax, "relaxed"),
    "straight_through": (straight_through, "straight_through"),
    "exact": (exact, "all"),
}
