"""check_layer checks every parameter a layer exposes, or refuses the layer by name."""
import numpy as np
import pytest

from numpyvae import InputError
from numpyvae.gradcheck import TOL, check_layer, layer_params
from numpyvae.layers import Linear, Tanh


class Scale:
    """out = x * gamma + beta, parameters named gamma/beta (not W/b); grads dgamma/dbeta."""

    def __init__(self, d, rng, wrong=False):
        self.gamma, self.beta = rng.standard_normal(d), rng.standard_normal(d)
        self.dgamma, self.dbeta = np.zeros(d), np.zeros(d)
        self.wrong = wrong

    def forward(self, x):
        self.x = x
        return x * self.gamma + self.beta

    def backward(self, dout):
        self.dgamma = (dout * self.x).sum(axis=0) * (0.5 if self.wrong else 1.0)
        self.dbeta = dout.sum(axis=0)
        return dout * self.gamma


class DictScale:
    """The same layer with its parameters in a params dict and gradients in grads."""

    def __init__(self, d, rng):
        self.params = {"gamma": rng.standard_normal(d)}
        self.grads = {"gamma": np.zeros(d)}

    def forward(self, x):
        self.x = x
        return x * self.params["gamma"]

    def backward(self, dout):
        self.grads["gamma"] = (dout * self.x).sum(axis=0)
        return dout * self.params["gamma"]


class Unnamed:
    """A parameter 'weight' whose gradient is called 'grad_weight': no dP partner."""

    def __init__(self, d, rng):
        self.weight = rng.standard_normal(d)
        self.grad_weight = np.zeros(d)

    def forward(self, x):
        self.x = x
        return x * self.weight

    def backward(self, dout):
        self.grad_weight = (dout * self.x).sum(axis=0)
        return dout * self.weight


def by_name(checks):
    return {c.name: c for c in checks}


def test_parameters_not_named_W_b_are_checked():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    checks = by_name(check_layer(Scale(3, rng), x, rng))
    assert sorted(checks) == ["beta", "gamma", "x"], f"ours {sorted(checks)} vs expected ['beta', 'gamma', 'x']"
    for c in checks.values():
        assert c.passed and c.error < TOL, str(c)
    wrong = by_name(check_layer(Scale(3, rng, wrong=True), x, rng))
    assert not wrong["gamma"].passed, f"a halved dgamma passed: {wrong['gamma']}"
    assert wrong["beta"].passed and wrong["x"].passed, f"{wrong['beta']}; {wrong['x']}"


def test_params_dict_is_checked():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3))
    checks = by_name(check_layer(DictScale(3, rng), x, rng))
    assert sorted(checks) == ["params['gamma']", "x"], f"ours {sorted(checks)}"
    assert all(c.passed for c in checks.values()), [str(c) for c in checks.values()]


def test_parameter_without_gradient_is_refused_by_name():
    rng = np.random.default_rng(2)
    with pytest.raises(InputError, match=r"weight changes the output but has no gradient"):
        check_layer(Unnamed(3, rng), rng.standard_normal((4, 3)), rng)


def test_params_dict_without_grads_is_refused():
    rng = np.random.default_rng(3)
    layer = DictScale(3, rng)
    del layer.grads
    with pytest.raises(InputError, match=r"params\['gamma'\] has no gradient"):
        check_layer(layer, rng.standard_normal((4, 3)), rng)


def test_linear_and_caching_layers_keep_their_names():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 5))
    lin = Linear(5, 3, rng=rng, dtype=np.float64)
    names = [name for name, _, _ in layer_params(lin, x)]
    assert names == ["W", "b"], f"ours {names} vs expected ['W', 'b']"
    assert [c.name for c in check_layer(lin, x, rng)] == ["x", "W", "b"]
    # Tanh caches its output (a float array): it is no parameter and is not refused
    assert [c.name for c in check_layer(Tanh(), x, rng)] == ["x"]
