"""Every formula the derivation notes display is evaluated as written (issue 17).

tests/displayed_formulas.py parses the LaTeX between ``$$`` in derivations/*.md
(after its ``<!-- formula: LABEL -->`` marker) with SymPy's parse_latex and
evaluates each side numerically.  Each test below builds a concrete instance
and binds the named quantities twice: to the package's function ("package")
and to an independent numerical truth ("truth": quadrature, centred
differences, sampling, a direct matrix computation).  Every relation the
display states (=, >=, <=, ~) must hold in both.  Editing a displayed formula
into a wrong one fails here; a correct rewrite in the accepted notation
(derivations/README.md) still passes.
"""
import math

import numpy as np
import pytest

pytest.importorskip("sympy", reason="the displayed-formula checks need SymPy (pip install -e '.[test]')")
pytest.importorskip("antlr4", reason="SymPy's LaTeX parser needs antlr4-python3-runtime 4.11 (the test extra)")

import displayed_formulas as F  # noqa: E402  (tests/ is on sys.path under pytest's rootdir conftest)
from displayed_formulas import Context, Lazy, check_chain, evaluate, gauss_hermite_expectation, operator, value  # noqa: E402

from numpyvae import estimators  # noqa: E402
from numpyvae.distributions import (bernoulli_log_prob, bernoulli_log_prob_grad, gaussian_log_prob,  # noqa: E402
                                    gaussian_log_prob_grads, kl_std_normal, kl_std_normal_grads,
                                    reparameterize, reparameterize_backward, std_normal_log_prob)
from numpyvae.layers import sigmoid, softplus  # noqa: E402
from numpyvae.linear_gaussian import LinearGaussian  # noqa: E402

BINDINGS = ("package", "truth")
GRID = np.linspace(-14.0, 14.0, 40001)


def trapz(y, x):
    return np.trapezoid(y, x) if hasattr(np, "trapezoid") else np.trapz(y, x)


def npdf(z, m, v):
    """N(z; m, v) written out here, independently of the package."""
    return np.exp(-(z - m) ** 2 / (2 * v)) / np.sqrt(2 * np.pi * v)


def D(var):
    @operator
    def op(args, ctx):
        return F.derivative(lambda c: evaluate(args[0], c), ctx, var)
    return op


def D_fixed_z(var):
    """The derivative in var with z held at its current value."""
    @operator
    def op(args, ctx):
        fixed = ctx.with_values(z=np.asarray(value(ctx, "z"), dtype=float))
        return F.derivative(lambda c: evaluate(args[0], c), fixed, var)
    return op


def S_sum(axis=-1):
    return lambda a: np.sum(a, axis=axis)


def run(label, ctx, **tol):
    out = []
    for chain in F.equations(label):
        out.append(check_chain(chain, ctx, f"formula {label}", **tol))
    return out


# ---------------------------------------------------------------- coverage
# Displayed formulas this scheme does NOT read (none today: note 12's index notation is read by
# tests/displayed_formulas_conv.py and checked in tests/test_displayed_formulas_conv.py).
NOT_PARSED = {}


def test_every_displayed_formula_is_marked_and_checked():
    labelled, unmarked = F.note_blocks()
    assert not unmarked, f"display blocks without a '<!-- formula: LABEL -->' marker: {unmarked}"
    checked = {name[len("test_formula_"):].replace("_", ".") for name in globals() if name.startswith("test_formula_")}
    checked |= checked_in_other_files()
    missing = sorted(set(labelled) - checked - set(NOT_PARSED))
    assert not missing, f"displayed formulas with no check here: {missing}"
    assert not set(NOT_PARSED) - set(labelled), "NOT_PARSED names a formula that no longer exists"


