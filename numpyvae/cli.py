"""The command line: ``python -m numpyvae train | evaluate | sample``.

    python -m numpyvae train                      # 8x8 digits, offline, < 1 minute
    python -m numpyvae train --dataset mnist --epochs 10
    python -m numpyvae train --resume runs/digits/checkpoint.npz --epochs 300
    python -m numpyvae evaluate runs/mnist/checkpoint.npz --dataset mnist
    python -m numpyvae sample runs/digits/checkpoint.npz --out samples.png

Every bad argument ends in one line on stderr, ``numpyvae: error: ...``, and
exit code 2; Ctrl-C ends with 130, SIGTERM with 143, SIGHUP (the terminal closed) with 129
(the run saved first).
A run's folder is locked while a trainer writes it (numpyvae.runs).
"""
import argparse
import math
import os
import signal
import sys
import time

import numpy as np

from . import __version__
from . import checkpoint as ckpt
from .errors import CheckpointError, FileError, InputError, NumpyVAEError, TrainingError
from .blas_threads import blas_threads
from .evaluate import MAX_WORKERS
from .fileio import describe_os_error, refuse_non_regular
from .estimators import ESTIMATORS
from .architectures import ARCHITECTURES
from .layers import ACTIVATIONS
from .optim import OPTIMIZERS
from .parallel import check_workers
from .runs import CHECKPOINT, HISTORY, RunFolder
from .train import BINARIZE, Trainer, write_history
from .memory import training_bytes
from .vae import GAUSSIAN_MEANS, LIKELIHOODS, MAX_FLOW_STEPS, VAE, check_config

# Defaults per dataset: hidden sizes, z_dim, likelihood (and the Gaussian
# decoder's mean), epochs, batch_size.
DEFAULTS = {
    "digits": dict(hidden=[128], z_dim=2, likelihood="bernoulli", epochs=150, batch_size=32),
    "mnist": dict(hidden=[400], z_dim=20, likelihood="bernoulli", epochs=10, batch_size=128),
    "fashion-mnist": dict(hidden=[400], z_dim=20, likelihood="bernoulli", epochs=10, batch_size=128),
    "binarized-mnist": dict(hidden=[400], z_dim=20, likelihood="bernoulli", epochs=10, batch_size=128),
    "frey-face": dict(hidden=[200], z_dim=2, likelihood="gaussian", gaussian_mean="sigmoid", epochs=300,
                      batch_size=100),
}
# (height, width) of each dataset's images: a model trained on one is refused on another before
# any download, and a model-only checkpoint's samples are drawn in the right shape
IMAGE_SHAPES = {"digits": (8, 8), "mnist": (28, 28), "fashion-mnist": (28, 28), "binarized-mnist": (28, 28),
                "frey-face": (28, 20)}
X_DIM = {name: h * w for name, (h, w) in IMAGE_SHAPES.items()}
# samples per example: memory grows with batch * k rows, so k is capped
MAX_K_TRAIN, MAX_K_EVALUATE = 1000, 10000
# importance samples per example for --log-marginal: 10^6 on MNIST's 10,000 test images is already
# 10^10 decoder rows (days on a laptop); more is a typo
MAX_K_LOG_MARGINAL = 10**6
MAX_SAMPLES = 4096          # a 64 x 64 grid
DEFAULT_MAX_MEMORY = 4.0    # GiB a training run may take (estimated) unless --max-memory says more
# options of `train` that describe the model or the trainer: a resumed run keeps them
MODEL_OPTIONS = ("arch", "hidden", "z_dim", "likelihood", "gaussian_mean", "activation", "init", "dtype")
TRAINER_OPTIONS = ("optimizer", "lr", "batch_size", "estimator", "k", "binarize", "beta", "warmup_epochs",
                   "test_k", "weight_decay", "seed")


# ---- argument types: argparse prints "argument --x: <message>" and exits with code 2 ------------

def integer(minimum, maximum=None):
    """An argparse type: an integer in [minimum, maximum]."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise argparse.ArgumentTypeError(f"expected an integer {bound}, got {text!r}")
        return value
    return parse


def workers_count(text):
    """An argparse type: "auto" (as many workers as BLAS has threads) or an integer from 1 to MAX_WORKERS."""
    return check_workers(None) if text == "auto" else integer(1, MAX_WORKERS)(text)


def number(minimum, strict=False):
    """An argparse type: a finite real number >= minimum (> minimum if strict)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            bound = f"{'>' if strict else '>='} {minimum:g}"
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}")
        return value
    return parse


