"""Kingma & Welling (2013), Figure 2: the lower bound against training samples seen.

The setting of the paper's Section 5 (shared by kw_frey_face.py and kw_mnist.py):

    encoder and decoder: one hidden layer of tanh units; weights and biases
    drawn from N(0, 0.01^2); minibatches of M = 100 with L = 1 sample
    (estimator B: analytic KL); Adagrad, its global step size chosen from
    {0.01, 0.02, 0.1} by the training bound after the first few iterations.

The paper adds "a small weight decay term corresponding to a prior
p(theta) = N(0, I)": ``--weight-decay 1`` (Trainer's weight_decay, a N(0, I)
prior on every weight and bias, shared by the N training examples).  The x axis is "number of
training samples evaluated" = steps x minibatch size, as in the paper.
"""
import math
import time

import numpy as np

from numpyvae import VAE
from numpyvae.errors import TrainingError
from numpyvae.train import Trainer

from common import log

STEP_SIZES = (0.01, 0.02, 0.1)


def bound(model, x, seed, batch=1000):
    """Mean ELBO (analytic KL, one z sample) over x, in nats per example -- what Fig. 2 plots."""
    rng = np.random.default_rng(seed)
    return float(sum(model.elbo(x[i:i + batch], rng, "analytic", 1).sum()
                     for i in range(0, len(x), batch)) / len(x))


def marks(total, first=10 ** 4):
    """Sample counts at which the curve is measured: 1, 2, 5 x 10^i up to ``total`` (inclusive)."""
    out = [m * 10 ** i for i in range(int(math.log10(first)), 10) for m in (1, 2, 5)]
    return [m for m in out if first <= m < total] + [int(total)]


def new_trainer(x_train, z_dim, lr, arch, seed, weight_decay=0.0, init_std=0.01, adagrad_warmup=0):
    """A fresh VAE of the paper's architecture and an Adagrad trainer with step size ``lr``.

    init_std: the standard deviation of the initial weights and biases; the paper's
    "N(0, 0.01)" read as a variance would make it 0.1 (numpyvae's "normal" init is 0.01).
    adagrad_warmup: minibatches whose squared gradients start Adagrad's sums
    before the first update (see warm_up_adagrad).
    """
    model = VAE(x_train.shape[1], arch["hidden"], z_dim, likelihood=arch["likelihood"],
                activation="tanh", init="normal", seed=seed, **arch.get("model_kwargs", {}))
    for p in model.params.values():
        p *= init_std / 0.01
    trainer = Trainer(model, x_train, None, optimizer="adagrad", lr=lr, batch_size=100,
                      estimator="analytic", k=1, weight_decay=weight_decay, seed=seed, progress=False, verbose=False)
    warm_up_adagrad(trainer, adagrad_warmup, seed)
    return trainer


def warm_up_adagrad(trainer, steps, seed):
    """Add the squared gradients of ``steps`` minibatches to Adagrad's sums, changing no parameter.

    Kingma's own AEVB code (dpkingma/anglepy, wzoptim.step_vae, warmup=100)
    does this: for its first 100 minibatches it only accumulates the squared
    gradients, so the first real update is divided by the root of 100
    minibatches' worth of them.  Minibatches of 100 drawn with replacement,
    as there; their 100 x 100 samples are not counted on the curve's x axis.
    """
    rng = np.random.default_rng([seed, 100])
    sums = trainer.optimizer.slots["sum_sq"]
    for _ in range(steps):
        xb = trainer.x_train[rng.integers(0, len(trainer.x_train), size=100)]
        _, grads = trainer.model.loss_and_grads(xb, rng=rng, estimator="analytic", k=1)
        if trainer.weight_decay:
            trainer.add_weight_decay(grads)
        for name, g in grads.items():
            sums[name] += g * g


