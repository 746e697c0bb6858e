import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from numpyvae import InputError
from numpyvae.gradcheck import check_layer
from numpyvae.layers import ACTIVATIONS, Linear, sigmoid, softplus
from numpyvae.mlp import MLP

TOL = 1e-7
dims = st.integers(1, 6)


def assert_checks(checks):
    for c in checks:
        assert c.error < TOL, str(c)


@given(n=dims, d_in=dims, d_out=dims, seed=st.integers(0, 2**32 - 1), init=st.sampled_from(["glorot", "normal"]))
def test_linear_backward(n, d_in, d_out, seed, init):
    rng = np.random.default_rng(seed)
    layer = Linear(d_in, d_out, init=init, rng=rng, dtype=np.float64)
    assert_checks(check_layer(layer, rng.standard_normal((n, d_in)), rng))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(x=arrays(np.float64, st.tuples(dims, dims), elements=st.floats(-4, 4)), seed=st.integers(0, 2**32 - 1))
def test_activation_backward(name, x, seed):
    # |x| <= 4: deep in tanh's saturation the derivative (~1e-5) is below what a
    # centred difference of values near 1 can resolve in float64, so the check,
    # not the layer, would fail there (extremes are tested for finiteness below).
    # Keep clear of the kink at 0 for the piecewise-linear ones: centred differences straddle it.
    x = np.where(np.abs(x) < 1e-2, 0.5, x)
    assert_checks(check_layer(ACTIVATIONS[name](), x, np.random.default_rng(seed)))


@given(sizes=st.lists(st.integers(1, 5), min_size=2, max_size=4), act=st.sampled_from(["tanh", "softplus", "sigmoid"]),
       seed=st.integers(0, 1000))
def test_mlp_backward_matches_numerical(sizes, act, seed):
    from numpyvae.gradcheck import compare, numerical_gradient
    rng = np.random.default_rng(seed)
    mlp = MLP(sizes, act, rng=rng, dtype=np.float64)
    x = rng.standard_normal((3, sizes[0]))
    g = rng.standard_normal((3, sizes[-1]))
    mlp.forward(x)
    dx = mlp.backward(g)
    f = lambda: float(np.sum(mlp.forward(x) * g))
    checks = [compare("x", dx, numerical_gradient(f, x))]
    for i, lin in enumerate(mlp.linears):
        mlp.forward(x)
        mlp.backward(g)
        dW = lin.dW.copy()
        checks.append(compare(f"linears[{i}].W", dW, numerical_gradient(f, lin.W)))
    assert_checks(checks)


def test_mlp_backward_without_input_gradient_fills_the_same_weights():
    rng = np.random.default_rng(0)
    mlp = MLP([6, 5, 4], "tanh", rng=rng, dtype=np.float64)
    x, g = rng.standard_normal((3, 6)), rng.standard_normal((3, 4))
    mlp.forward(x)
    assert mlp.backward(g).shape == x.shape
    expected = [(lin.dW.copy(), lin.db.copy()) for lin in mlp.linears]
    mlp.forward(x)
    assert mlp.backward(g, need_dx=False) is None
    for i, (lin, (dW, db)) in enumerate(zip(mlp.linears, expected)):
        assert np.array_equal(lin.dW, dW) and np.array_equal(lin.db, db), f"linears[{i}]: ours {lin.dW} vs expected {dW}"


def test_extreme_inputs_are_finite():
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4])
    s, sp = sigmoid(x), softplus(x)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(sp)), f"ours sigmoid {s}, softplus {sp} vs expected finite"
    assert (sp[-1], s[0]) == (1e4, 0.0), f"ours softplus(1e4) {sp[-1]}, sigmoid(-1e4) {s[0]} vs expected 1e4, 0.0"


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    mlp = MLP([4, 3, 2], "relu", rng=rng, dtype=np.float32)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    out = mlp.forward(x)
    dx = mlp.backward(np.ones_like(out))
    dtypes = [out.dtype, dx.dtype] + [lin.dW.dtype for lin in mlp.linears]
    assert all(d == np.float32 for d in dtypes), f"ours {dtypes} vs expected float32"


def test_bad_arguments_are_refused():
    with pytest.raises(InputError, match="n_in"):
        Linear(0, 3)
    with pytest.raises(InputError, match="init"):
        Linear(2, 3, init="xavier-ish")
    with pytest.raises(InputError, match="dtype"):
        Linear(2, 3, dtype=np.int32)
    with pytest.raises(InputError, match="activation"):
        MLP([2, 3], "swish")
    with pytest.raises(InputError, match="sizes"):
        MLP([2])


