"""Note 15's displayed formulas (categorical latents), parsed from the LaTeX the reader sees and evaluated.

The scheme of tests/test_displayed_formulas.py, with note 15's reader
(tests/displayed_formulas_discrete.py).  The instance: one latent of K = 3
classes with logits l (the parameter every derivative is taken in), a small
decoder p(x|z) from numpyvae.discrete.CategoricalVAE and one binary x.  The
named quantities are bound twice where the package computes them:

* "package": numpyvae.discrete (softmax, KL and its gradient, the model's
  exact ELBO, the estimators score_ma / score_loo, the Gumbel-softmax sample
  and its backward, the straight-through encoder gradient of the model);
* "truth": independent of the package's formulas -- loops over the
  configurations, centred differences of the function a gradient belongs
  to (a surrogate with its coefficients held fixed, <ybar, y(l)>), and the
  Gumbel-max probability by quadrature of the Gumbel density.

Every relation the display states must hold in both.  Planted wrong
displays: mutation/planted_formulas_discrete.py (each fails here).
"""
import math

import numpy as np
import pytest

pytest.importorskip("sympy", reason="the displayed-formula checks need SymPy (pip install -e '.[test]')")
pytest.importorskip("antlr4", reason="SymPy's LaTeX parser needs antlr4-python3-runtime 4.11 (the test extra)")

import displayed_formulas as F  # noqa: E402
from displayed_formulas_discrete import OPERATORS  # noqa: E402

from numpyvae.discrete import CategoricalVAE, MovingAverageBaseline  # noqa: E402
from numpyvae.discrete import categorical as cat  # noqa: E402
from numpyvae.discrete import estimators as est  # noqa: E402

BINDINGS = ("package", "truth")
trapezoid = getattr(np, "trapezoid", None) or np.trapz           # NumPy < 2 calls it trapz
K, D = 3, 5
L0 = np.array([[0.3], [-1.1], [0.8]])                        # logits, a column (K, 1)
X = np.array([[1.0, 0.0, 1.0, 1.0, 0.0]])
CONFIGS = np.eye(K)                                          # (K, C): configuration c is column c
Z_SAMPLES = np.eye(K)[:, [0, 2, 2, 1, 0]]                    # S = 5 given samples, (K, S)


def model_with_logits(l):
    """The model whose encoder outputs exactly l for any x (its last layer's weights zero, its bias l)."""
    model = CategoricalVAE(D, 1, K, hidden=[4], dtype=np.float64, seed=2)
    model.params["encoder.1.W"][...] = 0
    model.params["encoder.1.b"][...] = l[:, 0]
    return model


MODEL = model_with_logits(L0)


def log_lik(z):
    """log p(x|z) for configurations or samples z (K, C) -> (C,): the decoder and the Bernoulli, written here."""
    out = MODEL.decoder.call(np.ascontiguousarray(z.T))[0]
    return (X * out - np.logaddexp(0, out)).sum(axis=1)


def pkg(l):
    return l.T[None]                                          # (1, 1, K): one example, one latent


def pkg_z(z):
    return z.T[:, None, None, :]                              # (C, 1, 1, K)


def context(binding, extra=None, **params):
    def build(p):
        l = p["l"]
        q_truth = np.exp(l) / np.exp(l).sum()
        ns = {"K": K, "S": Z_SAMPLES.shape[1], "z": CONFIGS, "z_{smp}": Z_SAMPLES,
              "f": log_lik, "L_{lik}": lambda z: np.exp(log_lik(z)),
              "R_{prior}": lambda z: np.full(z.shape[-1], 1.0 / K)}
        if binding == "package":
            ns["q"] = cat.softmax(pkg(l))[0, 0][:, None]
            ns["Q"] = lambda z: np.exp(cat.log_prob(pkg_z(z), pkg(l)))[:, 0]
            ns["K_{L}"] = float(cat.kl_uniform(pkg(l))[0])
            ns["L_{elbo}"] = float(model_with_logits(l).exact_elbo(X)[0])
        else:
            ns["q"] = q_truth
            ns["Q"] = lambda z: np.prod(np.where(z == 1, q_truth, 1.0), axis=0)
            ns["K_{L}"] = sum(q_truth[c, 0] * math.log(q_truth[c, 0] * K) for c in range(K))
            ns["L_{elbo}"] = sum(q_truth[c, 0] * (log_lik(CONFIGS[:, [c]])[0] - math.log(K) - math.log(q_truth[c, 0]))
                                 for c in range(K))
        ns.update(OPERATORS)
        if extra:
            ns.update(extra(binding, l, ns))
        return ns
    return F.Context(dict({"l": L0}, **params), build, h=1e-5)


def run(label, ctx, **tol):
    return [F.check_chain(chain, ctx, f"formula {label}", **tol) for chain in F.equations(label)]


