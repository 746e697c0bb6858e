"""Checkpoints: one ``.npz`` file, no pickle, written atomically, every field checked.

Layout (every entry a plain array; text is stored as a 0-d unicode array):

    format             "numpyvae-checkpoint"
    version            2 (1: written by numpyvae 0.1; still read)
    model_config       JSON: the VAE's constructor arguments
    param/<name>       every model parameter
    trainer_config     JSON: the Trainer's arguments                      (trainer checkpoints)
    trainer_counters   JSON: epoch, step, batch index, running sums, rng state
    perm               the current epoch's shuffling order (or empty)
    optim/<key>        the optimizer's slots and step count
    history            JSON: the per-epoch rows
    run_info           JSON: what the command line needs to resume (dataset, epochs, ...)
    threads            JSON: the step's workers and the BLAS under it (trainer checkpoints since 0.3):
                       workers, blas_threads (None: not readable), blas_controller, blas_libraries

``read`` opens it with ``allow_pickle=False``, checks the size every member
declares before reading any of it, and refuses anything that is not a plain
real array where one is expected.  Every failure is a CheckpointError naming
the file and the entry.
"""
import json
import math
import os
import stat
import zipfile

import numpy as np

from .blas_threads import LIBRARIES, blas_threads
from .blas_threads import controller as blas_controller
from .cvae import CVAE
from .data import BINARIZE
from .errors import CheckpointError, InputError, NumpyVAEError
from .estimators import ESTIMATORS
from .fileio import atomic_write
from .optim import OPTIMIZERS
from .parallel import check_workers
from .validate import check_choice, check_float, check_positive_int
from .vae import VAE, check_config

FORMAT, VERSION = "numpyvae-checkpoint", 2
READABLE_VERSIONS = (1, 2)
# the most a checkpoint's members may hold in all once read (a 10^8-parameter
# model with Adam's two slots in float64 is 2.4 GB)
MAX_BYTES = 3 * 10**9
# numpyvae writes its members uncompressed, so a member can never hold more than the
# file; a compressed member (recompressed by hand) may expand at most this much, so a
# small "zip bomb" cannot fill the memory
MAX_EXPANSION = 100
# the most members a checkpoint may hold: a model of MAX_HIDDEN_LAYERS has 404 parameters, Adam keeps
# two slots each, so about 1,250 entries; a file with 200,000 is refused before any is read
MAX_ENTRIES = 4096
TEXT_ENTRIES = ("format", "model_config", "trainer_config", "trainer_counters", "trainer_state", "history",
                "run_info", "threads")


