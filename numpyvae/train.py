"""The training loop: shuffled minibatches, an estimator, an optimizer, a history.

All randomness (shuffling, dynamic binarization, eps, the test ELBO's
samples) comes from one ``numpy.random.Generator`` seeded from ``seed``; its
state is part of the trainer's state (``state()`` / ``load_state()``), so a
run stopped between two steps and resumed ends with bit-identical parameters.

The history has one row per epoch, every figure in nats per example:

    beta             the mean KL weight the epoch's steps used (each step's beta
                     weighted by its batch size; during warm-up beta changes
                     from step to step, so train_neg_elbo - train_objective is
                     (1 - beta) KL per step but only close to it for the epoch's means)
    train_objective  the loss that was minimised: -(recon - beta KL) with each
                     step's beta (KL warm-up, beta-VAE), or the negative IWAE
                     bound, plus the weight decay's lambda |theta|^2 / (2N) when
                     weight_decay = lambda > 0; it equals train_neg_elbo only
                     when beta = 1, there is no weight decay and the estimator
                     is not iwae
    train_neg_elbo   -ELBO at beta = 1 on the same samples: train_recon + train_kl
    train_recon      -E_q[log p(x|z)], the reconstruction term of eq. (7*)
    train_kl         KL(q(z|x) || p(z)) (closed form for "analytic", else sampled)
    test_neg_elbo, test_recon, test_kl   the same on the test set (beta = 1, one z per image)
    test_neg_iwae    the negative IWAE bound with test_k samples (only when test_k > 1)
"""
import contextlib
import csv
import io
import json
import math
import signal
import sys
import time

import numpy as np

from .blas_threads import one_blas_thread
from .data import BINARIZE
from .data import binarize as binarize_images
from .errors import InputError, TrainingError
from .estimators import ESTIMATORS
from .evaluate import bounds
from .fileio import atomic_write
from .optim import OPTIMIZERS
from .parallel import ParallelStep, check_workers
from .progress import ProgressBar
from .validate import check_choice, check_float, check_positive_int
from .vae import VAE

