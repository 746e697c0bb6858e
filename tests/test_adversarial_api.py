"""Bad arguments to the public API: each is refused with the package's own error naming the
argument, or accepted with a finite result -- never a raw traceback, never a silent NaN/inf.

Every test prints how many inputs it tried and what became of them.
"""
import collections
import re
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from numpyvae import VAE, InputError, NumpyVAEError
from numpyvae import distributions as dist
from numpyvae.estimators import Estimate
from numpyvae.evaluate import active_units, bounds, log_marginal
from numpyvae.train import Trainer

X = np.full((3, 4), 0.5)


def model(**kw):
    return VAE(4, kw.pop("hidden", [3]), 2, dtype=kw.pop("dtype", np.float64), seed=0, **kw)


def _non_finite(result):
    """Where ``result`` holds a NaN or inf (a path), or None."""
    if isinstance(result, dict):
        return next((f"[{k!r}]" + p for k, v in result.items() if (p := _non_finite(v)) is not None), None)
    if isinstance(result, (tuple, list)):
        return next((f"[{i}]" + p for i, v in enumerate(result) if (p := _non_finite(v)) is not None), None)
    if isinstance(result, Estimate):
        return _non_finite({k: getattr(result, k) for k in ("elbo", "recon", "kl")})
    if isinstance(result, (float, np.floating, np.ndarray)) and np.asarray(result).dtype.kind == "f":
        bad = np.argwhere(~np.isfinite(np.atleast_1d(result)))
        return None if not len(bad) else f" at index {tuple(int(i) for i in bad[0])}"
    return None


class Tally:
    def __init__(self, name):
        self.name, self.counts = name, collections.Counter()

    def call(self, label, fn, *args, names=(), **kw):
        """fn(*args, **kw) must return finite values or raise a NumpyVAEError naming one of ``names``."""
        try:
            with np.errstate(all="ignore"):
                result = fn(*args, **kw)
        except NumpyVAEError as exc:
            self.counts["refused"] += 1
            assert not names or any(n in str(exc) for n in names), \
                f"{label}: the message does not name {names}: ours {exc!s:.200}"
            return None
        except Exception as exc:   # noqa: BLE001 -- a traceback a user would see
            pytest.fail(f"{label}: ours {type(exc).__name__}: {exc!s:.200} vs expected a NumpyVAEError or a result")
        where = _non_finite(result)
        assert where is None, f"{label}: ours NaN/inf returned silently{where} vs expected finite or an error"
        self.counts["accepted"] += 1
        return result

    def refuses(self, label, fn, *args, names=(), **kw):
        """As ``call``, but only a refusal will do."""
        before = self.counts["refused"]
        self.call(label, fn, *args, names=names, **kw)
        assert self.counts["refused"] == before + 1, f"{label}: ours accepted vs expected an InputError naming {names}"

    def report(self):
        n = sum(self.counts.values())
        print(f"{self.name}: tried {n}: accepted {self.counts['accepted']} (finite), "
              f"refused with the package's error {self.counts['refused']}, tracebacks 0, silent NaN/inf 0")


# ---- the constructor -----------------------------------------------------------------------------

def test_vae_constructor_arguments():
    tally = Tally("VAE(...)")
    bad = {"x_dim": [0, -1, 2.0, True, "4", None, [4], np.float64(4)],
           "hidden": [None, [0], ["a"], [3.0], "3", [True], {3: 1}, [-1], [1] * 1000, [10**9], 3.5, [[3]]],
           "z_dim": [0, -2, 1.5, None, "2", False],
           "seed": [-1, 1.5, None, "1", True, [1]],
           "dtype": [int, "float16", None, np.complex128, "bogus", np.int32, object],
           "likelihood": ["x", None, ["bernoulli"], "Bernoulli"],
           "activation": ["x", None, 1], "init": ["x", None],
           "gaussian_mean": ["x", "sigmoid", None]}           # sigmoid needs likelihood="gaussian"
    for arg, values in bad.items():
        for v in values:
            kw = {"x_dim": 4, "hidden": [3], "z_dim": 2, arg: v}
            tally.refuses(f"VAE({arg}={v!r:.40})", VAE, names=(arg,), **kw)
    for kw in ({"hidden": []}, {"hidden": (3,)}, {"hidden": 3}, {"seed": np.int64(3)}, {"seed": 2**70},
               {"dtype": "float32"}, {"dtype": np.float64}, {"x_dim": np.int32(4)}):
        tally.call(f"VAE({kw})", VAE, **{"x_dim": 4, "z_dim": 2, **kw})
    tally.report()
    assert tally.counts["accepted"] == 8, f"ours {tally.counts['accepted']} valid constructions accepted vs expected 8"


