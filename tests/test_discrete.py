"""Categorical latents (numpyvae/discrete): every backward pass against centred differences, every estimator
against the exact gradient of a small enumerable model (derivations/15-discrete-latents.md).

The truth is the ELBO summed over all K**N latent configurations, itself
checked against centred differences.  The score-function estimators are
checked to be unbiased twice: exactly, by enumerating every sample tuple
they can draw (weighted by its probability), and by sampling, within
stated standard errors.  The relaxation's bias is measured on a binary
Concrete by 1-D quadrature over the logistic noise, and must shrink as
tau -> 0.
"""
import itertools
import math

import numpy as np
import pytest

from numpyvae.discrete import CategoricalVAE, MovingAverageBaseline
from numpyvae.discrete import categorical as cat
from numpyvae.errors import InputError
from numpyvae.gradcheck import compare, numerical_gradient

TOL = 1e-7


def small(n=2, k=3, d=5, hidden=(4,), seed=1, dtype=np.float64):
    return CategoricalVAE(d, n, k, hidden=list(hidden), dtype=dtype, seed=seed)


def data(b=2, d=5, seed=0):
    return (np.random.default_rng(seed).random((b, d)) > 0.5).astype(np.float64)


def flat(grads):
    return np.concatenate([np.asarray(g, np.float64).ravel() for g in grads.values()])


def grads_of(model, x, **kw):
    loss, grads = model.loss_and_grads(x, **kw)
    return loss, {k: v.copy() for k, v in grads.items()}


def numeric(model, f):
    """Centred differences (five-point) of f() in every parameter of the model."""
    return {name: numerical_gradient(f, p) for name, p in model.params.items()}


def assert_close(name, ours, expected, tol=TOL):
    for key in ours:
        c = compare(f"{name} {key}", ours[key], expected[key])
        assert c.passed if tol == TOL else c.error < tol, str(c)


def forcing_noise(configs, b, n, k):
    """Gumbel noise that makes the Gumbel-max sample equal to the given configurations (S, B, N) exactly."""
    g = np.zeros((len(configs), b, n, k))
    for s, c in enumerate(configs):
        for i in range(b):
            g[s, i, np.arange(n), c[i]] = 40.0
    return g


# ------------------------------------------------------------------ kernels
def test_gumbel_softmax_backward_matches_centred_differences():
    rng = np.random.default_rng(3)
    logits, g, w = rng.normal(size=(2, 3, 4)), cat.gumbel(rng, (5, 2, 3, 4)), rng.normal(size=(5, 2, 3, 4))
    for tau in (0.1, 0.5, 1.0, 3.0):
        y, cache = cat.gumbel_softmax(logits, g, tau)
        ours = cat.gumbel_softmax_backward(w, cache)
        expected = numerical_gradient(lambda: float((w * cat.gumbel_softmax(logits, g, tau)[0]).sum()), logits)
        c = compare(f"d<w, y>/dlogits at tau={tau}", ours, expected)
        print(c)
        assert c.passed, str(c)


def test_log_prob_and_kl_gradients_match_centred_differences():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(2, 3, 4)) * 2
    z = cat.gumbel_max(logits, cat.gumbel(rng, (3, 2, 3, 4)))
    ours = cat.log_prob_grad(z, logits).sum(axis=0)
    expected = numerical_gradient(lambda: float(cat.log_prob(z, logits).sum()), logits)
    assert compare("d log q / dlogits", ours, expected).passed
    ours = cat.kl_uniform_grad(logits)
    expected = numerical_gradient(lambda: float(cat.kl_uniform(logits).sum()), logits)
    c = compare("dKL/dlogits", ours, expected)
    assert c.passed, str(c)


