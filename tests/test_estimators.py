"""Each estimator's value and partial derivatives, at beta != 1, against formulas written here.

The estimators (numpyvae/estimators.py) take log p(x|z_k) (K, B), z (K, B, Z),
mu, logvar (B, Z) and beta.  Here their values are recomputed from scipy's
normal log-density, and their partial derivatives by centred differences of
those independent values, so a beta dropped from one gradient (or from one
value) fails here by name.
"""
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import norm

from numpyvae.estimators import ESTIMATORS
from numpyvae.gradcheck import compare, numerical_gradient

BETAS = [0.0, 0.3, 2.5]
TOL = 1e-7


def inputs(seed=0, K=4, B=3, Z=2):
    rng = np.random.default_rng(seed)
    mu, logvar = rng.normal(size=(B, Z)), 0.5 * rng.normal(size=(B, Z))
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal((K, B, Z))
    log_px = rng.normal(-5.0, 2.0, size=(K, B))
    return log_px, z, mu, logvar


def log_weights_scipy(log_px, z, mu, logvar, beta):
    """f_k = log p(x|z_k) + beta [log N(z_k; 0, I) - log N(z_k; mu, sigma^2)], from scipy."""
    log_pz = norm.logpdf(z).sum(-1)
    log_qz = norm.logpdf(z, mu, np.exp(0.5 * logvar)).sum(-1)
    return log_px + beta * (log_pz - log_qz)


def expected_elbo(name, log_px, z, mu, logvar, beta):
    """The per-example objective each estimator reports, written independently."""
    if name == "analytic":          # mean_k log p(x|z_k) - beta KL, KL = 1/2 sum (mu^2 + s^2 - 1 - log s^2)
        kl = 0.5 * np.sum(mu ** 2 + np.exp(logvar) - 1 - logvar, axis=-1)
        return log_px.mean(0) - beta * kl
    f = log_weights_scipy(log_px, z, mu, logvar, beta)
    if name == "iwae":              # log (1/K) sum_k exp(f_k)
        return logsumexp(f, axis=0) - np.log(len(f))
    return f.mean(0)                # mc, stl, score: the Monte Carlo ELBO


def assert_close(name, ours, expected, rtol=1e-10):
    ours, expected = np.asarray(ours, dtype=float), np.asarray(expected, dtype=float)
    err = np.abs(ours - expected)
    i = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
    assert np.allclose(ours, expected, rtol=rtol, atol=1e-10), \
        f"{name}: at index {i}: ours {ours[i]!r} vs expected {expected[i]!r}"


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_value_and_terms_match_independent_formulas(name, beta):
    log_px, z, mu, logvar = inputs()
    est = ESTIMATORS[name](log_px, z, mu, logvar, beta)
    assert_close(f"{name} elbo at beta={beta}", est.elbo, expected_elbo(name, log_px, z, mu, logvar, beta))
    assert_close(f"{name} recon", est.recon, log_px.mean(0))
    # kl: closed form for "analytic", the sampled mean_k [log q - log p] otherwise; never weighted by beta
    kl = (0.5 * np.sum(mu ** 2 + np.exp(logvar) - 1 - logvar, axis=-1) if name == "analytic"
          else (log_px - log_weights_scipy(log_px, z, mu, logvar, 1.0)).mean(0))
    assert_close(f"{name} kl at beta={beta}", est.kl, kl)


def partials_of(name, log_px, z, mu, logvar, beta):
    """Centred differences of the independent value: d elbo.sum() / d (log_px, z, mu, logvar)."""
    args = [a.copy() for a in (log_px, z, mu, logvar)]
    f = lambda: float(expected_elbo(name, *args, beta).sum())
    return [numerical_gradient(f, a) for a in args]


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("name", ["analytic", "mc", "iwae"])
def test_partials_are_the_derivatives_of_the_independent_value(name, beta):
    """analytic, mc, iwae: every partial is the derivative of the objective, inputs independent."""
    log_px, z, mu, logvar = inputs(1)
    est = ESTIMATORS[name](log_px, z, mu, logvar, beta)
    d_log_px, d_z, d_mu, d_logvar = partials_of(name, log_px, z, mu, logvar, beta)
    ours_dz = np.zeros_like(z) if est.dz is None else est.dz
    for part, ours, expected in (("dlog_px", est.dlog_px, d_log_px), ("dz", ours_dz, d_z),
                                 ("dmu", est.dmu, d_mu), ("dlogvar", est.dlogvar, d_logvar)):
        c = compare(f"{name} {part} at beta={beta}", ours, expected)
        assert c.error < TOL, str(c)


@pytest.mark.parametrize("beta", BETAS)
def test_stl_is_the_path_derivative_of_the_mc_objective(beta):
    """STL: log q's parameters held fixed, so dmu = dlogvar = 0; dz and dlog_px those of mc."""
    log_px, z, mu, logvar = inputs(2)
    est = ESTIMATORS["stl"](log_px, z, mu, logvar, beta)
    d_log_px, d_z, _, _ = partials_of("mc", log_px, z, mu, logvar, beta)
    for part, ours, expected in (("dlog_px", est.dlog_px, d_log_px), ("dz", est.dz, d_z),
                                 ("dmu", est.dmu, np.zeros_like(mu)), ("dlogvar", est.dlogvar, np.zeros_like(logvar))):
        c = compare(f"stl {part} at beta={beta}", ours, expected)
        assert c.error < TOL, str(c)


