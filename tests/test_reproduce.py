"""The fast log_marginal against the plain formula, and the reproductions' --quick modes.

The quick modes train for seconds on real data, so they skip (saying why)
when the data files are absent; what they check is that the numbers move
the right way, not the papers' values (reproduce/README.md has those).
"""
import importlib
import os
import sys

import numpy as np
import pytest

from numpyvae import VAE
from numpyvae.errors import DataError
from numpyvae.estimators import log_weights
from numpyvae.evaluate import _LogWeights, log_marginal

from datasets_helpers import REPO, SKIP_REAL, real_data_dir


# ---- log_marginal's fused Bernoulli path -------------------------------------------------------

def plain_log_weights(model, x, eps):
    """log p(x|z) + log p(z) - log q(z|x) by the model's own pieces: (K, B)."""
    mu, logvar = model.encode(x)
    z = mu + np.exp(0.5 * logvar) * eps
    K, B = eps.shape[:2]
    out = model.decode(z.reshape(K * B, -1)).reshape(K, B, -1)
    return log_weights(model.log_px(x, out), z, mu, logvar)


def first_bad(ours, expected, tol):
    """A message naming the worst index, ours and expected."""
    i = np.unravel_index(np.argmax(np.abs(ours - expected)), ours.shape)
    return f"at index {i}: ours {ours[i]!r} vs expected {expected[i]!r} (tolerance {tol})"


@pytest.mark.parametrize("hidden", [[7], [6, 5], []])
def test_fused_log_weights_equal_the_plain_formula_in_float64(hidden):
    rng = np.random.default_rng(0)
    model = VAE(9, hidden, 3, activation="tanh", dtype=np.float64, seed=1)
    x = rng.uniform(size=(4, 9))                               # grey levels: the x . l term is not binary
    eps = rng.standard_normal((6, 4, 3))
    fused = _LogWeights(model, max_rows=64)
    fused.set_batch(x)
    ours, expected = fused(eps), plain_log_weights(model, x, eps)
    assert np.allclose(ours, expected, rtol=0, atol=1e-10), first_bad(ours, expected, 1e-10)


