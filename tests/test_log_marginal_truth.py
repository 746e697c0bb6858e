"""evaluate.log_marginal against independent truths (issue 17; replaces the test that compared it
with a copy of its own algorithm).

1. Exact: the linear-Gaussian model written as a VAE whose encoder outputs the exact posterior
   (W with orthogonal columns, so the posterior covariance is diagonal).  Then every importance
   weight p(x|z) p(z) / q(z|x) equals p(x), whatever z is drawn, and log_marginal must return the
   closed-form log p(x) (LinearGaussian.log_marginal) to rounding -- for every k, chunk size and
   number of workers.  A missing - log k, chunks combined by max, a wrong log q or log p(z) term,
   or a wrong z all break it.
2. Statistical, for the fused Bernoulli path and the float32 Box-Muller draws: a 1-D latent
   Bernoulli VAE against log p(x) by quadrature on a fine grid; the mean of repeated estimates
   must lie within 4 standard errors (with k large the bias is far below that).
"""
import math

import numpy as np
import pytest

from numpyvae import VAE
from numpyvae.distributions import std_normal_log_prob
from numpyvae.estimators import _logsumexp
from numpyvae.evaluate import log_marginal
from numpyvae.linear_gaussian import LinearGaussian


def exact_posterior_vae(seed=0, D=5, Z=2, s2=0.4):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((D, Z)))
    W = Q * np.array([1.7, 0.6])[:Z]                        # orthogonal columns: W^T W diagonal
    lg = LinearGaussian(W, rng.standard_normal(D), s2)
    cov = np.linalg.inv(np.eye(Z) + W.T @ W / s2)           # posterior covariance (diagonal here)
    assert np.allclose(cov, np.diag(np.diag(cov)))
    A = W @ cov / s2                                        # posterior mean = (x - b) A
    vae = VAE(D, [], Z, likelihood="gaussian", dtype=np.float64)
    vae.params["decoder.0.W"][...] = np.concatenate([W.T, np.zeros((Z, D))], axis=1)
    vae.params["decoder.0.b"][...] = np.concatenate([lg.b, np.full(D, math.log(s2))])
    vae.params["encoder.0.W"][...] = np.concatenate([A, np.zeros((D, Z))], axis=1)
    vae.params["encoder.0.b"][...] = np.concatenate([-lg.b @ A, np.log(np.diag(cov))])
    return lg, vae, rng


@pytest.mark.parametrize("k, max_rows, workers", [(1, 1024, 1), (7, 5, 1), (300, 64, 1), (300, 64, 2), (1000, 1024, 1)])
def test_log_marginal_is_exact_when_q_is_the_posterior(k, max_rows, workers):
    lg, vae, rng = exact_posterior_vae()
    x = lg.sample(6, rng)[1]
    ours = log_marginal(vae, x, k=k, rng=np.random.default_rng(1), max_rows=max_rows, workers=workers, progress=False)
    expected = lg.log_marginal(x)
    i = int(np.argmax(np.abs(ours - expected)))
    assert np.allclose(ours, expected, rtol=0, atol=1e-9), (
        f"k={k}, max_rows={max_rows}, workers={workers}: example {i}: ours {ours[i]!r} vs expected {expected[i]!r}")


def test_log_marginal_is_below_the_truth_when_q_is_not_the_posterior():
    """A shifted q: each estimate is a lower bound in expectation, and k = 2000 closes the gap."""
    lg, vae, rng = exact_posterior_vae(seed=2)
    vae.params["encoder.0.b"][:2] += 0.5                    # q's mean moved off the posterior's
    x = np.repeat(lg.sample(2, rng)[1], 40, axis=0)
    truth = np.repeat(lg.log_marginal(x[::40]), 40)
    for k, gap_lo, gap_hi in ((1, 0.05, None), (2000, None, None)):
        est = log_marginal(vae, x, k=k, rng=np.random.default_rng(k), max_rows=256, progress=False)
        diff = (est - truth).reshape(2, 40)
        mean, se = diff.mean(axis=1), diff.std(axis=1) / math.sqrt(40)
        assert np.all(mean < 4 * se), f"k={k}: log_marginal - log p(x) = {mean} +- {se}: above the truth"
        if k == 1:
            assert np.all(mean < -gap_lo), f"k=1: the gap {mean} is not visible (expected below -{gap_lo})"
        else:
            assert np.all(np.abs(mean) < 4 * se + 1e-3), f"k=2000: ours {mean} +- {se} vs expected 0"