def path_name(text):
    """An argparse type: a non-empty path."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file or folder name, got an empty string")
    if "\0" in text:           # only possible from Python (a shell cannot pass it), but refused all the same
        raise argparse.ArgumentTypeError(f"expected a file or folder name, got {text!r} (a NUL character)")
    return text


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument gives one line (the usage is one --help away), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" after every option that has a default (not for None or a flag's False)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS \
                or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _per_dataset(key):
    values = {name: d.get(key, "identity") for name, d in DEFAULTS.items()}
    return "default per dataset: " + ", ".join(
        f"{name} {' '.join(map(str, v)) if isinstance(v, list) else v}" for name, v in values.items())


def build_parser(suppress_defaults=False):
    """The argument parser.  suppress_defaults: options not typed are left out (to see what was typed)."""
    def option(parser, *flags, **kw):
        if suppress_defaults:
            kw["default"] = argparse.SUPPRESS
        parser.add_argument(*flags, **kw)

    p = Parser(prog="numpyvae", description="A Variational Autoencoder in NumPy.",
                                formatter_class=HelpFormatter)
    p.add_argument("--version", action="version",
                   version=f"numpyvae {__version__} (numpy {np.__version__}, Python {sys.version.split()[0]})")
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,evaluate,sample}")

    t = sub.add_parser("train", help="train a VAE and write history, checkpoint and plots",
                       formatter_class=HelpFormatter,
                       description="Train a VAE. The run's folder (--out) gets checkpoint.npz (after every epoch "
                                   "and on Ctrl-C or SIGTERM), history.csv/.json and the figures.")
    option(t, "--dataset", choices=sorted(DEFAULTS), default="digits", help="what to train on")
    option(t, "--data-dir", type=path_name, metavar="FOLDER",
           help="folder holding the dataset files (default: $NUMPYVAE_DATA, the cache, else download)")
    option(t, "--hidden", type=integer(1), nargs="+", metavar="UNITS",
           help=f"hidden layer sizes ({_per_dataset('hidden')})")
    option(t, "--z-dim", type=integer(1), metavar="Z", help=f"latent dimension ({_per_dataset('z_dim')})")
    option(t, "--likelihood", choices=LIKELIHOODS, help=f"p(x|z) ({_per_dataset('likelihood')})")
    option(t, "--gaussian-mean", choices=GAUSSIAN_MEANS,
           help=f"the Gaussian decoder's mean: raw output, or squashed into (0, 1) ({_per_dataset('gaussian_mean')})")
    option(t, "--arch", choices=sorted(ARCHITECTURES), default="mlp",
           help="mlp: fully connected (Kingma & Welling); conv: two stride-2 convolutions (32, 64 filters) "
                "before --hidden, mirrored by transposed convolutions (numpyvae/architectures.py)")
    option(t, "--flow-steps", type=integer(0, MAX_FLOW_STEPS), default=0, metavar="K",
           help="K > 0: q(z|x) pushed through K planar flow steps whose parameters the encoder produces "
                "(derivations/13-planar-flows.md); train with --estimator mc or iwae")
    option(t, "--flow", choices=["planar", "radial"], default="planar", help="the kind of flow step (with --flow-steps)")
    option(t, "--activation", choices=sorted(ACTIVATIONS), default="relu", help="hidden layers' nonlinearity")
    option(t, "--init", choices=["glorot", "normal"], default="glorot", help="initial weights")
    option(t, "--prior", type=prior_option, default="standard", metavar="standard|mixture:C|vampprior:C",
           help="p(z): N(0, I), a learned mixture of C Gaussians, or the VampPrior with C pseudo-inputs "
                "(a learned prior has no closed-form KL: give --estimator mc, iwae or stl)")
    option(t, "--estimator", choices=sorted(ESTIMATORS), default="analytic",
           help="the ELBO estimator and its gradient (derivations/)")
    option(t, "-k", type=integer(1, MAX_K_TRAIN), default=1, help=f"samples per example (at most {MAX_K_TRAIN})")
    option(t, "--optimizer", choices=sorted(OPTIMIZERS), default="adam", help="the update rule")
    option(t, "--lr", type=number(0, strict=True), help="learning rate (default: the optimizer's own)")
    option(t, "--epochs", type=integer(0), metavar="N", help=f"epochs in all, counting a resumed run's ({_per_dataset('epochs')})")
    option(t, "--batch-size", type=integer(1), metavar="N", help=f"examples per step ({_per_dataset('batch_size')})")
    option(t, "--binarize", choices=BINARIZE, default="none", help="binarize the images (Bernoulli only)")
    option(t, "--beta", type=number(0), default=1.0, help="weight of the KL term")
    option(t, "--warmup-epochs", type=number(0), default=0.0, metavar="N", help="epochs of linear KL warm-up")
    option(t, "--weight-decay", type=number(0), default=0.0, metavar="LAMBDA",
           help="a N(0, I/LAMBDA) prior on the weights, shared by the training examples (0: none)")
    option(t, "--test-k", type=integer(1, MAX_K_EVALUATE), default=1, metavar="K",
           help="samples for the test bound (>1: IWAE bound)")
    option(t, "--dtype", choices=["float32", "float64"], default="float32", help="the floats of the arithmetic")
    option(t, "--seed", type=integer(0), default=0, help="seeds the initial weights and every random draw")
    option(t, "--out", type=path_name, metavar="FOLDER", help="the run's folder (default: runs/DATASET)")
    option(t, "--resume", metavar="CHECKPOINT", type=path_name,
           help="continue the run saved in CHECKPOINT (its model and trainer settings are kept; "
                "--epochs, --data-dir and --out may be given)")
    option(t, "--force", action="store_true", help="replace a run already in --out (its files are removed)")
    option(t, "--workers", type=workers_count, metavar="N",
           help="threads that share each training step, each on a one-thread BLAS (numpyvae/parallel.py); "
                "auto: as many as BLAS has threads (default: 1, the serial step; a resumed run keeps its count "
                "unless this is given)")
    t.add_argument("--max-memory", type=number(0, strict=True), default=DEFAULT_MAX_MEMORY, metavar="GiB",
                   help="refuse a run whose estimated peak memory is larger (numpyvae/memory.py)")
    option(t, "--no-progress", action="store_true", help="no progress bar (it is drawn only on a terminal anyway)")
    option(t, "--quiet", "-q", action="store_true", help="no per-epoch lines and no progress bar")
    option(t, "--no-plots", action="store_true", help="write no figures")

    e = sub.add_parser("evaluate", help="print the test ELBO of a checkpoint", formatter_class=HelpFormatter)
    e.add_argument("checkpoint", type=path_name, help="a checkpoint.npz written by train")
    e.add_argument("--dataset", choices=sorted(DEFAULTS), help="default: the one it was trained on")
    e.add_argument("--data-dir", type=path_name, metavar="FOLDER", help="default: the one it was trained with, else as for train")
    e.add_argument("-k", type=integer(1, MAX_K_EVALUATE), default=1,
                   help="samples per example (>1 also prints the IWAE bound)")
    e.add_argument("--log-marginal", type=integer(0, MAX_K_LOG_MARGINAL), default=0, metavar="K",
                   help="also estimate log p(x) by importance sampling with K samples (0: no; at most "
                        f"{MAX_K_LOG_MARGINAL:,}); its progress and the time left go to stderr")
    e.add_argument("--workers", type=integer(1, MAX_WORKERS), default=None, metavar="N",
                   help="threads for --log-marginal, each on a one-thread BLAS (default: as many as BLAS has)")
    e.add_argument("--binarize", choices=BINARIZE, help="default: as in training")
    e.add_argument("--seed", type=integer(0), default=0, help="seeds every random draw")

    s = sub.add_parser("sample", help="write a grid of samples from the prior", formatter_class=HelpFormatter)
    s.add_argument("checkpoint", type=path_name, help="a checkpoint.npz written by train")
    s.add_argument("--n", type=integer(1, MAX_SAMPLES), default=64, help=f"how many samples (at most {MAX_SAMPLES})")
    s.add_argument("--out", type=path_name, default="samples.png", metavar="FILE", help="the PNG file to write")
    s.add_argument("--seed", type=integer(0), default=0, help="seeds the draws of z")
    return p


def _load_data(name, data_dir, progress=None):
    from .data import load
    return load(name, data_dir, progress=progress)


def _data_from_checkpoint(name, given, stored, path, progress=None):
    """The data of a resumed or evaluated run: --data-dir if given, else the folder the checkpoint records.

    A recorded folder that does not exist here (the run was trained elsewhere, or with a relative
    --data-dir from another working folder) is skipped with a note: the data are then looked for as
    for a new run ($NUMPYVAE_DATA, the cache, a download).  A recorded folder whose files fail is
    named as coming from the checkpoint.  Returns (data, the folder used or None).
    """
    from .errors import DataError
    if given:
        return _load_data(name, given, progress), given
    if stored is not None and not os.path.isdir(stored):
        _tell_stderr(f"numpyvae: note: the data folder {stored!r} recorded in {path} does not exist here; "
                     "looking where a new run would ($NUMPYVAE_DATA, the cache, a download); "
                     "--data-dir names another")
        stored = None
    try:
        return _load_data(name, stored, progress), stored
    except (DataError, InputError) as exc:
        if stored is None:
            raise
        raise DataError(f"{exc} (the data folder {stored!r} is the one recorded in {path}; "
                        "give --data-dir to use another)") from None


def _say(args, text):
    """A note on stderr (silenced by --quiet)."""
    if not getattr(args, "quiet", False):
        _tell_stderr(text)


# ---- train ----------------------------------------------------------------------------------

def _option_name(dest):
    return "-k" if dest == "k" else "--" + dest.replace("_", "-")


def prior_option(text):
    """--prior: "standard", "mixture:C" or "vampprior:C" -> the VAE's prior argument (None or a dict)."""
    name, _, count = str(text).partition(":")
    if name == "standard" and not count:
        return None
    if name not in ("mixture", "vampprior") or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"expected standard, mixture:C or vampprior:C with C >= 1 "
                                         f"components, got {text!r}")
    return {"name": name, "components": int(count)}