def test_kl_and_log_prob_against_their_definitions():
    """KL(q || uniform) = sum_k q_k log(q_k / (1/K)) by explicit probabilities; log q(z) = log of the picked q."""
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(3, 2, 4)) * 3
    q = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = (q * np.log(q * 4)).sum(axis=(1, 2))
    np.testing.assert_allclose(cat.kl_uniform(logits), expected, rtol=1e-12, err_msg="KL ours vs expected")
    z = np.eye(4)[[[1, 3], [0, 0], [2, 1]]]
    expected = np.log(q[np.arange(3)[:, None], np.arange(2)[None], [[1, 3], [0, 0], [2, 1]]]).sum(-1)
    np.testing.assert_allclose(cat.log_prob(z, logits), expected, rtol=1e-12, err_msg="log q ours vs expected")


def test_stable_at_extreme_but_finite_logits():
    logits = np.array([[[1e4, -1e4, 0.0]]], dtype=np.float32)
    g = np.zeros((1, 1, 1, 3), np.float32)
    y, cache = cat.gumbel_softmax(logits, g, 1e-3)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(cat.gumbel_softmax_backward(np.ones_like(y), cache)))
    assert np.all(np.isfinite(cat.kl_uniform(logits))) and np.all(np.isfinite(cat.kl_uniform_grad(logits)))
    assert np.isfinite(cat.log_prob(cat.one_hot_argmax(logits), logits)).all()


def test_gumbel_max_draws_follow_the_softmax():
    """The Gumbel-max trick: frequencies of argmax(l + g) vs softmax(l), a chi-square test (4 classes, 200k draws)."""
    rng = np.random.default_rng(6)
    logits = np.array([[[1.0, -0.5, 0.3, 2.0]]])
    n = 200_000
    z = cat.gumbel_max(logits, cat.gumbel(rng, (n, 1, 1, 4)))
    counts = z.sum(axis=(0, 1, 2))
    expected = n * cat.softmax(logits)[0, 0]
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    print("counts", counts, "expected", expected, "chi2", chi2)
    assert chi2 < 16.3, (f"chi-square {chi2:.1f} with 3 degrees of freedom (p < 0.001): "
                         f"ours {counts} vs expected {expected}")


# ------------------------------------------------------------ the exact truth
def test_exact_elbo_gradient_matches_centred_differences():
    for n, k in ((2, 3), (3, 3)):
        model, x = small(n=n, k=k), data()
        loss, ours = grads_of(model, x, estimator="exact")
        assert loss == pytest.approx(-model.exact_elbo(x).mean(), rel=1e-12)
        expected = numeric(model, lambda: -float(model.exact_elbo(x).mean()))
        assert_close(f"exact ELBO gradient N={n} K={k}", ours, expected)


def test_exact_elbo_against_a_loop_over_configurations_and_below_log_px():
    """The ELBO written as the plain sum sum_z q(z) [log p(x|z) + log p(z) - log q(z)], and ELBO <= log p(x)."""
    model, x = small(), data(b=3)
    logits = model.logits(x)
    q = cat.softmax(logits)
    for b in range(len(x)):
        total, marginal = 0.0, 0.0
        for c in itertools.product(range(3), repeat=2):
            z = np.eye(3)[list(c)]
            qz = q[b, 0, c[0]] * q[b, 1, c[1]]
            out = model.decoder.call(z.reshape(1, -1))[0][0]
            lpx = float(np.sum(x[b] * out - np.logaddexp(0, out)))
            total += qz * (lpx + math.log(1 / 9) - math.log(qz))
            marginal += math.exp(lpx) / 9
        assert model.exact_elbo(x)[b] == pytest.approx(total, rel=1e-12), f"example {b}: ELBO ours vs expected"
        assert model.exact_log_px(x)[b] == pytest.approx(math.log(marginal), rel=1e-12)
        assert model.exact_elbo(x)[b] <= math.log(marginal)


def test_importance_sampled_log_px_approaches_the_exact_value():
    model, x = small(), data(b=3)
    est = model.log_marginal(x, np.random.default_rng(7), samples=20_000)
    exact = model.exact_log_px(x)
    print("IS", est, "exact", exact)
    np.testing.assert_allclose(est, exact, atol=0.02, err_msg="importance-sampled log p(x) ours vs exact")


