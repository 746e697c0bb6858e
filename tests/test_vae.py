import numpy as np
import pytest
from hypothesis import given, strategies as st

from numpyvae import VAE, InputError
from numpyvae.estimators import ESTIMATORS
from numpyvae.gradcheck import check_model

TOL = 1e-7


def small_model(likelihood="bernoulli", activation="tanh", hidden=(5,), z_dim=2, seed=0, x_dim=6, gaussian_mean="identity"):
    return VAE(x_dim, list(hidden), z_dim, likelihood=likelihood, activation=activation, dtype=np.float64, seed=seed,
               gaussian_mean=gaussian_mean)


# (likelihood, gaussian_mean) pairs a model can have
DECODERS = [("bernoulli", "identity"), ("gaussian", "identity"), ("gaussian", "sigmoid")]


def data_for(model, rng, batch):
    if model.likelihood == "bernoulli":
        return rng.uniform(size=(batch, model.x_dim))
    return rng.normal(size=(batch, model.x_dim))


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
@pytest.mark.parametrize("k", [1, 5])
@given(decoder=st.sampled_from(DECODERS), activation=st.sampled_from(["tanh", "softplus", "sigmoid"]),
       hidden=st.lists(st.integers(1, 5), min_size=1, max_size=2), z_dim=st.integers(1, 3),
       batch=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_whole_model_gradient_check(estimator, k, decoder, activation, hidden, z_dim, batch, seed):
    rng = np.random.default_rng(seed)
    model = small_model(decoder[0], activation, hidden, z_dim, seed, gaussian_mean=decoder[1])
    x = data_for(model, rng, batch)
    eps = rng.standard_normal((k, batch, z_dim))
    for c in check_model(model, x, eps, estimator):
        assert c.error < TOL, f"{estimator}, k={k}, {decoder}: {c}"


def test_sigmoid_gaussian_mean_is_the_squashed_decoder_output():
    rng = np.random.default_rng(0)
    m = small_model("gaussian", gaussian_mean="sigmoid")
    z = rng.normal(size=(5, 2))
    raw = m.decoder.forward(z)[:, :6].copy()
    ours, expected = m.decode(z)[:, :6], 1 / (1 + np.exp(-raw))
    i = np.unravel_index(np.argmax(np.abs(ours - expected)), ours.shape)
    assert np.allclose(ours, expected, rtol=1e-12), f"at {i}: ours {ours[i]} vs expected {expected[i]}"
    m.params["decoder.1.b"][:6] = 50.0                   # a raw mean far above 1 stays in (0, 1]
    mean = m.sample(5, rng)
    assert np.all((mean > 0) & (mean <= 1)), f"ours {mean.min()}..{mean.max()} vs expected within (0, 1]"
    with pytest.raises(InputError, match="gaussian_mean"):
        VAE(4, [3], 2, likelihood="bernoulli", gaussian_mean="sigmoid")
    with pytest.raises(InputError, match="gaussian_mean"):
        VAE(4, [3], 2, likelihood="gaussian", gaussian_mean="tanh")


@pytest.mark.parametrize("estimator", ["analytic", "mc"])
def test_relu_model_gradient_check(estimator):
    rng = np.random.default_rng(3)
    model = small_model(activation="relu", hidden=(8, 6), z_dim=3)
    x, eps = rng.uniform(size=(4, 6)), rng.standard_normal((2, 4, 3))
    for c in check_model(model, x, eps, estimator, beta=0.7):
        assert c.error < TOL, str(c)


def test_params_contract():
    m = VAE(10, [7, 5], 3, likelihood="gaussian", dtype=np.float64)
    assert list(m.params) == ["encoder.0.W", "encoder.0.b", "encoder.1.W", "encoder.1.b", "encoder.2.W", "encoder.2.b",
                              "decoder.0.W", "decoder.0.b", "decoder.1.W", "decoder.1.b", "decoder.2.W", "decoder.2.b"]
    assert m.params["encoder.2.W"].shape == (5, 6)       # 2 * z_dim outputs: mu then logvar
    assert m.params["decoder.2.W"].shape == (7, 20)      # Gaussian: D means then D log-variances
    loss, grads = m.loss_and_grads(np.zeros((2, 10)), rng=np.random.default_rng(0))
    assert list(grads) == list(m.params) and all(grads[n].shape == p.shape for n, p in m.params.items())
    m.params["decoder.0.b"][:] = 1.0                     # live arrays: the model sees the change
    assert np.all(m.decoder.linears[0].b == 1.0), f"ours {m.decoder.linears[0].b} vs expected all 1.0"


def test_loss_is_negative_elbo_per_example():
    rng = np.random.default_rng(0)
    m = small_model()
    x = rng.uniform(size=(3, 6))
    eps = rng.standard_normal((3, 2))
    loss, _ = m.loss_and_grads(x, eps=eps)
    mu, logvar = m.encode(x)
    z = mu + np.exp(0.5 * logvar) * eps
    logits = m.decode(z)
    p = 1 / (1 + np.exp(-logits))
    rec = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    kl = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1 - logvar, axis=1)
    np.testing.assert_allclose(loss, np.mean(kl - rec), rtol=1e-12)