def _prior_text(prior):
    return "standard" if prior is None else f"{prior['name']}:{prior['components']}"


def _refuse_conflicts(args, model_config, trainer_config, run_info):
    """A resumed run keeps its model, trainer settings and dataset: an option that differs is refused."""
    stored = {**{key: model_config.get(key) for key in MODEL_OPTIONS},
              **{key: trainer_config.get(key) for key in TRAINER_OPTIONS}, "dataset": run_info.get("dataset")}
    conflicts = []
    if "prior" in args.given and args.prior != model_config.get("prior"):
        conflicts.append(f"--prior {_prior_text(args.prior)} (the run has {_prior_text(model_config.get('prior'))})")
    for dest, kept in stored.items():
        if dest in args.given and getattr(args, dest) != kept:
            asked = getattr(args, dest)
            asked = " ".join(map(str, asked)) if isinstance(asked, list) else asked
            conflicts.append(f"{_option_name(dest)} {asked} (the run has {kept})")
    if conflicts:
        raise InputError(f"--resume {args.resume}: a resumed run keeps its model, trainer and dataset, but "
                         f"{'; '.join(conflicts)}; drop {'it' if len(conflicts) == 1 else 'them'} "
                         "or start a new run")


def _checked_run_info(run_info, path):
    """The dataset, data folder and epochs a trainer checkpoint's run_info names, checked."""
    dataset, data_dir, epochs = run_info.get("dataset"), run_info.get("data_dir"), run_info.get("epochs")
    if dataset not in DEFAULTS:
        raise CheckpointError(f"checkpoint {path!r}: run_info.dataset is {dataset!r}, expected one of "
                              f"{sorted(DEFAULTS)}")
    if data_dir is not None and not (isinstance(data_dir, str) and data_dir):
        raise CheckpointError(f"checkpoint {path!r}: run_info.data_dir is {data_dir!r}, expected a folder name")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0):
        raise CheckpointError(f"checkpoint {path!r}: run_info.epochs is {epochs!r}, expected an integer >= 0")
    threads = run_info.get("blas_threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise CheckpointError(f"checkpoint {path!r}: run_info.blas_threads is {threads!r:.40}, expected an "
                              "integer >= 1")
    return dataset, data_dir, epochs


