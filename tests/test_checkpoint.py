import json
import os

import numpy as np
import pytest
from hypothesis import given, strategies as st

from numpyvae import VAE, CheckpointError
from numpyvae import checkpoint as ckpt


def model(seed=0, **kw):
    return VAE(10, kw.pop("hidden", [6]), 2, seed=seed, **kw)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.npz"
    ckpt.save_model(path, model(seed=4))
    return path


def test_round_trip(saved):
    loaded = ckpt.load_model(saved)
    for name, p in model(seed=4).params.items():
        np.testing.assert_array_equal(loaded.params[name], p, err_msg=name)
    assert loaded.config == model().config


def test_sigmoid_gaussian_mean_round_trips_and_older_checkpoints_default_to_identity(tmp_path):
    m = model(seed=1, likelihood="gaussian", gaussian_mean="sigmoid")
    ckpt.save_model(tmp_path / "g.npz", m)
    assert ckpt.load_model(tmp_path / "g.npz").gaussian_mean == "sigmoid"
    arrays = dict(np.load(tmp_path / "g.npz", allow_pickle=False))
    config = json.loads(str(arrays["model_config"]))
    del config["gaussian_mean"]                        # as written before the option existed
    arrays["model_config"] = np.array(json.dumps(config))
    np.savez(tmp_path / "old.npz", **arrays)
    old = ckpt.load_model(tmp_path / "old.npz")
    assert old.gaussian_mean == "identity", f"ours {old.gaussian_mean!r} vs expected 'identity'"
    ckpt.load_model(tmp_path / "old.npz", model(seed=1, likelihood="gaussian"))   # same architecture: accepted


def test_no_temporary_files_left(saved):
    assert os.listdir(saved.parent) == ["m.npz"]


def test_atomic_write_keeps_the_old_file_when_writing_fails(saved, monkeypatch):
    before = saved.read_bytes()
    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_model(saved, model(seed=5))
    assert saved.read_bytes() == before and os.listdir(saved.parent) == ["m.npz"]


def test_truncated_file(saved):
    saved.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        ckpt.load_model(saved)


def test_corrupted_bytes(saved):
    data = bytearray(saved.read_bytes())
    for i in range(200, len(data), 97):
        data[i] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        ckpt.load_model(saved)


def test_foreign_npz(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a numpyvae checkpoint"):
        ckpt.load_model(path)


def test_pickle_carrying_file_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, format=np.array(ckpt.FORMAT), version=np.array(1), model_config=np.array({"a": 1}, dtype=object))
    with pytest.raises(CheckpointError, match="dtype object, expected plain numbers or text"):
        ckpt.load_model(path)


def test_architecture_mismatch(saved):
    with pytest.raises(CheckpointError, match="does not match"):
        ckpt.load_model(saved, model(hidden=[7]))
    arrays = dict(np.load(saved, allow_pickle=False))
    arrays["param/encoder.0.W"] = np.zeros((3, 3), dtype=np.float32)
    np.savez(saved, **arrays)
    with pytest.raises(CheckpointError, match=r"parameter 'encoder.0.W' has shape \(3, 3\)"):
        ckpt.load_model(saved)


def test_future_version_and_missing_file(saved, tmp_path):
    arrays = dict(np.load(saved, allow_pickle=False))
    arrays["version"] = np.array(99)
    np.savez(saved, **arrays)
    with pytest.raises(CheckpointError, match="format version array.99."):
        ckpt.load_model(saved)
    with pytest.raises(CheckpointError, match="no such file"):
        ckpt.load_model(tmp_path / "nope.npz")


def test_model_only_checkpoint_cannot_resume(saved):
    from numpyvae.train import Trainer
    t = Trainer(model(), np.zeros((4, 10)), batch_size=2, progress=False)
    with pytest.raises(CheckpointError, match="no trainer state"):
        ckpt.load_trainer_state(saved, t)


@given(data=st.binary(max_size=2000))
def test_random_bytes_never_crash(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("rand") / "x.npz"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        ckpt.load_model(path)
