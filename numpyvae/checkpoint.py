"""Checkpoints: one ``.npz`` file, no pickle, written atomically.

Layout (every entry a plain array; text is stored as a 0-d unicode array):

    format             "numpyvae-checkpoint"
    version            1
    model_config       JSON: the VAE's constructor arguments
    param/<name>       every model parameter
    trainer_config     JSON: the Trainer's arguments           (trainer checkpoints)
    trainer_state      JSON: epoch, step, batch index, running sums, rng state
    perm               the current epoch's shuffling order (or empty)
    optim/<key>        the optimizer's slots and step count
    history            JSON: the per-epoch rows

``load`` opens it with ``allow_pickle=False`` and refuses anything else.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

from .errors import CheckpointError
from .vae import VAE

FORMAT, VERSION = "numpyvae-checkpoint", 1


def atomic_write(path, data):
    """Write bytes to ``path`` via a temporary file in the same folder and os.replace."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _text(obj):
    return np.array(json.dumps(obj))


def _save_arrays(path, arrays):
    import io
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue())


def model_arrays(model):
    """The entries that describe a model: format, version, config, parameters."""
    arrays = {"format": np.array(FORMAT), "version": np.array(VERSION), "model_config": _text(model.config)}
    arrays.update({f"param/{name}": p for name, p in model.params.items()})
    return arrays


def save_model(path, model):
    """Save a model alone (no optimizer or trainer state)."""
    _save_arrays(path, model_arrays(model))


def save_trainer(path, trainer):
    """Save everything a Trainer needs to resume bit-identically."""
    arrays = model_arrays(trainer.model)
    state = {"epoch": trainer.epoch, "step": trainer.step, "batch_index": trainer.batch_index,
             "epoch_sum": trainer.epoch_sum, "epoch_count": trainer.epoch_count,
             "rng": trainer.rng.bit_generator.state}
    arrays.update({"trainer_config": _text(trainer.config), "trainer_state": _text(state),
                   "history": _text(trainer.history),
                   "perm": np.array([] if trainer.perm is None else trainer.perm, dtype=np.int64)})
    arrays.update({f"optim/{key}": v for key, v in trainer.optimizer.state().items()})
    _save_arrays(path, arrays)


def read(path):
    """Open and validate a checkpoint; returns a dict of arrays (fully read)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path!r}: not a readable .npz file ({type(exc).__name__}: {exc}); "
                              "it may be truncated or corrupt") from None
    if not isinstance(arrays, dict) or str(arrays.get("format", "")) != FORMAT:
        raise CheckpointError(f"checkpoint {path!r}: expected a {FORMAT} file, found entries "
                              f"{sorted(arrays)[:8]} -- not a numpyvae checkpoint")
    if int(arrays["version"]) != VERSION:
        raise CheckpointError(f"checkpoint {path!r}: format version {int(arrays['version'])}, this numpyvae reads {VERSION}")
    return arrays


def _json(arrays, key, path):
    try:
        return json.loads(str(arrays[key]))
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path!r}: entry {key!r} missing or corrupt ({exc})") from None


def load_params(model, arrays, path="<arrays>"):
    """Copy the checkpoint's parameters into ``model``; refuse a mismatch."""
    for name, p in model.params.items():
        key = f"param/{name}"
        if key not in arrays:
            raise CheckpointError(f"checkpoint {path!r}: parameter {name!r} missing -- the architecture does not match")
        if arrays[key].shape != p.shape:
            raise CheckpointError(f"checkpoint {path!r}: parameter {name!r} has shape {arrays[key].shape}, "
                                  f"the model expects {p.shape} -- the architecture does not match")
        if not np.all(np.isfinite(arrays[key])):
            raise CheckpointError(f"checkpoint {path!r}: parameter {name!r} contains NaN or inf")
        p[...] = arrays[key]
    extra = {k[6:] for k in arrays if k.startswith("param/")} - set(model.params)
    if extra:
        raise CheckpointError(f"checkpoint {path!r}: parameters {sorted(extra)} are not in the model -- the architecture does not match")


def _model_config(arrays, path):
    """The VAE's constructor arguments; options added since version 1 get their defaults."""
    return {"gaussian_mean": "identity", **_json(arrays, "model_config", path)}


def load_model(path, model=None):
    """Build a VAE from a checkpoint (or fill ``model``, checking its architecture)."""
    arrays = read(path)
    config = _model_config(arrays, path)
    if model is None:
        try:
            model = VAE(**config)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path!r}: model_config {config} is not a valid VAE ({exc})") from None
    elif model.config != config:
        raise CheckpointError(f"checkpoint {path!r}: architecture {config} does not match the model's {model.config}")
    load_params(model, arrays, path)
    return model


def load_trainer_state(path, trainer):
    """Restore a Trainer (built with the same model and data) from a checkpoint."""
    arrays = read(path)
    if "trainer_state" not in arrays:
        raise CheckpointError(f"checkpoint {path!r}: holds a model only, no trainer state to resume from")
    load_model(path, trainer.model)
    state = _json(arrays, "trainer_state", path)
    try:
        trainer.optimizer.load_state({k[6:]: v for k, v in arrays.items() if k.startswith("optim/")})
        trainer.rng.bit_generator.state = state["rng"]
        trainer.epoch, trainer.step, trainer.batch_index = state["epoch"], state["step"], state["batch_index"]
        trainer.epoch_sum, trainer.epoch_count = state["epoch_sum"], state["epoch_count"]
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path!r}: trainer state is incomplete or does not match ({exc})") from None
    perm = arrays.get("perm", np.array([], dtype=np.int64))
    trainer.perm = perm.copy() if perm.size else None
    trainer.history = _json(arrays, "history", path)
    return trainer


def trainer_config(path):
    """The Trainer arguments stored in a checkpoint (to rebuild it for resuming)."""
    arrays = read(path)
    return _model_config(arrays, path), _json(arrays, "trainer_config", path)