def test_same_seed_same_numbers_and_eps_means_no_randomness():
    x = np.random.default_rng(0).uniform(size=(4, 6))
    a = small_model().loss_and_grads(x, rng=np.random.default_rng(5))[0]
    b = small_model().loss_and_grads(x, rng=np.random.default_rng(5))[0]
    assert a == b
    eps = np.random.default_rng(1).standard_normal((4, 2))
    m = small_model()
    assert m.loss_and_grads(x, eps=eps)[0] == m.loss_and_grads(x, eps=eps)[0]


def test_extreme_network_outputs_give_finite_loss_and_grads():
    for likelihood in ("bernoulli", "gaussian"):
        m = small_model(likelihood, activation="relu")
        for name in m.params:
            m.params[name][...] = 1e3 if name.endswith("W") else 0.0
        x = np.ones((2, 6)) if likelihood == "bernoulli" else np.full((2, 6), -3.0)
        for est in ESTIMATORS:
            loss, grads = m.loss_and_grads(x, eps=np.ones((2, 2)), estimator=est)
            assert np.isfinite(loss), (likelihood, est, loss)
            assert all(np.isfinite(g).all() for g in grads.values()), (likelihood, est)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 5)), r"x: expected shape \(batch >= 1, 6\)"),
    (np.zeros(6), "x: expected a 2-D array"),
    (np.full((2, 6), np.nan), "x: expected finite values"),
    (np.full((2, 6), 1.5), "x: expected values <= 1.0"),
    (np.full((2, 6), -0.1), "x: expected values >= 0.0"),
    (np.array([["a"] * 6]), "x: expected a real numeric array"),
    (np.zeros((0, 6)), "x: expected shape"),
])
def test_bad_x_is_refused(bad, match):
    with pytest.raises(InputError, match=match):
        small_model().loss_and_grads(bad, rng=np.random.default_rng(0))


def test_bad_arguments_are_refused():
    m, x = small_model(), np.zeros((2, 6))
    with pytest.raises(InputError, match="estimator"):
        m.loss_and_grads(x, rng=np.random.default_rng(0), estimator="elbo-ish")
    with pytest.raises(InputError, match="rng"):
        m.loss_and_grads(x)
    with pytest.raises(InputError, match="eps: expected shape"):
        m.loss_and_grads(x, eps=np.zeros((3, 2)))
    with pytest.raises(InputError, match="beta"):
        m.loss_and_grads(x, rng=np.random.default_rng(0), beta=float("nan"))
    with pytest.raises(InputError, match="k"):
        m.loss_and_grads(x, rng=np.random.default_rng(0), k=0)
    with pytest.raises(InputError, match="likelihood"):
        VAE(4, [3], 2, likelihood="poisson")
    with pytest.raises(InputError, match="z_dim"):
        VAE(4, [3], 0)


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_float32_path_has_no_float64_upcasts(decoder, estimator):
    from dataclasses import fields
    from numpyvae.optim import Adam
    rng = np.random.default_rng(0)
    m = VAE(6, [5], 2, likelihood=decoder[0], gaussian_mean=decoder[1], dtype=np.float32, seed=0)
    x = rng.uniform(size=(4, 6)).astype(np.float32)
    eps = m.draw_eps(rng, 3, 4)
    arrays = dict(zip(["mu", "logvar", "z", "out", "log_px"], m.forward(x, eps)[:5]))
    est = ESTIMATORS[estimator](arrays["log_px"], arrays["z"], arrays["mu"], arrays["logvar"], 1.0)
    arrays.update({f"est.{f.name}": getattr(est, f.name) for f in fields(est) if isinstance(getattr(est, f.name), np.ndarray)})
    opt = Adam(m.params)
    loss, grads = m.loss_and_grads(x, rng=rng, estimator=estimator, k=3)
    opt.step(grads)
    arrays.update({f"grad {n}": g for n, g in grads.items()})
    arrays.update({f"param {n}": p for n, p in m.params.items()})
    wrong = {name: a.dtype for name, a in arrays.items() if a.dtype != np.float32}
    assert not wrong, f"ours {wrong} vs expected float32 everywhere"
    assert np.isfinite(loss), f"ours loss {loss} vs expected finite"


def test_default_k_is_one_sample_per_example():
    x = np.random.default_rng(0).uniform(size=(3, 6))
    m = small_model()
    ours = m.loss_and_grads(x, rng=np.random.default_rng(9))[0]
    eps = m.draw_eps(np.random.default_rng(9), 1, 3)
    expected = m.loss_and_grads(x, eps=eps)[0]
    assert ours == expected, f"ours {ours} vs expected {expected} (one eps per example)"