# running sums over the current epoch, weighted by batch size
SUM_KEYS = ("objective", "neg_elbo", "recon", "kl")
# the signals that stop a run cleanly: Ctrl-C, what `kill`, `timeout` and clusters send, and SIGHUP
# (the terminal or the ssh session that started the run closed)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Trainer:
    """Trains a VAE on an array of examples.

    model       : a numpyvae.VAE.
    x_train     : (N, D) training data; x_test: (M, D) or None.
    optimizer   : "adam", "adagrad" or "sgd"; lr: its learning rate (None: its default).
    batch_size  : examples per step (at most N).
    estimator, k: the ELBO estimator and samples per example.
    binarize    : "none", "threshold" or "dynamic" (Bernoulli likelihood only).
    beta        : final weight of the KL term; warmup_epochs: epochs over which the
                  weight rises linearly from 0 to beta (0: no warm-up).
    weight_decay: lambda >= 0, a Gaussian prior N(0, I / lambda) on every parameter
                  (Kingma & Welling 2013, Sec. 5, use lambda = 1).  The prior is shared
                  by the N training examples, so the objective per example gains
                  lambda |theta|^2 / (2N) and each gradient lambda theta / N: MAP,
                  not maximum likelihood, for the weights.  0 (default): none.
    test_k      : samples per test example for the test ELBO (z is sampled).
    seed        : seeds the one generator all draws come from.
    progress    : the per-batch progress bar: None (only when stderr is a terminal), True, False.
    verbose     : print one labelled line per epoch on stderr.
    workers     : threads that share each step (numpyvae/parallel.py): the batch split
                  across them, each on a one-thread BLAS, and the optimizer's update
                  split over the parameters.  1 (default): the serial step, the code a
                  student steps through; None: as many as BLAS has threads (1 where they
                  cannot be set: numpyvae/blas_threads.py).  The numbers are bit-identical
                  at a fixed count and agree to float rounding across counts; the count is
                  stored in checkpoints and a resumed run keeps it.
    """

    def __init__(self, model, x_train, x_test=None, *, optimizer="adam", lr=None, batch_size=128,
                 estimator="analytic", k=1, binarize="none", beta=1.0, warmup_epochs=0, test_k=1,
                 weight_decay=0.0, seed=0, progress=None, verbose=True, workers=1):
        if not isinstance(model, VAE):
            raise InputError(f"model: expected a numpyvae.VAE, got {type(model).__name__}")
        if getattr(model, "n_classes", None) is not None:
            raise InputError("model: a conditional VAE (numpyvae.cvae.CVAE) trains on labelled data; "
                             "use numpyvae.cvae.train(model, x, y, epochs, rng)")
        self.model = model
        self.x_train = model.check_x(x_train, "x_train")
        self.x_test = None if x_test is None else model.check_x(x_test, "x_test")
        self.batch_size = check_positive_int("batch_size", batch_size)
        if self.batch_size > len(self.x_train):
            raise InputError(f"batch_size: expected at most the {len(self.x_train)} training examples, got {batch_size}")
        self.estimator = model.check_estimator(estimator)   # a learned prior refuses "analytic", a flow all but "mc", "iwae"
        self.k, self.test_k = check_positive_int("k", k), check_positive_int("test_k", test_k)
        self.test_batch = test_batch_size(model, self.test_k)      # refuses a test_k too large up front
        self.binarize = check_choice("binarize", binarize, BINARIZE)
        if binarize != "none" and model.likelihood != "bernoulli":
            raise InputError(f"binarize: {binarize!r} only makes sense for a Bernoulli likelihood")
        self.beta = check_float("beta", beta, lo=0.0, hi=1e6)
        self.warmup_epochs = check_float("warmup_epochs", warmup_epochs, lo=0.0, hi=1e6)
        self.weight_decay = check_float("weight_decay", weight_decay, lo=0.0, hi=1e6)
        seed = check_positive_int("seed", seed, minimum=0)
        self.workers = check_workers(workers)
        self._parallel = None                # the ParallelStep (its threads), made at the first step
        opt_cls = OPTIMIZERS[check_choice("optimizer", optimizer, OPTIMIZERS)]
        self.optimizer = opt_cls(model.params) if lr is None else opt_cls(model.params, lr=lr)
        self.config = dict(optimizer=optimizer, lr=self.optimizer.lr, batch_size=self.batch_size,
                           estimator=estimator, k=self.k, binarize=binarize, beta=self.beta,
                           warmup_epochs=self.warmup_epochs, test_k=self.test_k,
                           weight_decay=self.weight_decay, seed=seed, workers=self.workers)
        self.rng = np.random.default_rng(seed)
        # the test set is binarized once, by its own seeded generator, so every epoch sees the same one
        self.x_test_used = None if self.x_test is None else binarize_images(
            self.x_test, self.binarize, np.random.default_rng([int(seed), 1]))
        self.progress, self.verbose = progress, bool(verbose)
        self.epoch, self.step, self.batch_index = 0, 0, 0
        self.perm = None
        self.sums, self.epoch_count = dict.fromkeys(SUM_KEYS, 0.0), 0
        self.history = []
        self.stop_requested = False
        self.stop_signal = None

    # ---- one step and one epoch ---------------------------------------------------

    def beta_now(self, step=None):
        """The KL weight at the current step (or at ``step``): linear warm-up to ``beta``."""
        if self.warmup_epochs == 0:
            return self.beta
        steps_per_epoch = math.ceil(len(self.x_train) / self.batch_size)
        step = self.step if step is None else step
        return self.beta * min(1.0, step / (self.warmup_epochs * steps_per_epoch))

    def epoch_beta(self):
        """The mean beta of the epoch just finished: its steps' betas weighted by their batch sizes."""
        n = len(self.x_train)
        n_batches = math.ceil(n / self.batch_size)
        sizes = [min(self.batch_size, n - i * self.batch_size) for i in range(n_batches)]
        first = self.step - n_batches
        return sum(size * self.beta_now(first + i) for i, size in enumerate(sizes)) / n

    def train_step(self, xb):
        """One optimizer step on the batch xb; returns the objective (nats per example).

        The estimate's reconstruction and KL terms of this step are left in
        ``self.model.last_estimate``.
        """
        xb = binarize_images(xb, self.binarize, self.rng)
        where = f"at step {self.step + 1} (epoch {self.epoch + 1}, batch {self.batch_index + 1})"
        advice = "lower the learning rate or check the data"
        try:
            # overflow shows up as a non-finite loss, reported below with the step named (an
            # overflowing update shows up so at the next step, or in the end-of-epoch check);
            # the model's lock is held until the step is applied: the grads are the model's buffers,
            # which another thread's call would overwrite (VAE, Threads)
            # the serial step, or the same step shared by the workers (numpyvae/parallel.py); with workers, BLAS
            # keeps to one thread for the whole step (for speed: a product on BLAS's own threads, the
            # optimizer's dot products, would leave them spinning on the cores the workers need)
            threads = contextlib.nullcontext() if self.workers == 1 else one_blas_thread()
            with self.model.lock, threads, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                step = self.model if self.workers == 1 else self.parallel_step()
                loss, grads = step.loss_and_grads(xb, rng=self.rng, estimator=self.estimator,
                                                  k=self.k, beta=self.beta_now())
                if not math.isfinite(loss):
                    raise TrainingError(f"loss became {loss} {where}; {advice}")
                if self.weight_decay:
                    loss += self.add_weight_decay(grads)
                self.optimizer.step(grads, workers=None if step is self.model else step.workers)
        except InputError as exc:   # the data were checked up front: a NaN/inf arose inside the network
            raise TrainingError(f"training diverged {where}: {exc}; {advice}") from exc
        self.step += 1
        return loss

    def parallel_step(self):
        """The ParallelStep that runs this trainer's steps on ``workers`` threads (made at the first call)."""
        if self._parallel is None:
            self._parallel = ParallelStep(self.model, self.workers)
        return self._parallel

    def __getstate__(self):                  # copy.deepcopy, pickle: the copy makes threads of its own
        return {k: (None if k == "_parallel" else v) for k, v in self.__dict__.items()}

    def add_weight_decay(self, grads):
        """The prior N(0, I / lambda) on the parameters, per example: adds lambda theta / N to grads (in place).

        Returns the objective's extra term lambda |theta|^2 / (2N), in nats per example.
        """
        scale = self.weight_decay / len(self.x_train)          # lambda / N
        penalty = 0.0
        for name, theta in self.model.params.items():
            penalty += 0.5 * scale * float(np.vdot(theta, theta))
            grads[name] += scale * theta                        # d/dtheta of lambda |theta|^2 / (2N)
        return penalty

    def evaluate(self, x=None, k=None):
        """Test figures (numpyvae.evaluate.bounds): neg_elbo, recon, kl, and neg_iwae if k > 1."""
        x = self.x_test_used if x is None else self.model.check_x(x)
        k = self.test_k if k is None else k
        return bounds(self.model, x, self.rng, k, test_batch_size(self.model, k))

    def run(self, epochs, checkpoint=None, on_epoch=None, run_info=None):
        """Train until ``epochs`` epochs are done in all (a resumed run continues).

        checkpoint : path written after every epoch, and on Ctrl-C or SIGTERM
                     (the current step finishes, the checkpoint is saved, then
                     KeyboardInterrupt is raised).
        on_epoch   : called with the history row after each epoch.
        run_info   : a JSON-able dict saved in the checkpoint beside the state.
        Returns the history (list of dicts).
        """
        epochs = check_positive_int("epochs", epochs, minimum=0)
        if run_info is not None:      # refused now, not at the first save after an epoch of work
            try:
                json.dumps(run_info, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InputError(f"run_info: expected a JSON-able dict of finite values ({exc})") from None
            if not isinstance(run_info, dict):
                raise InputError(f"run_info: expected a dict, got {type(run_info).__name__}")
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS} if _main_thread() else {}
        # a SIGHUP ignored on purpose (`nohup`: go on after the terminal closes) stays ignored
        previous = {s: h for s, h in previous.items() if not (s == getattr(signal, "SIGHUP", None)
                                                               and h == signal.SIG_IGN)}
        for s in previous:
            signal.signal(s, self._on_stop_signal)
        try:
            while self.epoch < epochs:
                self._run_epoch(epochs)
                if self.stop_requested:
                    break
                row = self._end_epoch()
                if checkpoint is not None:
                    self.save(checkpoint, run_info)
                if on_epoch is not None:
                    on_epoch(row)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        if self.stop_requested:
            self.stop_requested = False
            name = signal.Signals(self.stop_signal).name if self.stop_signal else "a stop request"
            if checkpoint is not None:
                self.save(checkpoint, run_info)
                _tell(f"\nstopped by {name}: saved {checkpoint} at step {self.step}")
            raise KeyboardInterrupt(name)
        return self.history

    def _on_stop_signal(self, signum, frame):
        """Ctrl-C or SIGTERM: finish the current step, then stop (a step is never half-applied)."""
        self.stop_requested, self.stop_signal = True, signum

    def _run_epoch(self, epochs):
        n = len(self.x_train)
        if self.perm is None:
            self.perm = self.rng.permutation(n)
            self.batch_index, self.sums, self.epoch_count = 0, dict.fromkeys(SUM_KEYS, 0.0), 0
            self._t0 = time.perf_counter()
        n_batches = math.ceil(n / self.batch_size)
        bar = ProgressBar(n_batches, f"epoch {self.epoch + 1}/{epochs}", self.progress)
        while self.batch_index < n_batches and not self.stop_requested:
            idx = self.perm[self.batch_index * self.batch_size:(self.batch_index + 1) * self.batch_size]
            objective = self.train_step(self.x_train[idx])
            est = self.model.last_estimate
            recon, kl = -float(np.mean(est.recon)), float(np.mean(est.kl))
            for key, value in (("objective", objective), ("neg_elbo", recon + kl), ("recon", recon), ("kl", kl)):
                self.sums[key] += value * len(idx)
            self.epoch_count += len(idx)
            self.batch_index += 1
            bar.update(self.batch_index, f"objective {self.sums['objective'] / self.epoch_count:.2f}")
        bar.close()

    def _end_epoch(self):
        bad = [name for name, p in self.model.params.items() if not np.all(np.isfinite(p))]
        if bad:
            raise TrainingError(f"parameters {bad} became NaN or inf by step {self.step} (epoch {self.epoch + 1})")
        self.epoch += 1
        row = {"epoch": self.epoch, "step": self.step, "beta": self.epoch_beta()}
        row.update({f"train_{key}": self.sums[key] / self.epoch_count for key in SUM_KEYS})
        try:
            test = {} if self.x_test_used is None else self.evaluate()
        except InputError as exc:     # the data were checked up front: the network produced NaN/inf
            raise TrainingError(f"the test figures of epoch {self.epoch} overflowed ({exc}); "
                                "lower the learning rate") from exc
        for key in ("neg_elbo", "recon", "kl"):
            row[f"test_{key}"] = test.get(key)
        if self.test_k > 1:
            row["test_neg_iwae"] = test.get("neg_iwae")
        row["seconds"] = time.perf_counter() - getattr(self, "_t0", time.perf_counter())
        self.history.append(row)
        self.perm, self.batch_index, self.epoch_count = None, 0, 0
        self.sums = dict.fromkeys(SUM_KEYS, 0.0)
        if self.verbose:
            _tell(format_row(row, self.weight_decay))
        return row

    # ---- the trainer's state, for checkpoints ------------------------------------------

    def state(self):
        """Everything needed to resume bit-identically.

        Returns a dict: "counters" (epoch, step, batch_index, epoch_count,
        the running sums and the generator's state: JSON-able), "history"
        (list of rows), "perm" (int64 array, empty between epochs) and
        "optimizer" (dict name -> array, see ``Optimizer.state``).
        """
        counters = {"epoch": self.epoch, "step": self.step, "batch_index": self.batch_index,
                    "epoch_count": self.epoch_count, "sums": dict(self.sums),
                    "rng": self.rng.bit_generator.state}
        perm = np.array([] if self.perm is None else self.perm, dtype=np.int64)
        return {"counters": counters, "history": list(self.history), "perm": perm,
                "optimizer": self.optimizer.state()}

    def load_state(self, state):
        """Restore what ``state()`` returned, checking every field first.

        Nothing is changed unless every field is valid; a bad field raises
        InputError naming it and what was expected.
        """
        n = len(self.x_train)
        n_batches = math.ceil(n / self.batch_size)
        if not isinstance(state, dict) or not {"counters", "history", "perm", "optimizer"} <= set(state):
            raise InputError("state: expected a dict with counters, history, perm and optimizer")
        c = state["counters"]
        if not isinstance(c, dict):
            raise InputError(f"counters: expected a mapping, got {type(c).__name__}")
        limits = {"epoch": None, "step": None, "batch_index": n_batches, "epoch_count": n}
        counts = {}
        for key, hi in limits.items():
            value = check_positive_int(f"counters.{key}", c.get(key), minimum=0)
            if hi is not None and value > hi:
                raise InputError(f"counters.{key}: expected at most {hi}, got {value}")
            counts[key] = value
        if counts["step"] < counts["epoch"]:
            raise InputError(f"counters.step: expected at least one step per epoch ({counts['epoch']}), "
                             f"got {counts['step']}")
        sums = c.get("sums")
        if not isinstance(sums, dict) or set(sums) != set(SUM_KEYS):
            raise InputError(f"counters.sums: expected a mapping with keys {list(SUM_KEYS)}, got {sums!r:.80}")
        sums = {key: check_float(f"counters.sums.{key}", sums[key]) for key in SUM_KEYS}
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = c.get("rng")
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise InputError(f"counters.rng: not a state of numpy's {type(rng.bit_generator).__name__} "
                             f"generator ({exc})") from None
        perm = state["perm"]
        if not isinstance(perm, np.ndarray) or perm.dtype.kind not in "iu" or perm.ndim != 1:
            raise InputError("perm: expected a 1-D integer array")
        if perm.size and (len(perm) != n or not np.array_equal(np.sort(perm), np.arange(n))):
            raise InputError(f"perm: expected a permutation of 0..{n - 1} (the training set's order), "
                             f"got {len(perm)} values that are not one")
        if not perm.size and (counts["batch_index"] or counts["epoch_count"]):
            raise InputError("perm: missing, but the counters say the run stopped inside an epoch")
        seen = min(counts["batch_index"] * self.batch_size, n)      # examples in the batches already done
        if counts["epoch_count"] != seen:
            raise InputError(f"counters.epoch_count: {counts['batch_index']} batches of {self.batch_size} "
                             f"hold {seen} examples, got {counts['epoch_count']}")
        history = state["history"]
        if (not isinstance(history, list) or len(history) != counts["epoch"]
                or not all(isinstance(r, dict) for r in history)):
            raise InputError(f"history: expected a list of {counts['epoch']} rows (one per finished epoch)")
        for i, row in enumerate(history):
            bad = [k for k, v in row.items() if not isinstance(k, str) or not (
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)))]
            if bad:
                raise InputError(f"history[{i}]: expected finite numbers (or null), found {bad[0]!r} = {row[bad[0]]!r:.40}")
        self.optimizer.load_state(state["optimizer"])        # checks its slots before changing anything
        self.epoch, self.step = counts["epoch"], counts["step"]
        self.batch_index, self.epoch_count, self.sums = counts["batch_index"], counts["epoch_count"], sums
        self.rng.bit_generator.state = rng.bit_generator.state
        self.perm = perm.astype(np.int64) if perm.size else None
        self.history = [dict(r) for r in history]

    def save(self, path, run_info=None):
        """Write a checkpoint of everything needed to resume (numpyvae.checkpoint)."""
        from .checkpoint import save_trainer
        save_trainer(path, self, run_info)