@pytest.mark.parametrize("sizes", [[3, 2], [3, 4, 2], [3, 4, 5, 2], [3, 4, 5, 4, 2]])
def test_mlp_is_linear_activation_linear_with_no_activation_after_the_last(sizes):
    """The forward pass, written out: tanh between the Linear layers, raw output at the end."""
    rng = np.random.default_rng(0)
    mlp = MLP(sizes, "tanh", rng=rng, dtype=np.float64)
    x = 3 * rng.standard_normal((4, sizes[0]))              # large enough that tanh is far from the identity
    h = x
    for i, lin in enumerate(mlp.linears):
        h = h @ lin.W + lin.b
        if i < len(mlp.linears) - 1:
            h = np.tanh(h)
    ours = mlp.forward(x)
    i = np.unravel_index(np.argmax(np.abs(ours - h)), h.shape)
    assert np.allclose(ours, h, rtol=1e-12, atol=1e-12), f"sizes {sizes}, at {i}: ours {ours[i]} vs expected {h[i]}"
    kinds = [type(layer).__name__ for layer in mlp.layers]
    expected = ["Linear", "Tanh"] * (len(sizes) - 2) + ["Linear"]
    assert kinds == expected, f"ours {kinds} vs expected {expected}"


def test_activation_values_against_their_formulas():
    """Forward values, not only self-consistent gradients: each activation on a grid across 0 and 1."""
    x = np.array([[-3.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 3.0]])
    expected = {"relu": np.maximum(x, 0), "leaky_relu": np.where(x > 0, x, 0.01 * x), "tanh": np.tanh(x),
                "sigmoid": 1 / (1 + np.exp(-x)), "softplus": np.log1p(np.exp(x))}
    for name, want in expected.items():
        ours = ACTIVATIONS[name]().forward(x.copy())
        i = np.unravel_index(np.argmax(np.abs(ours - want)), x.shape)
        assert np.allclose(ours, want, rtol=1e-12, atol=1e-15), f"{name} at x = {x[i]}: ours {ours[i]} vs expected {want[i]}"


def test_linear_refuses_inputs_that_are_not_n_by_d_in():
    lin = Linear(5, 3, dtype=np.float64)
    for bad in (np.zeros((2, 4)), np.zeros((2, 6)), np.zeros((2, 5, 1)), np.zeros(5), [[0.0] * 5]):
        with pytest.raises(InputError, match=r"x: expected shape \(N, 5\)"):
            lin.forward(bad)


def test_init_scales():
    """normal: W, b ~ N(0, 0.01^2) (Kingma & Welling); glorot: W ~ U(-a, a), a = sqrt(6 / (n_in + n_out)), b = 0."""
    rng = np.random.default_rng(0)
    lin = Linear(200, 300, init="normal", rng=rng, dtype=np.float64)
    for name, arr in (("W", lin.W), ("b", lin.b)):
        assert 0.009 < arr.std() < 0.011 and abs(arr.mean()) < 0.002, \
            f"normal init {name}: ours std {arr.std():.5f}, mean {arr.mean():.5f} vs expected std 0.01, mean 0"
    lin = Linear(200, 300, init="glorot", rng=rng, dtype=np.float64)
    a = np.sqrt(6 / 500)
    assert 0.99 * a < np.abs(lin.W).max() <= a and np.all(lin.b == 0), f"glorot: ours max |W| {np.abs(lin.W).max()} vs a = {a}"
    assert lin.W.min() < -0.99 * a and lin.W.max() > 0.99 * a and abs(lin.W.mean()) < 0.05 * a, \
        f"glorot: ours W in [{lin.W.min()}, {lin.W.max()}], mean {lin.W.mean()} vs expected U(-{a}, {a})"


def test_too_many_weights_and_wrong_upstream_shapes_are_refused():
    with pytest.raises(InputError, match="n_in, n_out: 10,001 x 10,000 weights, expected at most 100,000,000"):
        Linear(10_001, 10_000)                             # refused before anything is allocated
    lin = Linear(4, 3, dtype=np.float64)
    lin.forward(np.zeros((2, 4)))
    for bad in (np.zeros((2, 2)), np.zeros((2, 4)), np.zeros((1, 3))):
        with pytest.raises(InputError, match="dout"):
            lin.backward(bad)


@pytest.mark.parametrize("name, slope", [("relu", 0.0), ("leaky_relu", 0.01)])
def test_the_kink_at_zero_takes_the_negative_side(name, slope):
    """At exactly x = 0 the derivative is a convention; the docstrings' 'x > 0' puts 0 on the negative side."""
    layer = ACTIVATIONS[name]()
    layer.forward(np.zeros((1, 1)))
    ours = layer.backward(np.ones((1, 1)))[0, 0]
    assert ours == slope, f"{name} at 0: ours {ours} vs expected {slope}"


def test_the_weight_limit_is_inclusive(monkeypatch):
    """n_in * n_out = MAX_WEIGHTS is allowed, one more is not (a small limit, so nothing large is allocated)."""
    import numpyvae.layers as layers_module
    monkeypatch.setattr(layers_module, "MAX_WEIGHTS", 12)
    Linear(3, 4)
    with pytest.raises(InputError, match="n_in, n_out: 13 x 1 weights, expected at most 12"):
        Linear(13, 1)