# ----------------------------------------------------- the samplers' backward passes
def test_gumbel_softmax_gradient_is_the_relaxed_objectives_gradient():
    model, x = small(), data()
    g = model.posterior.draw_noise(np.random.default_rng(8), 3, len(x), np.float64)
    for tau in (0.3, 1.0, 2.5):
        loss, ours = grads_of(model, x, g=g, estimator="gumbel_softmax", tau=tau)
        assert loss == pytest.approx(-model.relaxed_objective(x, tau, g=g).mean(), rel=1e-12)
        expected = numeric(model, lambda: -float(model.relaxed_objective(x, tau, g=g).mean()))
        assert_close(f"relaxed objective gradient tau={tau}", ours, expected)


def test_score_function_backward_is_the_surrogates_gradient():
    """Fixed samples z_s and fixed coefficients c_s = (f_s - b_s)/S: the encoder gets grad sum_s c_s log q(z_s) - KL,
    the decoder grad mean_s log p(x|z_s); both by centred differences with z held fixed."""
    model, x = small(), data()
    g = model.posterior.draw_noise(np.random.default_rng(9), 4, len(x), np.float64)
    logits = model.logits(x)
    z = cat.gumbel_max(logits, g)
    f = _log_px(model, x, z)
    c = (f - (f.sum(0) - f) / 3) / 4                                            # leave-one-out, S = 4
    _, ours = grads_of(model, x, g=g, estimator="score_loo")

    def surrogate():
        lg = model.logits(x)
        return -float(((c * cat.log_prob(z, lg)).sum(0) + _log_px(model, x, z).mean(0) - cat.kl_uniform(lg)).mean())
    assert_close("score_loo surrogate", ours, numeric(model, surrogate))
    base = MovingAverageBaseline(value=-3.0)
    _, ours = grads_of(model, x, g=g, estimator="score_ma", baseline=base)
    c = (f + 3.0) / 4

    def surrogate_ma():
        lg = model.logits(x)
        return -float(((c * cat.log_prob(z, lg)).sum(0) + _log_px(model, x, z).mean(0) - cat.kl_uniform(lg)).mean())
    assert_close("score_ma surrogate", ours, numeric(model, surrogate_ma))
    assert base.value == pytest.approx(0.9 * -3.0 + 0.1 * f.mean(), rel=1e-12), "baseline updated after use"


def test_straight_through_backward_is_the_relaxed_backward_at_the_hard_sample():
    """ST: the decoder's gradient d log p(x|z)/dz at the hard z, pushed back through y = softmax((l+g)/tau).
    Its encoder gradient is the gradient of sum_s <dz_s, y_s(l)> with dz_s fixed (centred differences)."""
    model, x = small(), data()
    g = model.posterior.draw_noise(np.random.default_rng(10), 3, len(x), np.float64)
    tau = 0.6
    z = cat.gumbel_max(model.logits(x), g)
    zz = z.copy()
    dz = numerical_gradient(lambda: float(_log_px(model, x, zz).sum()), zz)      # d log p(x|z)/dz, centred
    loss, ours = grads_of(model, x, g=g, estimator="straight_through", tau=tau)
    assert loss == pytest.approx(-model.elbo_hard(x, g=g).mean(), rel=1e-12)

    def surrogate():
        lg = model.logits(x)
        y = cat.gumbel_softmax(lg, g, tau)[0]
        return -float(((dz * y).sum(axis=(2, 3)).mean(0) + _log_px(model, x, z).mean(0) - cat.kl_uniform(lg)).mean())
    assert_close("straight-through surrogate", ours, numeric(model, surrogate))


def _log_px(model, x, z):
    out = model.decoder.call(z.reshape(-1, z.shape[-2] * z.shape[-1]))[0].reshape(*z.shape[:2], -1)
    return (x * out - np.logaddexp(0, out)).sum(-1)