def test_log_marginal_is_the_log_mean_of_the_weights():
    """One example per chunk or several, the running log-sum-exp gives log (1/k) sum_i w_i."""
    model = VAE(9, [7], 3, activation="tanh", dtype=np.float64, seed=2)
    x = (np.random.default_rng(3).uniform(size=(5, 9)) < 0.5).astype(float)
    k = 40
    for max_rows in (7, 40, 400):                              # chunks of 7 samples; 1 example; 5 examples
        ours = log_marginal(model, x, k=k, rng=np.random.default_rng(4), max_rows=max_rows, progress=False)
        # the same draws by the plain formula: each pass over examples has its own
        # stream, spawned from the caller's generator in order
        n_per = max(1, min(len(x), max_rows // min(k, max_rows)))
        starts = range(0, len(x), n_per)
        streams = np.random.default_rng(4).spawn(len(starts))
        expected = np.empty(len(x))
        for start, rng in zip(starts, streams):
            xb = x[start:start + n_per]
            c = max(1, max_rows // len(xb))
            f = np.concatenate([plain_log_weights(model, xb, model.draw_eps(rng, min(c, k - done), len(xb)))
                                for done in range(0, k, c)])
            m = f.max(axis=0)
            expected[start:start + len(xb)] = m + np.log(np.mean(np.exp(f - m), axis=0))
        assert np.allclose(ours, expected, rtol=0, atol=1e-10), f"max_rows={max_rows}: " + first_bad(ours, expected, 1e-10)


def float64_twin(model):
    """The same network in float64."""
    twin = VAE(model.x_dim, model.config["hidden"], model.z_dim, activation=model.config["activation"],
               dtype=np.float64)
    for name, p in model.params.items():
        twin.params[name][...] = p
    return twin


def test_float32_log_weights_agree_with_float64_to_a_few_parts_per_million():
    """The precision check behind computing log_marginal in float32 (summed over k in float64).

    float32 carries 6e-8 relative precision; summed over 784 pixels the log
    weights (a few hundred nats here) come out within a few 1e-6 of their
    value, thousandths of a nat, far below the Monte Carlo noise of k = 5000.
    """
    rng = np.random.default_rng(5)
    model = VAE(784, [200, 200], 50, activation="tanh", seed=6)
    x = (rng.uniform(size=(3, 784)) < 0.3).astype(np.float32)
    eps = rng.standard_normal((500, 3, 50)).astype(np.float32)
    fused = _LogWeights(model, max_rows=1500)
    fused.set_batch(x)
    ours = fused(eps)
    expected = plain_log_weights(float64_twin(model), x.astype(float), eps.astype(float))
    print(f"float32 vs float64 log weights near {expected.mean():.0f} nats: max |diff| "
          f"{np.abs(ours - expected).max():.2e} nats")
    assert np.allclose(ours, expected, rtol=2e-6, atol=1e-4), first_bad(ours, expected, "2e-6 relative")


def test_logits_past_float32_exp_range_fall_back_to_the_safe_softplus():
    model = VAE(6, [5], 2, activation="tanh", seed=7)
    model.params["decoder.1.b"][:3] = [100.0, 120.0, -100.0]    # exp(100) overflows float32
    x = np.array([[1, 0, 0, 1, 0, 1]], dtype=np.float32)
    eps = np.random.default_rng(8).standard_normal((10, 1, 2)).astype(np.float32)
    fused = _LogWeights(model, max_rows=10)
    fused.set_batch(x)
    ours = fused(eps)
    expected = plain_log_weights(float64_twin(model), x.astype(float), eps.astype(float))
    assert np.all(np.isfinite(ours)), f"ours {ours}"
    assert np.allclose(ours, expected, rtol=1e-6, atol=1e-3), first_bad(ours, expected, 1e-3)


def test_progress_bar_only_when_asked(capsys):
    model = VAE(6, [5], 2, seed=0)
    x = np.full((3, 6), 0.5, dtype=np.float32)
    log_marginal(model, x, k=5, rng=np.random.default_rng(0), progress=False)
    assert capsys.readouterr().err == "", "progress=False drew something"
    log_marginal(model, x, k=5, rng=np.random.default_rng(0), progress=True)
    err = capsys.readouterr().err
    assert "log p(x), k=5" in err and "15/15" in err, f"progress=True drew {err!r}"   # 3 examples x 5 samples


# ---- the reproductions' --quick modes --------------------------------------------------------------

@pytest.fixture
def reproduce(monkeypatch):
    """Import a script from reproduce/ with the real data found, or skip saying why."""
    data = real_data_dir()
    if data is None:
        pytest.skip(SKIP_REAL)
    monkeypatch.setenv("NUMPYVAE_DATA", str(data))
    monkeypatch.syspath_prepend(str(REPO / "reproduce"))

    def run(name, tmp_path, *extra):
        module = importlib.import_module(name)
        try:
            return module.main(["--quick", "--out", str(tmp_path), *extra])
        except DataError as exc:
            pytest.skip(f"{name}: {exc}")
    return run


def test_kw_frey_face_quick_bound_rises(reproduce, tmp_path):
    pytest.importorskip("scipy", reason="Frey Face is a MATLAB file: reading it needs scipy")
    result = reproduce("kw_frey_face", tmp_path)
    curve = result["results"]["2"]["curve"]
    first, last = curve[0]["train_bound"], curve[-1]["train_bound"]
    assert last > first, f"Frey Face train bound: ours {first:.1f} -> {last:.1f}, expected it to rise"
    assert (tmp_path / "table.md").exists() and (tmp_path / "curves.png").exists()


def test_kw_frey_face_cause_options_reach_the_training(reproduce, tmp_path):
    """--train-valid trains on 1,765 faces; --weight-decay and --init-std reach the trainer and the model."""
    pytest.importorskip("scipy", reason="Frey Face is a MATLAB file: reading it needs scipy")
    result = reproduce("kw_frey_face", tmp_path, "--train-valid", "--weight-decay", "1", "--init-std", "0.1",
                       "--step-size", "0.02")
    assert result["n_train"] == 1765 and result["weight_decay"] == 1.0 and result["init_std"] == 0.1, result
    assert result["results"]["2"]["step_size"] == 0.02 and result["results"]["2"]["step_size_scores"] == {}
    import kw_fig2
    from numpyvae.data import load
    x = load("frey-face", download=False).x_train[:200]
    trainer = kw_fig2.new_trainer(x, 2, 0.02, {"hidden": [200], "likelihood": "gaussian"}, 0, 1.0, 0.1)
    W = trainer.model.params["encoder.0.W"]
    assert trainer.weight_decay == 1.0 and 0.09 < float(np.std(W)) < 0.11, \
        f"initial weights' std ours {np.std(W):.4f} vs expected 0.1"


def test_adagrad_warmup_fills_the_sums_and_changes_no_parameter(monkeypatch):
    """--adagrad-warmup: Adagrad's sums start at the squared gradients of W minibatches, as in Kingma's code."""
    monkeypatch.syspath_prepend(str(REPO / "reproduce"))
    kw_fig2 = importlib.import_module("kw_fig2")
    x = (np.random.default_rng(0).uniform(size=(300, 12)) < 0.5).astype(np.float32)
    arch = {"hidden": [8], "likelihood": "bernoulli"}
    cold = kw_fig2.new_trainer(x, 2, 0.02, arch, 0)
    warm = kw_fig2.new_trainer(x, 2, 0.02, arch, 0, adagrad_warmup=5)
    for name, p in cold.model.params.items():
        assert np.array_equal(warm.model.params[name], p), f"{name}: the warm-up changed a parameter"
    # the sums, recomputed here from the same draws: 5 minibatches of 100 with replacement
    rng = np.random.default_rng([0, 100])
    expected = {name: np.zeros_like(p) for name, p in cold.model.params.items()}
    for _ in range(5):
        xb = x[rng.integers(0, len(x), size=100)]
        _, grads = cold.model.loss_and_grads(xb, rng=rng, estimator="analytic", k=1)
        for name, g in grads.items():
            expected[name] += g * g
    for name, ours in warm.optimizer.slots["sum_sq"].items():
        assert np.allclose(ours, expected[name], rtol=1e-5, atol=0), f"{name}: " + first_bad(ours, expected[name], 1e-5)
    # so the first update is smaller than without the warm-up
    before = {name: p.copy() for name, p in warm.model.params.items()}
    cold.train_step(x[:100])
    warm.train_step(x[:100])
    moved = {t: sum(float(np.sum(np.abs(tr.model.params[n] - before[n]))) for n in before) for t, tr in
             (("cold", cold), ("warm", warm))}
    assert moved["warm"] < moved["cold"] / 1.5, f"first step moved ours {moved['warm']:.4f} vs cold {moved['cold']:.4f}"


def test_kw_mnist_gap_elbo_gradient_in_mu_and_logvar_matches_centred_differences(monkeypatch):
    """kw_mnist_gap.elbo_and_grads, the gradient each image's own q climbs: float64, eps fixed."""
    monkeypatch.syspath_prepend(str(REPO / "reproduce"))
    gap = importlib.import_module("kw_mnist_gap")
    rng = np.random.default_rng(0)
    model = VAE(7, [5], 2, activation="tanh", dtype=np.float64, seed=1)
    x = rng.uniform(size=(3, 7))
    mu, logvar, eps = rng.normal(size=(3, 2)), 0.3 * rng.normal(size=(3, 2)), rng.normal(size=(4, 3, 2))
    _, dmu, dlogvar = gap.elbo_and_grads(model, x, mu, logvar, eps)
    h = 1e-5
    for name, arr, ours in (("mu", mu, dmu), ("logvar", logvar, dlogvar)):
        expected = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + h
            up = gap.elbo_and_grads(model, x, mu, logvar, eps)[0].sum()
            arr[i] = old - h
            down = gap.elbo_and_grads(model, x, mu, logvar, eps)[0].sum()
            arr[i] = old
            expected[i] = (up - down) / (2 * h)
        rel = np.abs(ours - expected) / np.maximum(np.abs(ours) + np.abs(expected), 1e-12)
        assert rel.max() < 1e-7, f"d elbo / d {name}: " + first_bad(ours, expected, "1e-7 relative")


def test_kw_mnist_gap_quick_optimized_q_beats_the_encoder(reproduce, tmp_path):
    result = reproduce("kw_mnist_gap", tmp_path)
    for name, s in result["sets"].items():
        m = s["mean"]
        assert m["amortization_gap"] > 0, f"{name}: optimized ELBO ours {m['optimized']:.2f} vs amortized {m['amortized']:.2f}"
        assert m["log_px"] > m["amortized"], f"{name}: log p(x) ours {m['log_px']:.2f} below the ELBO {m['amortized']:.2f}"
    assert (tmp_path / "table.md").exists() and (tmp_path / "gap.png").exists()


def test_kw_mnist_quick_bound_rises(reproduce, tmp_path):
    result = reproduce("kw_mnist", tmp_path)
    curve = result["results"]["3"]["curve"]
    for key in ("train_bound", "test_bound"):
        assert curve[-1][key] > curve[0][key], f"MNIST {key}: ours {curve[0][key]:.2f} -> {curve[-1][key]:.2f}, expected a rise"


def test_iwae_quick_training_raises_log_px_above_the_elbo(reproduce, tmp_path):
    result = reproduce("iwae", tmp_path)
    for name, r in result["results"].items():
        assert r["neg_log_px"] < r["neg_log_px_before_training"], \
            f"{name}: -log p(x) ours {r['neg_log_px']:.2f} after training vs {r['neg_log_px_before_training']:.2f} before"
        assert r["neg_log_px"] < r["test_neg_elbo"], \
            f"{name}: -log p(x) {r['neg_log_px']:.2f} should be below the -ELBO {r['test_neg_elbo']:.2f}"
    assert (tmp_path / "table.md").exists() and (tmp_path / "iwae.png").exists()


def test_fashion_mnist_quick_training_raises_log_px(reproduce, tmp_path):
    result = reproduce("fashion_mnist", tmp_path)
    assert result["ours"] > result["before_training"], \
        f"Fashion-MNIST log p(x): ours {result['ours']:.2f} after vs {result['before_training']:.2f} before training"
    assert result["ours"] > result["test_elbo"], f"log p(x) {result['ours']:.2f} vs ELBO {result['test_elbo']:.2f}"


def test_fashion_mnist_pytorch_init_draws_within_one_over_sqrt_fan_in(monkeypatch):
    """--init pytorch: every W and b of a Linear with fan_in n from U(-1/sqrt(n), 1/sqrt(n)), seeded."""
    monkeypatch.syspath_prepend(str(REPO / "reproduce"))
    fashion_mnist = importlib.import_module("fashion_mnist")
    from common import one_layer_vae
    model = one_layer_vae(0)
    fashion_mnist.pytorch_init(model, np.random.default_rng(3))
    for mlp in (model.encoder, model.decoder):
        for lin in mlp.linears:
            bound = 1 / np.sqrt(lin.W.shape[0])
            for name, p in (("W", lin.W), ("b", lin.b)):
                top = float(np.abs(p).max())
                assert bound * 0.9 < top <= bound, f"{name} of a {lin.W.shape} layer: ours max |.| {top} vs bound {bound}"
    again = one_layer_vae(0)
    fashion_mnist.pytorch_init(again, np.random.default_rng(3))
    assert all(np.array_equal(model.params[k], again.params[k]) for k in model.params), "same seed, other weights"