def test_size_is_refused_before_anything_is_allocated():
    tracemalloc.start()
    for kw, name in (({"hidden": [10**9]}, "parameters"), ({"hidden": [1] * 10**6}, "hidden"),
                     ({"x_dim": 10**12}, "parameters"), ({"z_dim": 10**10}, "parameters")):
        with pytest.raises(InputError, match=name):
            VAE(**{"x_dim": 4, "hidden": [3], "z_dim": 2, **kw})
    m = model()
    for call, name in ((lambda: m.sample(10**12, np.random.default_rng(0)), "n"),
                       (lambda: m.loss_and_grads(X, rng=np.random.default_rng(0), k=10**9), "k * batch"),
                       (lambda: m.elbo(X, np.random.default_rng(0), "iwae", k=10**9), "k * batch"),
                       (lambda: bounds(m, X, np.random.default_rng(0), k=10**9), "k * batch")):
        with pytest.raises(InputError, match=re.escape(name)):
            call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6, f"ours {peak / 1e6:.0f} MB allocated to refuse vs expected < 50 MB"


# ---- loss_and_grads and the other methods --------------------------------------------------------

def test_loss_and_grads_arguments():
    tally = Tally("loss_and_grads(...)")
    rng = np.random.default_rng(0)
    m, g32 = model(), VAE(4, [3], 2, likelihood="gaussian", seed=0)
    for eps in (np.zeros((0, 3, 2)), np.zeros((3, 0)), np.zeros((0, 2)), np.zeros((3, 3)), np.zeros((2, 3, 2, 1)),
                np.full((3, 2), np.nan), np.full((1, 3, 2), np.inf), np.zeros((3, 2), complex), "eps", [[1, 2]]):
        tally.refuses(f"eps {np.shape(eps)}", m.loss_and_grads, X, eps=eps, names=("eps",))
    for beta in (1e308, float("nan"), float("inf"), -1, True, "1", None, [1.0]):
        tally.refuses(f"beta={beta!r}", m.loss_and_grads, X, rng=rng, beta=beta, names=("beta",))
    for k in (0, -1, True, "2", 2.0, None):
        tally.refuses(f"k={k!r}", m.loss_and_grads, X, rng=rng, k=k, names=("k",))
    for est in (["mc"], None, "MC", "", 1):
        tally.refuses(f"estimator={est!r}", m.loss_and_grads, X, rng=rng, estimator=est, names=("estimator",))
    for rng_ in (None, 0, "rng", np.random.RandomState(0)):
        tally.refuses(f"rng={rng_!r}", m.loss_and_grads, X, rng=rng_, names=("rng",))
    for x in (np.zeros((3, 5)), np.zeros(4), np.zeros((1, 3, 4)), np.array([["a"] * 4]), np.array([[None] * 4]),
              np.zeros((3, 4), complex), np.full((3, 4), np.nan), np.zeros((0, 4)), "abcd", None, 1.0,
              np.full((3, 4), 2.0), np.full((3, 4), -0.1), np.zeros((3, 4), "datetime64[s]"), [[0.5] * 4, [0.5] * 3]):
        tally.refuses(f"x={x!r:.40}", m.loss_and_grads, x, rng=rng, names=("x",))
    # Gaussian likelihood: any real x, but an overflow is an error, not inf/NaN; float32 range is named
    for scale in (1e10, 1e30, 1e60, 1e150, 1e300):
        tally.call(f"gaussian float32 x={scale}", g32.loss_and_grads, np.full((3, 4), scale), rng=rng, names=("x",))
        tally.call(f"gaussian float64 x={scale}", model(likelihood="gaussian").loss_and_grads, np.full((3, 4), scale),
                   rng=rng, names=("x",))
    with pytest.raises(InputError, match="beyond the range of float32"):
        g32.loss_and_grads(np.full((3, 4), 1e60), rng=rng)
    for ok in ({"k": np.int64(2)}, {"beta": np.float32(0.5)}, {"beta": 0}, {"eps": np.zeros((3, 2), np.float32)},
               {"x": X.tolist()}, {"x": X.astype(np.float32)}, {"x": (X > 0).astype(np.uint8)}, {"x": X > 0}):
        kw = {"x": X, "rng": rng, **ok}
        tally.call(f"valid {list(ok)}", m.loss_and_grads, kw.pop("x"), **kw)
    tally.report()
    assert tally.counts["accepted"] >= 8


