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


# ---- bad hyperparameters and gradients -------------------------------------------------------------

BAD_HYPERPARAMETERS = {
    "sgd": {"lr": [0, -1, float("nan"), float("inf"), True, "0.1", None], "momentum": [1, 1.5, -0.1, float("nan"), True]},
    "adagrad": {"lr": [0, float("nan"), True], "eps": [0, -1e-8, float("nan"), float("inf")]},
    "adam": {"lr": [0, float("inf"), True], "beta1": [1, 1.0000001, -0.1, float("nan")],
             "beta2": [1, 2, -1, float("nan")], "eps": [0, -1, float("nan")]},
}


@pytest.mark.parametrize("name", sorted(BAD_HYPERPARAMETERS))
def test_bad_hyperparameters_are_refused_by_name(name):
    tried = 0
    for arg, values in BAD_HYPERPARAMETERS[name].items():
        for v in values:
            with pytest.raises(InputError, match=arg) as info:
                OPTIMIZERS[name]({"w": np.ones(3)}, **{arg: v})
            assert str(info.value).startswith(arg), f"{name}({arg}={v!r}): ours {info.value} vs expected to start with {arg}"
            tried += 1
    # numpy scalars are numbers: np.float32 lr is accepted, and beta just below 1 works
    params = {"w": np.ones(3)}
    opt = OPTIMIZERS[name](params, lr=np.float32(0.1))
    assert opt.lr == pytest.approx(0.1)
    for _ in range(3):
        opt.step({"w": np.ones(3)})
    assert np.all(np.isfinite(params["w"])) and np.all(params["w"] < 1), f"{name}: ours {params['w']}"
    print(f"{name}: {tried} bad hyperparameters refused")


def test_adam_beta_close_to_one_stays_finite():
    params = {"w": np.ones(3)}
    opt = Adam(params, beta1=1 - 1e-15, beta2=1 - 1e-15, eps=1e-300)
    for _ in range(5):
        opt.step({"w": np.full(3, 2.0)})
    assert np.all(np.isfinite(params["w"])), f"ours {params['w']} vs expected finite"


def _snapshot(opt):
    return {k: v.copy() for k, v in opt.params.items()}, {k: v.copy() for k, v in opt.state().items()}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bad_gradients_are_refused_before_any_parameter_changes(name, dtype):
    rng = np.random.default_rng(3)
    params = {"a": rng.normal(size=(2, 3)).astype(dtype), "b": rng.normal(size=4).astype(dtype)}
    opt = OPTIMIZERS[name](params)
    opt.step({"a": np.ones((2, 3), dtype), "b": np.ones(4, dtype)})
    big = np.finfo(dtype).max
    cases = {
        "NaN in the last parameter": ({"a": np.ones((2, 3), dtype), "b": np.array([1, np.nan, 1, 1], dtype)}, "grads['b']"),
        "inf in the first": ({"a": np.full((2, 3), np.inf, dtype), "b": np.ones(4, dtype)}, "grads['a']"),
        "-inf": ({"a": np.ones((2, 3), dtype), "b": np.array([1, 1, -np.inf, 1], dtype)}, "index (2,)"),
        "float64 beyond the range of float32": ({"a": np.full((2, 3), 1e300), "b": np.ones(4, dtype)}, "grads['a']"),
        "missing": ({"a": np.ones((2, 3), dtype)}, "missing ['b']"),
        "an extra key": ({"a": np.ones((2, 3), dtype), "b": np.ones(4, dtype), "c": np.ones(1)}, "unexpected ['c']"),
        "a list": ({"a": [[1.0] * 3] * 2, "b": np.ones(4, dtype)}, "grads['a']"),
        "None": ({"a": None, "b": np.ones(4, dtype)}, "grads['a']"),
        "complex": ({"a": np.ones((2, 3), complex), "b": np.ones(4, dtype)}, "grads['a']"),
        "int": ({"a": np.ones((2, 3), int), "b": np.ones(4, dtype)}, "grads['a']"),
        "shape ()": ({"a": np.array(1.0, dtype), "b": np.ones(4, dtype)}, "grads['a']"),
        "transposed": ({"a": np.ones((3, 2), dtype), "b": np.ones(4, dtype)}, "grads['a']"),
        "not a dict": ([np.ones((2, 3)), np.ones(4)], "grads"),
    }
    if name != "sgd":    # Adam and Adagrad square the gradient: a square that overflows would freeze the parameter
        cases["a square that overflows"] = ({"a": np.ones((2, 3), dtype), "b": np.full(4, np.sqrt(big) * 2, dtype)}, "square")
    if dtype == np.float64:
        cases.pop("float64 beyond the range of float32")
    for label, (grads, named) in cases.items():
        before, state = _snapshot(opt)
        with pytest.raises(InputError) as info:
            opt.step(grads)
        assert named in str(info.value), f"{name} {label}: ours {info.value} vs expected to name {named}"
        after, state_after = _snapshot(opt)
        for k in before:
            np.testing.assert_array_equal(after[k], before[k], err_msg=f"{name} {label}: parameter {k} changed")
        for k in state:
            np.testing.assert_array_equal(state_after[k], state[k], err_msg=f"{name} {label}: slot {k} changed")
    # a large but finite gradient is applied by SGD (nothing squares it)
    if name == "sgd":
        opt.step({"a": np.full((2, 3), np.sqrt(big) * 2, dtype), "b": np.ones(4, dtype)})


def test_optimizer_params_must_be_float_arrays():
    for params in ({}, {"w": [1.0]}, {"w": np.ones(3, int)}, [np.ones(3)], None):
        with pytest.raises(InputError, match="params"):
            Adam(params)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_load_state_refuses_bad_slots(name):
    params = {"w": np.ones((2, 3), np.float32)}
    opt = OPTIMIZERS[name](params)
    opt.step({"w": np.ones((2, 3), np.float32)})
    good = {k: v.copy() for k, v in opt.state().items()}
    slot = next(k for k in good if k != "t")
    bad = {"shape ()": np.array(1.0), "inf": np.full((2, 3), np.inf), "NaN": np.full((2, 3), np.nan),
           "int": np.ones((2, 3), int), "beyond float32": np.full((2, 3), 1e300), "missing": None,
           "a list": [[1.0] * 3] * 2}
    for label, value in bad.items():
        state = dict(good)
        if value is None:
            del state[slot]
        else:
            state[slot] = value
        with pytest.raises(InputError, match=slot) as info:
            opt.load_state(state)
        assert np.array_equal(opt.state()[slot], good[slot]), f"{name} {label}: the slot changed: {info.value}"
    for squares in opt.nonnegative_slots:          # Adagrad's G, Adam's v: sums of squares
        with pytest.raises(InputError, match="expected values >= 0"):
            opt.load_state({**good, f"{squares}/w": -np.ones((2, 3), np.float32)})
    for t in (-1, 1.5, np.array([1]), "3", None):
        with pytest.raises(InputError, match="'t'"):
            opt.load_state({**good, "t": t})
    if name == "adam":
        with pytest.raises(InputError, match=r"'v/w'.*NaN or inf"):          # Adam's v = inf: training would freeze
            opt.load_state({**good, "v/w": np.full((2, 3), np.inf, np.float32)})
    with pytest.raises(InputError, match="unexpected entries"):
        opt.load_state({**good, "other/w": np.zeros((2, 3))})
    opt.load_state(good)