def _progress(args):
    return False if args.no_progress or args.quiet else None


def _new_trainer(args):
    """Model, data and trainer of a new run; an argument the model or trainer refuses is named as typed."""
    try:
        return _build_new_trainer(args)
    except InputError as exc:
        text = str(exc)
        for dest in (*MODEL_OPTIONS, *TRAINER_OPTIONS):
            if text.startswith(dest + ":"):      # "batch_size: ..." -> "--batch-size: ..."
                raise InputError(_option_name(dest) + text[len(dest):]) from None
        raise


def _build_new_trainer(args):
    """Model, data and trainer of a new run from the options (per-dataset defaults where not given)."""
    d = DEFAULTS[args.dataset]
    data = _load_data(args.dataset, args.data_dir, _progress(args))
    likelihood = args.likelihood or d["likelihood"]
    gaussian_mean = args.gaussian_mean or (d.get("gaussian_mean", "identity") if likelihood == "gaussian"
                                           else "identity")
    hidden = d["hidden"] if args.hidden is None else args.hidden
    z_dim = d["z_dim"] if args.z_dim is None else args.z_dim
    config = check_config(data.x_dim, hidden, z_dim, likelihood=likelihood, activation=args.activation,
                          init=args.init, dtype=np.dtype(args.dtype).type, gaussian_mean=gaussian_mean,
                          flow_steps=args.flow_steps, flow=args.flow, prior=args.prior)
    batch_size = d["batch_size"] if args.batch_size is None else args.batch_size
    workers = 1 if args.workers is None else args.workers
    _refuse_memory(args, config, args.optimizer, batch_size * args.k, data, args.test_k, workers=workers)
    model = VAE(data.x_dim, hidden, z_dim, likelihood=likelihood, activation=args.activation, init=args.init,
                dtype=np.dtype(args.dtype).type, seed=args.seed, gaussian_mean=gaussian_mean, arch=args.arch,
                image_shape=(1, *data.image_shape), flow_steps=args.flow_steps, flow=args.flow, prior=args.prior)
    trainer = Trainer(model, data.x_train, data.x_test, optimizer=args.optimizer, lr=args.lr,
                      batch_size=d["batch_size"] if args.batch_size is None else args.batch_size,
                      estimator=args.estimator, k=args.k, binarize=args.binarize, beta=args.beta,
                      warmup_epochs=args.warmup_epochs, test_k=args.test_k, weight_decay=args.weight_decay, seed=args.seed,
                      progress=_progress(args), verbose=not args.quiet, workers=workers)
    epochs = d["epochs"] if args.epochs is None else args.epochs
    return data, trainer, epochs, None if args.data_dir is None else os.path.abspath(args.data_dir)


