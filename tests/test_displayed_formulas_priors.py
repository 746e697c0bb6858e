"""Note 14's displayed formulas (14.1-14.10), parsed from the LaTeX the reader sees and evaluated.

The scheme of tests/test_displayed_formulas.py (issue 17), with note 14's
notation read by tests/displayed_formulas_priors.py.  Each check evaluates
every side of every equation on a small concrete instance (one latent
coordinate, C components; derivatives by centred differences, expectations
under q by Gauss-Hermite quadrature), with the named quantities bound twice:

* "package": numpyvae -- MixtureDensity's log-density, its log-sum-exp terms
  a_c and its responsibilities, MixturePrior's softmax, the VampPrior of a
  real float64 VAE, the estimators' sampled KL, a linear-Gaussian CVAE's
  networks and importance-sampled log p(x | y);
* "truth": independent of the package -- the Gaussian density and the
  mixture written out here, a toy encoder for the VampPrior, the KL and
  p(x | y) by quadrature on a grid or in closed form.

Every relation the display states must hold in both.  Planted wrong displays:
mutation/planted_priors.py (FORMULA_PLANTS; each fails here).
"""
import math

import numpy as np
import pytest

pytest.importorskip("sympy", reason="the displayed-formula checks need SymPy (pip install -e '.[test]')")
pytest.importorskip("antlr4", reason="SymPy's LaTeX parser needs antlr4-python3-runtime 4.11 (the test extra)")

import displayed_formulas as F  # noqa: E402
from displayed_formulas import Context, check_chain, evaluate, gauss_hermite_expectation, operator, value  # noqa: E402

from numpyvae import VAE  # noqa: E402
from numpyvae.cvae import CVAE  # noqa: E402
from numpyvae.distributions import gaussian_log_prob  # noqa: E402
from numpyvae.estimators import mc  # noqa: E402
from numpyvae.gradcheck import compare  # noqa: E402
from numpyvae.prior import MixtureDensity, MixturePrior, log_softmax  # noqa: E402

BINDINGS = ("package", "truth")
M0, S0, L0 = np.array([-1.2, 0.3, 1.9]), np.array([-0.4, 0.5, -1.0]), np.array([0.2, -0.6, 1.1])
Z0 = 0.45


def run(label, ctx, **tol):
    return [check_chain(chain, ctx, f"formula {label}", **tol) for chain in F.equations(label)]


def S_sum(a):
    return np.sum(a, axis=-1)


def D(var):
    @operator
    def op(args, ctx):
        return F.derivative(lambda c: evaluate(args[0], c), ctx, var)
    return op


def npdf(z, m, v):
    """N(z; m, v) written out here, independently of the package."""
    return np.exp(-(z - m) ** 2 / (2 * v)) / np.sqrt(2 * np.pi * v)


def mixture_names(binding, z, m, s, w):
    """p(z), N_comp, a, M, r of a 1-D mixture at scalar z: from numpyvae's MixtureDensity, or written out."""
    if binding == "package":
        d = MixtureDensity(m[:, None], s[:, None], np.log(w))
        zz = np.array([[z]])
        a = d._components(zz)[0][0]
        log_p, r = d._responsibilities(a[None])
        comp = np.exp(gaussian_log_prob(np.full((len(m), 1), z), m[:, None], s[:, None]))

        def R(t):
            t = np.asarray(t, dtype=float)
            return np.exp(d.log_prob(t.reshape(-1, 1))).reshape(t.shape)
        return dict(R_prior=R, N_comp=comp, a=a, M=np.max(a), r=r[0])
    comp = npdf(z, m, np.exp(s))
    total = float(np.sum(w * comp))
    a = np.log(w) + np.log(comp)
    R = lambda t: np.sum(w * npdf(np.asarray(t, dtype=float)[..., None], m, np.exp(s)), axis=-1)
    return dict(R_prior=R, N_comp=comp, a=a, M=np.max(a), r=w * comp / total)


