"""The gradient checker's own numbers: stencils, relative error, floors, defaults, sensitivity.

A gradient check is only as good as the checker.  These tests pin its
arithmetic to values computed by hand, so that a wrong stencil weight, a
wrong floor or a wrong default cannot hide behind "the check passed".
"""
import numpy as np
import pytest

from numpyvae import VAE, InputError
from numpyvae.estimators import log_weights
from numpyvae.gradcheck import (FLOOR, TOL, check_function, check_layer, check_model, compare, freeze,
                                numerical_gradient, rel_error, surrogate_loss)


@pytest.mark.parametrize("order, tol", [(2, 1e-8), (4, 1e-10)])
def test_both_stencils_give_the_derivative_of_a_cubic(order, tol):
    """f = sum(x^3 + 2x): df/dx = 3x^2 + 2; centred differences are exact for a cubic up to
    h^2 f'''/6 = h^2 (order 2) and exactly (order 4)."""
    x = np.array([[-1.5, 0.2, 2.0]])
    f = lambda: float(np.sum(x ** 3 + 2 * x))
    ours = numerical_gradient(f, x, order=order)
    expected = 3 * x ** 2 + 2 + (1e-10 if order == 2 else 0)       # order 2: + h^2 = 1e-10 exactly
    i = np.unravel_index(np.argmax(np.abs(ours - expected)), x.shape)
    assert np.allclose(ours, expected, rtol=0, atol=tol), f"order {order} at {i}: ours {ours[i]!r} vs expected {expected[i]!r}"
    assert np.array_equal(x, [[-1.5, 0.2, 2.0]]), f"x not restored: ours {x} vs expected [[-1.5, 0.2, 2.0]]"


def test_numerical_gradient_refuses_float32_and_unknown_orders():
    for dtype in (np.float32, np.complex128, np.longdouble):
        with pytest.raises(InputError, match="float64"):
            numerical_gradient(lambda: 0.0, np.zeros(2, dtype=dtype))
    with pytest.raises(InputError, match="order"):
        numerical_gradient(lambda: 0.0, np.zeros(2), order=3)


def test_rel_error_and_compare_by_hand():
    # ||(3, -4)|| = 5; ||(3, 0)|| + ||(0, 4)|| = 7
    assert rel_error([3.0, 0.0], [0.0, 4.0]) == pytest.approx(5 / 7, rel=1e-15), rel_error([3.0, 0.0], [0.0, 4.0])
    # below the floor the denominator is the floor: 1e-6 / 1e-4
    assert rel_error([1e-6], [0.0]) == pytest.approx(1e-2, rel=1e-12), rel_error([1e-6], [0.0])
    assert rel_error([1e-6], [0.0], floor=1e-3) == pytest.approx(1e-3, rel=1e-12)
    c = compare("g", np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.5, 4.0]]))
    assert (c.index, c.ours, c.expected) == ((1, 0), 3.0, 3.5), f"ours {c.index, c.ours, c.expected} vs expected ((1, 0), 3.0, 3.5)"
    assert not c.passed and "index (1, 0)" in str(c) and "ours 3 vs expected 3.5" in str(c), str(c)
    empty = compare("none", np.zeros(0), np.zeros(0))
    assert (empty.index, empty.ours, empty.expected, empty.error) == ((), 0.0, 0.0, 0.0), repr(empty)
    for a, b in ((2,), (3,)), ((3,), (2,)), ((2, 3), (3, 2)):
        with pytest.raises(InputError, match="shape"):
            compare("g", np.zeros(a), np.zeros(b))


def test_check_function_uses_the_floor_of_the_function_value():
    """floor = FLOOR * max(1, |f|): a zero gradient 1e-9 off passes when |f| is large, not when small."""
    x = np.zeros(2)
    c = check_function(lambda: 1e6 + float(np.sum(x * 0)), np.array([1e-9, 0.0]), x)
    assert c.error == pytest.approx(1e-9 / (FLOOR * 1e6), rel=1e-6), str(c)
    c = check_function(lambda: 0.5 + float(np.sum(x * 0)), np.array([1e-9, 0.0]), x)
    assert c.error == pytest.approx(1e-9 / FLOOR, rel=1e-6), str(c)    # max(1, 0.5) = 1


def small_vae():
    return VAE(5, [4], 2, likelihood="bernoulli", activation="tanh", dtype=np.float64, seed=0)


