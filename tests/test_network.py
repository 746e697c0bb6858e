"""The model seam: networks from specifications, per-call caches, caller-owned gradient buffers,
posterior and prior objects, and VAEs built the same way whatever the architecture."""
import threading

import numpy as np
import pytest

from numpyvae import VAE
from numpyvae.architectures import ARCHITECTURES
from numpyvae.checkpoint import load_model, save_model
from numpyvae.errors import InputError
from numpyvae.gradcheck import TOL, check_model
from numpyvae.mlp import MLP
from numpyvae.network import Network, plan

# a mixed conv/MLP specification: 6x6 images, a strided convolution, a dense layer, and back
MIXED_ENCODER = [{"layer": "reshape", "shape": [1, 6, 6]},
                 {"layer": "conv2d", "out_channels": 2, "kernel_size": 3, "stride": 2, "padding": 1},
                 {"layer": "tanh"},
                 {"layer": "flatten"},
                 {"layer": "linear", "units": 5},
                 {"layer": "softplus"},
                 {"layer": "linear", "units": 4}]
MIXED_DECODER = [{"layer": "linear", "units": 18},
                 {"layer": "tanh"},
                 {"layer": "reshape", "shape": [2, 3, 3]},
                 {"layer": "conv_transpose2d", "out_channels": 3, "kernel_size": 4, "stride": 2, "padding": 1},
                 {"layer": "sigmoid"},
                 {"layer": "conv2d", "out_channels": 1, "kernel_size": 3, "padding": 1},
                 {"layer": "flatten"}]


def mixed_vae(likelihood="bernoulli", seed=0):
    decoder = [dict(e) for e in MIXED_DECODER]
    if likelihood == "gaussian":
        decoder[-2] = dict(decoder[-2], out_channels=2)          # mean and log-variance channels
    return VAE(36, z_dim=2, likelihood=likelihood, dtype=np.float64, seed=seed,
               encoder=MIXED_ENCODER, decoder=decoder)


@pytest.mark.parametrize("estimator", ["analytic", "mc", "iwae", "stl", "score"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_mixed_conv_mlp_specification_is_gradient_checked(estimator, likelihood):
    model = mixed_vae(likelihood)
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(3, 36))
    eps = rng.standard_normal((2, 3, 2))
    for c in check_model(model, x, eps, estimator):
        assert c.error < TOL, f"{estimator}, {likelihood}: {c}"


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_the_conv_architecture_is_gradient_checked(likelihood, monkeypatch):
    """The conv builder's layout with 2 and 3 channels (the real 32 and 64 would take minutes of differences);
    tanh, because a centred difference across a ReLU's kink is not the derivative."""
    from numpyvae import architectures
    monkeypatch.setattr(architectures, "CONV_LAYERS", ((2, 4, 2, 1), (3, 4, 2, 1)))
    model = VAE(64, hidden=[3], z_dim=2, likelihood=likelihood, arch="conv", activation="tanh", dtype=np.float64,
                seed=2, image_shape=(1, 8, 8))
    assert sum(p.size for p in model.params.values()) < 600
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(2, 64))
    for c in check_model(model, x, rng.standard_normal((2, 2))):
        assert c.error < TOL, f"conv {likelihood}: {c}"


def test_named_architectures_are_only_specifications():
    """VAE(arch=name) is VAE(encoder=..., decoder=...) with the builder's specifications: same weights, same loss."""
    for arch, kw in [("mlp", {}), ("conv", {"image_shape": (1, 8, 8)})]:
        named = VAE(64, hidden=[7], z_dim=3, arch=arch, seed=4, **kw)
        spec = VAE(64, hidden=[7], z_dim=3, seed=4, encoder=named.encoder.spec, decoder=named.decoder.spec)
        assert list(named.params) == list(spec.params), f"{arch}: ours {list(spec.params)} vs {list(named.params)}"
        for name in named.params:
            assert np.array_equal(named.params[name], spec.params[name]), f"{arch}: {name} differs"
        x = np.random.default_rng(5).uniform(size=(4, 64))
        eps = np.random.default_rng(6).standard_normal((4, 3))
        assert named.loss_and_grads(x, eps=eps)[0] == spec.loss_and_grads(x, eps=eps)[0]