def _text(obj, name):
    """A JSON entry as a 0-d text array; refuses what the reader would refuse (NaN, inf, non-JSON types)."""
    try:
        return np.array(json.dumps(obj, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected JSON-able plain values (str, int, finite float, list, dict), "
                         f"got {str(obj)[:80]} ({exc})") from None


def _save_arrays(path, arrays):
    # written straight into the temporary file: a large model's checkpoint is never held in memory twice
    atomic_write(path, lambda f: np.savez(f, **arrays))


def model_arrays(model):
    """The entries that describe a model: format, version, config, parameters."""
    if not isinstance(model, VAE):
        raise InputError(f"model: expected a numpyvae VAE, got {type(model).__name__}")
    arrays = {"format": np.array(FORMAT), "version": np.array(VERSION), "model_config": _text(model.config, "model_config")}
    arrays.update({f"param/{name}": p for name, p in model.params.items()})
    return arrays


def save_model(path, model):
    """Save a model alone (no optimizer or trainer state).

    The model's lock is held while its arrays are written: a Trainer in
    another thread (which holds it across each step) cannot change them
    half-way, so the file holds one step's parameters.
    """
    arrays = model_arrays(model)
    with model.lock:
        _save_arrays(path, arrays)


def save_trainer(path, trainer, run_info=None):
    """Save everything a Trainer needs to resume bit-identically (its ``state()``).

    run_info : a JSON-able dict the command line keeps beside the state
               (dataset, epochs, image shape), or None.
    """
    if not all(hasattr(trainer, a) for a in ("state", "model", "config")):
        raise InputError(f"trainer: expected a numpyvae Trainer, got {type(trainer).__name__}")
    if run_info is not None and not isinstance(run_info, dict):
        raise InputError(f"run_info: expected a dict or None, got {type(run_info).__name__}")
    if not isinstance(trainer.model, VAE):
        raise InputError(f"trainer.model: expected a numpyvae VAE, got {type(trainer.model).__name__}")
    with trainer.model.lock:                  # one step's parameters and optimizer state (see save_model)
        _save_trainer_locked(path, trainer, run_info)


def _save_trainer_locked(path, trainer, run_info):
    state = trainer.state()
    arrays = model_arrays(trainer.model)
    arrays.update({"trainer_config": _text(trainer.config, "trainer.config"),
                   "trainer_counters": _text(state["counters"], "trainer counters"),
                   "history": _text(state["history"], "history"), "perm": state["perm"],
                   "run_info": _text(run_info or {}, "run_info"),
                   "threads": _text(thread_counts(trainer), "threads")})
    arrays.update({f"optim/{key}": v for key, v in state["optimizer"].items()})
    _save_arrays(path, arrays)


# ---- reading ----------------------------------------------------------------------------

def _path(path):
    """The checkpoint's path as a str, or CheckpointError if it is not a path at all."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise CheckpointError(f"checkpoint: expected a file path, got {type(path).__name__}")
    return os.fsdecode(path)


class Arrays(dict):
    """A checkpoint as ``read`` returned it: name -> array, with the ``path`` it was read from.

    Every reader below (load_model, trainer_config, run_info,
    load_trainer_state) takes either a path or one of these: a caller that
    needs several of them reads the file once and builds everything from
    that one read, so a checkpoint replaced meanwhile (another trainer saving
    it) cannot mix two versions.
    """

    def __init__(self, arrays, path):
        super().__init__(arrays)
        self.path = path


def _source(source):
    """(arrays, path) from a path (read now) or from an Arrays read before."""
    if isinstance(source, Arrays):
        return source, source.path
    path = _path(source)
    return read(path), path


def _declared_nbytes(npz_file, member):
    """Bytes an .npy member (a ZipInfo) says it holds, read from its header alone."""
    from numpy.lib import format as npy
    with npz_file.open(member) as f:
        version = npy.read_magic(f)
        reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, dtype = reader(f)
    return int(np.prod(shape, dtype=object)) * dtype.itemsize, dtype


# what a file that is not a regular file is, for the message
_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _kind(mode):
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def read(path):
    """Open and validate a checkpoint; returns an ``Arrays`` (name -> array, fully read).

    The file is opened once and everything is read through that one open
    file: a checkpoint renamed over by another process meanwhile is read
    whole, as it was when opened, never half old and half new.  It must be a
    regular file (a FIFO or a device is refused before it is opened).
    Before any member is read, every member's header is checked: a plain
    real or text dtype, a declared size no larger than the member itself, and
    MAX_BYTES in all; a compressed member may expand at most MAX_EXPANSION
    times; at most MAX_ENTRIES members.  Memory is so bounded by the file's
    size, whatever its headers claim.
    """
    path = _path(path)
    where = f"checkpoint {path!r}"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{where}: no such file") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{where}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if not stat.S_ISREG(mode):            # opening a FIFO would wait for a writer forever
        raise CheckpointError(f"{where}: is {_kind(mode)}, expected a checkpoint file")
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    with f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):    # replaced between the stat and the open
            raise CheckpointError(f"{where}: is {_kind(os.fstat(f.fileno()).st_mode)}, expected a checkpoint file")
        arrays = _read_open(f, where)
    return _check_format(Arrays(arrays, path), where)


def _read_open(f, where):
    """The members of the open .npz file ``f``, each checked before it is read."""
    from numpy.lib import format as npy
    try:
        with zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ENTRIES:
                raise CheckpointError(f"{where}: holds {len(infos):,} entries, a numpyvae checkpoint at most "
                                      f"{MAX_ENTRIES:,} -- not a numpyvae checkpoint")
            keys = [info.filename[:-4] if info.filename.endswith(".npy") else info.filename for info in infos]
            if len(set(keys)) != len(keys):
                seen, twice = set(), set()
                for key in keys:
                    (twice if key in seen else seen).add(key)
                raise CheckpointError(f"{where}: members {sorted(twice)[:3]} appear more than once -- "
                                      "not a numpyvae checkpoint")
            total = 0
            for info in infos:
                if info.flag_bits & 0x1:
                    raise CheckpointError(f"{where}: member {info.filename!r} is encrypted -- not a numpyvae checkpoint")
                if info.compress_type != zipfile.ZIP_STORED and \
                        info.file_size > MAX_EXPANSION * info.compress_size + 65536:
                    raise CheckpointError(f"{where}: member {info.filename!r} would expand from "
                                          f"{info.compress_size:,} to {info.file_size:,} bytes -- refusing to read it")
                nbytes, dtype = _declared_nbytes(zf, info)
                if dtype.kind not in "biufU" or dtype.hasobject:
                    raise CheckpointError(f"{where}: entry {info.filename[:-4]!r} has dtype {dtype}, "
                                          "expected plain numbers or text")
                if nbytes > info.file_size:
                    raise CheckpointError(f"{where}: entry {info.filename[:-4]!r} declares {nbytes:,} bytes "
                                          f"but its member holds {info.file_size:,} -- truncated or corrupt")
                total += nbytes
                if total > MAX_BYTES:
                    raise CheckpointError(f"{where}: its entries declare more than {MAX_BYTES:,} bytes "
                                          f"(at {info.filename!r}) -- refusing to read it")
            arrays = {}
            for key, info in zip(keys, infos):
                with zf.open(info) as member:
                    arrays[key] = npy.read_array(member, allow_pickle=False)
            return arrays
    except CheckpointError:
        raise
    except Exception as exc:   # zipfile, zlib, struct, numpy's header parser: a damaged file can raise any of them
        raise CheckpointError(f"{where}: not a readable .npz file ({type(exc).__name__}: {str(exc)[:200]}); "
                              "it may be truncated or corrupt") from None


def _check_format(arrays, where):
    """The format and version entries, and the text entries' kind."""
    fmt = arrays.get("format")
    if not (isinstance(fmt, np.ndarray) and fmt.shape == () and fmt.dtype.kind == "U" and str(fmt) == FORMAT):
        raise CheckpointError(f"{where}: expected a {FORMAT} file, found entries "
                              f"{sorted(arrays)[:8]} -- not a numpyvae checkpoint")
    version = arrays.get("version")
    if not (isinstance(version, np.ndarray) and version.shape == () and version.dtype.kind in "iu"
            and int(version) in READABLE_VERSIONS):
        raise CheckpointError(f"{where}: format version {version!r:.40}, this numpyvae reads versions "
                              f"{', '.join(map(str, READABLE_VERSIONS))}")
    for key in TEXT_ENTRIES:
        if key in arrays and not (arrays[key].shape == () and arrays[key].dtype.kind == "U"):
            raise CheckpointError(f"{where}: entry {key!r} should be text, found {arrays[key].dtype} "
                                  f"{arrays[key].shape}")
    return arrays


def _no_constant(name):
    raise ValueError(f"{name} is not a number this package writes")


def _json(arrays, key, path, kind=dict):
    """The JSON text entry ``key`` decoded; it must be a ``kind``.  NaN and Infinity are refused."""
    try:
        value = json.loads(str(arrays[key]), parse_constant=_no_constant)
    except (KeyError, ValueError, RecursionError) as exc:   # ValueError: bad JSON, a 5000-digit number, NaN
        raise CheckpointError(f"checkpoint {path!r}: entry {key!r} missing or corrupt "
                              f"({type(exc).__name__}: {str(exc)[:80]})") from None
    if not isinstance(value, kind):
        raise CheckpointError(f"checkpoint {path!r}: entry {key!r} should be a JSON {kind.__name__}, "
                              f"found {type(value).__name__}")
    return value


def load_params(model, arrays, path="<arrays>"):
    """Copy the checkpoint's parameters into ``model``; refuse a mismatch.

    Each parameter must be a float array of the model's exact shape, finite;
    float32 and float64 are both accepted (the value is cast to the model's
    dtype), integers, bools and complex numbers are refused.
    """
    checked = {}
    for name, p in model.params.items():
        key = f"param/{name}"
        if key not in arrays:
            raise CheckpointError(f"checkpoint {path!r}: parameter {name!r} missing -- the architecture does not match")
        a = arrays[key]
        if a.dtype.kind != "f":
            raise CheckpointError(f"checkpoint {path!r}: parameter {name!r} has dtype {a.dtype}, expected float")
        if a.shape != p.shape:
            raise CheckpointError(f"checkpoint {path!r}: parameter {name!r} has shape {a.shape}, "
                                  f"the model expects {p.shape} -- the architecture does not match")
        if not np.all(np.isfinite(a)):
            raise CheckpointError(f"checkpoint {path!r}: parameter {name!r} contains NaN or inf")
        with np.errstate(over="ignore"):
            a = a.astype(p.dtype)                  # checked as it will be stored: 1e300 is inf in float32
        if not np.all(np.isfinite(a)):
            raise CheckpointError(f"checkpoint {path!r}: parameter {name!r} holds values beyond the range of "
                                  f"the model's {p.dtype}")
        checked[name] = a
    extra = {k[6:] for k in arrays if k.startswith("param/")} - set(model.params)
    if extra:
        raise CheckpointError(f"checkpoint {path!r}: parameters {sorted(extra)} are not in the model -- the architecture does not match")
    with model.lock:                          # a thread using the model sees the old or the new parameters
        for name, p in model.params.items():
            p[...] = checked[name]


def _model_config(arrays, path):
    """The VAE's constructor arguments; options added since version 1 get their defaults."""
    config = {"gaussian_mean": "identity", "arch": "mlp", "image_shape": None, "encoder": None, "decoder": None,
              **_json(arrays, "model_config", path)}
    if "prior" in config and config["prior"] in (None, "standard_normal"):   # N(0, I) is the config without the entry
        del config["prior"]
    return config


MODEL_KEYS = ("x_dim", "hidden", "z_dim", "likelihood", "activation", "init", "dtype", "gaussian_mean", "arch",
              "image_shape", "encoder", "decoder", "flow_steps", "flow", "prior", "n_classes")


def check_model_config(config, path):
    """The stored VAE arguments checked without building the model (CheckpointError saying why not)."""
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {path!r}: model_config should be a mapping, found {type(config).__name__}")
    unknown = set(config) - set(MODEL_KEYS)
    if unknown:
        raise CheckpointError(f"checkpoint {path!r}: model_config has unknown options {sorted(unknown)[:8]}")
    config = dict(config)
    n_classes = config.pop("n_classes", None)              # a conditional VAE (numpyvae/cvae.py)
    try:
        checked = check_config(**config)
        if n_classes is not None:
            n_classes = check_positive_int("n_classes", n_classes)
            if checked["arch"] != "mlp" or checked.get("prior", {}).get("name") == "vampprior":
                raise InputError("n_classes: a conditional VAE is an 'mlp' without the VampPrior")
            checked["n_classes"] = n_classes
        return checked
    except (NumpyVAEError, TypeError) as exc:   # TypeError: a required option (x_dim) missing
        raise CheckpointError(f"checkpoint {path!r}: model_config is not a valid VAE ({exc})") from None


def build_model(config, path):
    """A VAE (or a CVAE, when the config has n_classes) from a stored config, or CheckpointError saying why not."""
    config = check_model_config(config, path)
    if "n_classes" in config:
        return CVAE(config["x_dim"], config["n_classes"], config["hidden"], config["z_dim"], config["likelihood"],
                    config["activation"], config["init"], config["dtype"], gaussian_mean=config["gaussian_mean"],
                    prior=config.get("prior"))
    return VAE(**config)


def load_model(path, model=None):
    """Build a VAE from a checkpoint (or fill ``model``, checking its architecture).

    path : a checkpoint's path, or the ``Arrays`` that ``read`` returned.
    """
    if model is not None and not isinstance(model, VAE):
        raise InputError(f"model: expected a numpyvae VAE or None, got {type(model).__name__}")
    arrays, path = _source(path)
    config = _model_config(arrays, path)
    if model is None:
        model = build_model(config, path)
    elif model.config != config:
        raise CheckpointError(f"checkpoint {path!r}: architecture {config} does not match the model's {model.config}")
    load_params(model, arrays, path)
    return model


def _upgrade_v1(arrays, path):
    """Version-1 trainer entries in the version-2 shape (only between epochs: v1 kept one running sum)."""
    old = _json(arrays, "trainer_state", path)
    if old.get("batch_index") or old.get("epoch_count"):
        raise CheckpointError(f"checkpoint {path!r}: written by numpyvae 0.1 in the middle of an epoch; "
                              "it cannot be resumed by this version (its model still loads: evaluate, sample)")
    counters = {k: old.get(k) for k in ("epoch", "step", "batch_index", "epoch_count", "rng")}
    counters["sums"] = {"objective": 0.0, "neg_elbo": 0.0, "recon": 0.0, "kl": 0.0}
    history = _json(arrays, "history", path, list)
    renamed = [{({"train_loss": "train_objective", "test_loss": "test_neg_elbo"}).get(k, k): v
                for k, v in row.items()} if isinstance(row, dict) else row for row in history]
    return counters, renamed


# the Trainer's arguments as stored, each with its check (the same rules as Trainer.__init__)
TRAINER_CHECKS = {
    "optimizer": lambda v: check_choice("optimizer", v, OPTIMIZERS),
    "lr": lambda v: check_float("lr", v, lo=0.0, lo_open=True),
    "batch_size": lambda v: check_positive_int("batch_size", v),
    "estimator": lambda v: check_choice("estimator", v, ESTIMATORS),
    "k": lambda v: check_positive_int("k", v),
    "binarize": lambda v: check_choice("binarize", v, BINARIZE),
    "beta": lambda v: check_float("beta", v, lo=0.0, hi=1e6),
    "warmup_epochs": lambda v: check_float("warmup_epochs", v, lo=0.0, hi=1e6),
    "test_k": lambda v: check_positive_int("test_k", v),
    "weight_decay": lambda v: check_float("weight_decay", v, lo=0.0, hi=1e6),
    "seed": lambda v: check_positive_int("seed", v, minimum=0),
    "workers": lambda v: check_workers(v if v is not None else 0),     # stored as a number, never None
}


def check_trainer_config(config, path):
    """The stored Trainer arguments: known names, each valid (CheckpointError naming the first that is not)."""
    unknown = set(config) - set(TRAINER_CHECKS)
    if unknown:
        raise CheckpointError(f"checkpoint {path!r}: trainer_config has unknown options {sorted(unknown)[:8]}")
    try:
        for key, value in config.items():
            TRAINER_CHECKS[key](value)
    except NumpyVAEError as exc:
        raise CheckpointError(f"checkpoint {path!r}: trainer_config is not valid ({exc})") from None
    return config


def check_history(history, path):
    """Each row a mapping of names to finite numbers or None, row i holding epoch i + 1."""
    for i, row in enumerate(history):
        if not isinstance(row, dict) or row.get("epoch") != i + 1 or isinstance(row.get("epoch"), bool):
            raise CheckpointError(f"checkpoint {path!r}: history[{i}] should be the row of epoch {i + 1}, "
                                  f"found {str(row)[:80]}")
        for key, value in row.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise CheckpointError(f"checkpoint {path!r}: history[{i}][{key!r}] should be a finite number "
                                      f"or null, found {value!r:.40}")
    return history


def check_counters(counters, trainer, path):
    """What Trainer.load_state does not see: counters that agree with each other and a usable rng state."""
    step, batch_index, count = (counters.get(k) for k in ("step", "batch_index", "epoch_count"))
    if all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (batch_index, count)):
        # examples seen this epoch: every batch full but perhaps the last
        expected = min(batch_index * trainer.batch_size, len(trainer.x_train))
        if count != expected:
            raise CheckpointError(f"checkpoint {path!r}: trainer_counters say {batch_index} batches of "
                                  f"{trainer.batch_size} were done this epoch but {count} examples seen "
                                  f"(expected {expected})")
    scratch = np.random.Generator(type(trainer.rng.bit_generator)())
    try:
        scratch.bit_generator.state = counters.get("rng")
    except Exception as exc:      # numpy raises TypeError, ValueError, KeyError or OverflowError here
        raise CheckpointError(f"checkpoint {path!r}: trainer_counters.rng is not a state of numpy's "
                              f"{type(scratch.bit_generator).__name__} ({type(exc).__name__}: {str(exc)[:80]})") from None
    return step