def test_parameter_count_in_the_refusal_is_exact():
    # encoder 5000 -> 12000 -> 2*7; decoder 7 -> 12000 -> 5000 (Bernoulli), each Linear (n_in + 1) * n_out
    expected = 5001 * 12000 + 12001 * 14 + 8 * 12000 + 12001 * 5000
    with pytest.raises(InputError) as err:
        VAE(5000, [12000], 7)
    assert f"{expected:,} parameters" in str(err.value), f"ours {err.value} vs expected {expected:,} parameters"
    assert expected > 100_000_000 > expected - 12001 * 5000, "the example must cross the limit"


def test_parameter_count_of_a_gaussian_decoder_counts_means_and_log_variances():
    # decoder 7 -> 12000 -> 2 * 5000 (means then log-variances)
    expected = 5001 * 12000 + 12001 * 14 + 8 * 12000 + 12001 * 10000
    with pytest.raises(InputError) as err:
        VAE(5000, [12000], 7, likelihood="gaussian")
    assert f"{expected:,} parameters" in str(err.value), f"ours {err.value} vs expected {expected:,} parameters"


def test_estimate_defaults_to_one_sample():
    x = np.random.default_rng(1).uniform(size=(3, 6))
    m = small_model()
    ours = m.estimate(x, np.random.default_rng(4), "mc").elbo
    mu, logvar, z, out, log_px, _ = m.forward(x, m.draw_eps(np.random.default_rng(4), 1, 3))
    expected = ESTIMATORS["mc"](log_px, z, mu, logvar).elbo
    assert np.array_equal(ours, expected), f"ours {ours} vs expected {expected} (one eps per example)"


def test_k_times_batch_rows_are_bounded(monkeypatch):
    import numpyvae.vae as vae_module
    m = small_model()                                   # widest layer: 6 numbers per row
    monkeypatch.setattr(vae_module, "MAX_ACTIVATIONS", 50)
    x = np.random.default_rng(2).uniform(size=(2, 6))
    m.loss_and_grads(x, eps=np.zeros((4, 2, 2)))        # 8 rows x 6 = 48: allowed
    with pytest.raises(InputError, match=r"eps: k \* batch: 10 rows"):
        m.loss_and_grads(x, eps=np.zeros((5, 2, 2)))    # 10 rows x 6 = 60 > 50


def test_parameter_count_with_two_hidden_layers_mirrors_the_decoder():
    # encoder 5000 -> 12000 -> 3 -> 2*7; decoder 7 -> 3 -> 12000 -> 5000
    expected = (5001 * 12000 + 12001 * 3 + 4 * 14) + (8 * 3 + 4 * 12000 + 12001 * 5000)
    with pytest.raises(InputError) as err:
        VAE(5000, [12000, 3], 7)
    assert f"{expected:,} parameters" in str(err.value), f"ours {err.value} vs expected {expected:,} parameters"


def test_limits_and_defaults_are_the_documented_numbers():
    from numpyvae.vae import _clip_logvar, check_config
    logvar, inside = _clip_logvar(np.array([[-40.0, 40.0]]))
    assert logvar.tolist() == [[-30.0, 30.0]] and not inside.any(), f"ours {logvar}, {inside} vs expected +-30, clipped"
    assert check_config(784) == dict(x_dim=784, hidden=[400], z_dim=20, likelihood="bernoulli", activation="relu",
                                     init="glorot", dtype="float32", gaussian_mean="identity", arch="mlp",
                                     image_shape=None, encoder=None, decoder=None), check_config(784)
    assert (VAE(6).config["hidden"], VAE(6).config["z_dim"]) == ([400], 20), VAE(6).config
    # exactly 100,000,000 parameters is allowed (no allocation: check_config only counts)
    # encoder (1276 + 1) * 39062 + (39062 + 1) * 4, decoder (2 + 1) * 39062 + (39062 + 1) * 1276
    assert (1277 * 39062 + 39063 * 4) + (3 * 39062 + 39063 * 1276) == 100_000_000
    check_config(1276, [39062], 2)
    with pytest.raises(InputError, match="100,078,125 parameters"):      # one pixel more: + 39062 + 39063
        check_config(1277, [39062], 2)


def test_activation_rows_are_bounded_by_the_widest_layer():
    """check_rows refuses rows x widest > 2**28; here the widest row is 2 * z_dim = 20 numbers."""
    m = VAE(4, [3], 10, dtype=np.float64)
    assert m.check_rows("n", 2**28 // 20) == 2**28 // 20
    with pytest.raises(InputError, match="n: 13,421,773 rows of up to 20 numbers exceed the 268,435,456"):
        m.check_rows("n", 2**28 // 20 + 1)


def test_estimate_bounds_k_times_batch(monkeypatch):
    import numpyvae.vae as vae_module
    m = small_model()                                        # widest row: 6 numbers
    monkeypatch.setattr(vae_module, "MAX_ACTIVATIONS", 42)
    x = np.random.default_rng(3).uniform(size=(2, 6))
    m.estimate(x, np.random.default_rng(0), "mc", k=3)       # 3 * 2 = 6 rows x 6 = 36 <= 42
    with pytest.raises(InputError, match=r"k \* batch: 8 rows"):
        m.estimate(x, np.random.default_rng(0), "mc", k=4)   # 8 rows x 6 = 48 > 42