def test_other_methods_arguments():
    tally = Tally("encode/decode/sample/reconstruct/elbo")
    m, rng = model(), np.random.default_rng(0)
    for z in (np.zeros((3, 3)), np.zeros(2), np.zeros((0, 2)), np.full((1, 2), np.inf), "z", None, np.zeros((1, 2), complex)):
        tally.refuses(f"decode z={z!r:.30}", m.decode, z, names=("z",))
    tally.call("decode z=1e300", m.decode, np.full((1, 2), 1e300), names=("z",))
    tally.call("decode float32 z=1e30", VAE(4, [3], 2).decode, np.full((1, 2), 1e30), names=("z",))
    for n in (0, -1, 1.5, True, "2", None, np.float64(2)):
        tally.refuses(f"sample n={n!r}", m.sample, n, rng, names=("n",))
    tally.refuses("sample rng=None", m.sample, 2, None, names=("rng",))
    tally.call("sample n=np.int64(2)", m.sample, np.int64(2), rng)
    for x in (np.zeros((2, 5)), np.full((2, 4), np.nan), "x"):
        for name, fn in (("encode", m.encode), ("reconstruct", m.reconstruct), ("elbo", lambda v: m.elbo(v, rng))):
            tally.refuses(f"{name} x={x!r:.30}", fn, x, names=("x",))
    tally.refuses("reconstruct rng=3", m.reconstruct, X, 3, names=("rng",))
    tally.refuses("elbo k=0", m.elbo, X, rng, "iwae", 0, names=("k",))
    tally.refuses("elbo estimator=x", m.elbo, X, rng, "x", names=("estimator",))
    tally.call("float64 encode x=1e300 (gaussian)", model(likelihood="gaussian").encode, np.full((2, 4), 1e300), names=("x",))
    tally.call("elbo of x=1e200 (gaussian)", model(likelihood="gaussian").elbo, np.full((2, 4), 1e200), rng, names=("x",))
    tally.report()


def test_evaluation_arguments():
    tally = Tally("bounds/log_marginal/active_units")
    m, rng = model(), np.random.default_rng(0)
    for kw, name in (({"max_rows": 0}, "max_rows"), ({"k": 0}, "k"), ({"k": -1}, "k"), ({"k": "2"}, "k"),
                     ({"rng": None}, "rng"), ({"max_rows": 1.5}, "max_rows")):
        tally.refuses(f"log_marginal {kw}", log_marginal, m, X, **{"k": 3, "rng": rng, **kw}, names=(name,))
    tally.call("log_marginal k=1, max_rows=1", log_marginal, m, X, k=1, rng=rng, max_rows=1)
    for th in (float("nan"), -1, "a", None, [1, 2], float("inf")):
        tally.refuses(f"active_units threshold={th!r}", active_units, m, X, threshold=th, names=("threshold",))
    for kw, name in (({"k": 0}, "k"), ({"batch_size": 0}, "batch_size"), ({"rng": 1}, "rng"), ({"x": X[:, :3]}, "x")):
        args = {"x": X, "rng": rng, **kw}
        tally.refuses(f"bounds {kw}", bounds, m, args.pop("x"), **args, names=(name,))
    tally.report()


# ---- the trainer ---------------------------------------------------------------------------------

