"""Random arrays into the public functions: they work, or raise the package's own error."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from numpyvae import VAE, NumpyVAEError
from numpyvae.evaluate import active_units, log_marginal

MODELS = {"bernoulli": VAE(4, [3], 2, likelihood="bernoulli", dtype=np.float64, seed=0),
          "gaussian": VAE(4, [3], 2, likelihood="gaussian", dtype=np.float64, seed=0),
          "gaussian-sigmoid": VAE(4, [3], 2, likelihood="gaussian", gaussian_mean="sigmoid", dtype=np.float64, seed=0)}

shapes = array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
# hypothesis picks elements per dtype: NaN, inf, huge and tiny floats included
random_arrays = st.one_of(*(arrays(dt, shapes) for dt in (np.float64, np.float32, np.int64, np.uint8, np.bool_)))


def _finite(result):
    arrays_ = result if isinstance(result, tuple) else (result,)
    for a in arrays_:
        if isinstance(a, dict):
            assert all(np.all(np.isfinite(v)) for v in a.values()), "NaN/inf gradient returned silently"
        elif isinstance(a, (float, np.ndarray)):
            assert np.all(np.isfinite(a)), f"NaN/inf returned silently: {a}"


def _call(fn, *args, **kw):
    try:
        result = fn(*args, **kw)
    except NumpyVAEError:
        return None
    _finite(result)
    return result


@pytest.mark.parametrize("likelihood", sorted(MODELS))
@given(x=st.one_of(random_arrays, arrays(np.float64, (3, 4), elements=st.floats(-1e6, 1e6))),
       estimator=st.sampled_from(["analytic", "mc", "iwae", "stl", "score", "bogus"]))
def test_loss_and_grads_on_random_arrays(likelihood, x, estimator):
    model = MODELS[likelihood]
    _call(model.loss_and_grads, x, rng=np.random.default_rng(0), estimator=estimator, k=2)


@given(x=random_arrays)
def test_other_entry_points_on_random_arrays(x):
    for model in MODELS.values():
        rng = np.random.default_rng(0)
        _call(model.elbo, x, rng)
        _call(model.elbo, x, rng, "iwae", 2)
        _call(model.encode, x)
        _call(model.reconstruct, x)
        _call(model.reconstruct, x, rng)
        _call(log_marginal, model, x, k=3, rng=rng)
        _call(active_units, model, x)
        if np.ndim(x) == 2 and np.shape(x)[1:] == (2,):
            _call(model.decode, x)


@given(eps=random_arrays)
def test_eps_on_random_arrays(eps):
    _call(MODELS["gaussian"].loss_and_grads, np.zeros((3, 4)), eps=eps)


@given(n=st.one_of(st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=2)))
def test_sample_counts(n):
    _call(MODELS["bernoulli"].sample, n, np.random.default_rng(0))


from numpyvae import distributions as dist          # noqa: E402
from numpyvae import estimators as est              # noqa: E402

KERNELS = {
    "bernoulli_log_prob": lambda a, b, c: dist.bernoulli_log_prob(a, b),
    "bernoulli_log_prob_grad": lambda a, b, c: dist.bernoulli_log_prob_grad(a, b),
    "gaussian_log_prob": dist.gaussian_log_prob,
    "gaussian_log_prob_grads": dist.gaussian_log_prob_grads,
    "kl_std_normal": lambda a, b, c: dist.kl_std_normal(a, b),
    "reparameterize": lambda a, b, c: dist.reparameterize(a, b, c)[0],
    "std_normal_log_prob": lambda a, b, c: dist.std_normal_log_prob(a),
}


@pytest.mark.parametrize("name", sorted(KERNELS))
@given(a=random_arrays, b=random_arrays, c=random_arrays)
def test_distribution_kernels_on_random_arrays(name, a, b, c):
    # huge finite inputs may overflow: that is an InputError, never a NaN or inf handed back
    try:
        result = KERNELS[name](a, b, c)
    except NumpyVAEError:
        return
    for r in (result if isinstance(result, tuple) else (result,)):
        assert np.all(np.isfinite(r)), f"{name}: ours {r} vs expected finite values (NaN/inf returned silently)"


@pytest.mark.parametrize("name", sorted(est.ESTIMATORS))
@given(log_px=random_arrays, z=random_arrays, mu=random_arrays)
def test_estimators_on_random_arrays(name, log_px, z, mu):
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            out = est.ESTIMATORS[name](log_px, z, mu, mu)
        except NumpyVAEError:
            return
    assert out.elbo.shape == np.shape(log_px)[1:]
