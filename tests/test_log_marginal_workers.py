"""log_marginal's speed machinery, checked for truth: its workers, its BLAS thread switch, its normal draws.

- The workers share the examples; every pass over examples draws from its own
  stream, so one worker and three give the same estimates.
- numpyvae.blas_threads switches OpenBLAS to one thread and back.
- float32 models draw eps by the Box-Muller transform; the draws are checked
  against the normal distribution itself (its CDF by math.erf), not against
  another sampler.
"""
import math

import numpy as np
import pytest

from numpyvae import VAE
from numpyvae import blas_threads as blas_threads_module
from numpyvae.blas_threads import blas_threads, one_blas_thread
from numpyvae.errors import InputError
from numpyvae.evaluate import _LogWeights, log_marginal

NO_OPENBLAS = blas_threads() is None
WHY_NO_OPENBLAS = ("NumPy here does not run on an OpenBLAS this package can find "
                   "(numpyvae.blas_threads reads /proc/self/maps, Linux only)")


def first_bad(ours, expected, tol):
    i = int(np.argmax(np.abs(ours - expected)))
    return f"at index {i}: ours {ours[i]!r} vs expected {expected[i]!r} (tolerance {tol})"


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_the_estimates_do_not_depend_on_the_number_of_workers(dtype, tol):
    model = VAE(30, [16], 4, activation="tanh", dtype=dtype, seed=0)
    x = (np.random.default_rng(1).uniform(size=(7, 30)) < 0.4).astype(dtype)
    runs = {w: log_marginal(model, x, k=300, rng=np.random.default_rng(2), max_rows=256, progress=False,
                            workers=w) for w in (1, 2, 3)}
    for w in (2, 3):
        print(f"{w} workers vs 1: max |diff| {np.abs(runs[w] - runs[1]).max():.2e} nats")
        assert np.allclose(runs[w], runs[1], rtol=0, atol=tol), first_bad(runs[w], runs[1], tol)
    again = log_marginal(model, x, k=300, rng=np.random.default_rng(2), max_rows=256, progress=False, workers=2)
    assert np.array_equal(again, runs[2]), "same seed, same workers, different numbers"


def test_workers_must_be_a_positive_integer():
    model = VAE(6, [5], 2, seed=0)
    x = np.full((2, 6), 0.5, dtype=np.float32)
    for bad in (0, -1, 1.5, "2", True, 257):
        with pytest.raises(InputError, match="workers"):
            log_marginal(model, x, k=5, rng=np.random.default_rng(0), workers=bad, progress=False)


def test_a_failing_worker_raises_in_the_caller():
    model = VAE(6, [5], 2, seed=0)
    model.params["encoder.1.b"][0] = np.nan                    # encode(x) gives a NaN mu: refused
    x = np.full((4, 6), 0.5, dtype=np.float32)
    with pytest.raises(InputError, match="encode"):
        log_marginal(model, x, k=2000, rng=np.random.default_rng(0), max_rows=1000, workers=2, progress=False)


@pytest.fixture
def three_blas_threads():
    """OpenBLAS at 3 threads for the test (a count nothing else sets), the original count after."""
    if NO_OPENBLAS:
        pytest.skip(WHY_NO_OPENBLAS)
    original = blas_threads()
    for _, set_threads in blas_threads_module._FUNCTIONS:
        set_threads(3)
    yield 3
    for _, set_threads in blas_threads_module._FUNCTIONS:
        set_threads(original)


def test_one_blas_thread_sets_one_and_restores_even_when_nested(three_blas_threads):
    with one_blas_thread():
        assert blas_threads() == 1, f"inside: ours {blas_threads()} vs expected 1"
        with one_blas_thread():
            assert blas_threads() == 1
        assert blas_threads() == 1, "the inner block restored the count while the outer was still open"
    assert blas_threads() == 3, f"after: ours {blas_threads()} vs expected 3"