def _size(nbytes):
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def _refuse_memory(args, config, optimizer, train_rows, data, test_k, resuming=False, workers=1):
    """Refuse a run whose estimated peak memory (numpyvae.memory) exceeds --max-memory, before allocating it."""
    n_test = 0 if data.x_test is None else min(1000, len(data.x_test))
    need = training_bytes(config, optimizer, max(train_rows, n_test * test_k), resuming, workers)
    if need > args.max_memory * 2**30:
        raise InputError(f"--max-memory: training this model ({config['x_dim']}-{'-'.join(map(str, config['hidden']))}"
                         f"-{config['z_dim']}, {config['dtype']}) would take about {_size(need)} of memory "
                         f"(parameters, gradients, the optimizer's slots and the widest pass), above the limit of "
                         f"{args.max_memory:g} GiB; give --max-memory {math.ceil(need / 2**30)} if the machine has "
                         "it, or choose a smaller model")


def _resumed_trainer(args, source, model_config, config, run_info):
    """Model, data and trainer rebuilt from a trainer checkpoint, its state restored.

    source : the checkpoint as read once (checkpoint.read): the model, the
             counters and the optimizer all come from that one read.
    """
    dataset, stored_dir, epochs = _checked_run_info(run_info, args.resume)
    if args.epochs is not None:
        epochs = args.epochs
    elif epochs is None:
        raise InputError(f"--epochs: {args.resume} does not say how many epochs the run was meant to have; "
                         "give --epochs")
    data, data_dir = _data_from_checkpoint(dataset, args.data_dir, stored_dir, args.resume, _progress(args))
    data_dir = None if data_dir is None else os.path.abspath(data_dir)     # recorded so that it works from anywhere
    if getattr(args, "workers", None) is not None and args.workers != config.get("workers", 1):
        _tell_stderr(f"numpyvae: note: {args.resume} was trained with {config.get('workers', 1)} worker(s), this run "
                     f"uses {args.workers}: the gradients then sum in another order, so the resumed run is not "
                     "bit-identical to an uninterrupted one (leave out --workers to keep the count)")
        config = {**config, "workers": args.workers}
    _refuse_memory(args, ckpt.check_model_config(model_config, args.resume), config.get("optimizer"),
                   config.get("batch_size", 1) * config.get("k", 1), data, config.get("test_k", 1), resuming=True,
                   workers=config.get("workers", 1))
    model = ckpt.build_model(model_config, args.resume)
    try:
        trainer = Trainer(model, data.x_train, data.x_test, progress=_progress(args), verbose=not args.quiet,
                          **config)
    except (TypeError, NumpyVAEError) as exc:
        raise CheckpointError(f"checkpoint {args.resume!r}: its trainer_config does not fit this version "
                              f"or this dataset ({exc})") from None
    ckpt.load_trainer_state(source, trainer)
    return data, trainer, epochs, data_dir


def _note_blas_threads(trained, path):
    """Bit-identical resume holds at one BLAS thread count: say so when this process has another."""
    now = blas_threads()
    if trained is not None and now is not None and now != trained:
        _tell_stderr(f"numpyvae: note: {path} was trained with {trained} BLAS thread(s), this process has {now}: "
                     "matrix products then sum in another order, so the resumed run is not bit-identical to an "
                     f"uninterrupted one (set OPENBLAS_NUM_THREADS={trained} to make it so)")


def cmd_train(args):
    resume = args.resume
    if resume is not None:
        source = ckpt.read(resume)                 # read once: everything resumed comes from this read
        model_config, config, run_info = ckpt.trainer_config(source)
        _refuse_conflicts(args, model_config, config, run_info)
        out = args.out or os.path.dirname(resume) or "."
    else:
        out = args.out or os.path.join("runs", args.dataset)
    with RunFolder(out) as run:
        # the lock is ours: no other trainer writes here until we leave
        run.refuse_existing_run(args.force, resuming=resume)      # refuses, removes nothing yet
        # every option, the data and the model are checked before --force removes anything
        if resume is not None:
            data, trainer, epochs, data_dir = _resumed_trainer(args, source, model_config, config, run_info)
            del source
            if trainer.epoch >= epochs:
                _out(f"nothing to train: {resume} has finished {trainer.epoch} epochs and --epochs is {epochs} "
                      f"(give a larger --epochs to go on); no file written")
                return 0
            _note_blas_threads(run_info.get("blas_threads"), resume)
            into = "" if run.holds(resume) else f", writing to {run.folder}"
            resumed = f"resuming {resume} at epoch {trainer.epoch}, step {trainer.step}{into}"
        else:
            data, trainer, epochs, data_dir = _new_trainer(args)
            resumed = None
        run.remove_old_run()
        run.remove_orphans()
        for note in run.notes:                     # rare and worth knowing: shown even with --quiet
            _tell_stderr(note)
        if resumed:
            _say(args, resumed)
        info = {"dataset": data.name, "data_dir": data_dir, "epochs": epochs, "image_shape": list(data.image_shape),
                "blas_threads": blas_threads()}     # a resume with another count is not bit-identical: warned
        start = (trainer.epoch, trainer.step)
        t0 = time.perf_counter()
        written = _train_and_save(trainer, run, epochs, info)
        seconds = time.perf_counter() - t0
        if not args.no_plots:
            written += _plots_or_say_why_not(trainer, data, run, trainer.config["seed"], written)
    _summarise(trainer, start, seconds, written, run.folder)
    return 0


