import numpy as np
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from numpyvae import distributions as dist
from numpyvae.gradcheck import check_function

TOL = 1e-7
shape = st.tuples(st.integers(1, 4), st.integers(1, 5))


def vals(lo=-5, hi=5):
    return st.floats(lo, hi, allow_nan=False)


@given(data=st.data(), s=shape)
def test_bernoulli_gradient_is_x_minus_sigmoid(data, s):
    x = data.draw(arrays(np.float64, s, elements=st.floats(0, 1)))
    logits = data.draw(arrays(np.float64, s, elements=vals()))
    c = check_function(lambda: dist.bernoulli_log_prob(x, logits).sum(), dist.bernoulli_log_prob_grad(x, logits), logits, "logits")
    assert c.error < TOL, str(c)


def test_bernoulli_matches_the_textbook_formula_where_that_is_safe():
    rng = np.random.default_rng(0)
    x, logits = rng.uniform(size=(3, 7)), rng.normal(size=(3, 7))
    p = 1 / (1 + np.exp(-logits))
    expected = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=-1)
    np.testing.assert_allclose(dist.bernoulli_log_prob(x, logits), expected, rtol=1e-12)


def test_bernoulli_extreme_logits_are_finite():
    logits = np.array([[-1e4, 1e4, -1e4, 1e4]])
    x = np.array([[0.0, 1.0, 1.0, 0.0]])
    lp = dist.bernoulli_log_prob(x, logits)
    g = dist.bernoulli_log_prob_grad(x, logits)
    assert np.isfinite(lp).all() and np.isfinite(g).all(), f"ours log p {lp}, grad {g} vs expected finite"
    np.testing.assert_allclose(lp, [-2e4], rtol=1e-12)   # two confident mistakes of 1e4 nats each
    np.testing.assert_array_equal(g, [[0.0, 0.0, 1.0, -1.0]])


@given(data=st.data(), s=shape)
def test_gaussian_gradients(data, s):
    x = data.draw(arrays(np.float64, s, elements=vals()))
    mean = data.draw(arrays(np.float64, s, elements=vals()))
    logvar = data.draw(arrays(np.float64, s, elements=vals(-3, 3)))
    dmean, dlogvar = dist.gaussian_log_prob_grads(x, mean, logvar)
    f = lambda: dist.gaussian_log_prob(x, mean, logvar).sum()
    for c in (check_function(f, dmean, mean, "mean"), check_function(f, dlogvar, logvar, "logvar")):
        assert c.error < TOL, str(c)


def test_gaussian_matches_scipy():
    from scipy.stats import norm
    rng = np.random.default_rng(1)
    x, mean, logvar = rng.normal(size=(3, 4, 6))
    expected = norm.logpdf(x, mean, np.exp(0.5 * logvar)).sum(-1)
    np.testing.assert_allclose(dist.gaussian_log_prob(x, mean, logvar), expected, rtol=1e-12)
    np.testing.assert_allclose(dist.std_normal_log_prob(x), norm.logpdf(x).sum(-1), rtol=1e-12)


@given(data=st.data(), s=shape, k=st.integers(1, 3))
def test_reparameterization_backward(data, s, k):
    mu = data.draw(arrays(np.float64, s, elements=vals()))
    logvar = data.draw(arrays(np.float64, s, elements=vals(-3, 3)))
    eps = np.random.default_rng(0).standard_normal((k, *s))
    g = np.random.default_rng(1).standard_normal((k, *s))          # upstream dz, eps held fixed
    _, cache = dist.reparameterize(mu, logvar, eps)
    dmu, dlogvar = dist.reparameterize_backward(g, cache)
    f = lambda: float(np.sum(dist.reparameterize(mu, logvar, eps)[0] * g))
    for c in (check_function(f, dmu, mu, "mu"), check_function(f, dlogvar, logvar, "logvar")):
        assert c.error < TOL, str(c)


@given(data=st.data(), s=shape)
def test_kl_gradients_and_value(data, s):
    mu = data.draw(arrays(np.float64, s, elements=vals()))
    logvar = data.draw(arrays(np.float64, s, elements=vals(-3, 3)))
    dmu, dlogvar = dist.kl_std_normal_grads(mu, logvar)
    f = lambda: dist.kl_std_normal(mu, logvar).sum()
    for c in (check_function(f, dmu, mu, "mu"), check_function(f, dlogvar, logvar, "logvar")):
        assert c.error < TOL, str(c)
    kl = dist.kl_std_normal(mu, logvar)
    bad = np.argwhere(kl < -1e-12)
    assert not bad.size, f"at index {tuple(bad[0])}: ours KL {kl[tuple(bad[0])]} vs expected >= 0"


def test_kl_is_zero_at_the_prior_and_finite_at_extremes():
    assert dist.kl_std_normal(np.zeros((1, 3)), np.zeros((1, 3)))[0] == 0
    kl = dist.kl_std_normal(np.full((1, 2), 1e4), np.array([[-30.0, 30.0]]))
    assert np.isfinite(kl).all(), f"ours {kl} vs expected finite"