def checked_in_other_files():
    """Labels checked by tests/test_displayed_formulas_*.py (note 12's: test_displayed_formulas_conv.py)."""
    import ast
    import pathlib
    labels = set()
    for path in sorted(pathlib.Path(__file__).parent.glob("test_displayed_formulas_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        labels |= {node.name[len("test_formula_"):].replace("_", ".") for node in tree.body
                   if isinstance(node, ast.FunctionDef) and node.name.startswith("test_formula_")}
    return labels


def test_every_displayed_formula_parses():
    labelled, _ = F.note_blocks()
    for label in labelled:
        if label in NOT_PARSED:
            continue
        assert F.equations(label), f"formula {label}: nothing parsed"


def test_a_wrong_formula_is_seen(monkeypatch):
    """The control: the KL of note 05 with one sign changed must fail."""
    labelled, unmarked = F.note_blocks()
    note, latex = labelled["05.3"]
    wrong = latex.replace(r"- 1 - \operatorname{logvar}_j", r"- 1 + \operatorname{logvar}_j")
    assert wrong != latex
    monkeypatch.setattr(F, "note_blocks", lambda: ({**labelled, "05.3": (note, wrong)}, unmarked))
    F.parse.cache_clear()
    with pytest.raises(AssertionError, match="formula 05.3"):
        test_formula_05_3("package")


# ---------------------------------------------- the 1-D linear-Gaussian instance
W1, B1, S21, X1 = 1.3, 0.4, 0.5, 1.1             # p(z) = N(0,1), p(x|z) = N(w z + b, s^2), x observed
MU1, LAM1 = 0.3, -0.7                             # q(z|x) = N(mu, exp(lambda)), not the posterior


def lg_context(binding, mu=MU1, lam=LAM1, beta=0.6):
    model = LinearGaussian([[W1]], [B1], S21)
    post_mean, post_cov = model.posterior(np.array([X1]))

    def build(p):
        mu, lam = float(p["mu"]), float(p["lambda"])
        sigma = math.exp(lam / 2)
        if binding == "package":
            lik = lambda z: np.exp(model.log_px_given_z(np.array([X1]), np.asarray(z, float)[..., None]))
            prior = lambda z: np.exp(std_normal_log_prob(np.asarray(z, float)[..., None]))
            q = lambda z: np.exp(gaussian_log_prob(np.asarray(z, float)[..., None], np.array([mu]), np.array([lam])))
        else:
            lik = lambda z: npdf(X1, W1 * np.asarray(z) + B1, S21)
            prior = lambda z: npdf(np.asarray(z), 0.0, 1.0)
            q = lambda z: npdf(np.asarray(z), mu, sigma ** 2)
        post = lambda z: npdf(np.asarray(z), post_mean[0], post_cov[0, 0])
        joint = lambda z: lik(z) * prior(z)
        ns = {"sigma": sigma, "x": X1, "b": B1, "W": W1, "s": math.sqrt(S21), "I": 1.0, "D": 1.0,
              "beta": beta, "L_{lik}": lik, "R_{prior}": prior, "Q": q, "J_{joint}": joint, "T_{post}": post,
              "E": gauss_hermite_expectation()}
        m, lv = np.array([[mu]]), np.array([[lam]])
        if binding == "package":
            ns["M_{px}"] = float(np.exp(model.log_marginal(np.array([[X1]]))[0]))
            ns["K_{prior}"] = float(kl_std_normal(m, lv)[0])
            ns["K_{post}"] = float(model.kl_to_posterior(np.array([[X1]]), m, lv)[0])
            ns["L_{elbo}"] = lambda x: float(model.elbo(np.array([[x]]), m, lv)[0])
            ns["C"] = float(model.marginal_cov()[0, 0])
        else:
            qz = q(GRID)
            ns["M_{px}"] = trapz(joint(GRID), GRID)
            ns["K_{prior}"] = trapz(qz * (np.log(qz + 1e-300) - np.log(prior(GRID))), GRID)
            ns["K_{post}"] = trapz(qz * (np.log(qz + 1e-300) - np.log(post(GRID) + 1e-300)), GRID)
            ns["L_{elbo}"] = lambda x: trapz(qz * (np.log(joint(GRID) + 1e-300) - np.log(qz + 1e-300)), GRID)
            ns["C"] = W1 ** 2 + S21
        return ns
    return Context({"mu": mu, "lambda": lam}, build, grid=GRID)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_01_1(binding):
    (m, a, b), = run("01.1", lg_context(binding), rtol=1e-6)
    print(f"01.1 {binding}: p(x) = {m:.10f}, integral {a:.10f}, {b:.10f}")


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_01_2(binding):
    """E[x] and Cov[x] under the model, by 2-D Gauss-Hermite over (z, noise); C from the package or w^2 + s^2."""
    t, w = np.polynomial.hermite.hermgauss(40)
    zz, nn = np.meshgrid(np.sqrt(2) * t, np.sqrt(2) * t, indexing="ij")
    ww = np.outer(w, w) / np.pi
    xs = W1 * zz + B1 + math.sqrt(S21) * nn

    @operator
    def expect(args, ctx):
        return float(np.sum(ww * evaluate(args[0], ctx.with_values(x=xs, z=zz))))

    @operator
    def cov(args, ctx):
        v = evaluate(args[0], ctx.with_values(x=xs, z=zz))
        return float(np.sum(ww * (v - np.sum(ww * v)) ** 2))
    ctx = lg_context(binding).with_values(E=expect, **{"C_{ov}": cov})
    run("01.2", ctx, rtol=1e-9)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_01_3(binding):
    run("01.3", lg_context(binding), rtol=1e-7)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_02_1(binding):
    run("02.1", lg_context(binding), rtol=1e-6)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_03_1(binding):
    (lp, a, b, c), = run("03.1", lg_context(binding), rtol=1e-6)
    assert lp - c > 1e-3, f"the example's gap is too small to see a reversed inequality: {lp} vs {c}"


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_03_2(binding):
    run("03.2", lg_context(binding), rtol=1e-6)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_04_1(binding):
    run("04.1", lg_context(binding), rtol=1e-6)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_04_2(binding):
    run("04.2", lg_context(binding), rtol=1e-6)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_04_3(binding):
    run("04.3", lg_context(binding), rtol=1e-6)


def rs_context(binding):
    """R, S (note 04) at z: the package's log p(x|z) and log-weight, or written out here."""
    model = LinearGaussian([[W1]], [B1], S21)
    ctx = lg_context(binding)

    def R(c):
        z = np.asarray(value(c, "z"), float)
        if binding == "package":
            return model.log_px_given_z(np.array([X1]), z[..., None])
        return np.log(npdf(X1, W1 * z + B1, S21))

    def S(c):
        z = np.asarray(value(c, "z"), float)
        if binding == "package":                  # the log-weight with log p(x|z) = 0 left out
            flat = z.reshape(-1, 1, 1)
            lw = estimators.log_weights(np.zeros((len(flat), 1)), flat, np.array([[MU1]]), np.array([[LAM1]]))
            return lw.reshape(z.shape)
        return np.log(npdf(z, 0, 1)) - np.log(npdf(z, MU1, math.exp(LAM1)))
    return ctx, R, S


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_04_4(binding):
    ctx, R, S = rs_context(binding)
    z = MU1 + math.exp(LAM1 / 2) * np.random.default_rng(0).standard_normal(200_000)
    ctx = ctx.with_values(z=z)
    (r_lhs, r_rhs), (s_lhs, s_rhs), (zz, _) = run("04.4", ctx.with_values(R=R(ctx), S=S(ctx)))
    assert F.equations("04.4")[2][1] == "\\sim"
    # z ~ q(z|x): the draws' mean and variance are those of q (4 standard errors)
    se_m, se_v = math.exp(LAM1 / 2) / math.sqrt(len(z)), math.exp(LAM1) * math.sqrt(2 / len(z))
    assert abs(zz.mean() - MU1) < 4 * se_m and abs(zz.var() - math.exp(LAM1)) < 4 * se_v


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_04_5(binding):
    ctx, R, S = rs_context(binding)
    E = gauss_hermite_expectation()

    @operator
    def var(args, c):
        m = E(args, c)
        sq = args[0] ** 2
        return E((sq,), c) - m ** 2

    @operator
    def cov(args, c):
        a, b = args
        return E((a * b,), c) - E((a,), c) * E((b,), c)
    kl = value(ctx, "K_{prior}")
    ctx = ctx.with_values(R=Lazy(R), S=Lazy(S), A=Lazy(lambda c: R(c) + S(c)), B=Lazy(lambda c: R(c) - kl),
                          V=var, **{"C_{ov}": cov})
    (va, rhs), (vb, vr) = run("04.5", ctx, rtol=1e-8)
    # and against sampling: the estimators' variances over 400k draws of z
    z = MU1 + math.exp(LAM1 / 2) * np.random.default_rng(1).standard_normal(400_000)
    c = ctx.with_values(z=z)
    a_s = R(c) + S(c)
    assert abs(a_s.var() - va) < 5 * a_s.var() * math.sqrt(2 / len(z)) * 3, f"Var[A]: sampled {a_s.var()} vs {va}"


# ------------------------------------------------------------- note 05: the KL
def kl_context(binding, Z=1, seed=0):
    rng = np.random.default_rng(seed)
    mu, lam = rng.normal(size=Z) * 1.2, rng.normal(size=Z)

    def build(p):
        mu, lam = p["mu"], p["lambda"]
        sigma = np.exp(lam / 2)
        ns = {"sigma": sigma, "S_{sum}": S_sum(), "E": gauss_hermite_expectation()}
        if binding == "package":
            ns["Q"] = lambda z: np.exp(gaussian_log_prob(np.asarray(z, float)[..., None], mu[:1], lam[:1])) \
                if Z == 1 else None
            ns["R_{prior}"] = lambda z: np.exp(std_normal_log_prob(np.asarray(z, float)[..., None]))
            ns["K_{prior}"] = float(kl_std_normal(mu[None], lam[None])[0])
            ns["K"] = float(kl_std_normal(mu[None], lam[None])[0])
        else:
            ns["Q"] = lambda z: npdf(np.asarray(z), mu[0], sigma[0] ** 2)
            ns["R_{prior}"] = lambda z: npdf(np.asarray(z), 0, 1)
            per = []
            for j in range(Z):
                qz = npdf(GRID, mu[j], sigma[j] ** 2)
                per.append(trapz(qz * (np.log(qz + 1e-300) - np.log(npdf(GRID, 0, 1))), GRID))
            ns["K_{prior}"] = ns["K"] = float(np.sum(per))
        return ns
    return Context({"mu": mu, "lambda": lam}, build, grid=GRID)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_05_1(binding):
    ctx = kl_context(binding).with_values(z=np.linspace(-4, 4, 9))
    run("05.1", ctx, rtol=1e-10)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_05_2(binding):
    run("05.2", kl_context(binding), rtol=1e-7)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_05_3(binding):
    run("05.3", kl_context(binding, Z=4), rtol=1e-7)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_05_4(binding):
    ctx = kl_context(binding, Z=4) if binding == "package" else kl_context("package", Z=4)
    ctx.h = 1e-6
    (dmu_fd, dmu), (dlv_fd, dlv) = run("05.4", ctx, rtol=1e-6, atol=1e-8)
    pmu, plv = kl_std_normal_grads(ctx.params["mu"][None], ctx.params["lambda"][None])
    assert np.allclose(dmu, pmu[0]) and np.allclose(dlv, plv[0]), (
        f"displayed gradient vs the package's kl_std_normal_grads: ours {dlv} vs expected {plv[0]}")


# ------------------------------------------------------ note 06: reparameterization
EPS6 = np.array([0.7, -1.3, 0.2])


def rep_context(binding, f=lambda z: np.sin(z) + 0.3 * z ** 2, mu=0.4, lam=-0.5):
    model = LinearGaussian([[W1]], [B1], S21)

    def build(p):
        mu, lam = p["mu"], p["lambda"]
        sigma = np.exp(lam / 2)
        eps = EPS6
        if binding == "package":
            z = reparameterize(np.broadcast_to(mu, (1, 1)).copy(), np.broadcast_to(lam, (1, 1)).copy(),
                               eps.reshape(-1, 1, 1))[0].reshape(-1)
            logq = lambda zz, mu=mu, lam=lam: gaussian_log_prob(np.asarray(zz, float)[..., None],
                                                                np.reshape(mu, (1,)), np.reshape(lam, (1,)))
            logj = lambda zz: model.log_joint(np.array([X1]), np.asarray(zz, float)[..., None])
        else:
            z = mu + sigma * eps
            logq = lambda zz, mu=mu, sigma=sigma: np.log(npdf(np.asarray(zz), mu, sigma ** 2))
            logj = lambda zz: np.log(npdf(X1, W1 * np.asarray(zz) + B1, S21) * npdf(np.asarray(zz), 0, 1))
        t, w = np.polynomial.hermite.hermgauss(80)

        @operator
        def E_eps(args, ctx):
            vals = np.asarray(evaluate(args[0], ctx.with_values(epsilon=np.sqrt(2) * t)))
            return float(np.sum(w / np.sqrt(np.pi) * vals))
        return {"sigma": sigma, "epsilon": eps, "z": z, "f": f, "E": gauss_hermite_expectation(),
                "E_{eps}": E_eps, "Q": lambda zz: np.exp(logq(zz)), "J_{joint}": lambda zz: np.exp(logj(zz)),
                "D_{phi}": D("phi"), "D_{mu}": D("mu"), "D_{lambda}": D("lambda"), "D_{z}": D("z"),
                "H_{phi}": D_fixed_z("phi"), "c": 0.7, "beta": 0.6,
                "q": Lazy(lambda c: np.exp(logq(value(c, "z")))),
                "h_{phi}": lambda zz: logj(zz) - logq(zz),
                "z_{phi}": lambda e: mu + sigma * e,
                "f_{phi}": lambda zz: np.sin(zz) - 0.6 * logq(zz)}
    return Context({"mu": np.float64(mu), "lambda": np.float64(lam)}, build, grid=GRID)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_06_1(binding):
    _formula_reparam("06.1", binding)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_readme_1(binding):
    _formula_reparam("readme.1", binding)


def _formula_reparam(label, binding):
    ctx = rep_context(binding)
    chains = F.equations(label)
    for chain in chains:
        if chain[1] == "\\sim":                   # eps ~ N(0, I): the package's draws have that law
            from numpyvae import VAE
            eps = VAE(3, [4], 2, dtype=np.float64, seed=0).draw_eps(np.random.default_rng(3), 50_000, 4)
            assert F.clean(str(chain[2])) == F.clean("N_{std}"), f"eps is displayed as drawn from {chain[2]}, not N(0, I)"
            assert abs(eps.mean()) < 4 / math.sqrt(eps.size) and abs(eps.var() - 1) < 4 * math.sqrt(2 / eps.size)
            continue
        # the left side bound to the package (or the truth), the right side the display's formula
        check_chain(chain, ctx, f"formula {label}")


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("phi", ["mu", "lambda"])
def test_formula_06_2(binding, phi):
    run("06.2", rep_context(binding).with_values(**{"alias:phi": phi}), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_06_3(binding):
    ctx = rep_context(binding)
    (dmu_fd, one), (dlv_fd, dlv) = run("06.3", ctx, rtol=1e-7)
    sigma = np.array([[math.exp(ctx.params["lambda"] / 2)]])
    for k, e in enumerate(EPS6):                 # the package's backward pass with dz = 1 at one sample
        pm, pl = reparameterize_backward(np.ones((1, 1, 1)), (sigma, np.array([[[e]]])))
        assert np.isclose(pm[0, 0], 1.0) and np.isclose(pl[0, 0], np.ravel(dlv)[k]), (
            f"sample {k}: package dz/dlogvar {pl[0, 0]} vs displayed {np.ravel(dlv)[k]}")


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_06_4(binding):
    rng = np.random.default_rng(4)
    K, Z = 3, 2
    mu, lam, eps, zbar = rng.normal(size=Z), rng.normal(size=Z), rng.normal(size=(K, Z)), rng.normal(size=(K, Z))
    if binding == "package":
        _, cache = reparameterize(mu[None], lam[None], eps[:, None])
        dmu, dlam = (g[0] for g in reparameterize_backward(zbar[:, None], cache))
    else:                                        # centred differences of sum(zbar * z(mu, lambda))
        def loss(m, l):
            return np.sum(zbar * (m + np.exp(l / 2) * eps))
        h = 1e-6
        dmu = np.array([(loss(mu + h * e, lam) - loss(mu - h * e, lam)) / (2 * h) for e in np.eye(Z)])
        dlam = np.array([(loss(mu, lam + h * e) - loss(mu, lam - h * e)) / (2 * h) for e in np.eye(Z)])
    ctx = Context({}, lambda p: {"mu_{bar}": dmu, "lambda_{bar}": dlam, "z_{bar}": zbar, "epsilon": eps,
                                 "sigma": np.exp(lam / 2), "S_{sum}": S_sum(axis=0)})
    run("06.4", ctx, rtol=1e-7)


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("phi", ["mu", "lambda"])
def test_formula_06_5(binding, phi):
    run("06.5", rep_context(binding).with_values(**{"alias:phi": phi}), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("phi", ["mu", "lambda"])
def test_formula_06_6(binding, phi):
    # the score at fixed points z (the display's z is a value, not a function of phi)
    ctx = rep_context(binding).with_values(**{"alias:phi": phi, "z": np.array([-1.5, 0.1, 2.2])})
    run("06.6", ctx, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("phi", ["mu", "lambda"])
def test_formula_06_7(binding, phi):
    run("06.7", rep_context(binding).with_values(**{"alias:phi": phi}), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("phi", ["mu", "lambda"])
def test_formula_06_8(binding, phi):
    run("06.8", rep_context(binding).with_values(**{"alias:phi": phi}), rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------ note 07: backprop
@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_07_1(binding):
    from numpyvae.layers import Linear
    x, W, b, ybar = 0.7, 0.4, -0.2, -1.2           # 1x1: SymPy's products commute (see the module)
    if binding == "package":
        lin = Linear(1, 1, dtype=np.float64)
        lin.W[...] = W
        lin.b[...] = b
        lin.forward(np.array([[x]]))
        xbar = float(lin.backward(np.array([[ybar]]))[0, 0])
        Wbar, bbar = float(lin.dW[0, 0]), float(lin.db[0])
    else:
        h = 1e-6
        loss = lambda x, W, b: ybar * (x * W + b)
        Wbar = (loss(x, W + h, b) - loss(x, W - h, b)) / (2 * h)
        bbar = (loss(x, W, b + h) - loss(x, W, b - h)) / (2 * h)
        xbar = (loss(x + h, W, b) - loss(x - h, W, b)) / (2 * h)
    ctx = Context({}, lambda p: {"x": x, "W": W, "y_{bar}": ybar, "W_{bar}": Wbar, "b_{bar}": bbar,
                                 "x_{bar}": xbar, "S_{sum}": S_sum()})
    run("07.1", ctx, rtol=1e-7)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_07_2(binding):
    x = np.array([0.0, 1.0, 0.3, 1.0])
    l0 = np.array([-2.0, 0.5, 1.7, -0.3])

    def build(p):
        l = p["l"]
        if binding == "package":
            lik = lambda ll: np.exp(bernoulli_log_prob(x[None], np.asarray(ll)[None])[0])
            sp, sg = softplus, sigmoid
        else:
            lik = lambda ll: np.prod(np.where(x > 0, 1, 1) * (1 / (1 + np.exp(-ll))) ** x
                                     * (1 - 1 / (1 + np.exp(-ll))) ** (1 - x))
            sp, sg = (lambda a: np.log1p(np.exp(a))), (lambda a: 1 / (1 + np.exp(-a)))
        return {"x": x, "p": 1 / (1 + np.exp(-l)), "L_{lik}": lik, "s_{p}": sp, "sigma": sg, "S_{sum}": S_sum()}
    ctx = Context({"l": l0}, build)
    ctx.h = 1e-6
    (_, (dl_fd, dl)) = run("07.2", ctx, rtol=1e-7)
    assert np.allclose(dl, bernoulli_log_prob_grad(x[None], l0[None])[0]), "displayed vs the package's gradient"


def gauss_context(binding, with_a=False):
    x = np.array([0.2, 0.9, 0.5])
    m0, v0, a0 = np.array([0.4, 0.6, 0.1]), np.array([-1.0, 0.3, -2.0]), np.array([-0.4, 0.8, 1.5])

    def build(p):
        v = p["v"]
        m = 1 / (1 + np.exp(-p["a"])) if with_a else p["m"]

        def G(c):
            mm = np.asarray(value(c, "m"), float)
            if binding == "package":
                return float(gaussian_log_prob(x[None], mm[None], v[None])[0])
            return float(np.sum(np.log(npdf(x, mm, np.exp(v)))))
        ns = {"x": x, "m": m, "G_{log}": Lazy(G), "S_{sum}": S_sum(), "sigma": lambda a: 1 / (1 + np.exp(-a))}
        return ns
    params = {"v": v0, "a": a0} if with_a else {"v": v0, "m": m0}
    ctx = Context(params, build)
    ctx.h = 1e-6
    return ctx


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_07_3(binding):
    ctx = gauss_context(binding)
    (_, (_, dm), (_, dv)) = run("07.3", ctx, rtol=1e-6, atol=1e-8)
    pm, pv = gaussian_log_prob_grads(np.array([[0.2, 0.9, 0.5]]), ctx.params["m"][None], ctx.params["v"][None])
    assert np.allclose(dm, pm[0]) and np.allclose(dv, pv[0]), "displayed vs the package's gradients"


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_07_4(binding):
    run("07.4", gauss_context(binding, with_a=True), rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------- note 08: IWAE
def iwae_context(binding, k=3, n=16):
    """z_1..z_k iid q: a k-dimensional Gauss-Hermite grid; w_i = p(x, z_i) / q(z_i)."""
    model = LinearGaussian([[W1]], [B1], S21)
    t, w = np.polynomial.hermite.hermgauss(n)
    sigma = math.exp(LAM1 / 2)
    nodes = np.stack(np.meshgrid(*([MU1 + np.sqrt(2) * sigma * t] * k), indexing="ij"), -1).reshape(-1, k)
    weights = np.prod(np.stack(np.meshgrid(*([w / np.sqrt(np.pi)] * k), indexing="ij"), -1).reshape(-1, k), -1)
    if binding == "package":
        logw = estimators.log_weights(model.log_px_given_z(np.array([[X1]]), nodes.T[..., None, None][..., 0]),
                                      nodes.T[:, :, None], np.array([[MU1]] * len(nodes)),
                                      np.array([[LAM1]] * len(nodes))).T
        logp = float(model.log_marginal(np.array([[X1]]))[0])
    else:
        logw = (np.log(npdf(X1, W1 * nodes + B1, S21)) + np.log(npdf(nodes, 0, 1))
                - np.log(npdf(nodes, MU1, sigma ** 2)))
        logp = math.log(trapz(npdf(X1, W1 * GRID + B1, S21) * npdf(GRID, 0, 1), GRID))
    wv = np.exp(logw)

    @operator
    def E(args, ctx):
        return float(np.sum(weights * evaluate(args[0], ctx.with_values(w=wv))))
    L_k = float(np.sum(weights * np.log(wv.mean(-1))))
    return Context({}, lambda p: {"E": E, "k": float(k), "x": X1, "S_{sum}": S_sum(), "M_{px}": math.exp(logp),
                                  "L_{iwae}": lambda x: L_k})


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_08_1(binding):
    (lk, lk_again, ub, lp), = run("08.1", iwae_context(binding), rtol=1e-6)
    assert lp - lk > 1e-3, f"the instance's IWAE gap is too small to see a reversed bound: {lk} vs {lp}"


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_08_2(binding):
    a, b = np.array([0.3, -1.1, 2.0, 0.5]), np.array([1.0, 0.2, -0.7, 0.4])

    def build(p):
        f = a * p["theta"] + b * p["theta"] ** 2
        if binding == "package":
            wt = np.exp(f - estimators._logsumexp(f, axis=0))
        else:
            wt = np.exp(f) / np.sum(np.exp(f))
        return {"f": f, "k": 4.0, "w_{tilde}": wt, "S_{sum}": S_sum(), "D_{all}": D("theta")}
    ctx = Context({"theta": np.float64(0.37)}, build)
    ctx.h = 1e-6
    run("08.2", ctx, rtol=1e-7)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_08_3(binding):
    """The SNR of 4 gradient coordinates: the display against mean/variance over draws (and numpy's norm)."""
    rng = np.random.default_rng(8)
    g = rng.normal(loc=[0.5, -1.0, 0.2, 0.0], scale=[1.0, 2.0, 0.5, 0.3], size=(20_000, 4))
    truth = np.linalg.norm(g.mean(0)) / math.sqrt(g.var(0).sum())
    if binding == "truth":                      # the population value, from the distribution's parameters
        truth = np.linalg.norm([0.5, -1.0, 0.2, 0.0]) / math.sqrt(1 + 4 + 0.25 + 0.09)
    ctx = Context({}, lambda p: {"g_{hat}": g, "N_{snr}": truth, "n": np.linalg.norm,
                                 "E": lambda a: a.mean(0), "V": lambda a: a.var(0), "S_{sum}": S_sum()})
    run("08.3", ctx, rtol=1e-12 if binding == "package" else 2e-2)


# ------------------------------------------------------- note 10: densities
@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_10_1(binding):
    """x' = c x: the density of the rescaled data against the package's (or a direct) log density."""
    rng = np.random.default_rng(10)
    Dd, c = 3, 255.0
    model = LinearGaussian.random(Dd, 2, rng)
    x = model.sample(4, rng)[1]
    scaled = LinearGaussian(c * model.W, c * model.b, c ** 2 * model.s2)
    if binding == "package":
        lp, lpp = model.log_marginal(x), scaled.log_marginal(c * x)
    else:
        from scipy.stats import multivariate_normal
        C = model.W @ model.W.T + model.s2 * np.eye(Dd)
        lp = multivariate_normal(model.b, C).logpdf(x)
        lpp = multivariate_normal(c * model.b, c ** 2 * C).logpdf(c * x)
    ctx = Context({}, lambda p: {"M_{pprime}": np.exp(lpp), "M_{px}": np.exp(lp), "D": float(Dd), "c": c})
    run("10.1", ctx, rtol=1e-9)


@pytest.mark.parametrize("binding", BINDINGS)
def test_formula_10_2(binding):
    """A grey level's probability: the mass of its bin (width 1/255) against density x width."""
    from scipy.stats import norm
    Dd, delta, sd = 3, 1 / 255, 0.2
    x = np.array([0.3, 0.5, 0.62])
    m = np.array([0.35, 0.45, 0.6])
    mass = norm.cdf(x + delta / 2, m, sd) - norm.cdf(x - delta / 2, m, sd)
    dens = (np.exp(gaussian_log_prob(x[None], m[None], np.full((1, Dd), 2 * math.log(sd)))[0])
            if binding == "package" else np.prod(npdf(x, m, sd ** 2)))
    eq1, eq2 = F.equations("10.2")
    check_chain(eq1, Context({}, lambda p: {"P_{level}": mass[0], "M_{px}": npdf(x[0], m[0], sd ** 2),
                                            "Delta": delta}), "formula 10.2")
    (lhs, a, b) = check_chain(eq2, Context({}, lambda p: {"P_{image}": np.prod(mass), "M_{px}": dens,
                                                                "Delta": delta, "D": float(Dd)}), "formula 10.2")
    assert abs(lhs - a) < 1e-3, f"log P(image) vs log p(x) + D log Delta: ours {lhs} vs expected {a}"


# --------------------------------------------------------------- note 11: beta
@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("beta", [0.3, 1.0, 2.5])
def test_formula_11_1(binding, beta):
    ctx = lg_context(binding, beta=beta)
    model = LinearGaussian([[W1]], [B1], S21)
    m, lv = np.array([[MU1]]), np.array([[LAM1]])
    if binding == "package":
        # the package's analytic estimator, its per-example objective, averaged over many z draws
        rng = np.random.default_rng(11)
        z = MU1 + math.exp(LAM1 / 2) * rng.standard_normal((200_000, 1, 1))
        est = estimators.analytic(model.log_px_given_z(np.array([[X1]]), z), z, m, lv, beta=beta)
        lb = float(est.elbo[0])
        tol = 5 * float(np.std(model.log_px_given_z(np.array([[X1]]), z))) / math.sqrt(len(z))
    else:                                        # quadrature of E_q[log p(x|z)] minus beta KL (quadrature)
        recon = trapz(npdf(GRID, MU1, math.exp(LAM1)) * np.log(npdf(X1, W1 * GRID + B1, S21)), GRID)
        lb = recon - beta * value(ctx, "K_{prior}")
        tol = 1e-7
    ctx = ctx.with_values(**{"L_{beta}": lambda x: lb})
    run("11.1", ctx, rtol=0, atol=tol)


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_formula_11_2(beta):
    """Var_x of the tempered posterior mean, from the matrices directly, against the display."""
    rng = np.random.default_rng(12)
    Q, _ = np.linalg.qr(rng.normal(size=(5, 2)))
    W = Q * np.array([2.0, 0.4])                  # orthogonal columns of norms 2 and 0.4
    s2 = 0.3
    M = np.linalg.solve(beta * s2 * np.eye(2) + W.T @ W, W.T)         # mean = M (x - b)
    truth = np.diag(M @ (W @ W.T + s2 * np.eye(5)) @ M.T)
    ctx = Context({}, lambda p: {"A": truth, "w": W.T, "s": math.sqrt(s2), "beta": beta,
                                 "n": lambda v: np.linalg.norm(v, axis=-1)})
    run("11.2", ctx, rtol=1e-10)


def test_a_correct_rewrite_still_passes(monkeypatch):
    """The control's other half: the same KL written differently (exp, terms reordered) passes."""
    labelled, unmarked = F.note_blocks()
    note, latex = labelled["05.3"]
    rewrite = latex.replace(r"\left(\mu_j^2 + e^{\operatorname{logvar}_j} - 1 - \operatorname{logvar}_j\right)",
                            r"\left(\exp(\operatorname{logvar}_j) - \operatorname{logvar}_j + \mu_j^2 - 1\right)")
    assert rewrite != latex
    monkeypatch.setattr(F, "note_blocks", lambda: ({**labelled, "05.3": (note, rewrite)}, unmarked))
    F.parse.cache_clear()
    test_formula_05_3("package")
    test_formula_05_3("truth")