def _train_and_save(trainer, run, epochs, info):
    """Run the trainer, saving checkpoint and history after every epoch; returns the names written.

    A failing write (disk full, read-only folder) stops the run with a
    FileError that says what the last successful save holds; the history is
    written right after each checkpoint, so the two always agree.
    """
    path = run.path(CHECKPOINT)
    start = (trainer.epoch, trainer.step)
    saved = {"epoch": None}

    def save_history(row):
        saved["epoch"] = trainer.epoch           # the checkpoint of this epoch is on disk
        for name in HISTORY:
            write_history(trainer.history, run.path(name))
        saved["history"] = True

    try:
        trainer.run(epochs, checkpoint=path, on_epoch=save_history, run_info=info)
        if epochs == 0:                          # a new run asked for no training: save the initial model
            trainer.save(path, info)
            saved["epoch"] = 0
    except (FileError, TrainingError) as exc:
        then = f"; once that is fixed, go on with --resume {path}" if isinstance(exc, FileError) else ""
        if saved["epoch"] is not None:
            kept = f"{CHECKPOINT} holds epoch {saved['epoch']}{then}"
        elif start[1]:
            kept = f"{CHECKPOINT} still holds the run as it was resumed (epoch {start[0]}, step {start[1]}){then}"
        else:
            kept = "nothing had been saved yet"
        stopped = "" if isinstance(exc, TrainingError) else \
            f"; training stopped at epoch {trainer.epoch}, step {trainer.step}"
        raise type(exc)(f"{exc}{stopped}. The files saved before are intact: {kept}") from None
    except KeyboardInterrupt as exc:
        _tell_stderr(f"resume with: python -m numpyvae train --resume {path}")
        exc.reported = True                     # the trainer said what it saved
        raise
    return [CHECKPOINT] + (list(HISTORY) if saved.get("history") else [])


def _plots_or_say_why_not(trainer, data, run, seed, written):
    """Draw the figures; a failing write is reported with what was saved (training itself is safe)."""
    try:
        return make_plots(trainer.model, trainer, data, run.folder, seed)
    except FileError as exc:
        raise FileError(f"{exc}; training finished and {', '.join(written)} are saved, "
                        "but the figures were not written") from None


def _summarise(trainer, start, seconds, written, folder):
    """The closing lines on stdout: what was trained, the last figures, what was written where."""
    first_epoch, first_step = start
    last = trainer.history[-1] if trainer.history else {}
    if trainer.epoch == 0:
        summary = "trained 0 epochs: the model is as initialised, untrained"
    elif first_epoch or first_step:
        summary = (f"trained from epoch {first_epoch} to {trainer.epoch} ({trainer.step - first_step} steps) "
                   f"in {seconds:.1f} s")
    else:
        summary = f"trained {trainer.epoch} epochs ({trainer.step} steps) in {seconds:.1f} s"
    if last:
        summary += f": train -ELBO {last['train_neg_elbo']:.2f}"
        if last["beta"] != 1.0 or trainer.estimator == "iwae" or trainer.weight_decay:
            summary += f" (objective {last['train_objective']:.2f})"
        if last.get("test_neg_elbo") is not None:
            summary += f", test -ELBO {last['test_neg_elbo']:.2f}"
        summary += " nats per example"
    _out(summary)
    _out(f"wrote {', '.join(written)} to {folder}")