# ------------------------------------------------------------ unbiasedness
def expectation_by_enumeration(model, x, estimator, S, baseline_value=None):
    """E[estimate] = sum over every tuple of S hard samples of its probability times the estimator's output."""
    n, k = model.n_latents, model.n_classes
    q = cat.softmax(model.logits(x))[0]                                        # (N, K), one example
    configs = list(itertools.product(range(k), repeat=n))
    mean, second = None, None
    for tup in itertools.product(configs, repeat=S):
        p = np.prod([q[np.arange(n), list(c)].prod() for c in tup])
        g = forcing_noise([[c] for c in tup], 1, n, k)
        kw = {"baseline": MovingAverageBaseline(value=baseline_value)} if estimator == "score_ma" else {}
        v = flat(grads_of(model, x, g=g, estimator=estimator, **kw)[1])
        mean = p * v if mean is None else mean + p * v
        second = p * v * v if second is None else second + p * v * v
    return mean, second - mean * mean


def assert_within_standard_errors(draws, exact, limit=4.5):
    """|mean - exact| / SE < limit for every parameter (a parameter that never varies, a dead unit's, must match)."""
    mean, se = draws.mean(axis=0), draws.std(axis=0, ddof=1) / math.sqrt(len(draws))
    fixed = se == 0
    assert np.allclose(mean[fixed], exact[fixed], rtol=0, atol=1e-12), "a parameter without spread differs"
    z = np.where(fixed, 0.0, (mean - exact) / np.where(fixed, 1.0, se))
    i = int(np.argmax(np.abs(z)))
    print(f"largest |z| {abs(z[i]):.2f} of {len(z)} parameters at {i}: ours {mean[i]:.6g} +- {se[i]:.2g} "
          f"vs exact {exact[i]:.6g}; {int(fixed.sum())} without spread")
    assert abs(z[i]) < limit, f"parameter {i}: ours {mean[i]} +- {se[i]} vs exact {exact[i]} (|z| = {abs(z[i]):.2f})"


@pytest.mark.parametrize("estimator,S,b", [("score_ma", 1, -2.5), ("score_ma", 2, 0.0), ("score_loo", 2, None),
                                           ("score_loo", 3, None)])
def test_score_function_estimators_are_exactly_unbiased(estimator, S, b):
    """Every tuple of S samples enumerated: the estimator's expectation equals the exact gradient to rounding."""
    model, x = small(), data(b=1)
    exact = flat(grads_of(model, x, estimator="exact")[1])
    mean, _ = expectation_by_enumeration(model, x, estimator, S, b)
    c = compare(f"E[{estimator}, S={S}] vs the exact gradient", mean, exact)
    print(c)
    assert c.error < 1e-10, str(c)


def test_a_baseline_lowers_the_variance():
    """Exact variances by enumeration (S = 1): b near E[f] vs b = 0 (no baseline), for the encoder's gradient."""
    model, x = small(), data(b=1)
    n_enc = sum(p.size for name, p in model.params.items() if name.startswith("encoder."))
    f_mean = float(model.exact_elbo(x)[0] + model.prior.kl(model.logits(x))[0])          # E_q log p(x|z)
    _, var0 = expectation_by_enumeration(model, x, "score_ma", 1, 0.0)
    _, var_b = expectation_by_enumeration(model, x, "score_ma", 1, f_mean)
    ratio = var_b[:n_enc].sum() / var0[:n_enc].sum()
    print(f"encoder gradient variance with b = E f over b = 0: {ratio:.4f}")
    assert ratio < 0.1, f"the baseline cut the variance to {ratio:.3f} of b = 0's; expected < 0.1"
    np.testing.assert_allclose(var_b[n_enc:], var0[n_enc:], rtol=1e-9, err_msg="decoder gradient: no baseline there")


def test_score_loo_is_unbiased_within_standard_errors():
    """Real Gumbel noise, 3000 replications of S = 4: |mean - exact| / SE below 4.5 for every parameter."""
    model, x = small(), data()
    exact = flat(grads_of(model, x, estimator="exact")[1])
    rng = np.random.default_rng(11)
    draws = np.array([flat(grads_of(model, x, rng=rng, estimator="score_loo", samples=4)[1]) for _ in range(3000)])
    assert_within_standard_errors(draws, exact)


