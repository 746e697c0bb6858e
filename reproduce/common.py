"""Shared pieces of the reproduction scripts: data, timing, tables and plots.

Every script in this folder trains numpyvae on a published setting and writes,
under ``reproduce/results/<name>/`` (or ``--out``):

    result.json   our numbers, the paper's, their differences, the command and wall time
    table.md      the same as a Markdown table (quoted in the book: docs/reproductions.md)
    *.png         our curves or bars with the paper's values drawn over them

``--quick`` runs a tiny version of the same code in seconds (the test suite
runs it); its numbers are not comparable with the paper's.
"""
import json
import os
import platform
import shlex
import sys
import time

import numpy as np

from numpyvae import data as datasets
from numpyvae.errors import DataError

HERE = os.path.dirname(os.path.abspath(__file__))


def results_dir(name, out=None):
    """The folder a script writes into (created): ``out`` or reproduce/results/<name>."""
    path = out or os.path.join(HERE, "results", name)
    os.makedirs(path, exist_ok=True)
    return path


def load(name, **kwargs):
    """numpyvae.data.load without downloading; a missing file raises DataError naming NUMPYVAE_DATA."""
    try:
        return datasets.load(name, download=False, progress=False, **kwargs)
    except DataError as exc:
        raise DataError(f"{exc}\n(set NUMPYVAE_DATA to the folder holding the {name} files)") from None


def history_value(row, name):
    """A history row's value under the trainer's new key names, read from the old ones if need be.

    train_neg_elbo / test_neg_elbo were called train_loss / test_loss before
    the trainer's history gained recon and KL columns.
    """
    old = {"train_neg_elbo": "train_loss", "test_neg_elbo": "test_loss", "train_objective": "train_loss"}
    if name in row:
        return row[name]
    return row[old[name]]


def machine():
    """One line naming the machine, for tables."""
    return (f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or 'cpu'}, "
            f"Python {platform.python_version()}, NumPy {np.__version__}, "
            f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")


class Clock:
    """Wall time since creation, in seconds."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def seconds(self):
        return time.perf_counter() - self.t0


def command_line():
    """How this script was invoked, as a shell line (the data folder included)."""
    data = os.environ.get("NUMPYVAE_DATA")
    prefix = f"NUMPYVAE_DATA={data} " if data else ""
    return prefix + "python " + " ".join(shlex.quote(a) for a in sys.argv)


def markdown_table(header, rows):
    """A Markdown table from a header list and rows of cells (numbers formatted by the caller)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_atomic(path, text):
    """Write ``text`` to ``path`` through a temporary file renamed over it: a reader never sees half a file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_result(folder, result, table, notes=""):
    """Write result.json and table.md (table, then notes, then the command and wall time), each atomically."""
    write_atomic(os.path.join(folder, "result.json"), json.dumps(result, indent=1))
    footer = (f"\nCommand: `{result['command']}`  \nWall time: {result['wall_seconds']:.0f} s on "
              f"{result['machine']}\n")
    write_atomic(os.path.join(folder, "table.md"), table + ("\n" + notes.strip() + "\n" if notes else "") + footer)
    print(table + ("\n" + notes.strip() if notes else "") + footer)


def stored_run(folder, name, schedule, make):
    """One training run, kept in ``folder/runs/<name>.json``: made by ``make()`` only when absent.

    A stored run is reused only if it was made on the same ``schedule`` (a dict of
    everything that fixes the run besides its name); otherwise it is made again and
    replaced.  ``make`` returns a JSON-serializable dict; the schedule is added to
    it.  Each run is written atomically as soon as it finishes, so two invocations
    can train different runs side by side into the same folder, and an interrupted
    invocation loses only the run it was making.
    """
    os.makedirs(os.path.join(folder, "runs"), exist_ok=True)
    path = os.path.join(folder, "runs", f"{name}.json")
    if os.path.exists(path):
        with open(path) as f:
            run = json.load(f)
        if run.get("schedule") == schedule:
            log(f"{name}: reusing {os.path.relpath(path)}")
            return run
        log(f"{name}: {os.path.relpath(path)} was made on another schedule; making it again")
    run = dict(make(), schedule=schedule)
    write_atomic(path, json.dumps(run))
    return run


def paired(a, b):
    """Mean and standard error of the per-image difference a - b (the same images for both)."""
    d = np.asarray(a) - np.asarray(b)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def log(msg):
    """A progress line on stdout, flushed at once (runs are logged to files)."""
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def one_layer_vae(seed):
    """The one-stochastic-layer model of Burda et al. (IWAE) and Lam et al. (Fashion-MNIST):
    784-200-200-50, tanh, Bernoulli decoder, Glorot initialization."""
    from numpyvae import VAE
    return VAE(784, [200, 200], 50, likelihood="bernoulli", activation="tanh", init="glorot", seed=seed)


def test_figures(model, x_test, eval_k, rng):
    """What iwae.py and fashion_mnist.py report on the test set: a dict of
    log_px (mean of the k = eval_k importance-sampled estimates, nats), log_px_se
    (its standard error over the images), test_elbo (one z per image),
    active_units, and seconds (the wall time these took)."""
    from numpyvae.evaluate import active_units, bounds, log_marginal
    clock = Clock()
    test = bounds(model, x_test, rng, k=1)
    lm = log_marginal(model, x_test, k=eval_k, rng=rng, progress=False)
    n_active, _ = active_units(model, x_test)
    return dict(log_px=float(np.mean(lm)), log_px_se=float(np.std(lm) / np.sqrt(len(lm))),
                test_elbo=-test["neg_elbo"], active_units=n_active, seconds=clock.seconds())