def test_the_mlp_is_a_network_with_the_old_parameter_names_and_weights():
    """MLP weights are drawn in the same order as before the seam: checkpoints and results carry over."""
    rng = np.random.default_rng(7)
    mlp = MLP([5, 4, 3], "relu", rng=np.random.default_rng(8))
    assert list(mlp.params) == ["0.W", "0.b", "1.W", "1.b"]
    a = np.sqrt(6.0 / 9)
    expected = np.random.default_rng(8).uniform(-a, a, size=(5, 4)).astype(np.float32)
    assert np.array_equal(mlp.linears[0].W, expected), "ours first W vs expected the first Glorot draw"
    assert isinstance(mlp, Network) and mlp.is_dense() and rng is not None
    assert list(VAE(6, [4], 2).params)[:2] == ["encoder.0.W", "encoder.0.b"]


def test_per_call_caches_do_not_interfere():
    """Two forward passes, then their backward passes in the other order: each gets its own gradient."""
    model = mixed_vae()
    rng = np.random.default_rng(9)
    xa, xb = rng.uniform(size=(2, 36)), rng.uniform(size=(3, 36))
    ea, eb = rng.standard_normal((2, 2)), rng.standard_normal((3, 2))
    ref_a = {k: v.copy() for k, v in model.loss_and_grads(xa, eps=ea)[1].items()}
    ref_b = {k: v.copy() for k, v in model.loss_and_grads(xb, eps=eb)[1].items()}
    out_a, caches_a = model.encoder.call(xa)
    out_b, caches_b = model.encoder.call(xb)
    ga, gb = model.new_grad_buffers(), model.new_grad_buffers()
    enc = lambda g: {k[len("encoder."):]: v for k, v in g.items() if k.startswith("encoder.")}
    da, db = rng.standard_normal(out_a.shape), rng.standard_normal(out_b.shape)
    model.encoder.call_backward(db, caches_b, enc(gb))
    model.encoder.call_backward(da, caches_a, enc(ga))
    model.encoder.forward(xa)
    model.encoder.backward(da)
    for name, g in model.encoder.own_grads().items():
        assert np.allclose(ga[f"encoder.{name}"], g, rtol=1e-13, atol=1e-15), f"encoder.{name}: interleaved differs"
    assert ref_a and ref_b


def test_caller_buffers_are_added_into_so_shares_sum_to_the_whole():
    model = mixed_vae()
    rng = np.random.default_rng(10)
    x, eps = rng.uniform(size=(4, 36)), rng.standard_normal((4, 2))
    whole = {k: v.copy() for k, v in model.loss_and_grads(x, eps=eps)[1].items()}
    buffers = model.new_grad_buffers()
    for part in (slice(0, 1), slice(1, 4)):              # each share's loss is a mean over its rows: weight them
        share = model.new_grad_buffers()
        model.loss_and_grads(x[part], eps=eps[part], grads=share)
        for k in buffers:
            buffers[k] += share[k] * (part.stop - part.start) / 4
    for k in whole:
        assert np.allclose(buffers[k], whole[k], rtol=1e-12, atol=1e-14), f"{k}: ours {buffers[k]} vs {whole[k]}"
    with pytest.raises(InputError, match="grads"):
        model.loss_and_grads(x, eps=eps, grads={"encoder.0.W": np.zeros(3)})


def test_threads_with_their_own_buffers_get_the_serial_gradients():
    model = VAE(64, hidden=[8], z_dim=2, arch="conv", image_shape=(1, 8, 8), dtype=np.float64, seed=11)
    rng = np.random.default_rng(12)
    batches = [(rng.uniform(size=(3, 64)), rng.standard_normal((3, 2))) for _ in range(6)]
    serial = [{k: v.copy() for k, v in model.loss_and_grads(x, eps=e)[1].items()} for x, e in batches]
    results = [None] * len(batches)

    def work(i):
        for _ in range(5):
            buf = model.new_grad_buffers()
            model.loss_and_grads(*batches[i][:1], eps=batches[i][1], grads=buf)
            results[i] = buf

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (ours, expected) in enumerate(zip(results, serial)):
        for k in expected:
            assert np.array_equal(ours[k], expected[k]), f"batch {i} {k}: a thread's gradient differs"