def centred(fun, l, h=1e-5):
    """d fun / d l by centred differences, entry by entry (l a column (K, 1))."""
    out = np.zeros_like(l)
    for i in range(len(l)):
        up, down = l.copy(), l.copy()
        up[i] += h
        down[i] -= h
        out[i] = (fun(up) - fun(down)) / (2 * h)
    return out


# ---------------------------------------------------------------- coverage
def test_every_note_15_display_is_read():
    labelled, _ = F.note_blocks()
    mine = sorted(k for k, (note, _) in labelled.items() if note == "15-discrete-latents.md")
    assert mine == ["15.1", "15.10", "15.2", "15.2g", "15.3", "15.4", "15.4b", "15.5", "15.6", "15.7", "15.8",
                    "15.9"], mine
    for label in mine:
        assert all(side is not None for chain in F.equations(label) for side in chain[0::2]), label


# ---------------------------------------------------------------- the formulas
@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_15_1(binding):
    run("15.1", context(binding))


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_15_2(binding):
    run("15.2", context(binding))


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_15_2g(binding):
    """LHS: d KL / dl by centred differences of K_L (either binding); RHS read as displayed.
    The package's dKL/dl must equal the same right-hand side."""
    ctx = context(binding)
    (values,) = run("15.2g", ctx)
    np.testing.assert_allclose(cat.kl_uniform_grad(pkg(L0))[0, 0][:, None], values[1], rtol=1e-7,
                               err_msg="package kl_uniform_grad vs the display")


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_15_3(binding):
    run("15.3", context(binding))


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_15_4(binding):
    run("15.4", context(binding, extra=lambda *_: {"b": -2.7}), atol=1e-8)


def _surrogate_grad(coeffs, l):
    """d/dl of sum_s coeffs_s log q(z_s) / S, z_s and coeffs held fixed: centred differences."""
    def fun(lv):
        lq = lv - np.log(np.exp(lv).sum())
        return float((coeffs * (Z_SAMPLES * lq).sum(axis=0)).sum() / Z_SAMPLES.shape[1])
    return centred(fun, l)


def ma_extra(binding, l, ns):
    b, alpha = -3.1, 0.8
    f = log_lik(Z_SAMPLES)
    if binding == "package":
        base = MovingAverageBaseline(decay=alpha, value=b)
        out = est.score_ma(f[:, None], pkg_z(Z_SAMPLES), pkg(l), np.zeros(1), np.zeros((1, 1, K)), base)
        g, b_next = out.dlogits[0, 0][:, None], base.value
    else:
        g, b_next = _surrogate_grad(f - b, l), None
    vals = {"b": b, "alpha": alpha, "b_{now}": b, "f_{bar}": float(np.mean(f)), "g_{ma}": g}
    if b_next is not None:
        vals["b_{next}"] = b_next
    else:
        vals["b_{next}"] = alpha * b + (1 - alpha) * sum(f) / len(f)      # the update, by the truth's hand
    return vals


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_15_4b(binding):
    run("15.4b", context(binding, extra=ma_extra))


def loo_extra(binding, l, ns):
    f = log_lik(Z_SAMPLES)
    S = len(f)
    b_loo = np.array([np.mean([f[j] for j in range(S) if j != s]) for s in range(S)])
    if binding == "package":
        out = est.score_loo(f[:, None], pkg_z(Z_SAMPLES), pkg(l), np.zeros(1), np.zeros((1, 1, K)))
        g = out.dlogits[0, 0][:, None]
    else:
        g = _surrogate_grad(f - b_loo, l)
    return {"f_{bar}": float(np.mean(f)), "b_{loo}": b_loo, "g_{loo}": g}


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_15_5(binding):
    run("15.5", context(binding, extra=loo_extra))


def gumbel_extra(binding, l, ns):
    grid = np.linspace(-2.5, 4.0, 14)
    t = np.linspace(-12.0, 40.0, 400_001)                        # P(argmax = j) = int F'(t - l_j) prod_k!=j F(t - l_k)

    def cdf(u):
        return np.exp(-np.exp(-u))
    lv = l[:, 0]
    p = []
    for j in range(K):
        dens = np.exp(-(t - lv[j]) - np.exp(-(t - lv[j])))
        others = np.prod([cdf(t - lv[k]) for k in range(K) if k != j], axis=0)
        p.append(trapezoid(dens * others, t))
    vals = {"g": grid, "P_{gmax}": np.array(p)[:, None]}
    if binding == "package":
        draws = np.sort(cat.gumbel(np.random.default_rng(15), 1_000_000))
        vals["F"] = lambda g: np.searchsorted(draws, g, side="right") / len(draws)   # the draws' empirical CDF
    else:
        vals["F"] = lambda g: np.array([trapezoid(np.exp(-u - np.exp(-u)), u) for u in
                                        (np.linspace(-15, gi, 200_001) for gi in np.atleast_1d(g))])
    return vals


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_15_6(binding):
    """F(g): the package's 10^6 draws' empirical CDF (|error| < 2e-3, 4 standard errors) or the integral of the
    Gumbel density; P(argmax = j) by quadrature of the density times the other two CDFs."""
    ctx = context(binding, extra=gumbel_extra)
    cdf, pmax = F.equations("15.6")
    F.check_chain(cdf, ctx, "formula 15.6 (F)", rtol=0, atol=2e-3 if binding == "package" else 1e-7)
    F.check_chain(pmax, ctx, "formula 15.6 (P)")


