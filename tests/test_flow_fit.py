"""A planar flow fitted to a known 2-D density (numpyvae/flow_fit.py, reproduce/flow_banana.py).

The truths: the banana's reverse KL from a diagonal Gaussian in closed form, checked by quadrature and
shown to be least at the stated optimum; the fitted flow's KL computed by quadrature (q_K on a grid by
inverting the flow), not by the Monte Carlo objective it was trained on.
"""
import importlib
import json
import pathlib

import numpy as np
import pytest

from numpyvae import flow_fit
from numpyvae.gradcheck import compare, numerical_gradient

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULT = REPO / "reproduce" / "results" / "flow_banana" / "result.json"
TARGET = flow_fit.Banana(a=1.0, s=0.5)


def test_banana_is_a_density_and_its_gradient_is_right():
    points, cell = flow_fit.grid(lo=(-7, -6), hi=(7, 50), n=(561, 2241))
    mass = np.exp(TARGET.log_prob(points)).sum() * cell
    print(f"integral of the banana: {mass:.8f} vs 1")
    assert abs(mass - 1) < 1e-6
    z = np.random.default_rng(0).standard_normal((5, 2))
    check = compare("z", TARGET.log_prob_grad(z), numerical_gradient(lambda: float(TARGET.log_prob(z).sum()), z))
    print(check)
    assert check.error < 1e-7


@pytest.mark.parametrize("m,v", [((0.0, 0.22069555463432966), (0.22069555463432966, 0.25)),
                                 ((0.3, 0.5), (0.5, 0.3)), ((-0.5, 1.0), (1.0, 1.0))])
def test_closed_form_gaussian_kl_matches_quadrature(m, v):
    points, cell = flow_fit.grid(lo=(-8, -8), hi=(8, 12), n=(641, 801))
    log_q = -0.5 * np.sum(np.log(2 * np.pi * np.array(v)) + (points - m) ** 2 / np.array(v), axis=-1)
    kl, mass = flow_fit.kl_by_quadrature(TARGET, log_q, points, cell)
    ours = TARGET.kl_diagonal_gaussian(m, v)
    print(f"KL(N(m, v) || banana): closed form {ours:.8f} vs quadrature {kl:.8f} (mass {mass:.8f})")
    assert abs(mass - 1) < 1e-6 and abs(ours - kl) < 1e-6


def test_best_diagonal_gaussian_is_the_least_kl():
    m, v, kl = TARGET.best_diagonal_gaussian()
    for i in range(4):
        for step in (-1e-3, 1e-3):
            x = [*m, *v]
            x[i] += step
            worse = TARGET.kl_diagonal_gaussian(x[:2], x[2:])
            print(f"coordinate {i} moved by {step}: KL {worse:.10f} vs the optimum's {kl:.10f}")
            assert worse > kl


def test_reverse_kl_gradient():
    rng = np.random.default_rng(3)
    params = flow_fit.init_params(4, rng, scale=0.8)
    params["logvar"] += 0.3
    eps = rng.standard_normal((7, 1, 2))
    _, grads = flow_fit.reverse_kl_and_grads(TARGET, params, eps)
    f = lambda: flow_fit.reverse_kl_and_grads(TARGET, params, eps)[0]
    for name, p in params.items():
        check = compare(name, grads[name], numerical_gradient(f, p), 1e-4 * max(1.0, abs(f())))
        print(check)
        assert check.error < 1e-7


def test_quick_fit_beats_the_best_diagonal_gaussian(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "reproduce"))
    result = importlib.import_module("flow_banana").main(["--quick", "--out", str(tmp_path)])
    gauss = result["best_diagonal_gaussian"]
    assert abs(gauss["kl_quadrature"] - gauss["kl_closed_form"]) < 1e-4
    for run in result["runs"]:
        print(f"K = {run['K']}: KL by quadrature {run['kl_quadrature']:.4f} vs best diagonal Gaussian "
              f"{gauss['kl_closed_form']:.4f}; mass {run['mass']:.6f}")
        assert abs(run["mass"] - 1) < 1e-4
        assert run["kl_quadrature"] < gauss["kl_closed_form"] - 0.1
    assert (tmp_path / "densities.png").stat().st_size > 1000


def test_committed_fit_falls_with_K_and_beats_the_gaussian():
    result = json.loads(RESULT.read_text())
    assert not result["quick"] and sorted({r["K"] for r in result["runs"]}) == [2, 8, 32]
    gauss = result["best_diagonal_gaussian"]["kl_closed_form"]
    mean = {K: np.mean([r["kl_quadrature"] for r in result["runs"] if r["K"] == K]) for K in (2, 8, 32)}
    print("KL by quadrature, mean over seeds:", mean, "best diagonal Gaussian:", gauss)
    assert gauss > mean[2] > mean[8] > mean[32]
    assert all(abs(r["mass"] - 1) < 1e-4 for r in result["runs"])
    table = (RESULT.parent / "table.md").read_text()
    for K in (2, 8, 32):
        assert f"| planar flow, K = {K} | {mean[K]:.4f} |" in table, f"table.md does not show K = {K}'s {mean[K]:.4f}"