def pick_step_size(x_train, z_dim, arch, steps, seed, weight_decay=0.0, init_std=0.01, adagrad_warmup=0):
    """The paper's rule: each step size runs ``steps`` minibatches; keep the best training bound.

    Returns (chosen lr, {lr: bound or None if it diverged}).
    """
    scores = {}
    probe = x_train[:2000]
    for lr in STEP_SIZES:
        trainer = new_trainer(x_train, z_dim, lr, arch, seed, weight_decay, init_std, adagrad_warmup)
        epochs = math.ceil(steps * 100 / len(x_train))
        try:
            trainer.run(epochs)
            scores[lr] = bound(trainer.model, probe, seed)
        except TrainingError:
            scores[lr] = None
        log(f"  Nz={z_dim} step size {lr}: bound {scores[lr]} after {trainer.step} steps")
    good = {lr: s for lr, s in scores.items() if s is not None and np.isfinite(s)}
    return max(good, key=good.get), scores


def curve(x_train, x_test, z_dim, lr, arch, total, seed, x_train_eval, weight_decay=0.0, init_std=0.01,
          adagrad_warmup=0):
    """Train one model to ``total`` samples; the bound on train/test at each mark.

    Returns a list of dicts {samples, steps, train_bound, test_bound, seconds}.
    """
    trainer = new_trainer(x_train, z_dim, lr, arch, seed, weight_decay, init_std, adagrad_warmup)
    n = len(x_train)
    rows, t_train = [], 0.0
    for m in marks(total):
        t0 = time.perf_counter()
        trainer.run(math.ceil(m / n))                 # whole epochs: samples = epochs * n >= m
        t_train += time.perf_counter() - t0
        row = dict(samples=trainer.epoch * n, steps=trainer.step,
                   train_bound=bound(trainer.model, x_train_eval, seed + 1),
                   test_bound=bound(trainer.model, x_test, seed + 2), train_seconds=round(t_train, 1))
        rows.append(row)
        log(f"  Nz={z_dim} lr={lr}: {row}")
    return rows, trainer


def arguments(doc, name, z_dims, pick_steps):
    """The command line both Fig. 2 scripts share (each adds its own options to the parser returned)."""
    import argparse
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=float, default=1e7, help="training samples to run to (default 1e7)")
    p.add_argument("--z-dims", type=int, nargs="+", default=z_dims)
    p.add_argument("--pick-steps", type=int, default=pick_steps, help="minibatches per step size when choosing it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weight-decay", type=float, default=0.0, metavar="LAMBDA",
                   help="a N(0, I/LAMBDA) prior on the parameters; the paper's is N(0, I): 1 (default 0: none)")
    p.add_argument("--step-size", type=float, default=None,
                   help="use this Adagrad step size instead of picking one by the paper's rule")
    p.add_argument("--init-std", type=float, default=0.01,
                   help="standard deviation of the initial weights (the paper's N(0, 0.01) as a variance: 0.1)")
    p.add_argument("--adagrad-warmup", type=int, default=0, metavar="STEPS",
                   help="minibatches whose squared gradients start Adagrad's sums before any update "
                        "(Kingma's own AEVB code: 100; default 0)")
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds) of the same code, for the tests")
    p.add_argument("--from-log", default=None, metavar="LOG",
                   help="no training: rebuild the table and plot from the log of a run (stopped early or not)")
    p.add_argument("--out", default=None, help=f"output folder (default reproduce/results/{name}[_quick])")
    return p


def train_all(args, x_train, x_test, x_train_eval, arch):
    """{Nz: {step_size, step_size_scores, curve}}: one curve per ``args.z_dims`` (or read from ``args.from_log``)."""
    if args.from_log:
        return results_from_log(args.from_log)
    results = {}
    for z_dim in args.z_dims:
        if args.step_size:
            lr, scores = args.step_size, {}
        else:
            lr, scores = pick_step_size(x_train, z_dim, arch, args.pick_steps, args.seed, args.weight_decay,
                                        args.init_std, args.adagrad_warmup)
        rows, _ = curve(x_train, x_test, z_dim, lr, arch, int(args.samples), args.seed, x_train_eval,
                        args.weight_decay, args.init_std, args.adagrad_warmup)
        results[z_dim] = dict(step_size=lr, step_size_scores={str(k): v for k, v in scores.items()}, curve=rows)
    return results


