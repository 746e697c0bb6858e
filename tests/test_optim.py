import numpy as np
import pytest

from numpyvae import InputError
from numpyvae.optim import OPTIMIZERS, SGD, Adagrad, Adam


def reference_adam(p, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    m = v = 0
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


def test_adam_matches_the_paper_formula():
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(5)]
    params = {"w": p0.copy()}
    opt = Adam(params, lr=1e-2)
    for g in grads:
        opt.step({"w": g})
    np.testing.assert_allclose(params["w"], reference_adam(p0, grads, lr=1e-2), rtol=1e-12)


def test_sgd_momentum_and_adagrad_formulas():
    rng = np.random.default_rng(1)
    p0, g1, g2 = rng.normal(size=(3, 5))
    params = {"w": p0.copy()}
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.step({"w": g1})
    opt.step({"w": g2})
    v1 = -0.1 * g1
    v2 = 0.9 * v1 - 0.1 * g2
    np.testing.assert_allclose(params["w"], p0 + v1 + v2, rtol=1e-12)
    params = {"w": p0.copy()}
    opt = Adagrad(params, lr=0.1)
    opt.step({"w": g1})
    opt.step({"w": g2})
    G1, G2 = g1**2, g1**2 + g2**2
    expected = p0 - 0.1 * g1 / (np.sqrt(G1) + 1e-8) - 0.1 * g2 / (np.sqrt(G2) + 1e-8)
    np.testing.assert_allclose(params["w"], expected, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_minimise_a_quadratic_in_float32(name):
    params = {"w": np.full(4, 5.0, dtype=np.float32)}
    opt = OPTIMIZERS[name](params, lr=1.0 if name == "adagrad" else 0.1)
    for _ in range(500):
        opt.step({"w": 2 * params["w"]})            # gradient of ||w||^2
    assert params["w"].dtype == np.float32
    assert np.abs(params["w"]).max() < 0.2, f"{name}: ours {params['w']} vs expected near 0"


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_round_trip(name):
    rng = np.random.default_rng(2)
    a, b = {"w": rng.normal(size=3)}, {}
    b["w"] = a["w"].copy()
    oa, ob = OPTIMIZERS[name](a), OPTIMIZERS[name](b)
    oa.step({"w": np.ones(3)})
    ob.step({"w": np.ones(3)})
    state = {k: v.copy() for k, v in oa.state().items()}
    fresh = {"w": b["w"].copy()}
    oc = OPTIMIZERS[name](fresh)
    oc.load_state(state)
    for g in (rng.normal(size=3), rng.normal(size=3)):
        ob.step({"w": g})
        oc.step({"w": g})
    np.testing.assert_array_equal(fresh["w"], b["w"])


def test_bad_arguments():
    with pytest.raises(InputError, match="lr"):
        Adam({"w": np.zeros(2)}, lr=-1)
    with pytest.raises(InputError, match=r"grads\['w'\]"):
        Adam({"w": np.zeros(2)}).step({"w": np.zeros(3)})