def test_score_ma_is_unbiased_within_standard_errors_while_its_baseline_moves():
    model, x = small(), data()
    exact = flat(grads_of(model, x, estimator="exact")[1])
    rng, base = np.random.default_rng(12), MovingAverageBaseline(decay=0.9, value=0.0)
    draws = np.array([flat(grads_of(model, x, rng=rng, estimator="score_ma", samples=2, baseline=base)[1])
                      for _ in range(3000)])
    assert_within_standard_errors(draws, exact)


# --------------------------------------------------- the relaxation's bias
def binary_concrete_expectation(model, x, estimator, tau, n=20_000):
    """E_L[estimate] for N = 1, K = 2 by the midpoint rule in u = sigmoid(L), L ~ Logistic(0, 1):
    g = (L, 0) gives the same y as any Gumbel pair with difference L, and the estimator's S = n samples
    are the n quadrature nodes, so its 1/S average is the quadrature."""
    u = (np.arange(n) + 0.5) / n
    g = np.zeros((n, len(x), 1, 2))
    g[:, :, 0, 0] = (np.log(u) - np.log1p(-u))[:, None]
    return flat(grads_of(model, x, g=g, estimator=estimator, tau=tau)[1])


TAUS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def test_relaxation_bias_shrinks_as_tau_goes_to_zero():
    model, x = small(n=1, k=2, d=6, hidden=(5,)), data(b=2, d=6)
    exact = flat(grads_of(model, x, estimator="exact")[1])
    bias, quad_err = [], []
    for tau in TAUS:
        e = binary_concrete_expectation(model, x, "gumbel_softmax", tau)
        bias.append(np.linalg.norm(e - exact) / np.linalg.norm(exact))
        quad_err.append(np.linalg.norm(e - binary_concrete_expectation(model, x, "gumbel_softmax", tau, 40_000))
                        / np.linalg.norm(exact))
    print("tau", TAUS, "\nrelative bias", np.round(bias, 5), "\nquadrature error", np.array(quad_err))
    assert bias[0] < 0.01, f"tau = {TAUS[0]}: relative bias {bias[0]:.4f}, expected < 0.01"
    assert all(a < b for a, b in zip(bias, bias[1:])), f"relative bias not increasing with tau: {bias}"
    assert bias[-1] > 0.1 and max(quad_err) < 1e-3 * bias[-1] + 1e-6, (bias, quad_err)


def test_straight_through_bias_does_not_vanish_as_tau_goes_to_zero():
    """On a decoder bent in z (first layer scaled by 4), the encoder's expected gradient: Gumbel-softmax's bias
    falls in proportion to tau, straight-through's settles at a limit that is not zero (derivation 15.10)."""
    model, x = small(n=1, k=2, d=6, hidden=(5,)), data(b=2, d=6)
    for name, p in model.params.items():
        if name.startswith("decoder.0"):
            p *= 4
    n_enc = sum(p.size for name, p in model.params.items() if name.startswith("encoder."))
    exact = flat(grads_of(model, x, estimator="exact")[1])[:n_enc]
    rel = {(e, tau): np.linalg.norm(binary_concrete_expectation(model, x, e, tau, 40_000)[:n_enc] - exact)
           / np.linalg.norm(exact) for e in ("gumbel_softmax", "straight_through") for tau in (0.005, 0.01)}
    print({k: round(v, 5) for k, v in rel.items()})
    gs, st = ("gumbel_softmax", "straight_through")
    assert rel[gs, 0.005] == pytest.approx(rel[gs, 0.01] / 2, rel=0.05), "Gumbel-softmax's bias ~ tau"
    assert rel[st, 0.005] > 0.01 and rel[st, 0.005] > 10 * rel[gs, 0.005], rel
    assert rel[st, 0.005] == pytest.approx(rel[st, 0.01], rel=0.1), "straight-through's bias settles"