def settings(args, clock):
    """What a result.json records of the run's settings besides its numbers."""
    from common import command_line, machine
    return dict(samples=args.samples, weight_decay=args.weight_decay, init_std=args.init_std,
                adagrad_warmup=args.adagrad_warmup, quick=args.quick,
                command=command_line(), machine=machine(),
                wall_seconds=log_span(args.from_log) if args.from_log else clock.seconds())


def results_from_log(path):
    """Rebuild {Nz: {step_size, step_size_scores, curve}} from a run's log file.

    For a run stopped before its last Nz finished: every measured point is a
    log line ``Nz=.. lr=..: {...}``, every step-size trial ``Nz=.. step size ..: bound ..``.
    """
    import ast
    import re
    results = {}
    for line in open(path):
        m = re.search(r"Nz=(\d+) lr=([0-9.e-]+): (\{.*\})", line)
        if m:
            res = results.setdefault(int(m.group(1)), dict(step_size_scores={}, curve=[]))
            res["step_size"] = float(m.group(2))
            res["curve"].append(ast.literal_eval(m.group(3)))
            continue
        m = re.search(r"Nz=(\d+) step size ([0-9.e-]+): bound (\S+)", line)
        if m:
            res = results.setdefault(int(m.group(1)), dict(step_size_scores={}, curve=[]))
            res["step_size_scores"][m.group(2)] = None if m.group(3) == "None" else float(m.group(3))
    return {z: r for z, r in results.items() if r["curve"]}


def log_span(path):
    """Seconds from the first to the last time stamp (HH:MM:SS at a line's start) of a log."""
    import re
    stamps = [line[:8] for line in open(path) if re.match(r"\d\d:\d\d:\d\d ", line)]
    h0, m0, s0 = map(int, stamps[0].split(":"))
    h1, m1, s1 = map(int, stamps[-1].split(":"))
    return ((h1 - h0) * 3600 + (m1 - m0) * 60 + (s1 - s0)) % 86400


def plot(results, paper, title, path, paper_test=None):
    """Our train (solid) and test (dashed) curves per Nz, the paper's values as markers."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    colors = ["C0", "C1", "C2", "C3", "C4"]
    for (z_dim, res), c in zip(results.items(), colors):
        s = [r["samples"] for r in res["curve"]]
        ax.plot(s, [r["train_bound"] for r in res["curve"]], "-", color=c, label=f"ours, Nz={z_dim}, train")
        ax.plot(s, [r["test_bound"] for r in res["curve"]], "--", color=c, label=f"ours, Nz={z_dim}, test")
        for samples, values in paper.items():
            if z_dim in values:
                ax.plot([samples], [values[z_dim]], "o", color=c, mfc="none", ms=9)
        if paper_test:
            for samples, values in paper_test.items():
                if z_dim in values:
                    ax.plot([samples], [values[z_dim]], "s", color=c, mfc="none", ms=9)
    ax.plot([], [], "ko", mfc="none", label="paper, train (read off Fig. 2)")
    if paper_test:
        ax.plot([], [], "ks", mfc="none", label="paper, test (read off Fig. 2)")
    ax.set_xscale("log")
    ax.set_xlabel("training samples evaluated")
    ax.set_ylabel("lower bound, nats per example")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    lo = min(min(r["test_bound"] for r in res["curve"]) for res in results.values())
    hi = max(max(v.values()) for v in paper.values())
    ax.set_ylim(lo - 0.05 * abs(hi - lo), hi + 0.1 * abs(hi - lo))
    ax.legend(fontsize=7, loc="lower right")
    fig.savefig(path, dpi=110, bbox_inches="tight")