def mixture_context(binding, params=None):
    def build(p):
        w = np.exp(log_softmax(p["l"])) if binding == "package" else np.exp(p["l"]) / np.sum(np.exp(p["l"]))
        names = mixture_names(binding, float(p["z"]), p["m"], p["s"], w)
        return {"R_{prior}": names["R_prior"], "N_{comp}": names["N_comp"], "a": names["a"], "M": names["M"],
                "r": names["r"], "w": w, "S_{sum}": S_sum, "D_{z}": D("z")}
    return Context(params or {"z": Z0, "m": M0, "s": S0, "l": L0}, build, h=1e-6)


# ------------------------------------------------------------------- the mixture
@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_14_1(binding):
    run("14.1", mixture_context(binding), rtol=1e-12)


def test_formula_14_1_is_stable_far_out():
    """Far from every component each N is 0 in float64; the display's right-hand side is still finite."""
    ctx = mixture_context("package", {"z": 60.0, "m": M0, "s": S0, "l": L0})
    lhs, _, rhs = F.equations("14.1")[0][2:]
    with np.errstate(divide="ignore"):
        assert np.isfinite(evaluate(rhs, ctx)) and not np.isfinite(evaluate(lhs, ctx))


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_14_2(binding):
    run("14.2", mixture_context(binding), rtol=1e-12)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_14_3(binding):
    run("14.3", mixture_context(binding), rtol=1e-7)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_14_4(binding):
    run("14.4", mixture_context(binding), rtol=1e-7)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_14_5(binding):
    ctx = mixture_context(binding)
    run("14.5", ctx, rtol=1e-7)
    if binding == "package":                  # the package's own logits gradient is the display's r - w
        prior = MixturePrior(3, 1, np.random.default_rng(0))
        prior.params["means"][:, 0], prior.params["logvars"][:, 0], prior.params["logits"][...] = M0, S0, L0
        grads = prior.new_grad_buffers()
        density, cache = prior.density()
        prior.density_backward(np.array([[Z0]]), np.ones(1), density, cache, grads)
        expected = value(ctx, "r") - value(ctx, "w")
        np.testing.assert_allclose(grads["logits"], expected, rtol=1e-12, err_msg="ours vs expected r - w")


# ------------------------------------------------------------------- the sampled KL
@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_14_6(binding):
    mu, sigma, K = 0.3, 0.8, 200_000
    w = np.exp(L0) / np.sum(np.exp(L0))
    rng = np.random.default_rng(14)
    names = mixture_names(binding, Z0, M0, S0, w)
    if binding == "package":
        zs = mu + sigma * rng.standard_normal((K, 1, 1))
        est = mc(np.zeros((K, 1)), zs, np.array([[mu]]), np.array([[2 * math.log(sigma)]]),
                 prior=MixtureDensity(M0[:, None], S0[:, None], np.log(w)))
        kl = float(est.kl[0])                                           # the estimator's own sampled KL
        Q = lambda t: np.exp(gaussian_log_prob(np.asarray(t, float)[..., None], mu, 2 * math.log(sigma)))
        zs = zs[:, 0, 0]
    else:
        grid = np.linspace(mu - 12 * sigma, mu + 12 * sigma, 40001)
        q = npdf(grid, mu, sigma ** 2)
        integrand = q * (np.log(q) - np.log(names["R_prior"](grid)))
        kl = float(np.trapezoid(integrand, grid) if hasattr(np, "trapezoid") else np.trapz(integrand, grid))
        Q = lambda t: npdf(np.asarray(t, float), mu, sigma ** 2)
        zs = mu + sigma * rng.standard_normal(K)
    ctx = Context({}, lambda p: {"K_{prior}": kl, "Q": Q, "R_{prior}": names["R_prior"], "mu": mu, "sigma": sigma,
                                 "E": gauss_hermite_expectation(), "z_{s}": zs, "K": float(K), "S_{sum}": S_sum,
                                 "z": 0.0})
    # the truth's KL by the trapezoid rule, the display's expectation by Gauss-Hermite (80 nodes): 1e-7 apart
    run("14.6", ctx, rtol=1e-2 if binding == "package" else 1e-6)