def test_batch_size(model, k, batch=1000):
    """Test images per batch for k samples each: 1000, or fewer where k * 1000 rows exceed what one
    activation array may hold (VAE.check_rows); InputError naming test_k if even one image's k do."""
    try:
        model.check_rows("test_k", check_positive_int("test_k", k))
    except InputError as exc:
        raise InputError(f"{exc} (the samples of one test image are held at once)") from None
    while batch > 1:
        try:
            model.check_rows("test_k * test batch", k * batch)
            break
        except InputError:
            batch //= 2
    return batch


def _tell(line):
    """A line on stderr; a closed or broken stderr (a log reader gone) must not stop the training."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()


# ---- the history as data --------------------------------------------------------

def format_row(row, weight_decay=0.0):
    """One history row as the line printed after each epoch, every figure labelled.

    The training objective is shown only where it differs from -ELBO (beta != 1,
    KL warm-up, the IWAE bound, or the weight decay's prior term).
    """
    text = f"epoch {row['epoch']}: train -ELBO {row['train_neg_elbo']:.2f}"
    text += f" = recon {row['train_recon']:.2f} + KL {row['train_kl']:.2f}"
    if abs(row["train_objective"] - row["train_neg_elbo"]) > 5e-3 or row.get("beta", 1.0) != 1.0 or weight_decay:
        prior = f", weight decay {weight_decay:g}" if weight_decay else ""
        text += f" (objective minimised {row['train_objective']:.2f}, beta {row.get('beta', 1.0):.3g}{prior})"
    if row.get("test_neg_elbo") is not None:
        text += (f" | test -ELBO {row['test_neg_elbo']:.2f} = recon {row['test_recon']:.2f}"
                 f" + KL {row['test_kl']:.2f}")
    if row.get("test_neg_iwae") is not None:
        text += f", IWAE bound {row['test_neg_iwae']:.2f}"
    return text + f" nats ({row['seconds']:.1f} s)"


def write_history(history, path):
    """Write the history rows as CSV (.csv) or JSON (.json), atomically.

    Not flushed to the disk (``durable=False``): it is written after every
    epoch, where an fsync would cost as much as a small model's epoch, and
    the checkpoint holds the same rows durably.
    """
    path = str(path)
    if path.endswith(".json"):
        # one row a line: readable, and each row goes through json's fast C encoder (indent= does not)
        data = ("[" + ",\n ".join(json.dumps(row) for row in history) + "]\n").encode()
    elif path.endswith(".csv"):
        buf = io.StringIO()
        fields = list(dict.fromkeys(key for row in history for key in row)) or ["epoch"]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(history)
        data = buf.getvalue().encode()
    else:
        raise InputError(f"path: expected a name ending in .csv or .json, got {path!r}")
    atomic_write(path, data, durable=False)
