"""Note 13's displayed formulas (planar flows), parsed from the LaTeX the reader sees and evaluated.

The scheme of tests/test_displayed_formulas.py, with note 13's reader
(tests/displayed_formulas_flows.py: inner products, outer products, u hat).
Every relation of every display is evaluated on small concrete instances
(Z = 2 or 3), with the named quantities bound twice where the package
computes them:

* "package": numpyvae.flows -- the planar step's output, its log-det and
  cache (t), u_hat and its backward pass, the inverse, the flowed density;
* "truth": independent of the package -- Jacobians by centred differences of
  the map as defined, determinants by np.linalg.det / slogdet of the full
  matrix (no lemma), the density of z_K from the numerical Jacobian of the
  inverse map, gradients by centred differences.

Derivatives in a display (13.5) are taken by the evaluator itself, by
centred differences of the bound quantity.  Planted wrong displays:
mutation/planted_formulas_flows.py.
"""
import numpy as np
import pytest

pytest.importorskip("sympy", reason="the displayed-formula checks need SymPy (pip install -e '.[test]')")
pytest.importorskip("antlr4", reason="SymPy's LaTeX parser needs antlr4-python3-runtime 4.11 (the test extra)")

import displayed_formulas as F  # noqa: E402

from numpyvae import flows  # noqa: E402


def dot(a, b):
    return np.sum(np.asarray(a) * np.asarray(b), axis=-1)


def outer(a, c):
    return np.asarray(a)[..., :, None] * np.asarray(c)[..., None, :]


COMMON = {"P_{dot}": dot, "P_{outer}": outer, "S_{sum}": lambda a: np.sum(a, axis=0),
          "sigma": lambda a: 1 / (1 + np.exp(-a)), "s_{p}": lambda a: np.logaddexp(0.0, a)}


def run(label, params, build, what, rtol=1e-7, atol=1e-9, h=1e-5):
    ctx = F.Context(params, lambda p: {**COMMON, **build(p)}, h=h)
    for chain in F.equations(label):
        F.check_chain(chain, ctx, f"formula {label} ({what})", rtol=rtol, atol=atol)


def planar(z, u_hat, w, b):
    """The planar map as defined, (13.2), written here from the definition."""
    return z + u_hat * np.tanh(dot(w, z) + b)


def fd_jacobian(f, z, h=1e-6):
    Z = len(z)
    J = np.empty((Z, Z))
    for j in range(Z):
        e = np.zeros(Z)
        e[j] = h
        J[:, j] = (f(z + e) - f(z - e)) / (2 * h)
    return J


def instance(seed, Z=3, c_target=None):
    rng = np.random.default_rng(seed)
    w, u, z = rng.standard_normal(Z), rng.standard_normal(Z), rng.standard_normal(Z)
    if c_target is not None:                      # make <w, u> = c_target before reparameterizing
        u += (c_target - dot(w, u)) / dot(w, w) * w
    u_hat = flows.u_hat_forward(u[None], w[None])[0][0]
    return dict(z=z, w=w, upsilon=u_hat, b=np.array(rng.standard_normal())), u


SEEDS = [(0, None), (1, -3.0), (2, 4.0)]


def test_formula_13_1():
    rng = np.random.default_rng(11)
    K, Z = 3, 2
    u, w, b = 0.9 * rng.standard_normal((1, K, Z)), 0.9 * rng.standard_normal((1, K, Z)), rng.standard_normal((1, K))
    u_hat = flows.u_hat_forward(u, w)[0]
    mu, logvar = np.array([[0.2, -0.3]]), np.array([[-0.5, 0.4]])
    z0 = mu[0] + np.exp(0.5 * logvar[0]) * rng.standard_normal(Z)
    zs = [z0]
    for k in range(K):
        zs.append(planar(zs[-1], u_hat[0, k], w[0, k], b[0, k]))
    J = np.stack([fd_jacobian(lambda v, k=k: planar(v, u_hat[0, k], w[0, k], b[0, k]), zs[k]) for k in range(K)])

    def q0(z):
        return float(np.exp(-0.5 * np.sum(np.log(2 * np.pi) + logvar[0] + (z - mu[0]) ** 2 * np.exp(-logvar[0]))))

    def inverse(y):
        return flows.flow_inverse(y[None, None], u_hat, w, b)[0, 0]

    def q_truth(y):          # the density of z_K from the inverse map: q_0(f^-1(y)) |det d f^-1 / dy|
        return q0(inverse(y)) * abs(np.linalg.det(fd_jacobian(inverse, y)))

    def q_package(y):
        return float(np.exp(flows.flowed_log_density(y[None, None], mu, logvar, u, w, b)[0, 0]))

    for what, q_K in (("truth", q_truth), ("package", q_package)):
        run("13.1", {}, lambda p, q_K=q_K: {"q_{K}": q_K, "q_{0}": q0, "z_{K}": zs[-1], "z_{0}": z0, "J": J},
            what, rtol=1e-6)