# ------------------------------------------------------------------- the VampPrior
def vamp_model(C=3):
    m = VAE(1, [4], 1, dtype=np.float64, seed=3, activation="tanh", prior={"name": "vampprior", "components": C})
    m.params["prior.pseudo_inputs"][:, 0] = [0.1, 0.45, 0.9][:C]      # in [0, 1]: VAE.encode checks Bernoulli data
    return m


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_14_7(binding):
    model = vamp_model()
    mu, logvar = model.encode(model.params["prior.pseudo_inputs"])
    if binding == "package":
        R = lambda t: np.exp(model.prior.log_prob(np.asarray(t, float).reshape(-1, 1))).reshape(np.shape(t))
        Qv = lambda t: np.exp(gaussian_log_prob(np.full((3, 1), t), mu, logvar))
    else:
        R = lambda t: np.mean(npdf(np.asarray(t, float)[..., None], mu[:, 0], np.exp(logvar[:, 0])), axis=-1)
        Qv = lambda t: npdf(t, mu[:, 0], np.exp(logvar[:, 0]))
    ctx = Context({}, lambda p: {"R_{prior}": R, "Q_{vamp}": Qv, "C": 3.0, "S_{sum}": S_sum, "z": Z0})
    run("14.7", ctx, rtol=1e-12)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_14_8(binding):
    """d log p / d u_c through the encoder: both sides by centred differences; the package's own gradient too."""
    model = vamp_model()
    C = 3

    def encode(u):
        if binding == "package":
            mu, logvar = model.encode(np.asarray(u, float).reshape(-1, 1))
            return mu[:, 0], logvar[:, 0]
        return np.tanh(0.8 * u + 0.1), 0.5 * u - 0.3               # a toy encoder, written out here

    @operator
    def R(args, ctx):
        t = float(evaluate(args[0], ctx))
        mu, lam = np.asarray(value(ctx, "mu"), float), np.asarray(value(ctx, "lambda"), float)
        if binding == "package":
            return float(np.exp(MixtureDensity(mu[:, None], lam[:, None], np.full(C, -math.log(C))).log_prob(np.array([[t]]))[0]))
        return float(np.mean(npdf(t, mu, np.exp(lam))))

    def build(p):
        mu, lam = encode(p["u"])
        return {"mu": mu, "lambda": lam, "R_{prior}": R, "z": Z0}
    ctx = Context({"u": model.params["prior.pseudo_inputs"][:, 0].copy()}, build, h=1e-6)
    (lhs, *_), = run("14.8", ctx, rtol=1e-6)
    if binding == "package":
        grads = model.prior.new_grad_buffers()
        enc = {k[len("encoder."):]: np.zeros_like(v) for k, v in model.params.items() if k.startswith("encoder.")}
        density, cache = model.prior.density()
        model.prior.density_backward(np.array([[Z0]]), np.ones(1), density, cache, grads, enc)
        c = compare("pseudo_inputs: the encoder's backward vs the display", grads["pseudo_inputs"][:, 0], lhs)
        assert c.passed, str(c)


# ------------------------------------------------------------------- the conditional VAE
def linear_cvae(exact):
    """A 1-D-latent linear-Gaussian CVAE (D = 2, Y = 2): p(x|z,y) = N(a z + V y + b, s2 I); its encoder the
    exact posterior, or that posterior's mean and log-variance shifted."""
    a, V, b, s2 = np.array([1.1, -0.6]), np.array([[0.5, -1.0], [0.8, 0.3]]), np.array([0.2, -0.1]), 0.4
    m = CVAE(2, 2, hidden=[], z_dim=1, likelihood="gaussian", dtype=np.float64)
    dec, enc = m.decoder.linears[0], m.encoder.linears[0]
    dec.W[...] = 0
    dec.W[0, :2], dec.W[1:, :2], dec.b[:2], dec.b[2:] = a, V.T, b, math.log(s2)
    post_var = 1 / (1 + a @ a / s2)
    M = post_var * a / s2
    enc.W[...] = 0
    enc.W[:2, 0], enc.W[2:, 0], enc.b[0], enc.b[1] = M, -(M @ V), -M @ b, math.log(post_var)
    if not exact:
        enc.b[0] += 0.5
        enc.b[1] += 0.7
    return m, (a, V, b, s2)


