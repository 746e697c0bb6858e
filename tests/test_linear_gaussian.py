import numpy as np
import pytest
from hypothesis import given, strategies as st

from numpyvae import InputError
from numpyvae.gradcheck import check_function
from numpyvae.linear_gaussian import LinearGaussian

dims = st.integers(1, 4)


@given(D=dims, Z=dims, seed=st.integers(0, 10_000), s2=st.floats(0.05, 3))
def test_log_marginal_matches_scipy(D, Z, seed, s2):
    from scipy.stats import multivariate_normal
    rng = np.random.default_rng(seed)
    model = LinearGaussian.random(D, Z, rng, s2=s2)
    x = model.sample(3, rng)[1]
    expected = multivariate_normal(model.b, model.marginal_cov()).logpdf(x)
    np.testing.assert_allclose(model.log_marginal(x), expected, rtol=1e-10, err_msg="ours vs scipy")


def test_posterior_is_bayes_rule_on_a_grid():
    trapezoid = getattr(np, "trapezoid", None) or np.trapz     # named np.trapz before NumPy 2.0
    rng = np.random.default_rng(0)
    model = LinearGaussian.random(3, 1, rng, s2=0.4)
    x = model.sample(1, rng)[1][0]
    z = np.linspace(-10, 10, 20001)
    joint = np.exp(model.log_joint(x, z[:, None]))
    post = joint / trapezoid(joint, z)              # p(z|x) = p(x, z) / p(x)
    mean, cov = model.posterior(x)
    grid_mean = trapezoid(z * post, z)
    grid_var = trapezoid((z - grid_mean) ** 2 * post, z)
    assert abs(grid_mean - mean[0]) < 1e-8, f"ours {mean[0]} vs expected {grid_mean}"
    assert abs(grid_var - cov[0, 0]) < 1e-8, f"ours {cov[0, 0]} vs expected {grid_var}"


@given(D=dims, Z=dims, seed=st.integers(0, 10_000))
def test_elbo_gap_is_the_kl_to_the_posterior(D, Z, seed):
    rng = np.random.default_rng(seed)
    model = LinearGaussian.random(D, Z, rng)
    x = model.sample(1, rng)[1][0]
    m, logvar = rng.normal(size=(5, Z)), rng.normal(size=(5, Z))
    gap = model.log_marginal(x) - model.elbo(x, m, logvar)
    bad = np.argwhere(gap < -1e-10)
    assert not bad.size, f"at index {tuple(bad[0])}: ours gap {gap[tuple(bad[0])]} vs expected >= 0 (ELBO above log p(x))"
    np.testing.assert_allclose(gap, model.kl_to_posterior(x, m, logvar), atol=1e-9, err_msg="gap vs KL")


def test_elbo_is_tight_when_the_posterior_is_diagonal():
    W = np.array([[2.0, 0.0], [0.0, 0.5], [0.0, 0.0]])     # orthogonal columns: diagonal posterior
    model = LinearGaussian(W, np.zeros(3), 0.3)
    x = np.array([0.4, -1.0, 0.2])
    mean, cov = model.posterior(x)
    assert abs(model.elbo(x, mean, np.log(np.diag(cov))) - model.log_marginal(x)) < 1e-12


@given(D=dims, Z=dims, seed=st.integers(0, 10_000))
def test_elbo_grads_match_centred_differences(D, Z, seed):
    rng = np.random.default_rng(seed)
    model = LinearGaussian.random(D, Z, rng)
    x = model.sample(1, rng)[1][0]
    m, logvar = rng.normal(size=Z), rng.normal(size=Z)
    dm, dlogvar = model.elbo_grads(x, m, logvar)
    f = lambda: float(model.elbo(x, m, logvar))
    for c in (check_function(f, dm, m, "m"), check_function(f, dlogvar, logvar, "logvar")):
        assert c.error < 1e-7, str(c)


def test_bad_arguments():
    with pytest.raises(InputError, match="b: expected shape"):
        LinearGaussian(np.zeros((3, 2)), np.zeros(2), 1.0)
    with pytest.raises(InputError, match="s2"):
        LinearGaussian(np.zeros((3, 2)), np.zeros(3), -1.0)
    with pytest.raises(InputError, match="W"):
        LinearGaussian(np.full((3, 2), np.nan), np.zeros(3), 1.0)


def test_kl_to_posterior_matches_the_textbook_formula_for_one_and_many_q():
    """KL(N(m, S) || N(mu, C)) = 1/2 [tr(C^-1 S) + (mu - m)^T C^-1 (mu - m) - Z + log det C - log det S]."""
    rng = np.random.default_rng(5)
    model = LinearGaussian.random(4, 3, rng, s2=0.7)
    x = model.sample(1, rng)[1][0]
    mean, cov = model.posterior(x)
    m, logvar = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    prec = np.linalg.inv(cov)
    expected = np.array([0.5 * (np.trace(prec @ np.diag(np.exp(lv))) + (mean - mi) @ prec @ (mean - mi) - 3
                                + np.linalg.slogdet(cov)[1] - np.sum(lv)) for mi, lv in zip(m, logvar)])
    ours = model.kl_to_posterior(x, m, logvar)
    np.testing.assert_allclose(ours, expected, rtol=1e-10, err_msg="ours (batch of 4 q) vs expected")
    single = model.kl_to_posterior(x, m[0], logvar[0])          # one q: shapes (Z,) -> scalar
    assert np.shape(single) == () and abs(single - expected[0]) < 1e-10 * abs(expected[0]), \
        f"one q: ours {single} vs expected {expected[0]}"


def test_sample_is_z_then_noise_from_the_generator():
    """x = W z + b + sqrt(s2) * e, with z (n, Z) drawn first and e (n, D) next from the same generator."""
    model = LinearGaussian(np.array([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]]), np.array([0.1, 0.2, 0.3]), 0.25)
    z, x = model.sample(4, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    z_expected = rng.standard_normal((4, 2))
    x_expected = z_expected @ model.W.T + model.b + 0.5 * rng.standard_normal((4, 3))
    np.testing.assert_array_equal(z, z_expected, err_msg="z: ours vs expected")
    np.testing.assert_allclose(x, x_expected, rtol=1e-14, err_msg="x: ours vs expected")


def test_b_longer_than_the_rows_of_w_is_refused_by_its_expected_shape():
    with pytest.raises(InputError, match=r"b: expected shape \(3,\), got \(4,\)"):
        LinearGaussian(np.zeros((3, 2)), np.zeros(4), 1.0)
    with pytest.raises(InputError, match=r"b: expected shape \(3,\), got \(2,\)"):
        LinearGaussian(np.zeros((3, 2)), np.zeros(2), 1.0)