def test_check_model_notices_a_backward_off_by_three_parts_in_ten_million():
    model = small_vae()
    rng = np.random.default_rng(0)
    x, eps = rng.uniform(size=(3, 5)), rng.standard_normal((3, 2))
    assert all(c.passed for c in check_model(model, x, eps, "mc")), "the correct backward must pass"
    real = model.loss_and_grads

    def slightly_wrong(*args, **kwargs):
        loss, grads = real(*args, **kwargs)
        return loss, {name: g * (1 + 3e-7) for name, g in grads.items()}

    model.loss_and_grads = slightly_wrong
    failed = [c for c in check_model(model, x, eps, "mc") if not c.passed]
    assert len(failed) == len(model.params), f"ours {len(failed)} checks failed vs expected {len(model.params)}: {failed}"


def test_surrogate_and_freeze_default_to_beta_one():
    model = small_vae()
    rng = np.random.default_rng(1)
    x, eps = rng.uniform(size=(3, 5)), rng.standard_normal((2, 3, 2))
    frozen = freeze(model, x, eps)
    mu, logvar, z, _, log_px, _ = model.forward(x, eps)
    expected_f = log_weights(log_px, z, mu, logvar, 1.0)
    assert np.allclose(frozen["f"], expected_f, rtol=1e-13), f"ours {frozen['f']} vs expected {expected_f}"
    for est in ("analytic", "mc", "iwae", "stl"):       # stl's surrogate has the mc value
        ours = surrogate_loss(model, x, eps, est, frozen)
        expected = model.loss_and_grads(x, eps=eps, estimator=est if est != "stl" else "mc")[0]
        assert ours == pytest.approx(expected, rel=1e-13), f"{est}: ours {ours} vs expected loss {expected}"
    # 2-D eps means one sample: the same numbers as eps[None]
    assert surrogate_loss(model, x, eps[0], "mc", freeze(model, x, eps[0])) == \
        pytest.approx(model.loss_and_grads(x, eps=eps[0], estimator="mc")[0], rel=1e-13)


class ListScale:
    """A layer keeping its parameter in a list, with no gradient: must be refused by name."""

    def __init__(self, d, rng):
        self.weights = [rng.standard_normal(d)]
        self.cache = {"seen": np.zeros(d)}          # a float cache in a dict: rewritten by forward, not refused

    def forward(self, x):
        self.cache["seen"] = x.sum(axis=0)
        return x * self.weights[0]

    def backward(self, dout):
        return dout * self.weights[0]


def test_parameter_in_a_list_without_gradient_is_refused_and_dict_caches_are_not():
    rng = np.random.default_rng(2)
    layer = ListScale(3, rng)
    before = layer.weights[0].copy()
    with pytest.raises(InputError, match=r"weights\[0\] changes the output but has no gradient"):
        check_layer(layer, rng.standard_normal((4, 3)), rng)
    assert np.array_equal(layer.weights[0], before), f"ours {layer.weights[0]} vs expected restored {before}"
    del layer.weights
    layer.forward = lambda x: x + 0 * layer.cache.setdefault("seen", x.sum(axis=0))
    layer.backward = lambda dout: dout
    checks = check_layer(layer, rng.standard_normal((4, 3)), rng)
    assert [c.name for c in checks] == ["x"] and checks[0].error < TOL, [str(c) for c in checks]


def test_freeze_reads_two_dimensional_eps_as_one_sample():
    model = small_vae()
    rng = np.random.default_rng(3)
    x, eps = rng.uniform(size=(3, 5)), rng.standard_normal((3, 2))
    a, b = freeze(model, x, eps), freeze(model, x, eps[None])
    for key in ("mu", "logvar", "z", "f"):
        assert a[key].shape == b[key].shape and np.allclose(a[key], b[key], rtol=1e-14), \
            f"{key}: ours {a[key]} vs expected {b[key]}"