G = np.array([[0.4, -1.3], [1.7, 0.2], [-0.6, 2.1]])             # Gumbel noise for S = 2 relaxed samples, (K, S)


def relaxed_extra(binding, l, ns, tau=0.7):
    y = cat.gumbel_softmax(pkg(l), pkg_z(G), tau)[0][:, 0, 0, :].T
    return {"tau": tau, "g": G, "y": y}


@pytest.mark.parametrize("binding", ["package"])
def test_formula_15_7(binding):
    """The display is the definition: the package's y must be it (for two noise draws)."""
    run("15.7", context(binding, extra=relaxed_extra))


YBAR = np.array([[0.9], [-0.4], [1.6]])


def backward_extra(binding, l, ns, tau=0.45):
    g = G[:, [0]]
    y, cache = cat.gumbel_softmax(pkg(l), pkg_z(g), tau)
    if binding == "package":
        lbar = cat.gumbel_softmax_backward(pkg_z(YBAR), cache)[0, 0][:, None]
    else:
        lbar = centred(lambda lv: float((YBAR[:, 0] * cat.softmax(((lv + g) / tau).T)[0]).sum()), l)
    return {"tau": tau, "y": y[:, 0, 0, :].T, "y_{bar}": YBAR, "l_{bar}": lbar}


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_15_8(binding):
    run("15.8", context(binding, extra=backward_extra))


def st_extra(binding, l, ns, tau=0.45):
    g = G[:, [1]]
    y = cat.softmax(((l + g) / tau).T).T
    z = cat.one_hot_argmax((l + g).T).T                                      # the hard sample, (K, 1)
    if binding == "package":
        model = model_with_logits(l)
        model.loss_and_grads(X, g=pkg_z(g), estimator="straight_through", tau=tau)
        # loss = -(objective), objective = ST term - KL, and d logits / d (last bias) = identity
        lbar = -model._grads["encoder.1.b"][:, None] + cat.kl_uniform_grad(pkg(l))[0, 0][:, None]
        out, cache = model.decoder.call(z.T)
        dout = X - 1 / (1 + np.exp(-out))
        zbar = model.decoder.call_backward(dout, cache, None).T                 # d log p(x|z) / dz, the package's
    else:
        zbar = centred(lambda zv: float(log_lik(zv)[0]), z.astype(float))
        lbar = centred(lambda lv: float((zbar[:, 0] * cat.softmax(((lv + g) / tau).T)[0]).sum()), l)
    return {"tau": tau, "y": y, "z": z, "z_{bar}": zbar, "l_{bar}": lbar}


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_15_9(binding):
    run("15.9", context(binding, extra=st_extra))


X_LEVELS = np.array([[0.0, 3.0, 1.0], [2.0, 2.0, 0.0], [3.0, 3.0, 3.0]])     # three images of D = 3 pixels, L = 4


def bpd_extra(binding, l, ns):
    from numpyvae.discrete import pixels
    model = CategoricalVAE(3, 2, 3, hidden=[4], dtype=np.float64, seed=5, likelihood="categorical", levels=4)
    if binding == "package":
        log_px = model.exact_log_px(X_LEVELS)
        return {"D": 3, "M_{px}": np.exp(log_px), "B_{pd}": pixels.bits_per_dim(log_px, 3)}
    p = np.zeros(len(X_LEVELS))                         # p(x) = sum_z p(z) prod_d p(x_d | z), by loops
    for b, x in enumerate(X_LEVELS):
        for c1 in range(3):
            for c2 in range(3):
                z = np.zeros((1, 6))
                z[0, c1], z[0, 3 + c2] = 1, 1
                o = model.decoder.call(z)[0].reshape(3, 4)
                probs = np.exp(o) / np.exp(o).sum(axis=1, keepdims=True)
                p[b] += np.prod([probs[d, int(x[d])] for d in range(3)]) / 9
    return {"D": 3, "M_{px}": p, "B_{pd}": np.array([-math.log2(v) / 3 for v in p])}


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_15_10(binding):
    """"truth": p(x) by loops over the configurations and the pixels, bpd as -log2 of it per pixel."""
    run("15.10", context(binding, extra=bpd_extra))