def quadrature(vae, x, grid):
    cell = grid[1, 0] - grid[0, 0]
    out = vae.decode(grid.astype(vae.dtype))[:, None, :]
    log_joint = vae.log_px(x, out).astype(np.float64) + std_normal_log_prob(grid)[:, None]
    return _logsumexp(log_joint, axis=0) + np.log(cell)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_bernoulli_path_matches_quadrature(dtype):
    vae = VAE(6, [8], 1, activation="tanh", dtype=dtype, seed=3)
    x = (np.random.default_rng(4).uniform(size=(3, 6)) < 0.5).astype(dtype)
    truth = quadrature(vae, x, np.linspace(-12, 12, 24001)[:, None])
    reps = 30
    est = log_marginal(vae, np.repeat(x, reps, axis=0), k=400, rng=np.random.default_rng(5), max_rows=100,
                       progress=False).reshape(3, reps)
    mean, se = est.mean(axis=1), est.std(axis=1) / math.sqrt(reps)
    z = (mean - truth) / se
    assert np.all(np.abs(z) < 4), f"{np.dtype(dtype).name}: ours {mean} +- {se} vs quadrature {truth} (z = {z})"


def test_float32_draws_are_independent_standard_normals():
    """The Box-Muller draws of float32 models: N(0, I) in every coordinate and jointly (no pair correlated)."""
    from numpyvae.evaluate import _LogWeights
    vae = VAE(6, [8], 4, dtype=np.float32, seed=0)
    draws = _LogWeights(vae, max_rows=1024).draw_eps(np.random.default_rng(6), 256, 4)   # (256, 4, 4)
    assert draws.shape == (256, 4, 4) and draws.dtype == np.float32
    flat = draws.reshape(-1, 4).astype(np.float64)                                # 1024 draws of z's 4 coordinates
    n = len(flat)
    mean, cov = flat.mean(axis=0), np.cov(flat, rowvar=False)
    assert np.all(np.abs(mean) < 4 / math.sqrt(n)), f"means {mean}, expected 0 +- {1 / math.sqrt(n):.3f}"
    off = cov - np.eye(4)
    assert np.all(np.abs(off) < 4 * math.sqrt(2 / n)), f"covariance - I =\n{off.round(3)}, expected |.| < {4 * math.sqrt(2 / n):.3f}"
    values = draws.reshape(-1).astype(np.float64)
    half = len(values) // 2                       # Box-Muller's pairs: (r cos t, r sin t) land in the two halves
    for name, a, b in (("the two halves", values[:half], values[half:2 * half]),
                       ("neighbours", values[:-1:2], values[1::2])):
        r = np.corrcoef(a, b)[0, 1]
        assert abs(r) < 4 / math.sqrt(len(a)), f"correlation between {name} of the draws {r:.3f}, expected 0"
    assert np.unique(values).size > 0.99 * values.size, "repeated values among the draws"


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_fused_bernoulli_path_matches_quadrature_for_each_activation(activation):
    """The fused path applies each hidden activation in place (evaluate._activate): both kinds against quadrature."""
    vae = VAE(6, [8, 5], 1, activation=activation, dtype=np.float64, seed=7)
    x = (np.random.default_rng(8).uniform(size=(3, 6)) < 0.5).astype(float)
    truth = quadrature(vae, x, np.linspace(-12, 12, 24001)[:, None])
    reps = 30
    est = log_marginal(vae, np.repeat(x, reps, axis=0), k=400, rng=np.random.default_rng(9), max_rows=100,
                       progress=False).reshape(3, reps)
    mean, se = est.mean(axis=1), est.std(axis=1) / math.sqrt(reps)
    z = (mean - truth) / se
    assert np.all(np.abs(z) < 4), f"{activation}: ours {mean} +- {se} vs quadrature {truth} (z = {z})"