def cvae_names(binding, exact, K=100_000):
    m, (a, V, b, s2) = linear_cvae(exact)
    x, y = np.array([[0.9, -0.4]]), np.array([1])
    mu, logvar = (float(v[0, 0]) for v in m.encode(x, y))
    C = np.outer(a, a) + s2 * np.eye(2)
    diff = x[0] - (V[:, 1] + b)
    log_pxy = -0.5 * (2 * math.log(2 * math.pi) + math.log(np.linalg.det(C)) + diff @ np.linalg.solve(C, diff))
    if binding == "package":
        def L(t):
            t = np.asarray(t, float)
            out = m.decode(t.reshape(-1, 1), np.ones(t.size, dtype=int))
            return np.exp(m.log_px(x, out[None])[0]).reshape(t.shape)
        Q = lambda t: np.exp(gaussian_log_prob(np.asarray(t, float)[..., None], mu, logvar))
        R = lambda t: np.exp(m.prior.log_prob(np.asarray(t, float)[..., None]))
        kl = float(m.prior.kl(np.array([[mu]]), np.array([[logvar]]))[0])
        log_pxy = float(m.log_marginal(x, y, np.random.default_rng(5), k=200_000, chunk=20_000)[0])
        zs = mu + math.exp(logvar / 2) * np.random.default_rng(6).standard_normal(K)
    else:
        def L(t):
            t = np.asarray(t, float)[..., None]
            return np.prod(npdf(x[0], a * t + V[:, 1] + b, s2), axis=-1)
        Q = lambda t: npdf(np.asarray(t, float), mu, math.exp(logvar))
        R = lambda t: npdf(np.asarray(t, float), 0.0, 1.0)
        kl = 0.5 * (mu ** 2 + math.exp(logvar) - 1 - logvar)
        zs = mu + math.exp(logvar / 2) * np.random.default_rng(7).standard_normal(K)
    W = lambda t: L(t) * R(t) / Q(t)
    return {"L_{cond}": L, "Q": Q, "R_{prior}": R, "K_{prior}": kl, "M_{pxy}": math.exp(log_pxy),
            "mu": mu, "sigma": math.exp(logvar / 2), "E": gauss_hermite_expectation(), "W": W,
            "z_{s}": zs, "K": float(K), "S_{sum}": S_sum, "z": 0.3}


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("exact", [False, True], ids=["wrong-q", "true-posterior"])
def test_formula_14_9(binding, exact):
    names = cvae_names(binding, exact)
    (lhs, rhs), = run("14.9", Context({}, lambda p: names), rtol=1e-9)
    if not exact:
        assert lhs - rhs > 0.1, f"the instance's bound gap is too small to see a reversed bound: {lhs} vs {rhs}"
    else:
        assert abs(lhs - rhs) < 1e-3, f"at the true posterior the bound is tight: ours {rhs} vs expected {lhs}"


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_14_10(binding):
    names = cvae_names(binding, exact=False)
    run("14.10", Context({}, lambda p: names), rtol=1e-3 if binding == "package" else 1e-7)