@pytest.mark.parametrize("seed,c", SEEDS)
def test_formula_13_2(seed, c):
    params, _ = instance(seed, c_target=c)
    f = lambda z, p=params: flows.planar_forward(z[None, None], p["upsilon"][None], p["w"][None], p["b"][None])[0][0, 0]
    run("13.2", params, lambda p: {"f": f}, "package")


@pytest.mark.parametrize("seed,c", SEEDS)
def test_formula_13_3(seed, c):
    params, _ = instance(seed, c_target=c)
    p = params
    J = fd_jacobian(lambda v: planar(v, p["upsilon"], p["w"], p["b"]), p["z"])
    psi_truth = (J - np.eye(3)).T @ p["upsilon"] / dot(p["upsilon"], p["upsilon"])   # J - I = u_hat psi^T
    t = flows.planar_forward(p["z"][None, None], p["upsilon"][None], p["w"][None], p["b"][None])[2][3][0, 0]
    for what, psi in (("truth", psi_truth), ("package", (1 - t * t) * p["w"])):
        run("13.3", params, lambda _, psi=psi: {"J": J, "I": np.eye(3), "psi": lambda z, psi=psi: psi}, what,
            rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed,c", SEEDS)
def test_formula_13_4(seed, c):
    params, _ = instance(seed, c_target=c)
    p = params
    rng = np.random.default_rng(seed + 100)
    J = fd_jacobian(lambda v: planar(v, p["upsilon"], p["w"], p["b"]), p["z"])
    _, logdet, cache = flows.planar_forward(p["z"][None, None], p["upsilon"][None], p["w"][None], p["b"][None])
    t_truth = np.tanh(dot(p["w"], p["z"]) + p["b"])
    for what, t in (("truth", t_truth), ("package", cache[3][0, 0])):
        run("13.4", params, lambda _, t=t: {"J": J, "I": np.eye(3), "t": t, "a": rng.standard_normal(3),
                                            "c": rng.standard_normal(3)}, what, rtol=1e-6)
    expected = np.log(abs(1 + (1 - t_truth ** 2) * dot(p["w"], p["upsilon"])))
    print(f"package log-det {logdet[0, 0]:.12f} vs slogdet of the Jacobian {np.linalg.slogdet(J)[1]:.12f}")
    assert abs(logdet[0, 0] - expected) < 1e-12 and abs(logdet[0, 0] - np.linalg.slogdet(J)[1]) < 1e-6


@pytest.mark.parametrize("seed,c", SEEDS)
def test_formula_13_5(seed, c):
    params, _ = instance(seed, c_target=c)

    def truth(p):            # log|det| of the full matrix I + u_hat psi^T (no determinant lemma)
        t = np.tanh(dot(p["w"], p["z"]) + p["b"])
        return {"ell": np.linalg.slogdet(np.eye(3) + outer(p["upsilon"], (1 - t * t) * p["w"]))[1], "t": t}

    def package(p):
        _, logdet, cache = flows.planar_forward(p["z"][None, None], p["upsilon"][None], p["w"][None], p["b"][None])
        return {"ell": logdet[0, 0], "t": cache[3][0, 0]}

    for what, build in (("truth", truth), ("package", package)):
        run("13.5", params, build, what, rtol=1e-6, atol=1e-8)
    # and the package's backward pass gives the same numbers as the display (the gradient checks' other side)
    p = params
    _, _, cache = flows.planar_forward(p["z"][None, None], p["upsilon"][None], p["w"][None], p["b"][None])
    dz, du_hat, dw, db = flows.planar_backward(np.zeros((1, 1, 3)), np.ones((1, 1)), cache)
    t = cache[3][0, 0]
    c_ = dot(p["w"], p["upsilon"])
    D = 1 + (1 - t * t) * c_
    dl_db = -2 * (1 - t * t) * t * c_ / D
    for name, ours, expected in (("b", db[0], dl_db), ("z", dz[0, 0], dl_db * p["w"]),
                                 ("u_hat", du_hat[0], (1 - t * t) * p["w"] / D),
                                 ("w", dw[0], dl_db * p["z"] + (1 - t * t) * p["upsilon"] / D)):
        print(f"d log-det / d {name}: package {ours} vs display {expected}")
        assert np.allclose(ours, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("a", [-50.0, -3.0, 0.0, 0.7, 30.0])
def test_formula_13_6(a):
    rng = np.random.default_rng(6)
    w, u = rng.standard_normal(3), rng.standard_normal(3)
    u += (a - dot(w, u)) / dot(w, w) * w
    u_hat = flows.u_hat_forward(u[None], w[None])[0][0]
    m = lambda x: -1 + np.logaddexp(0.0, x)
    run("13.6", {}, lambda _: {"upsilon": u_hat, "u": u, "w": w, "m": m, "a": np.array(a)}, "package",
        rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed,c", SEEDS)
def test_formula_13_7(seed, c):
    _, u = instance(seed, c_target=c)
    rng = np.random.default_rng(seed + 7)
    w, g_bar = rng.standard_normal(3), rng.standard_normal(3)

    def u_hat_def(u_):      # (13.6) written here, for the truth's differences
        a = dot(w, u_)
        return u_ + (-1 + np.logaddexp(0.0, a) - a) * w / dot(w, w)
    h = 1e-6
    truth = np.array([(dot(g_bar, u_hat_def(u + h * e)) - dot(g_bar, u_hat_def(u - h * e))) / (2 * h) for e in np.eye(3)])
    _, cache = flows.u_hat_forward(u[None], w[None])
    package = flows.u_hat_backward(g_bar[None], cache)[0][0]
    for what, u_bar in (("truth", truth), ("package", package)):
        run("13.7", {}, lambda _, u_bar=u_bar: {"u_{bar}": u_bar, "g_{bar}": g_bar, "w": w, "a": dot(w, u)}, what,
            rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed,c", SEEDS + [(3, -60.0)])
def test_formula_13_8(seed, c):
    params, _ = instance(seed, c_target=c)
    for t in (0.0, 0.3, -0.99, float(np.tanh(dot(params["w"], params["z"]) + params["b"]))):
        run("13.8", {}, lambda _, t=t: {"t": np.array(t), "w": params["w"], "upsilon": params["upsilon"]}, "package",
            atol=1e-12)


@pytest.mark.parametrize("seed,c", SEEDS)
def test_formula_13_9(seed, c):
    params, _ = instance(seed, c_target=c)
    p = params
    y = planar(p["z"], p["upsilon"], p["w"], p["b"])
    z_package = flows.planar_inverse(y[None, None], p["upsilon"][None], p["w"][None], p["b"][None])[0, 0]
    for what, z in (("truth", p["z"]), ("package", z_package)):
        s = dot(p["w"], z) + p["b"]
        run("13.9", {}, lambda _, z=z, s=s: {"y": y, "z": z, "s": s, "w": p["w"], "b": p["b"],
                                             "upsilon": p["upsilon"]}, what, rtol=1e-9, atol=1e-10)


# ---- radial flows (13.10)-(13.15) ---------------------------------------------------------------

def radial_instance(seed, a_raw=None, c_raw=None, Z=3):
    """z, a centre z0, alpha and beta from raw a, c by the package's map (13.13), r, v, and the map as defined."""
    rng = np.random.default_rng(seed)
    z, z0 = rng.standard_normal(Z), rng.standard_normal(Z)
    a = rng.standard_normal() if a_raw is None else a_raw
    c = rng.standard_normal() if c_raw is None else c_raw
    alpha, beta, _ = flows.radial_params_forward(np.array(a), np.array(c))
    r = np.linalg.norm(z - z0)
    f = lambda v: v + beta / (alpha + np.linalg.norm(v - z0)) * (v - z0)       # (13.10) written here
    return dict(z=z, z0=z0, a=np.array(a), c=np.array(c), alpha=alpha, beta=beta, r=r, v=(z - z0) / r, f=f, Z=Z)


RADIAL = [(0, None, None), (1, -3.0, -3.0), (2, 2.0, -6.0), (3, -1.0, 4.0)]


@pytest.mark.parametrize("seed,a,c", RADIAL)
def test_formula_13_10(seed, a, c):
    p = radial_instance(seed, a, c)
    f = lambda z: flows.radial_forward(z[None, None], p["z0"][None], p["alpha"][None], p["beta"][None])[0][0, 0]
    run("13.10", {}, lambda _: {"f": f, "z": p["z"], "z_{0}": p["z0"], "beta": p["beta"], "r": p["r"],
                                "n": lambda d: np.linalg.norm(d, axis=-1), "h": lambda r: 1 / (p["alpha"] + r),
                                "alpha": p["alpha"]}, "package")


@pytest.mark.parametrize("seed,a,c", RADIAL)
def test_formula_13_11(seed, a, c):
    p = radial_instance(seed, a, c)
    J = fd_jacobian(p["f"], p["z"])
    run("13.11", {"r": p["r"], "alpha": p["alpha"]},
        lambda q: {"J": J, "I": np.eye(3), "beta": p["beta"], "v": p["v"], "h": 1 / (q["alpha"] + q["r"])},
        "truth", rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed,a,c", RADIAL)
def test_formula_13_12(seed, a, c):
    p = radial_instance(seed, a, c)
    J = fd_jacobian(p["f"], p["z"])
    run("13.12", {"r": p["r"], "alpha": p["alpha"]},
        lambda q: {"J": J, "beta": p["beta"], "Z": 3.0, "h": 1 / (q["alpha"] + q["r"])}, "truth", rtol=1e-6)
    logdet = flows.radial_forward(p["z"][None, None], p["z0"][None], p["alpha"][None], p["beta"][None])[1][0, 0]
    h = 1 / (p["alpha"] + p["r"])
    expected = 2 * np.log(abs(1 + p["beta"] * h)) + np.log(abs(1 + p["beta"] * p["alpha"] * h * h))
    print(f"package log-det {logdet:.12f} vs display {expected:.12f} vs slogdet {np.linalg.slogdet(J)[1]:.12f}")
    assert abs(logdet - expected) < 1e-12 and abs(logdet - np.linalg.slogdet(J)[1]) < 1e-6


@pytest.mark.parametrize("raw", [(-40.0, -40.0), (-3.0, 0.5), (0.0, 0.0), (2.0, -30.0), (30.0, 30.0)])
def test_formula_13_13(raw):
    p = radial_instance(5, *raw)
    h = 1 / (p["alpha"] + p["r"])
    run("13.13", {}, lambda _: {"alpha": p["alpha"], "beta": p["beta"], "a": p["a"], "c": p["c"], "h": h, "r": p["r"]},
        "package", rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed,a,c", RADIAL)
def test_formula_13_14(seed, a, c):
    p = radial_instance(seed, a, c)
    v, z0 = p["v"], p["z0"]

    def truth(q):             # log|det| of the Jacobian matrix (13.11) itself, by slogdet
        h = 1 / (q["alpha"] + q["r"])
        J = (1 + q["beta"] * h) * np.eye(3) - q["beta"] * h * h * q["r"] * outer(v, v)
        return {"ell": np.linalg.slogdet(J)[1], "h": h, "Z": 3.0}

    def package(q):          # the package's step at the point r along v from the centre
        z = z0 + q["r"] * v
        ell = flows.radial_forward(z[None, None], z0[None], np.array([q["alpha"]]), np.array([q["beta"]]))[1][0, 0]
        return {"ell": ell, "h": 1 / (q["alpha"] + q["r"]), "Z": 3.0}

    for what, build in (("truth", truth), ("package", package)):
        run("13.14", {"alpha": p["alpha"], "beta": p["beta"], "r": p["r"]}, build, what, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed,a,c", RADIAL)
def test_formula_13_15(seed, a, c):
    p = radial_instance(seed, a, c)
    y = p["f"](p["z"])
    z_package = flows.radial_inverse(y[None, None], p["z0"][None], p["alpha"][None], p["beta"][None])[0, 0]
    for what, z in (("truth", p["z"]), ("package", z_package)):
        run("13.15", {}, lambda _, z=z: {"y": y, "z_{0}": p["z0"], "alpha": p["alpha"], "beta": p["beta"],
                                         "r": np.linalg.norm(z - p["z0"]), "n": lambda d: np.linalg.norm(d, axis=-1)},
            what, rtol=1e-9, atol=1e-10)