def _interpolation_pairs(x, labels, n=4):
    """Start and end images for the interpolation figure: pairs of different classes where labels exist."""
    if labels is not None:
        firsts = [int(np.argmax(labels == c)) for c in dict.fromkeys(labels.tolist())][:2 * n]
        if len(firsts) == 2 * n:
            return x[firsts[:n]], x[firsts[n:]]
    m = min(n, len(x) // 2)
    return x[:m], x[m:2 * m]


def make_plots(model, trainer, data, out, seed):
    """Draw the run's figures into ``out``; returns the file names written."""
    from . import plots
    rng = np.random.default_rng(seed)
    on_test = trainer.x_test_used is not None
    x = trainer.x_test_used if on_test else trainer.x_train
    labels = data.y_test if on_test else data.y_train
    class_names = getattr(data, "class_names", None)
    start, end = _interpolation_pairs(x, labels)
    figures = {
        "learning_curves.png": lambda: plots.learning_curves(trainer.history),
        "reconstructions.png": lambda: plots.reconstructions(model, x, data.image_shape),
        "samples.png": lambda: plots.prior_samples(model, data.image_shape, rng),
        "latent.png": lambda: plots.latent_scatter(model, x[:2000], None if labels is None else labels[:2000],
                                                   class_names),
        "interpolation.png": lambda: plots.interpolation(model, start, end, data.image_shape),
    }
    if model.z_dim == 2:
        figures["manifold.png"] = lambda: plots.latent_manifold(model, data.image_shape)
    if not trainer.history:
        del figures["learning_curves.png"]
    if len(start) == 0:
        del figures["interpolation.png"]
    for name, draw in figures.items():
        plots.save_figure(draw(), os.path.join(out, name))
    return list(figures)


# ---- evaluate and sample --------------------------------------------------------------------

def _unconditional(model, path):
    """The command line judges and samples unconditional VAEs; a conditional one needs labels (numpyvae.cvae)."""
    if getattr(model, "n_classes", None) is not None:
        raise InputError(f"--checkpoint {path!r}: holds a conditional VAE (n_classes = {model.n_classes}), which "
                         "needs a label for every image; use numpyvae.cvae.CVAE from Python (log_marginal(x, y), "
                         "sample(y, rng))")
    return model


def cmd_evaluate(args):
    from .data import binarize
    from .evaluate import active_units, bounds, log_marginal
    source = ckpt.read(args.checkpoint)          # read once: model, run_info and binarization from one read
    model = _unconditional(ckpt.load_model(source), args.checkpoint)
    meta = ckpt.run_info(source)
    name = args.dataset or meta.get("dataset")
    if name is None:
        raise InputError("--dataset: the checkpoint does not say which dataset it was trained on; name one")
    if name not in DEFAULTS:
        raise CheckpointError(f"checkpoint {args.checkpoint!r}: run_info.dataset is {name!r}, expected one of "
                              f"{sorted(DEFAULTS)}; name the dataset with --dataset")
    if X_DIM[name] != model.x_dim:
        trained_on = [meta["dataset"]] if meta.get("dataset") in X_DIM else \
            [n for n, d in X_DIM.items() if d == model.x_dim]
        hint = f" ({' or '.join(trained_on)})" if trained_on else ""
        raise InputError(f"--dataset: {name} has images of {X_DIM[name]} pixels, the model in "
                         f"{args.checkpoint} was trained on {model.x_dim}; name the dataset it was trained on{hint}")
    stored_dir = meta.get("data_dir") if isinstance(meta.get("data_dir"), str) and meta.get("data_dir") else None
    data, _ = _data_from_checkpoint(name, args.data_dir, stored_dir, args.checkpoint)
    mode, how = args.binarize, "as asked"
    if mode is None:
        mode, how = _trained_binarize(source), "as in training"
    if mode != "none" and model.likelihood != "bernoulli":
        raise InputError(f"--binarize: {mode!r} only makes sense for a Bernoulli likelihood, "
                         f"the model's is {model.likelihood!r}")
    rng = np.random.default_rng(args.seed)
    x = binarize(model.check_x(data.x_test, "x_test"), mode, np.random.default_rng([args.seed, 1]))
    # k rows per example are held at once: fewer examples per batch as k grows
    b = bounds(model, x, rng, k=args.k, batch_size=max(1, 20000 // args.k))
    images = f"{len(x)} images" + ("" if mode == "none" else f", binarized '{mode}' ({how})")
    _out(f"{name} test set, {images}: -ELBO {b['neg_elbo']:.3f} = reconstruction {b['recon']:.3f} "
          f"+ KL {b['kl']:.3f} nats per example (z sampled, k=1"
          f"{'' if model.prior.has_closed_form_kl else '; the KL sampled too: the learned prior has no closed form'})")
    if args.k > 1:
        _out(f"IWAE bound, k={args.k}: -log p(x) <= {b['neg_iwae']:.3f} nats per example (a stochastic bound)")
    if args.log_marginal:
        lm = log_marginal(model, x, k=args.log_marginal, rng=rng, workers=args.workers)
        _out(f"importance-sampled estimate of -log p(x), k={args.log_marginal}: {-lm.mean():.3f} nats per example "
              "(a stochastic upper bound on -log p(x), tighter as k grows)")
    active, _ = active_units(model, x)
    _out(f"active units (Cov_x(E_q[z_j]) > 1e-2): {active} of {model.z_dim}")
    return 0


def _trained_binarize(source):
    """The binarization a trainer checkpoint (as read) was trained with ("none" for a model-only one)."""
    try:
        mode = ckpt.trainer_config(source)[1].get("binarize", "none")
    except CheckpointError:
        return "none"
    return mode if mode in BINARIZE else "none"


def _image_shape(meta, model, path):
    """(h, w) of the model's images: from run_info if it fits, else a known dataset's, else square, else one row."""
    shape = meta.get("image_shape")
    if shape is not None:
        if not (isinstance(shape, list) and len(shape) == 2
                and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
                and shape[0] * shape[1] == model.x_dim):
            raise CheckpointError(f"checkpoint {path!r}: run_info.image_shape is {shape!r:.60}, expected "
                                  f"[height, width] with height * width = {model.x_dim} (the model's x_dim)")
        return tuple(shape)
    known = [shape for name, shape in IMAGE_SHAPES.items() if X_DIM[name] == model.x_dim]
    if known:
        return known[0]
    side = math.isqrt(model.x_dim)
    return (side, side) if side * side == model.x_dim else (1, model.x_dim)


def cmd_sample(args):
    if os.path.isdir(args.out):
        raise InputError(f"--out {args.out!r}: is a folder, expected a file name such as "
                         f"{os.path.join(args.out, 'samples.png')!r}")
    if not args.out.lower().endswith(".png"):    # the file is a PNG whatever its name: the name must say so
        raise InputError(f"--out {args.out!r}: expected a file name ending in .png (the samples are written as PNG)")
    refuse_non_regular(args.out, f"--out {args.out!r}")     # before drawing: a link, a FIFO, a device
    source = ckpt.read(args.checkpoint)          # read once: the model and its image shape from one read
    model = _unconditional(ckpt.load_model(source), args.checkpoint)
    shape = _image_shape(ckpt.run_info(source), model, args.checkpoint)
    from . import plots                          # matplotlib is imported only once there is something to draw
    figure = plots.prior_samples(model, shape, np.random.default_rng(args.seed), n=args.n)
    try:
        path = plots.save_figure(figure, args.out)
    except FileError as exc:
        raise FileError(f"--out {args.out!r}: {exc}") from None
    _out(f"wrote {args.n} samples to {path}")
    return 0


# ---- the entry point -----------------------------------------------------------------------

COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample}


# the signals that stop `train` cleanly besides Ctrl-C, and the exit code of each (128 + its number)
STOP_EXIT_CODES = {"SIGTERM": 143, "SIGHUP": 129}


def _stop_on_sigterm(signum, frame):
    """SIGTERM or SIGHUP outside the training loop (loading data, drawing): stop like Ctrl-C, releasing the lock."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv=None):
    """Run one command; returns the exit code (0 ok, 2 bad input, 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP,
    141 broken pipe)."""
    for name in ("stdout", "stderr"):          # started with `>&-` or `2>&-`: Python leaves None there
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))
        try:                                   # a name the encoding cannot spell (PYTHONIOENCODING=ascii): \xe9
            getattr(sys, name).reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):   # a stream replaced (tests) or closed
            pass
    _check_matplotlib_backend()
    args = build_parser().parse_args(argv)
    # which options were typed (a resumed run refuses those that contradict it)
    args.given = set(vars(build_parser(suppress_defaults=True).parse_args(argv)))
    previous = {}
    if args.command == "train" and _in_main_thread():
        for name in STOP_EXIT_CODES:       # (a SIGHUP ignored by `nohup` stays ignored)
            if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) != signal.SIG_IGN:
                previous[getattr(signal, name)] = signal.signal(getattr(signal, name), _stop_on_sigterm)
    try:
        code = COMMANDS[args.command](args)
        _out(None)                              # flush: a closed pipe or a full disk shows up here, not at exit
        return code
    except NumpyVAEError as exc:
        _tell_stderr(f"numpyvae: error: {exc}")
        return 2
    except KeyboardInterrupt as exc:
        by = str(exc) if str(exc) in STOP_EXIT_CODES else None
        if not getattr(exc, "reported", False):   # stopped outside the training loop: loading, drawing
            what = "the files written before are complete" if args.command == "train" else "nothing was written"
            _tell_stderr(f"numpyvae: stopped by {by or 'Ctrl-C'}; {what}")
        return STOP_EXIT_CODES.get(by, 130)
    except BrokenPipeError:                     # `numpyvae evaluate ... | head -1`: the reader left
        _discard(sys.stdout)
        return 141                              # as a program killed by SIGPIPE
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _settle(sys.stderr)                     # a log reader that left must not fail Python's exit


def _check_matplotlib_backend():
    """MPLBACKEND naming no backend makes ``import matplotlib`` fail; the figures need none: say so, go on."""
    name = os.environ.get("MPLBACKEND")
    if name is None or "matplotlib" in sys.modules:
        return
    try:
        import matplotlib  # noqa: F401 -- only to see whether it can be imported with this MPLBACKEND
    except ValueError:
        del os.environ["MPLBACKEND"]
        for module in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
            del sys.modules[module]            # the half-imported package: imported afresh when drawn
        _tell_stderr(f"numpyvae: note: MPLBACKEND={name!r} is not a matplotlib backend; ignored "
                     "(the figures are written without one)")


def _out(line):
    """A line of results on stdout (None: flush only); a stdout that cannot be written becomes a FileError."""
    try:
        if line is not None:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:                      # `> /dev/full`, a full disk under a redirect
        _discard(sys.stdout)
        raise FileError(f"standard output: cannot write the results ({describe_os_error(exc)})") from None


def _tell_stderr(line):
    """A line on stderr; a stderr that cannot be written is skipped (the exit code still tells)."""
    try:
        print(line, file=sys.stderr)
    except (OSError, ValueError):
        _discard(sys.stderr)


def _in_main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()


def _settle(stream):
    """Flush a stream; if its reader is gone, send what it still holds to /dev/null."""
    try:
        stream.flush()
    except (OSError, ValueError):
        _discard(stream)
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _discard(stream):
    """Point a stream's file at /dev/null, so that Python's final flush of what it still holds cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):   # a stream replaced (tests) or already closed
        pass


if __name__ == "__main__":
    sys.exit(main())
