"""The optimizers' defaults and their refusals, to the number and the index they name."""
import numpy as np
import pytest

from numpyvae import InputError
from numpyvae.optim import OPTIMIZERS, SGD, Adagrad, Adam


def test_default_hyperparameters():
    p = {"w": np.zeros(2)}
    ours = [(SGD(p).lr, SGD(p).momentum), (Adagrad(p).lr, Adagrad(p).eps),
            (Adam(p).lr, Adam(p).beta1, Adam(p).beta2, Adam(p).eps)]
    expected = [(1e-2, 0.9), (1e-2, 1e-8), (1e-3, 0.9, 0.999, 1e-8)]
    assert ours == expected, f"ours {ours} vs expected {expected}"


def test_key_mismatches_list_at_most_five_names():
    params = {f"p{i}": np.zeros(1) for i in range(7)}
    opt = SGD(params)
    with pytest.raises(InputError) as err:
        opt.step({f"q{i}": np.zeros(1) for i in range(7)})
    expected = ("missing ['p0', 'p1', 'p2', 'p3', 'p4'], unexpected ['q0', 'q1', 'q2', 'q3', 'q4']")
    assert expected in str(err.value), f"ours {err.value} vs expected ...{expected}"
    state = dict(opt.state(), **{f"extra{i}": np.zeros(1) for i in range(7)})
    with pytest.raises(InputError) as err:
        SGD(params).load_state(state)
    expected = "unexpected entries ['extra0', 'extra1', 'extra2', 'extra3', 'extra4']"
    assert expected in str(err.value), f"ours {err.value} vs expected ...{expected}"


@pytest.mark.parametrize("name", ["adagrad", "adam"])
def test_a_float32_gradient_of_a_float64_parameter_is_judged_in_float64(name):
    """1e20 squared overflows float32 but not float64, the dtype the update is computed in."""
    params = {"w": np.zeros(3)}
    OPTIMIZERS[name](params).step({"w": np.full(3, 1e20, dtype=np.float32)})
    assert np.all(np.isfinite(params["w"])), f"ours {params['w']} vs expected finite"


def test_a_too_large_gradient_names_its_first_entry():
    params = {"w": np.zeros((2, 3), dtype=np.float32)}
    g = np.zeros((2, 3), dtype=np.float32)
    g[0, 2] = g[1, 1] = 1e30                        # finite in float32, square overflows
    with pytest.raises(InputError, match=r"at index \(0, 2\) is too large: its square overflows float32"):
        Adam(params).step({"w": g})


def test_non_finite_gradient_message_says_whether_it_overflowed_the_parameter_dtype():
    params = {"w": np.zeros(2, dtype=np.float32)}
    with pytest.raises(InputError) as err:
        SGD(params).step({"w": np.array([0.0, 1e300])})            # finite float64, inf in float32
    assert "found 1e+300 at index (1,) (beyond the range of the parameter's float32)" in str(err.value), str(err.value)
    with pytest.raises(InputError) as err:
        SGD(params).step({"w": np.array([np.nan, 0.0], dtype=np.float32)})
    assert "found nan at index (0,);" in str(err.value), f"ours {err.value} vs expected no 'beyond the range'"


@pytest.mark.parametrize("bad", [np.zeros(2, dtype=np.complex128), np.zeros(2, dtype=bool), np.zeros(2, dtype=np.int64)])
def test_load_state_refuses_slots_that_are_not_real_floats(bad):
    opt = Adam({"w": np.zeros(2)})
    state = dict(opt.state(), **{"m/w": bad})
    with pytest.raises(InputError, match=r"optimizer state 'm/w': expected a float array of shape \(2,\)"):
        opt.load_state(state)


@pytest.mark.parametrize("name", ["adagrad", "adam"])
def test_a_fresh_state_of_zeros_loads(name):
    """Sums of squares must be >= 0: zeros (a fresh optimizer) are fine, negatives are not."""
    opt = OPTIMIZERS[name]({"w": np.zeros(2)})
    opt.load_state(opt.state())
    slot = "sum_sq/w" if name == "adagrad" else "v/w"
    with pytest.raises(InputError, match="expected values >= 0"):
        opt.load_state(dict(opt.state(), **{slot: np.array([0.0, -1.0])}))


@pytest.mark.parametrize("dtype", [np.complex128, bool, np.int64])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_parameters_must_be_real_float_arrays(name, dtype):
    with pytest.raises(InputError, match="params: expected a non-empty dict name -> float array"):
        OPTIMIZERS[name]({"w": np.zeros(2, dtype=dtype)})