@pytest.mark.parametrize("beta", BETAS)
def test_score_function_partials(beta):
    """score: dmu, dlogvar = mean_k f_k grad log q(z_k) with z_k fixed; no path through z."""
    log_px, z, mu, logvar = inputs(3)
    est = ESTIMATORS["score"](log_px, z, mu, logvar, beta)
    f_fixed = log_weights_scipy(log_px, z, mu, logvar, beta)          # stop-gradient weights
    m, lv = mu.copy(), logvar.copy()
    surrogate = lambda: float(np.sum(f_fixed * norm.logpdf(z, m, np.exp(0.5 * lv)).sum(-1)) / len(z))
    d_log_px, _, _, _ = partials_of("mc", log_px, z, mu, logvar, beta)
    assert est.dz is None and not est.reparameterized, f"ours dz {est.dz}, reparameterized {est.reparameterized}"
    for part, ours, expected in (("dlog_px", est.dlog_px, d_log_px), ("dmu", est.dmu, numerical_gradient(surrogate, m)),
                                 ("dlogvar", est.dlogvar, numerical_gradient(surrogate, lv))):
        c = compare(f"score {part} at beta={beta}", ours, expected)
        assert c.error < TOL, str(c)


def test_analytic_partials_are_minus_beta_times_the_kl_gradient():
    log_px, z, mu, logvar = inputs(4)
    est = ESTIMATORS["analytic"](log_px, z, mu, logvar, 0.3)
    assert_close("analytic dmu", est.dmu, -0.3 * mu)
    assert_close("analytic dlogvar", est.dlogvar, -0.3 * 0.5 * (np.exp(logvar) - 1))
    assert_close("analytic dlog_px", est.dlog_px, np.full_like(log_px, 1 / len(log_px)))


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_beta_defaults_to_one(name):
    """Both the checked estimator and its .kernel (which VAE.estimate calls without beta)."""
    from numpyvae.estimators import log_weights
    log_px, z, mu, logvar = inputs(5)
    expected = ESTIMATORS[name](log_px, z, mu, logvar, 1.0)
    for fn in (ESTIMATORS[name], ESTIMATORS[name].kernel):
        ours = fn(log_px, z, mu, logvar)
        for field in ("elbo", "dmu", "dlogvar"):
            a, b = getattr(ours, field), getattr(expected, field)
            assert np.array_equal(a, b), f"{name} {fn.__qualname__} {field}: ours {a} vs expected {b} (beta = 1)"
    lw = log_weights(log_px, z, mu, logvar)
    assert np.array_equal(lw, log_weights(log_px, z, mu, logvar, 1.0)), f"log_weights default: ours {lw}"


@pytest.mark.parametrize("shapes, what", [
    (((4, 3), (4, 2, 2), (2, 2), (2, 2)), "z has 2 examples, log_px 3"),
    (((4, 3), (4, 3, 3), (3, 2), (3, 2)), "mu narrower than z"),
    (((4, 3), (4, 3, 2), (3, 3), (3, 3)), "mu wider than z"),
    (((4, 3), (4, 3, 2), (3, 2), (3, 3)), "logvar wider than mu"),
    (((4, 3), (4, 3, 2), (3, 2), (3, 1)), "logvar narrower than mu"),
    (((4, 3), (4, 3), (3, 2), (3, 2)), "z without its latent axis"),
    (((4, 3), (4, 3, 2, 1), (3, 2, 1), (3, 2, 1)), "z with an extra axis"),
    (((4, 3), (4, 4, 2), (4, 2), (4, 2)), "z has 4 examples, log_px 3"),
    (((4, 3), (4, 3), (3,), (3,)), "z, mu, logvar without their latent axis"),
])
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_inconsistent_shapes_are_refused(name, shapes, what):
    from numpyvae import InputError
    arrays = [np.zeros(s) for s in shapes]
    with pytest.raises(InputError, match=r"log_px, z, mu, logvar: expected shapes \(K, B\), \(K, B, Z\)"):
        ESTIMATORS[name](*arrays)
        pytest.fail(f"{name}: {what}: accepted, expected InputError")


def test_logsumexp_defaults_to_the_first_axis():
    from scipy.special import logsumexp as scipy_lse
    from numpyvae.estimators import _logsumexp
    a = np.random.default_rng(6).normal(size=(4, 3)) * 50
    assert np.allclose(_logsumexp(a), scipy_lse(a, axis=0), rtol=1e-13), f"ours {_logsumexp(a)} vs {scipy_lse(a, axis=0)}"


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_checked_estimators_keep_the_name_and_docstring_of_their_formula(name):
    fn = ESTIMATORS[name]
    assert (fn.__name__, fn.__doc__) == (name, fn.kernel.__doc__), f"ours {fn.__name__!r} vs expected {name!r}"


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_empty_batches_and_beta_out_of_range_are_refused(name):
    from numpyvae import InputError
    fn = ESTIMATORS[name]
    for K, B in ((0, 3), (4, 0)):
        with pytest.raises(InputError, match="expected at least one sample and one example"):
            fn(np.zeros((K, B)), np.zeros((K, B, 2)), np.zeros((B, 2)), np.zeros((B, 2)))
    log_px, z, mu, logvar = inputs(7)
    for beta in (-0.5, 1e6 * (1 + 1e-9)):
        with pytest.raises(InputError, match="beta"):
            fn(log_px, z, mu, logvar, beta)
    assert np.all(np.isfinite(fn(log_px, z, mu, logvar, 1e6).elbo)), "beta = 1e6, the upper limit, is accepted"
