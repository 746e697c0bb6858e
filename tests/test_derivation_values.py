"""The derivation notes' value checks catch the errors they were written against.

Each test plants one wrong formula (by monkeypatching the function a note
imports), runs that note's doctests, and requires at least one of them to
fail.  A test here fails when a note has been weakened so far that the
planted error slips through; its message names the note and the error.
Without a planted error the same notes run (and must pass) as the doctests
pytest collects from derivations/.

The planted errors (issue 9):
  - log_marginal without its ``- log k``                 -> derivations/02
  - log_marginal combining its chunks with max, not
    log-sum-exp                                          -> derivations/02
  - STL turned back into the plain Monte Carlo gradient  -> derivations/06
  - beta dropped from one estimator's gradient (mc)      -> derivations/11
"""
import contextlib
import doctest
import io
import math
import pathlib

import numpy as np

from numpyvae import VAE, estimators, evaluate
from numpyvae.distributions import reparameterize
from numpyvae.estimators import _logsumexp, log_weights

NOTES = pathlib.Path(__file__).resolve().parent.parent / "derivations"


def run_note(name):
    """Run one note's doctests, stopping at the first failure: (failed, attempted, report text)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = doctest.testfile(str(NOTES / name), module_relative=False, report=False,
                                  optionflags=doctest.FAIL_FAST)
    return result.failed, result.attempted, out.getvalue()


def assert_caught(name, error):
    failed, attempted, report = run_note(name)
    assert failed > 0, (f"{name}: all {attempted} examples passed with the planted error ({error}); "
                        f"ours 0 failures vs expected at least 1")
    # shown with pytest -s: the example that caught it and what it printed
    print(f"\n{name} caught '{error}':\n{report}")


def log_marginal_copy(model, x, k=5000, rng=None, max_rows=32768, combine=np.logaddexp):
    """A plant, not a reference: log_marginal's chunked algorithm with the chunk combination as a parameter.

    Only used to plant "chunks combined by max" for note 02.  The package's log_marginal is checked
    against independent truths (the exact linear-Gaussian log p(x), quadrature) in
    tests/test_log_marginal_truth.py, not against this copy (issue 17).
    """
    x = model.check_x(x)
    n_per = max(1, min(len(x), max_rows // min(k, max_rows)))
    starts = range(0, len(x), n_per)
    out = np.empty(len(x))
    for start, rng in zip(starts, rng.spawn(len(starts))):        # one eps stream per pass, as the package
        xb = x[start:start + n_per]
        mu, logvar = model.encode(xb)
        B = len(xb)
        total = np.full(B, -np.inf)
        c = max(1, max_rows // B)
        for done in range(0, k, c):
            kc = min(c, k - done)
            z, _ = reparameterize(mu, logvar, model.draw_eps(rng, kc, B))
            log_px = model.log_px(xb, model.decode(z.reshape(kc * B, -1)).reshape(kc, B, -1))
            total = combine(total, _logsumexp(log_weights(log_px, z, mu, logvar), axis=0))
        out[start:start + B] = total - math.log(k)
    return out


def test_note_02_catches_log_marginal_without_minus_log_k(monkeypatch):
    real = evaluate.log_marginal

    def without_log_k(model, x, k=5000, rng=None, max_rows=32768):
        return real(model, x, k=k, rng=rng, max_rows=max_rows) + math.log(k)

    monkeypatch.setattr(evaluate, "log_marginal", without_log_k)
    assert_caught("02-importance-sampling.md", "log_marginal without - log k")


def test_note_02_catches_chunks_combined_by_max(monkeypatch):
    def chunks_by_max(model, x, k=5000, rng=None, max_rows=32768):
        return log_marginal_copy(model, x, k, rng, max_rows, combine=np.maximum)

    monkeypatch.setattr(evaluate, "log_marginal", chunks_by_max)
    assert_caught("02-importance-sampling.md", "log_marginal chunks combined with max")


def test_note_06_catches_stl_as_plain_monte_carlo(monkeypatch):
    monkeypatch.setattr(estimators, "stl", estimators.mc)
    assert_caught("06-reparameterization.md", "stl returns the plain mc gradient")


def test_note_11_catches_beta_dropped_from_a_gradient(monkeypatch):
    real = estimators.mc

    def mc_without_beta(log_px, z, mu, logvar, beta=1.0):
        est = real(log_px, z, mu, logvar, beta)          # the value keeps beta ...
        est.dz, est.dmu, est.dlogvar = est.dz / beta, est.dmu / beta, est.dlogvar / beta   # ... the gradient loses it
        return est

    mc_without_beta.kernel = mc_without_beta             # the VAE calls the unchecked kernel
    monkeypatch.setitem(estimators.ESTIMATORS, "mc", mc_without_beta)
    assert_caught("11-beta-warmup.md", "beta dropped from mc's gradient")