# ------------------------------------------------------------------- M2
def m2_instance(wrong_classifier=True):
    """The 1-D-latent linear CVAE above (exact encoder) with a linear classifier: the exact p(y|x), or shifted."""
    from numpyvae.m2 import M2
    cvae, (a, V, b, s2) = linear_cvae(exact=True)
    m2 = M2(cvae, classifier_hidden=[], seed=0)
    C = np.outer(a, a) + s2 * np.eye(2)
    means = (V + b[:, None]).T                                          # (Y, D) class means of x
    P = np.linalg.solve(C, means.T)
    lin = m2.classifier.linears[0]
    lin.W[...], lin.b[...] = P, -0.5 * np.sum(means.T * P, axis=0)
    if wrong_classifier:
        lin.b[...] += [0.9, -0.6]
    x = np.array([[0.9, -0.4]])
    log_pxy = np.array([-0.5 * (2 * math.log(2 * math.pi) + math.log(np.linalg.det(C))
                                + (x[0] - mu) @ np.linalg.solve(C, x[0] - mu)) for mu in means])   # log p(x|y)
    return m2, x, log_pxy


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_14_11(binding):
    names = cvae_names(binding, exact=False)
    m, (a, V, b, s2) = linear_cvae(exact=False)
    x, y = np.array([[0.9, -0.4]]), np.array([1])
    if binding == "package":
        from numpyvae.m2 import M2
        L = float(M2(m, classifier_hidden=[]).bounds(x, np.random.default_rng(8), "analytic", k=200_000)[0][0, 1])
    else:                                   # the linear-Gaussian ELBO in closed form, plus log p(y)
        mu, var = names["mu"], names["sigma"] ** 2
        mean = a * mu + V[:, 1] + b
        recon = -0.5 * np.sum(math.log(2 * math.pi * s2) + ((x[0] - mean) ** 2 + a ** 2 * var) / s2)
        L = recon - names["K_{prior}"] + math.log(0.5)
    ctx = Context({}, lambda p: dict(names, **{"L_{lab}": L, "P_{y}": 0.5, "J_{xy}": names["M_{pxy}"] * 0.5}))
    (lhs, rhs, bound), = run("14.11", ctx, rtol=2e-3 if binding == "package" else 1e-9)
    assert bound - lhs > 0.1, f"the instance's gap is too small to see a reversed bound: {lhs} vs {bound}"


def m2_names(binding, wrong_classifier=True):
    from numpyvae.layers import log_softmax
    m2, x, log_pxy = m2_instance(wrong_classifier)
    log_px = float(np.logaddexp.reduce(log_pxy) + math.log(0.5))
    if binding == "package":
        L, U = m2.bounds(x, np.random.default_rng(9), "mc", k=3)
        L, U, Q = L[0], float(U[0]), m2.classify(x)[0][0]
        softmax = lambda a: np.exp(log_softmax(a))
    else:
        lin = m2.classifier.linears[0]
        logits = x[0] @ lin.W + lin.b
        Q = np.exp(logits) / np.sum(np.exp(logits))
        L = log_pxy + math.log(0.5)                                      # exact posterior: the bound is log p(x, y)
        post = np.exp(L - log_px)                                        # p(y|x)
        U = log_px - float(np.sum(Q * np.log(Q / post)))                 # log p(x) - KL(q(y|x) || p(y|x))
        softmax = lambda a: np.exp(a) / np.sum(np.exp(a))
    return m2, x, dict(Q=Q, L=L, U=U, log_px=log_px, softmax=softmax)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_14_12(binding):
    _, _, n = m2_names(binding)
    ctx = Context({}, lambda p: {"Q_{cls}": n["Q"], "L_{lab}": n["L"], "U_{unl}": n["U"], "M_{px}": math.exp(n["log_px"]),
                                 "S_{sum}": S_sum})
    (lhs, rhs, u), = run("14.12", ctx, rtol=1e-9)
    assert lhs - rhs > 0.05, f"the instance's gap is too small to see a reversed bound: {lhs} vs {rhs}"


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_14_13(binding):
    m2, x, n = m2_names(binding)

    def build(p):
        Q = n["softmax"](p["a"])
        return {"Q_{cls}": Q, "L_{lab}": n["L"], "U_{unl}": float(np.sum(Q * (n["L"] - np.log(Q))))}
    lin = m2.classifier.linears[0]
    ctx = Context({"a": x[0] @ lin.W + lin.b}, build, h=1e-6)
    (lhs, rhs), = run("14.13", ctx, rtol=1e-7)
    if binding == "package":                  # M2's own classifier gradient (alpha = 0: U's share only)
        _, grads = m2.loss_and_grads(x, [0], x, eps_l=np.zeros((1, 1, 1)), eps_u=np.zeros((1, 1, 1)),
                                     estimator="mc", alpha=0.0)
        c = compare("classifier logits: M2's backward vs the display", -grads["classifier.0.b"], rhs)
        assert c.passed, str(c)
