"""Value checks against an independent truth, not only against the code's own derivative.

* The gradient estimators against the exact gradient of the ELBO of the
  linear-Gaussian model (probabilistic PCA, numpyvae/linear_gaussian.py):
  unbiased within a stated number of standard errors, at beta = 1 and beta != 1;
  sticking the landing (STL) with zero variance at the exact posterior, where
  plain Monte Carlo still has variance (Roeder et al. 2017).

(Every estimator's whole-model gradient at beta != 1 and the clipped
log-variance path: tests/test_beta_and_clip.py.)

The estimator gradients are assembled here by the chain rule through
z = mu + sigma * eps, with d log p(x|z)/dz = W^T (x - W z - b) / s2 written
out, so nothing of the VAE's own backward pass is reused.
"""
import numpy as np
import pytest

from numpyvae.estimators import ESTIMATORS
from numpyvae.linear_gaussian import LinearGaussian

N_SIGMA = 5.0      # a mean within 5 standard errors of the truth passes; a wrong mean by more fails


def per_sample_gradients(model, x, m, logvar, eps, estimator, beta):
    """Single-sample gradient estimates of the beta-objective w.r.t. (m, logvar) for the exact model.

    model: LinearGaussian; x (D,); m, logvar (Z,); eps (K, Z), one independent
    sample per row.  Returns (K, Z), (K, Z): one estimate per sample (K = 1 each).
    """
    sigma = np.exp(0.5 * logvar)
    z = m + sigma * eps                                                   # (K, Z)
    log_px = model.log_px_given_z(x, z)                                   # (K,)
    dlogp_dz = (x - z @ model.W.T - model.b) @ model.W / model.s2        # d log p(x|z) / dz, (K, Z)
    # one sample per "example": shapes (1, K), (1, K, Z), (K, Z), (K, Z)
    est = ESTIMATORS[estimator](log_px[None], z[None], np.tile(m, (len(z), 1)), np.tile(logvar, (len(z), 1)), beta)
    dz = est.dlog_px[0][:, None] * dlogp_dz                               # through the decoder
    if not est.reparameterized:
        dz = np.zeros_like(dz)
    if est.dz is not None:
        dz = dz + est.dz[0]                                               # through log p(z) - log q(z)
    g_m = dz + est.dmu                                                    # dz/dm = 1
    g_logvar = dz * 0.5 * sigma * eps + est.dlogvar                       # dz/dlogvar = sigma eps / 2
    return g_m, g_logvar


def exact_gradient(model, x, m, logvar, beta):
    """d/d(m, logvar) of E_q[log p(x|z)] - beta KL(q || N(0, I)) for the exact model."""
    var = np.exp(logvar)
    d_m = (x - model.W @ m - model.b) @ model.W / model.s2 - beta * m
    d_logvar = -0.5 * var * np.sum(model.W ** 2, axis=0) / model.s2 - beta * 0.5 * (var - 1)
    return d_m, d_logvar


def setup(seed=0, D=3, Z=2):
    rng = np.random.default_rng(seed)
    model = LinearGaussian.random(D, Z, rng, s2=0.5)
    x = model.sample(1, rng)[1][0]
    return model, x, rng


@pytest.mark.parametrize("beta", [1.0, 0.3])
@pytest.mark.parametrize("estimator", ["analytic", "mc", "stl", "score"])
def test_gradient_estimators_are_unbiased_for_the_exact_gradient(estimator, beta):
    model, x, rng = setup(1)
    m, logvar = np.array([0.3, -0.5]), np.array([-0.4, 0.2])        # q away from the posterior
    K = 4000 if estimator != "score" else 40000                      # score: far larger variance
    eps = rng.standard_normal((K, 2))
    exact = exact_gradient(model, x, m, logvar, beta)
    for name, samples, truth in zip(("d/dm", "d/dlogvar"), per_sample_gradients(model, x, m, logvar, eps, estimator, beta), exact):
        mean, se = samples.mean(0), samples.std(0) / np.sqrt(K)
        z_score = np.abs(mean - truth) / np.maximum(se, 1e-12)
        j = int(np.argmax(z_score))
        assert z_score[j] < N_SIGMA, (f"{estimator} {name} at beta={beta}, index {j}: ours {mean[j]:.5f} "
                                      f"+- {se[j]:.5f} (standard error) vs expected {truth[j]:.5f}")


def test_stl_has_zero_variance_at_the_exact_posterior_and_mc_does_not():
    """q = p(z|x) (orthogonal columns: the posterior is diagonal): log p(x, z) - log q(z) is constant in z."""
    model = LinearGaussian(np.array([[2.0, 0.0], [0.0, 0.7], [0.0, 0.0]]), np.array([0.1, -0.2, 0.3]), 0.4)
    x = np.array([0.5, -1.0, 0.2])
    mean, cov = model.posterior(x)
    m, logvar = mean, np.log(np.diag(cov))
    eps = np.random.default_rng(0).standard_normal((200, 2))
    stl = per_sample_gradients(model, x, m, logvar, eps, "stl", 1.0)
    mc = per_sample_gradients(model, x, m, logvar, eps, "mc", 1.0)
    for name, g in zip(("d/dm", "d/dlogvar"), stl):
        worst = np.unravel_index(np.argmax(np.abs(g)), g.shape)
        assert np.abs(g).max() < 1e-10, f"stl {name}: sample {worst}: ours {g[worst]:.3e} vs expected 0 (every sample)"
    spread = max(mc[0].std(0).max(), mc[1].std(0).max())
    assert spread > 0.1, f"mc at the posterior: ours per-sample std {spread:.3g} vs expected > 0.1 (the score term's noise)"
    exact = exact_gradient(model, x, m, logvar, 1.0)
    assert max(np.abs(exact[0]).max(), np.abs(exact[1]).max()) < 1e-10, f"exact gradient at the optimum: {exact}"
