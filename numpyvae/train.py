"""The training loop: shuffled minibatches, an estimator, an optimizer, a history.

All randomness (shuffling, dynamic binarization, eps, the test ELBO's
samples) comes from one ``numpy.random.Generator`` seeded from ``seed``; its
state is part of the trainer's state, so a run stopped between two steps and
resumed from a checkpoint ends with bit-identical parameters.
"""
import csv
import io
import json
import math
import os
import signal
import sys
import time

import numpy as np

from . import datasets
from .datasets import BINARIZE
from .errors import InputError, TrainingError
from .estimators import ESTIMATORS
from .optim import OPTIMIZERS
from .validate import as_float_array, check_choice, check_positive_int



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
    test_k      : samples per test example for the test ELBO (z is sampled).
    seed        : seeds the one generator all draws come from.
    """

    def __init__(self, model, x_train, x_test=None, *, optimizer="adam", lr=None, batch_size=128,
                 estimator="analytic", k=1, binarize="none", beta=1.0, warmup_epochs=0, test_k=1,
                 seed=0, progress=True):
        self.model = model
        self.x_train = model.check_x(x_train, "x_train")
        self.x_test = None if x_test is None else model.check_x(x_test, "x_test")
        self.batch_size = check_positive_int("batch_size", batch_size)
        if self.batch_size > len(self.x_train):
            raise InputError(f"batch_size: expected at most the {len(self.x_train)} training examples, got {batch_size}")
        self.estimator = check_choice("estimator", estimator, ESTIMATORS)
        self.k, self.test_k = check_positive_int("k", k), check_positive_int("test_k", test_k)
        self.binarize = check_choice("binarize", binarize, BINARIZE)
        if binarize != "none" and model.likelihood != "bernoulli":
            raise InputError(f"binarize: {binarize!r} only makes sense for a Bernoulli likelihood")
        self.beta = float(as_float_array("beta", beta, lo=0.0))
        self.warmup_epochs = float(as_float_array("warmup_epochs", warmup_epochs, lo=0.0))
        opt_cls = OPTIMIZERS[check_choice("optimizer", optimizer, OPTIMIZERS)]
        self.optimizer = opt_cls(model.params) if lr is None else opt_cls(model.params, lr=lr)
        self.config = dict(optimizer=optimizer, lr=self.optimizer.lr, batch_size=self.batch_size,
                           estimator=estimator, k=self.k, binarize=binarize, beta=self.beta,
                           warmup_epochs=self.warmup_epochs, test_k=self.test_k, seed=int(seed))
        self.rng = np.random.default_rng(seed)
        # the test set is binarized once, by its own seeded generator, so every epoch sees the same one
        self.x_test_used = None if self.x_test is None else datasets.binarize(
            self.x_test, self.binarize, np.random.default_rng([int(seed), 1]))
        self.progress = progress
        self.epoch, self.step, self.batch_index = 0, 0, 0
        self.perm = None
        self.epoch_sum, self.epoch_count = 0.0, 0
        self.history = []
        self.stop_requested = False

    # ---- one step and one epoch ---------------------------------------------------

    def beta_now(self):
        """The KL weight at the current step: linear warm-up to ``beta``."""
        if self.warmup_epochs == 0:
            return self.beta
        steps_per_epoch = math.ceil(len(self.x_train) / self.batch_size)
        return self.beta * min(1.0, self.step / (self.warmup_epochs * steps_per_epoch))

    def train_step(self, xb):
        """One optimizer step on the batch xb; returns the loss (nats per example)."""
        xb = datasets.binarize(xb, self.binarize, self.rng)
        where = f"at step {self.step + 1} (epoch {self.epoch + 1}, batch {self.batch_index + 1})"
        advice = "lower the learning rate or check the data"
        try:
            # overflow shows up as a non-finite loss, reported below with the step named
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss, grads = self.model.loss_and_grads(xb, rng=self.rng, estimator=self.estimator,
                                                        k=self.k, beta=self.beta_now())
        except InputError as exc:   # the data were checked up front: a NaN/inf arose inside the network
            raise TrainingError(f"training diverged {where}: {exc}; {advice}") from exc
        if not math.isfinite(loss):
            raise TrainingError(f"loss became {loss} {where}; {advice}")
        self.optimizer.step(grads)
        self.step += 1
        return loss

    def evaluate(self, x=None, k=None, batch_size=1000):
        """Mean test loss -ELBO (nats per example), z sampled from q(z|x) (IWAE bound if k > 1)."""
        x = self.x_test_used if x is None else self.model.check_x(x)
        k = self.test_k if k is None else k
        est = "iwae" if k > 1 else "analytic"
        total = sum(float(np.sum(self.model.elbo(x[i:i + batch_size], self.rng, est, k)))
                    for i in range(0, len(x), batch_size))
        return -total / len(x)

    def run(self, epochs, checkpoint=None, on_epoch=None):
        """Train until ``epochs`` epochs are done in all (a resumed run continues).

        checkpoint : path written after every epoch, and on Ctrl-C (then
                     KeyboardInterrupt is re-raised after the save).
        on_epoch   : called with the history row after each epoch.
        Returns the history (list of dicts).
        """
        epochs = check_positive_int("epochs", epochs, minimum=0)
        previous = signal.getsignal(signal.SIGINT) if _main_thread() else None
        if previous is not None:
            signal.signal(signal.SIGINT, self._on_sigint)
        try:
            while self.epoch < epochs:
                self._run_epoch(epochs)
                if self.stop_requested:
                    break
                row = self._end_epoch()
                if checkpoint is not None:
                    self.save(checkpoint)
                if on_epoch is not None:
                    on_epoch(row)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if self.stop_requested:
            self.stop_requested = False
            if checkpoint is not None:
                self.save(checkpoint)
                print(f"\ninterrupted: saved {checkpoint} at step {self.step}", file=sys.stderr)
            raise KeyboardInterrupt
        return self.history

    def _on_sigint(self, signum, frame):
        """Ctrl-C: finish the current step, then stop (the step is never half-applied)."""
        self.stop_requested = True

    def _run_epoch(self, epochs):
        n = len(self.x_train)
        if self.perm is None:
            self.perm = self.rng.permutation(n)
            self.batch_index, self.epoch_sum, self.epoch_count = 0, 0.0, 0
            self._t0 = time.perf_counter()
        n_batches = math.ceil(n / self.batch_size)
        bar = ProgressBar(n_batches, f"epoch {self.epoch + 1}/{epochs}", self.progress)
        while self.batch_index < n_batches and not self.stop_requested:
            idx = self.perm[self.batch_index * self.batch_size:(self.batch_index + 1) * self.batch_size]
            loss = self.train_step(self.x_train[idx])
            self.epoch_sum += loss * len(idx)
            self.epoch_count += len(idx)
            self.batch_index += 1
            bar.update(self.batch_index, f"loss {self.epoch_sum / self.epoch_count:.2f}")
        bar.close()

    def _end_epoch(self):
        bad = [name for name, p in self.model.params.items() if not np.all(np.isfinite(p))]
        if bad:
            raise TrainingError(f"parameters {bad} became NaN or inf by step {self.step} (epoch {self.epoch + 1})")
        self.epoch += 1
        row = {"epoch": self.epoch, "step": self.step, "beta": self.beta_now(),
               "train_loss": self.epoch_sum / self.epoch_count,
               "test_loss": None if self.x_test_used is None else self.evaluate(),
               "seconds": time.perf_counter() - getattr(self, "_t0", time.perf_counter())}
        self.history.append(row)
        self.perm = None
        if self.progress:
            test = "" if self.x_test_used is None else f", test {row['test_loss']:.2f}"
            print(f"epoch {self.epoch}: train {row['train_loss']:.2f}{test} nats ({row['seconds']:.1f} s)", file=sys.stderr)
        return row

    def save(self, path):
        """Write a checkpoint of everything needed to resume (numpyvae.checkpoint)."""
        from .checkpoint import save_trainer
        save_trainer(path, self)


def _main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()


class ProgressBar:
    """A one-line text progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, total, label, enabled=True, width=30):
        self.total, self.label, self.enabled, self.width = total, label, enabled, width
        self._last = 0.0

    def update(self, done, info=""):
        now = time.perf_counter()
        if not self.enabled or (now - self._last < 0.1 and done < self.total):
            return
        self._last = now
        filled = int(self.width * done / self.total)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} {info}")
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\r" + " " * (self.width + len(self.label) + 40) + "\r")
            sys.stderr.flush()


# ---- the history as data --------------------------------------------------------

def write_history(history, path):
    """Write the history rows as CSV (.csv) or JSON (.json), atomically."""
    from .checkpoint import atomic_write
    path = os.fspath(path)
    if path.endswith(".json"):
        data = json.dumps(history, indent=1).encode()
    elif path.endswith(".csv"):
        buf = io.StringIO()
        fields = list(history[0]) if history else ["epoch"]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
        data = buf.getvalue().encode()
    else:
        raise InputError(f"path: expected a name ending in .csv or .json, got {path!r}")
    atomic_write(path, data)