def load_trainer_state(path, trainer):
    """Restore a Trainer (built with the same model and data) from a checkpoint (a path or ``read``'s Arrays).

    The model's parameters and the trainer's counters, history and optimizer
    state all come from one read of the file.
    """
    if not all(hasattr(trainer, a) for a in ("load_state", "model", "rng", "batch_size", "x_train")):
        raise InputError(f"trainer: expected a numpyvae Trainer, got {type(trainer).__name__}")
    arrays, path = _source(path)
    if "trainer_counters" not in arrays and "trainer_state" not in arrays:
        raise CheckpointError(f"checkpoint {path!r}: holds a model only, no trainer state to resume from")
    if int(arrays["version"]) == 1:
        counters, history = _upgrade_v1(arrays, path)
    else:
        counters, history = _json(arrays, "trainer_counters", path), _json(arrays, "history", path, list)
        # Adam's bias correction counts steps: its t must be the trainer's step count
        t = arrays.get("optim/t")
        if t is not None and t.shape == () and t.dtype.kind in "iu" and int(t) != counters.get("step"):
            raise CheckpointError(f"checkpoint {path!r}: the optimizer counted {int(t)} steps, "
                                  f"trainer_counters {counters.get('step')!r:.40}")
    check_counters(counters, trainer, path)
    check_history(history, path)
    state = {"counters": counters, "history": history,
             "perm": arrays.get("perm", np.array([], dtype=np.int64)),
             "optimizer": {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}}
    load_model(arrays, trainer.model)
    try:
        trainer.load_state(state)
    except NumpyVAEError as exc:
        raise CheckpointError(f"checkpoint {path!r}: trainer state does not fit this run: {exc}") from None
    return trainer