def test_log_marginal_gives_blas_its_threads_back_after_an_error(three_blas_threads):
    model = VAE(6, [5], 2, seed=0)
    model.params["encoder.1.b"][0] = np.nan                    # encode(x) gives a NaN mu: refused
    x = np.full((4, 6), 0.5, dtype=np.float32)
    with pytest.raises(InputError, match="encode"):
        log_marginal(model, x, k=2000, rng=np.random.default_rng(0), max_rows=1000, workers=2, progress=False)
    assert blas_threads() == 3, f"BLAS threads ours {blas_threads()} vs expected 3 after the error"


def normal_cdf(t):
    return 0.5 * (1.0 + np.vectorize(math.erf)(t / math.sqrt(2.0)))


def box_muller_draws(n_chunks=100, rows=1000, z_dim=5, seed=3):
    model = VAE(4, [3], z_dim, seed=0)                          # float32: Box-Muller
    log_w = _LogWeights(model, max_rows=rows)
    rng = np.random.default_rng(seed)
    eps = np.concatenate([log_w.draw_eps(rng, rows, 1).copy() for _ in range(n_chunks)])
    assert eps.shape == (n_chunks * rows, 1, z_dim) and eps.dtype == np.float32, f"{eps.shape} {eps.dtype}"
    return eps.reshape(-1, z_dim).astype(np.float64)


def test_box_muller_draws_are_standard_normal():
    """Kolmogorov-Smirnov distance to the normal CDF, moments, and no correlation between coordinates."""
    eps = box_muller_draws()
    flat = np.sort(eps.ravel())
    n = flat.size
    cdf = normal_cdf(flat)
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    limit = 1.95 / math.sqrt(n)                                 # the KS test's 0.1% critical value
    print(f"KS distance ours {ks:.2e} vs the 0.1% critical value {limit:.2e} (n = {n:,})")
    assert ks < limit, f"KS distance ours {ks:.3e} vs expected < {limit:.3e}"
    se = 1 / math.sqrt(n)
    for name, ours, expected, tol in (("mean", flat.mean(), 0.0, 5 * se), ("variance", flat.var(), 1.0, 5 * math.sqrt(2) * se),
                                      ("4th moment", np.mean(flat ** 4), 3.0, 5 * math.sqrt(96) * se)):
        assert abs(ours - expected) < tol, f"{name}: ours {ours:.5f} vs expected {expected} (tolerance {tol:.1e})"
    corr = np.corrcoef(eps, rowvar=False)
    off = np.abs(corr - np.eye(eps.shape[1])).max()
    assert off < 5 / math.sqrt(len(eps)), f"largest correlation between coordinates ours {off:.4f} vs expected ~0"
    # the two halves of each Box-Muller pair (cos and sin) must be independent too
    half = n // 2
    pairs = np.corrcoef(eps.ravel()[:half] ** 2, eps.ravel()[half:2 * half] ** 2)[0, 1]
    assert abs(pairs) < 5 / math.sqrt(half), f"correlation of squares ours {pairs:.4f} vs expected ~0"


def test_box_muller_draws_reach_the_tails_and_stop_where_float32_uniforms_end():
    """P(|eps| > 4) = 6.3e-5: about 63 in a million draws; none beyond sqrt(-2 log 2^-24) = 5.77."""
    eps = box_muller_draws(n_chunks=200).ravel()
    beyond = int(np.sum(np.abs(eps) > 4))
    expected = eps.size * 2 * (1 - normal_cdf(np.array([4.0]))[0])
    print(f"draws beyond 4 sigma: ours {beyond} vs expected {expected:.0f}")
    assert abs(beyond - expected) < 5 * math.sqrt(expected), f"beyond 4 sigma ours {beyond} vs expected {expected:.0f}"
    assert np.abs(eps).max() <= math.sqrt(-2 * math.log(2.0 ** -24)) + 1e-5, f"max |eps| ours {np.abs(eps).max()}"


def test_float64_models_draw_with_the_generator_itself():
    model = VAE(4, [3], 2, dtype=np.float64, seed=0)
    ours = _LogWeights(model, max_rows=10).draw_eps(np.random.default_rng(5), 10, 1)
    expected = np.random.default_rng(5).standard_normal((10, 1, 2))
    assert np.array_equal(ours, expected), "float64 eps are not rng.standard_normal's"