def test_trainer_arguments():
    tally = Tally("Trainer(...)")
    m, x = model(), np.full((10, 4), 0.5)
    bad = {"batch_size": [0, 11, -1, True, 2.5, None], "lr": [0, -1e-3, float("nan"), float("inf"), True, "1e-3"],
           "warmup_epochs": [float("inf"), float("nan"), -1, "2"], "beta": [float("nan"), 1e308, -0.5],
           "k": [0, True], "test_k": [0, True, 1.5], "seed": [-1, 1.5, None, "0"], "optimizer": ["x", None, ["adam"]],
           "estimator": [["mc"], "x"], "binarize": ["x", None]}
    for arg, values in bad.items():
        for v in values:
            tally.refuses(f"Trainer({arg}={v!r})", Trainer, m, x, **{"batch_size": 5, "progress": False, arg: v},
                          names=(arg,))
    tally.refuses("binarize for a Gaussian model", Trainer, model(likelihood="gaussian"), x, batch_size=5,
                  binarize="dynamic", names=("binarize",))
    for xt, name in ((np.full((10, 4), np.nan), "x_train"), (np.zeros((10, 3)), "x_train"), (np.zeros((0, 4)), "x_train"),
                     (np.zeros(4), "x_train"), (np.full((10, 4), 3.0), "x_train")):
        tally.refuses(f"x_train {xt.shape}", Trainer, m, xt, batch_size=1, progress=False, names=(name,))
    tally.refuses("x_test of the wrong width", Trainer, m, x, np.zeros((2, 3)), batch_size=5, progress=False,
                  names=("x_test",))
    t = Trainer(m, x, batch_size=5, lr=np.float32(0.01), progress=False, verbose=False)   # np.float32 lr: accepted
    for epochs in (-1, 1.5, True, "2", None):
        tally.refuses(f"run(epochs={epochs!r})", t.run, epochs, names=("epochs",))
    tally.call("run(epochs=1)", t.run, 1)
    tally.report()
    assert t.epoch == 1


# ---- the public distribution functions never return an overflow ---------------------------------

@pytest.mark.parametrize("name, args", [
    ("kl_std_normal", (np.array([1e200]), np.array([0.0]))),
    ("gaussian_log_prob", (np.array([1e200]), np.array([-1e200]), np.array([0.0]))),
    ("std_normal_log_prob", (np.array([[1e160, 1e160]]),)),
    ("reparameterize", (np.array([1e308]), np.array([0.0]), np.array([1e308]))),
])
def test_distribution_functions_refuse_an_overflowed_result(name, args):
    with pytest.raises(InputError, match="overflowed"):
        getattr(dist, name)(*args)


# ---- hypothesis over the arguments ---------------------------------------------------------------

# integers small, or far too large (sizes in between would only make the test slow)
anything = st.one_of(st.none(), st.booleans(), st.integers(-3, 50), st.just(10**12), st.floats(), st.text(max_size=3),
                     st.lists(st.integers(-2, 5), max_size=3), st.just(np.float32(0.5)), st.just(np.int64(2)))
any_array = st.one_of(arrays(st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.uint8, np.complex64]),
                             array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)),
                      arrays(np.float64, (3, 4), elements=st.floats(-1e300, 1e300)))
MODELS = [model(), model(likelihood="gaussian"), VAE(4, [3], 2, likelihood="gaussian", seed=0)]
TALLY = Tally("hypothesis over loss_and_grads")


VALID = {"x": arrays(np.float64, (3, 4), elements=st.floats(0, 1)), "k": st.integers(1, 3),
         "beta": st.floats(0, 10), "estimator": st.sampled_from(["analytic", "mc", "iwae", "stl", "score"])}


@settings(max_examples=150)
@given(which=st.integers(0, 2), spoilt=st.sampled_from([None, "x", "k", "beta", "estimator", "eps"]), data=st.data())
def test_hypothesis_loss_and_grads(which, spoilt, data):
    """All arguments valid but one (or none): that one is anything at all."""
    kw = {name: data.draw(anything if name == spoilt else strategy, label=name) for name, strategy in VALID.items()}
    if spoilt == "x":
        kw["x"] = data.draw(st.one_of(any_array, anything), label="x")
    if spoilt == "eps":
        kw["eps"] = data.draw(st.one_of(any_array, anything), label="eps")
    TALLY.call(f"{kw!r:.200}", MODELS[which].loss_and_grads, kw.pop("x"), rng=np.random.default_rng(0),
               names=(spoilt,) if spoilt else (), **kw)
    if sum(TALLY.counts.values()) % 50 == 0:
        TALLY.report()


