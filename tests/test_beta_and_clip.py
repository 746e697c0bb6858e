"""The whole model's gradient at beta != 1, and the clipped log-variance path.

* Every estimator's whole-model gradient (gradcheck.check_model: centred
  differences of the beta-weighted objective) at beta = 0, 0.3 and 2.5, for
  both likelihoods: a beta dropped from one estimator's gradient fails here.
* The log-variances are clipped to [-30, 30] (vae.LOGVAR_LIMIT) with zero
  gradient outside: an input driving the raw encoder (and Gaussian decoder)
  logvar beyond the limit gets exactly zero gradient there, and centred
  differences agree.
"""
import numpy as np
import pytest

from numpyvae import VAE
from numpyvae.estimators import ESTIMATORS
from numpyvae.gradcheck import TOL, check_model
from numpyvae.vae import LOGVAR_LIMIT


@pytest.mark.parametrize("beta", [0.0, 0.3, 2.5])
@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_whole_model_gradient_at_beta_not_one(estimator, beta):
    rng = np.random.default_rng(7)
    for likelihood in ("bernoulli", "gaussian"):
        model = VAE(5, [4], 2, likelihood=likelihood, activation="tanh", dtype=np.float64, seed=3)
        x = rng.uniform(size=(3, 5))
        eps = rng.standard_normal((3, 3, 2))
        for c in check_model(model, x, eps, estimator, beta=beta):
            assert c.error < TOL, f"{estimator}, beta={beta}, {likelihood}: {c}"


def clipped_model(likelihood):
    """A float64 VAE whose first latent's raw logvar is -40 and (Gaussian) first pixel's +40, whatever x."""
    model = VAE(4, [3], 2, likelihood=likelihood, activation="tanh", dtype=np.float64, seed=1)
    enc = model.encoder.linears[-1]
    enc.W[:, 2] = 0.0                    # column 2 = logvar of latent 0 (mu then logvar)
    enc.b[2] = -(LOGVAR_LIMIT + 10)      # below the clip: logvar = -30, no gradient
    if likelihood == "gaussian":
        dec = model.decoder.linears[-1]
        dec.W[:, 4] = 0.0                # column D + 0 = logvar of pixel 0
        dec.b[4] = LOGVAR_LIMIT + 10     # above the clip: logvar = +30, no gradient
    return model


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_clipped_logvar_has_zero_gradient_and_passes_the_gradient_check(likelihood, estimator):
    model = clipped_model(likelihood)
    rng = np.random.default_rng(2)
    x, eps = rng.uniform(size=(3, 4)), rng.standard_normal((2, 3, 2))
    mu, logvar = model.encode(x)
    assert np.all(logvar[:, 0] == -LOGVAR_LIMIT), f"ours raw logvar clipped to {logvar[:, 0]} vs expected -30"
    _, grads = model.loss_and_grads(x, eps=eps, estimator=estimator, beta=0.5)
    checks = {"encoder.1.b[2] (logvar of latent 0)": grads["encoder.1.b"][2]}
    if likelihood == "gaussian":
        checks["decoder.1.b[4] (logvar of pixel 0)"] = grads["decoder.1.b"][4]
    for name, g in checks.items():
        assert g == 0.0, f"{estimator}, {likelihood}: {name}: ours gradient {g!r} vs expected 0 (clipped)"
    # h = 1e-4: at logvar = -30 the score estimator's log q has curvature ~exp(30) in mu, and
    # the five-point stencil's truncation error (h^4 times a fifth derivative) needs the smaller step
    for c in check_model(model, x, eps, estimator, beta=0.5, h=1e-4):
        assert c.error < TOL, f"{estimator}, {likelihood}, clipped logvar: {c}"


def test_a_raw_logvar_exactly_at_the_limit_counts_as_clipped():
    """The convention at the boundary: |raw| < LOGVAR_LIMIT passes the gradient, |raw| = LOGVAR_LIMIT does not."""
    from numpyvae.vae import _clip_logvar
    raw = np.array([[-LOGVAR_LIMIT, -29.5, 0.0, 29.5, LOGVAR_LIMIT]])
    logvar, inside = _clip_logvar(raw)
    expected = [[False, True, True, True, False]]
    assert inside.tolist() == expected, f"ours {inside.tolist()} vs expected {expected}"
    assert np.array_equal(logvar, raw), f"ours {logvar} vs expected unchanged {raw}"