def test_the_relaxed_objective_is_not_a_bound():
    """A decoder whose two one-hot codes both explain x badly, and whose midpoint explains it well:
    at a high temperature the relaxed objective exceeds log p(x); the hard ELBO never does."""
    model = CategoricalVAE(2, 1, 2, hidden=[2], dtype=np.float64, seed=0)
    for p in model.params.values():
        p[...] = 0
    model.params["decoder.1.W"][...] = [[6.0, -6.0], [-6.0, 6.0]]     # hidden 0 on code 0, hidden 1 on code 1
    model.params["decoder.0.W"][...] = np.eye(2)
    x = np.ones((1, 2))
    g = model.posterior.draw_noise(np.random.default_rng(13), 2000, 1, np.float64)
    log_px = model.exact_log_px(x)[0]
    relaxed = model.relaxed_objective(x, 5.0, g=g)[0]
    hard = model.elbo_hard(x, g=g)[0]
    print(f"log p(x) {log_px:.3f}, relaxed objective {relaxed:.3f}, hard ELBO {hard:.3f}, exact ELBO "
          f"{model.exact_elbo(x)[0]:.3f}")
    assert relaxed > log_px + 1, (relaxed, log_px)
    assert model.exact_elbo(x)[0] <= log_px


def test_gumbel_softmax_reports_the_hard_elbo_beside_the_relaxed_objective():
    model, x = small(), data()
    g = model.posterior.draw_noise(np.random.default_rng(14), 3, len(x), np.float64)
    model.loss_and_grads(x, g=g, estimator="gumbel_softmax", tau=0.5)
    np.testing.assert_allclose(model.last["elbo_hard"], model.elbo_hard(x, g=g), rtol=1e-12)
    np.testing.assert_allclose(model.last["objective"], model.relaxed_objective(x, 0.5, g=g), rtol=1e-12)


# ------------------------------------------------------------- the boundary
@pytest.mark.parametrize("kwargs,match", [
    (dict(x=np.full((2, 5), 2.0)), "x"),
    (dict(x=np.full((2, 4), 0.5)), "x"),
    (dict(estimator="nope"), "estimator"),
    (dict(estimator="score_loo", samples=1), "samples"),
    (dict(estimator="score_ma"), "baseline"),
    (dict(estimator="gumbel_softmax", tau=0.0), "tau"),
    (dict(estimator="gumbel_softmax", tau=float("nan")), "tau"),
    (dict(g=np.zeros((2, 2, 3, 3))), "g"),
    (dict(g=np.full((2, 2, 2, 3), np.inf)), "g"),
    (dict(rng=3), "rng"),
])
def test_bad_input_is_refused_by_name(kwargs, match):
    model = small()
    args = dict(x=data(), rng=np.random.default_rng(0), estimator="score_loo", samples=2)
    args.update(kwargs)
    x = args.pop("x")
    with pytest.raises(InputError, match=match):
        model.loss_and_grads(x, **args)


def test_enumeration_and_shapes_are_bounded():
    with pytest.raises(InputError, match="n_classes"):
        CategoricalVAE(5, 2, 1)
    big = CategoricalVAE(5, 20, 10, hidden=[3])
    with pytest.raises(InputError, match="K\\*\\*N"):
        big.exact_elbo(np.zeros((1, 5)))
    with pytest.raises(InputError, match="decay"):
        MovingAverageBaseline(decay=1.0)