# ---- evaluate.bounds and evaluate.active_units against the exact model (mutation survivors, issue 17)

def test_bounds_against_the_exact_posterior_model():
    """q is the exact posterior: the IWAE bound is log p(x) exactly for any k, the KL is closed form,
    and the reconstruction's mean is the closed-form E_q[log p(x|z)] (within 4 standard errors)."""
    from numpyvae.distributions import kl_std_normal
    from numpyvae.evaluate import bounds
    lg, vae, rng = exact_posterior_vae(seed=3)
    x = np.repeat(lg.sample(5, rng)[1], 400, axis=0)                 # 2000 rows: two batches of 1000
    got = bounds(vae, x, np.random.default_rng(10), k=4)
    mu, logvar = vae.encode(x)
    kl = float(np.mean(kl_std_normal(mu, logvar)))
    neg_log_px = -float(np.mean(lg.log_marginal(x)))
    recon = -float(np.mean(lg.expected_log_px(x, mu, logvar)))
    assert got["kl"] == pytest.approx(kl, rel=1e-12), f"kl: ours {got['kl']} vs expected {kl}"
    assert got["neg_iwae"] == pytest.approx(neg_log_px, rel=1e-10), f"neg_iwae: ours {got['neg_iwae']} vs expected -log p(x) {neg_log_px}"
    assert got["neg_elbo"] == pytest.approx(got["recon"] + got["kl"], rel=1e-12)
    # the sampled reconstruction: its spread over rows gives the tolerance
    from numpyvae.distributions import reparameterize
    z, _ = reparameterize(mu, logvar, np.random.default_rng(11).standard_normal((1,) + mu.shape))
    spread = float(np.std(lg.log_px_given_z(x, z[0])))
    assert abs(got["recon"] - recon) < 4 * spread / math.sqrt(len(x)), f"recon: ours {got['recon']} vs expected {recon}"
    assert "neg_iwae" not in bounds(vae, x[:10], np.random.default_rng(12), k=1), "k = 1: no IWAE figure (it is the ELBO)"


def test_active_units_against_the_closed_form_variance():
    """Exact-posterior encoder: the posterior mean of unit u is w_u^T (x - b) / (s^2 + |w_u|^2) (note 11, beta = 1),
    whose variance over x ~ p(x) is A_u = |w_u|^2 (|w_u|^2 + s^2) / (s^2 + |w_u|^2)^2 = |w_u|^2 / (s^2 + |w_u|^2)."""
    from numpyvae.evaluate import active_units
    rng = np.random.default_rng(13)
    D, s2 = 6, 0.4
    Q, _ = np.linalg.qr(rng.standard_normal((D, 3)))
    W = Q * np.array([1.5, 0.3, 0.02])                     # A_u = 0.849, 0.184, 0.000999: two active at 1e-2
    lg = LinearGaussian(W, rng.standard_normal(D), s2)
    cov = np.linalg.inv(np.eye(3) + W.T @ W / s2)
    A = W @ cov / s2
    vae = VAE(D, [], 3, likelihood="gaussian", dtype=np.float64)
    vae.params["encoder.0.W"][...] = np.concatenate([A, np.zeros((D, 3))], axis=1)
    vae.params["encoder.0.b"][...] = np.concatenate([-lg.b @ A, np.log(np.diag(cov))])
    x = lg.sample(40_000, rng)[1]
    norms2 = np.sum(W ** 2, axis=0)
    expected = norms2 / (s2 + norms2)
    count, var = active_units(vae, x)                      # the default threshold, 1e-2
    assert var.shape == (3,)
    assert np.allclose(var, expected, rtol=0.03, atol=2e-4), f"ours {var} vs expected {expected}"
    assert count == 2, f"active units at the default threshold 1e-2: ours {count} vs expected 2"
    assert active_units(vae, x, threshold=0.5)[0] == 1 and active_units(vae, x, threshold=0.0)[0] == 3