def trainer_config(path):
    """(model_config, trainer_config, run_info) stored in a trainer checkpoint (a path or ``read``'s Arrays)."""
    arrays, path = _source(path)
    if "trainer_config" not in arrays:
        raise CheckpointError(f"checkpoint {path!r}: holds a model only, no trainer state to resume from")
    # options added since the checkpoint may have been written get their defaults
    config = {"weight_decay": 0.0, **_json(arrays, "trainer_config", path)}
    run_info = _json(arrays, "run_info", path) if "run_info" in arrays else config.pop("meta", {})
    if not isinstance(run_info, dict):
        raise CheckpointError(f"checkpoint {path!r}: entry 'run_info' should be a JSON object")
    config.pop("meta", None)
    model_config = _model_config(arrays, path)
    check_model_config(model_config, path)
    return model_config, check_trainer_config(config, path), run_info


def thread_counts(trainer):
    """What a trainer checkpoint records of the threads: the step's workers and the BLAS under them.

    The numbers of a run are bit-identical at a fixed worker count and BLAS
    thread count; another count sums in another order (float rounding).
    """
    return {"workers": int(getattr(trainer, "workers", 1)), "blas_threads": blas_threads(),
            "blas_controller": blas_controller(), "blas_libraries": [os.path.basename(p) for p in LIBRARIES]}