# ------------------------------------------------------------- robustness
def test_every_public_method_refuses_bad_input_by_name():
    model, x = small(), data()
    rng = np.random.default_rng(0)
    calls = [
        (lambda: model.elbo_hard(np.full((2, 5), np.nan), rng=rng), "x"),
        (lambda: model.elbo_hard(x, rng=rng, samples=0), "samples"),
        (lambda: model.relaxed_objective(x, tau=-1.0, rng=rng), "tau"),
        (lambda: model.relaxed_objective(x, tau=1.0, g=np.zeros((1, 2, 2, 2))), "g"),
        (lambda: model.log_marginal(x, rng, samples=-3), "samples"),
        (lambda: model.log_marginal(x, "seed"), "rng"),
        (lambda: model.exact_elbo(np.zeros((0, 5))), "x"),
        (lambda: model.exact_log_px([[0.5] * 5, [0.5] * 4]), "x"),
        (lambda: model.sample(0, rng), "n"),
        (lambda: model.sample(10**9, rng), "n"),
        (lambda: model.reconstruct(np.ones((1, 5)) * 1.5), "x"),
        (lambda: model.loss_and_grads(x, rng=rng, samples=10**9), "samples"),
        (lambda: model.loss_and_grads(x, estimator="exact", grads={"a": 1}), "grads"),
        (lambda: CategoricalVAE(5, 2, 3, hidden="wide"), "hidden"),
        (lambda: CategoricalVAE(5, 2, 3, dtype=np.int32), "dtype"),
        (lambda: CategoricalVAE(5, 2, 3, encoder=[{"layer": "linear", "units": 4}],
                                decoder=[{"layer": "linear", "units": 5}]), "encoder"),
    ]
    for fn, name in calls:
        with pytest.raises(InputError, match=name):
            fn()


def test_float32_step_at_extreme_logits_is_finite_and_caller_buffers_add():
    """float32 model, encoder biases of +-1e4 (q one-hot to rounding), tau at its minimum: finite loss and
    gradients for every estimator; the caller's buffers receive what the model's own buffers do."""
    model, x = small(dtype=np.float32), data().astype(np.float32)
    model.params["encoder.1.b"][...] = np.tile([1e4, -1e4, 0.0], 2)
    for est in ("score_ma", "score_loo", "gumbel_softmax", "straight_through", "exact"):
        g = model.posterior.draw_noise(np.random.default_rng(1), 2, len(x), np.float32)
        kw = dict(g=g, estimator=est, tau=1e-3, baseline=MovingAverageBaseline(value=-3.0))
        loss, own = model.loss_and_grads(x, **kw)
        own = {k: v.copy() for k, v in own.items()}
        kw["baseline"] = MovingAverageBaseline(value=-3.0)
        bufs = model.new_grad_buffers()
        loss2, _ = model.loss_and_grads(x, grads=bufs, **kw)
        assert np.isfinite(loss) and loss == loss2, (est, loss, loss2)
        for k in own:
            assert np.all(np.isfinite(own[k])), f"{est}: {k} not finite"
            np.testing.assert_array_equal(bufs[k], own[k], err_msg=f"{est}: caller's buffer {k} vs own")


def test_a_copy_is_independent_and_has_its_own_lock():
    import copy
    model = small()
    twin = copy.deepcopy(model)
    twin.params["decoder.0.W"][...] += 1
    assert twin.lock is not model.lock
    assert not np.allclose(twin.params["decoder.0.W"], model.params["decoder.0.W"])


# ------------------------------------------------------- discrete pixels, bits per dimension
def pixel_model(levels=5, d=4, seed=3):
    return CategoricalVAE(d, 2, 3, hidden=[4], dtype=np.float64, seed=seed, likelihood="categorical", levels=levels)


def test_categorical_pixel_log_prob_against_a_loop_and_its_gradient():
    from numpyvae.discrete import pixels
    rng = np.random.default_rng(16)
    x = rng.integers(0, 5, size=(3, 4)).astype(float)
    logits = rng.normal(size=(2, 3, 4, 5)) * 2
    expected = np.zeros((2, 3))
    for s, b, d in itertools.product(range(2), range(3), range(4)):
        row = logits[s, b, d]
        expected[s, b] += row[int(x[b, d])] - math.log(np.exp(row).sum())
    np.testing.assert_allclose(pixels.log_prob(x, logits), expected, rtol=1e-12, err_msg="log p(x|z) ours vs loop")
    ours = pixels.log_prob_grad(x, logits)
    c = compare("d log p / d logits", ours, numerical_gradient(lambda: float(pixels.log_prob(x, logits).sum()), logits))
    assert c.passed, str(c)