def test_conv_vae_checkpoint_records_the_architecture(tmp_path):
    model = VAE(784, hidden=[16], z_dim=3, arch="conv", seed=13)
    path = tmp_path / "conv.npz"
    save_model(path, model)
    back = load_model(path)
    assert back.config["arch"] == "conv" and back.config == model.config, back.config
    x = np.random.default_rng(14).uniform(size=(2, 784))
    eps = np.random.default_rng(15).standard_normal((2, 3))
    assert back.loss_and_grads(x, eps=eps)[0] == model.loss_and_grads(x, eps=eps)[0]
    custom = mixed_vae()
    save_model(tmp_path / "custom.npz", custom)
    assert load_model(tmp_path / "custom.npz").config["encoder"] == MIXED_ENCODER


@pytest.mark.parametrize("kwargs,name", [
    (dict(arch="resnet"), "arch"),
    (dict(arch="conv", x_dim=560), "image_shape"),                     # not square, no image_shape
    (dict(arch="conv", image_shape=(1, 28, 27), x_dim=756), "image_shape"),
    (dict(arch="conv", image_shape=(1, 10, 10), x_dim=100), "image_shape"),   # not a multiple of 4
    (dict(encoder=MIXED_ENCODER), "encoder"),                          # one without the other
    (dict(encoder=MIXED_ENCODER[:-1], decoder=MIXED_DECODER, x_dim=36, z_dim=2), "encoder"),   # wrong output width
    (dict(encoder=[{"layer": "conv2d", "out_channels": 2, "kernel_size": 3}], decoder=MIXED_DECODER, x_dim=36), "encoder[0]"),
    (dict(encoder=[{"layer": "linear"}], decoder=MIXED_DECODER, x_dim=36), "encoder[0]"),
    (dict(encoder=[{"layer": "linear", "units": 4, "bias": 0}], decoder=MIXED_DECODER, x_dim=36), "encoder[0]"),
    (dict(encoder=[{"layer": "dropout"}], decoder=MIXED_DECODER, x_dim=36), "encoder[0].layer"),
    (dict(encoder="conv", decoder=MIXED_DECODER, x_dim=36), "encoder"),
])
def test_bad_architectures_are_refused_by_name(kwargs, name):
    kwargs = {"x_dim": 784, "z_dim": 2, **kwargs}
    with pytest.raises(InputError) as err:
        VAE(**kwargs)
    assert str(err.value).startswith(name), f"ours {err.value!s} vs expected a message naming {name!r}"


def test_plan_counts_parameters_before_building():
    model = VAE(784, hidden=[32], z_dim=4, arch="conv")
    counted = sum(n for spec, d in ((model.encoder.spec, 784), (model.decoder.spec, 4)) for _, _, n in plan(spec, (d,)))
    assert counted == sum(p.size for p in model.params.values()), f"ours {counted} vs built {sum(p.size for p in model.params.values())}"
    assert set(ARCHITECTURES) == {"mlp", "conv"}


def test_conv_runs_resume_bit_identically_and_refuse_another_arch(tmp_path, capsys):
    """train --arch conv: 1 epoch then resumed to 2 equals 2 in one go; --arch mlp on resume is refused."""
    from numpyvae.cli import main
    common = ["--no-progress", "--no-plots", "--arch", "conv", "--hidden", "16", "--z-dim", "2", "--binarize", "dynamic",
              "--batch-size", "128"]
    assert main(["train", "--epochs", "2", "--out", str(tmp_path / "once"), *common]) == 0
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "twice"), *common]) == 0
    assert main(["train", "--resume", str(tmp_path / "twice" / "checkpoint.npz"), "--epochs", "2", "--no-progress",
                 "--no-plots"]) == 0
    a = load_model(tmp_path / "once" / "checkpoint.npz")
    b = load_model(tmp_path / "twice" / "checkpoint.npz")
    assert a.config["arch"] == b.config["arch"] == "conv"
    for name in a.params:
        np.testing.assert_array_equal(b.params[name], a.params[name], err_msg=name)
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "twice" / "checkpoint.npz"), "--epochs", "4", "--arch", "mlp",
                 "--no-progress", "--no-plots"]) == 2
    assert "--arch mlp (the run has conv)" in capsys.readouterr().err