@settings(max_examples=60)
@given(kw=st.fixed_dictionaries({}, optional={"x_dim": anything, "hidden": anything, "z_dim": anything,
                                              "seed": anything, "dtype": anything, "likelihood": anything}))
def test_hypothesis_constructor(kw):
    kw = {"x_dim": 4, "hidden": [3], "z_dim": 2, **kw}
    TALLY_VAE.call(f"VAE({kw})", VAE, names=tuple(kw) + ("parameters",), **kw)
    if sum(TALLY_VAE.counts.values()) % 30 == 0:
        TALLY_VAE.report()


TALLY_VAE = Tally("hypothesis over VAE(...)")


# ---- the building blocks: Linear, activations, MLP ------------------------------------------------

def test_layers_and_mlp_arguments():
    from numpyvae.layers import ACTIVATIONS, LeakyReLU, Linear
    from numpyvae.mlp import MLP
    tally = Tally("layers and MLP")
    for n in (0, -1, 2.5, True, None, "3"):
        tally.refuses(f"Linear(n_in={n!r})", Linear, n, 3, names=("n_in",))
    tally.refuses("Linear 10^12 x 3", Linear, 10**12, 3, names=("n_in, n_out",))
    tally.refuses("Linear init", Linear, 2, 3, init="x", names=("init",))
    tally.refuses("Linear rng", Linear, 2, 3, rng=3, names=("rng",))
    tally.refuses("Linear dtype", Linear, 2, 3, dtype=int, names=("dtype",))
    lin = Linear(2, 3, dtype=np.float64)
    tally.refuses("backward before forward", lin.backward, np.zeros((1, 3)), names=("forward",))
    for x in (np.zeros((4, 3)), np.zeros(2), "x", None):
        tally.refuses(f"Linear.forward {x!r:.20}", lin.forward, x, names=("x",))
    lin.forward(np.zeros((4, 2)))
    for dout in (np.zeros((4, 2)), np.zeros((5, 3)), np.zeros((1, 3)), np.zeros(3), None):
        tally.refuses(f"Linear.backward {np.shape(dout)}", lin.backward, dout, names=("dout", "forward"))
    for name, cls in ACTIVATIONS.items():
        act = cls()
        tally.refuses(f"{name}.backward before forward", act.backward, np.zeros((1, 3)), names=("forward",))
        act.forward(np.ones((4, 3)))
        tally.refuses(f"{name}.backward broadcasting dout", act.backward, np.ones((1, 3)), names=("dout",))
        tally.call(f"{name}.backward", act.backward, np.ones((4, 3)))
    tally.refuses("LeakyReLU slope NaN", LeakyReLU, float("nan"), names=("slope",))
    for sizes in ([3], [], None, 5, [3, 0], [3, "a"], [3, 10**12]):
        tally.refuses(f"MLP({sizes!r})", MLP, sizes, names=("sizes", "n_in"))
    tally.report()


def test_a_nan_born_in_the_backward_pass_is_refused_not_returned():
    """Absurd weights (1e-44 then 3e38 in float32) keep the loss finite (about 11 nats) while
    the backward pass overflows: loss_and_grads must refuse, not hand back inf/NaN gradients;
    and an optimizer given such gradients changes nothing."""
    from numpyvae.optim import Adam
    m = VAE(16, [3], 2, seed=0)
    m.params["decoder.0.W"][...] = 1e-44
    m.params["decoder.1.W"][...] = 3e38
    with pytest.raises(InputError, match="overflowed to NaN or inf") as info, np.errstate(over="ignore", invalid="ignore"):
        m.loss_and_grads(np.ones((3, 16)), rng=np.random.default_rng(0))
    assert "decoder.0.b" in str(info.value), f"ours {info.value} vs expected to name decoder.0.b"
    before = {k: v.copy() for k, v in m.params.items()}
    grads = {k: np.full_like(v, np.nan) if k == "encoder.0.W" else np.zeros_like(v) for k, v in m.params.items()}
    with pytest.raises(InputError, match=r"grads\['encoder.0.W'\]"):
        Adam(m.params).step(grads)
    for k, v in m.params.items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"parameter {k} changed")