def test_exact_elbo_gradient_with_categorical_pixels_matches_centred_differences():
    model = pixel_model(seed=4)
    x = np.random.default_rng(17).integers(0, 5, size=(3, 4)).astype(float)
    # (x has an all-zero row: with the encoder's zero initial biases, seed 3 puts a ReLU exactly at its kink there)
    _, ours = grads_of(model, x, estimator="exact")
    assert_close("exact ELBO, categorical pixels", ours, numeric(model, lambda: -float(model.exact_elbo(x).mean())))
    g = model.posterior.draw_noise(np.random.default_rng(18), 2, 3, np.float64)
    _, ours = grads_of(model, x, g=g, estimator="gumbel_softmax", tau=0.8)
    assert_close("relaxed objective, categorical pixels", ours,
                 numeric(model, lambda: -float(model.relaxed_objective(x, 0.8, g=g).mean())))


def test_bits_per_dimension_of_a_uniform_decoder_is_log2_levels():
    """All decoder weights zero: p(x|z) = L^-D for every x and z, so -log p(x) / (D log 2) = log2 L exactly."""
    from numpyvae.discrete import pixels
    for levels in (2, 16, 256):
        model = pixel_model(levels=levels, d=6)
        for name, p in model.params.items():
            if name.startswith("decoder."):
                p[...] = 0
        x = np.random.default_rng(19).integers(0, levels, size=(3, 6)).astype(float)
        bpd = pixels.bits_per_dim(model.exact_log_px(x), 6)
        np.testing.assert_allclose(bpd, math.log2(levels), rtol=1e-12, err_msg=f"L = {levels}: bits/dim ours vs log2 L")


def test_bits_per_dimension_is_minus_log2_of_the_probability_per_pixel():
    """Against the probability itself: p(x) = sum_z p(z) prod_d p(x_d|z) by loops, then -log2 p(x) / D."""
    from numpyvae.discrete import pixels
    model = pixel_model(levels=4, d=3)
    x = np.array([[0.0, 3.0, 1.0], [2.0, 2.0, 0.0]])
    for b in range(2):
        p = 0.0
        for c in itertools.product(range(3), repeat=2):
            out = model.decoder.call(np.eye(3)[list(c)].reshape(1, -1))[0].reshape(3, 4)
            probs = np.exp(out) / np.exp(out).sum(axis=1, keepdims=True)
            p += np.prod([probs[d, int(x[b, d])] for d in range(3)]) / 9
        ours = pixels.bits_per_dim(model.exact_log_px(x), 3)[b]
        assert ours == pytest.approx(-math.log2(p) / 3, rel=1e-12), f"example {b}: ours {ours} vs {-math.log2(p) / 3}"


def test_categorical_pixels_refuse_grey_values_and_out_of_range_levels():
    model = pixel_model()
    with pytest.raises(InputError, match="whole grey levels"):
        model.exact_elbo(np.full((1, 4), 0.5))
    with pytest.raises(InputError, match="x"):
        model.exact_elbo(np.full((1, 4), 5.0))
    with pytest.raises(InputError, match="likelihood"):
        CategoricalVAE(4, 2, 3, likelihood="poisson")
    from numpyvae.discrete import pixels
    np.testing.assert_array_equal(pixels.quantize([[0.0, 0.49, 0.5, 1.0]], 2), [[0, 0, 1, 1]])


def test_the_moving_average_refuses_a_non_finite_mean_and_keeps_its_value():
    base = MovingAverageBaseline(decay=0.5, value=-2.0)
    with pytest.raises(InputError, match="non-finite"):
        base.update(np.array([np.inf, 1.0]))
    assert base.value == -2.0
    base.update(np.array([-4.0, -6.0]))
    assert base.value == pytest.approx(-3.5)