def threads(path):
    """The ``threads`` entry of a trainer checkpoint, checked; None for a checkpoint written before it existed."""
    arrays, path = _source(path)
    if "threads" not in arrays:
        return None
    value = _json(arrays, "threads", path)
    workers, blas = value.get("workers"), value.get("blas_threads")
    bad = [k for k, v, none_ok in (("workers", workers, False), ("blas_threads", blas, True))
           if not ((none_ok and v is None) or (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100_000))]
    if bad:
        raise CheckpointError(f"checkpoint {path!r}: threads.{bad[0]} is {value.get(bad[0])!r:.40}, expected an "
                              f"integer >= 1{' or null' if bad[0] == 'blas_threads' else ''}")
    controller = value.get("blas_controller")
    libraries = value.get("blas_libraries")
    if controller is not None and not isinstance(controller, str):
        raise CheckpointError(f"checkpoint {path!r}: threads.blas_controller is {controller!r:.40}, "
                              "expected text or null")
    if not (isinstance(libraries, list) and all(isinstance(n, str) for n in libraries)):
        raise CheckpointError(f"checkpoint {path!r}: threads.blas_libraries is {libraries!r:.60}, "
                              "expected a list of names")
    return {"workers": workers, "blas_threads": blas, "blas_controller": controller, "blas_libraries": libraries}


def run_info(path):
    """The run_info stored beside a trainer's state ({} for a model-only checkpoint); a path or ``read``'s Arrays."""
    arrays, path = _source(path)
    if "run_info" in arrays:
        return _json(arrays, "run_info", path)
    if "trainer_config" in arrays:
        meta = _json(arrays, "trainer_config", path).get("meta", {})
        if not isinstance(meta, dict):
            raise CheckpointError(f"checkpoint {path!r}: trainer_config.meta should be a JSON object")
        return meta
    return {}