@pytest.mark.parametrize("which", ["check_model", "check_layer"])
def test_the_floor_handed_to_compare_is_floor_times_max_of_one_and_abs_f(which, monkeypatch):
    """The documented floor, 1e-4 * max(1, |f|), here with |f| < 1: the floor is 1e-4 itself."""
    import numpyvae.gradcheck as gc
    floors = []
    real = gc.compare
    monkeypatch.setattr(gc, "compare", lambda name, ours, expected, floor=FLOOR: floors.append(floor) or real(name, ours, expected, floor))
    rng = np.random.default_rng(4)
    if which == "check_model":
        model = VAE(1, [2], 1, dtype=np.float64, seed=0)                # one pixel: the loss is about log 2
        x, eps = np.full((2, 1), 0.5), rng.standard_normal((2, 1))
        f = model.loss_and_grads(x, eps=eps, estimator="mc")[0]
        assert 0 < abs(f) < 1, f"ours loss {f} vs expected below 1 (so that max(1, |f|) = 1 matters)"
        gc.check_model(model, x, eps, "mc")
        expected = FLOOR
    else:
        from numpyvae.layers import Linear
        lin = Linear(2, 2, rng=rng, dtype=np.float64)
        lin.W *= 1e-3                      # f = sum(out * g) far below 1: the floor is FLOOR itself
        gc.check_layer(lin, 1e-3 * rng.standard_normal((2, 2)), rng)
        expected = FLOOR
        assert floors and all(fl == pytest.approx(expected, rel=1e-12) for fl in floors), f"ours {floors} vs {expected}"
        floors.clear()                     # and with |f| = 50: the floor is 50 * FLOOR
        lin.b[:] = 0.0
        x = np.full((1, 2), 5.0)
        lin.W[:] = [[1.0, 0.0], [0.0, 0.0]]          # out = (5, 0); f = sum(out * g) with g from the rng
        g_rng = np.random.default_rng(8)
        g = g_rng.standard_normal((1, 2))
        gc.check_layer(lin, x, np.random.default_rng(8))
        expected = FLOOR * max(1.0, abs(5.0 * g[0, 0]))
        assert abs(5.0 * g[0, 0]) > 1, "the example needs |f| > 1"
    assert floors and all(fl == pytest.approx(expected, rel=1e-12) for fl in floors), f"ours {floors} vs expected {expected}"


class ZeroShift:
    """out = x + shift with shift initialised to zeros and no gradient: still a parameter."""

    def __init__(self, d):
        self.shift = np.zeros(d)

    def forward(self, x):
        self.x = x
        return x + self.shift

    def backward(self, dout):
        return dout


def test_an_all_zero_parameter_without_gradient_is_refused():
    """The probe that tells parameters from caches must move an array that is all zeros too."""
    rng = np.random.default_rng(5)
    with pytest.raises(InputError, match=r"shift changes the output but has no gradient"):
        check_layer(ZeroShift(3), rng.standard_normal((2, 3)), rng)


class ListGrad:
    """out = x * gamma with its gradient dgamma stored as a plain list (a student's backward might)."""

    def __init__(self, d, rng):
        self.gamma = rng.standard_normal(d)
        self.dgamma = np.zeros(d)

    def forward(self, x):
        self.x = x
        return x * self.gamma

    def backward(self, dout):
        self.dgamma = list((dout * self.x).sum(axis=0))
        return dout * self.gamma


def test_a_gradient_held_as_a_list_is_checked_as_numbers():
    rng = np.random.default_rng(6)
    layer = ListGrad(3, rng)
    checks = {c.name: c for c in check_layer(layer, rng.standard_normal((4, 3)), rng)}
    assert checks["gamma"].error < TOL, str(checks["gamma"])


class Guarded:
    """out = x * w, whose forward refuses w > 10 -- and w has no gradient."""

    def __init__(self):
        self.w = np.full(3, 6.0)

    def forward(self, x):
        if np.any(self.w > 10):
            raise ValueError("w out of range")
        self.x = x
        return x * self.w

    def backward(self, dout):
        return dout * self.w


def test_an_array_whose_perturbation_makes_forward_raise_counts_as_a_parameter():
    """The probe moves w from 6 to 6 + 0.5 + |6| = 12.5, which forward refuses: that counts as a change."""
    rng = np.random.default_rng(7)
    layer = Guarded()
    with pytest.raises(InputError, match=r"w changes the output but has no gradient"):
        check_layer(layer, rng.standard_normal((2, 3)), rng)


class FixedMask:
    """out = x * mask with a fixed boolean mask (no float, no parameter): not refused, not checked."""

    def __init__(self):
        self.mask = np.array([True, False, True])

    def forward(self, x):
        self.x = x
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


def test_a_boolean_array_is_no_parameter():
    rng = np.random.default_rng(9)
    checks = check_layer(FixedMask(), rng.standard_normal((2, 3)), rng)
    assert [c.name for c in checks] == ["x"] and checks[0].error < TOL, [str(c) for c in checks]
