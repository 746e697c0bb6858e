"""Burda, Grosse & Salakhutdinov (2016), IWAE, Table 1: one stochastic layer on MNIST.

    NUMPYVAE_DATA=../shared/data python reproduce/iwae.py --run vae_k1      # one model
    NUMPYVAE_DATA=../shared/data python reproduce/iwae.py --report          # the table and plot
    python reproduce/iwae.py --quick

The paper's setting: 784-200-200-50 with tanh, Bernoulli decoder, Glorot
initialization, Adam (beta1 0.9, beta2 0.999, eps 1e-4), minibatches of 20,
MNIST dynamically binarized (a fresh Bernoulli draw of every image each time
it is used), 3,280 passes: stage i = 0..7 lasts 3^i epochs at learning rate
1e-3 * 10^(-i/7).  Test log p(x) is estimated with k = 5000 importance
samples; a latent unit is active when Cov_x(E_q[u]) > 0.01.

Our schedule is the paper's compressed to ``--epochs`` passes: stage i lasts
max(1, round(epochs * 3^i / 3280)) epochs at the same learning rates.  That
is the cause of most of our distance from the paper's numbers (the paper
trains about 50 times longer).  The test set is binarized once with a seeded
generator.  The VAE is trained with the analytic-KL estimator, the IWAE with
the k = 5 importance-weighted bound.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (Clock, command_line, load, log, machine, markdown_table, one_layer_vae,  # noqa: E402
                    results_dir, test_figures, write_result)
from numpyvae.data import binarize  # noqa: E402
from numpyvae.evaluate import log_marginal  # noqa: E402
from numpyvae.train import Trainer  # noqa: E402

# name -> (estimator, k, data, paper's test -log p(x), paper's active units)
RUNS = {
    "vae_k1": ("analytic", 1, "dynamic", 86.76, 19),
    "iwae_k5": ("iwae", 5, "dynamic", 85.54, 22),
    "vae_k1_fixed": ("analytic", 1, "fixed", 88.71, None),
}
PAPER_PASSES = 3280
CURVE_IMAGES = 500       # test images for the learning curve measured after each stage


def schedule(epochs):
    """[(epochs in stage, learning rate)] for i = 0..7: the paper's 3^i epochs at 1e-3 * 10^(-i/7), scaled."""
    return [(max(1, round(epochs * 3 ** i / PAPER_PASSES)), 1e-3 * 10 ** (-i / 7)) for i in range(8)]


def data_for(kind, quick, seed, n_test=None):
    """(x_train, x_test used for evaluation, binarize mode for training)."""
    if kind == "fixed":
        d = load("binarized-mnist")
        x_train, x_test = d.x_train, d.x_test
        mode = "none"
    else:
        d = load("mnist")
        x_train = d.x_train
        x_test = binarize(d.x_test, "dynamic", np.random.default_rng([seed, 7]))   # one fixed draw
        mode = "dynamic"
    if quick:
        x_train, x_test = x_train[:400], x_test[:100]
    return x_train, x_test[:n_test], mode


def train_and_evaluate(name, epochs, eval_k, seed, quick, out, n_test=None):
    estimator, k, kind, _, _ = RUNS[name]
    clock = Clock()
    x_train, x_test, mode = data_for(kind, quick, seed, n_test)
    model = one_layer_vae(seed)
    trainer = Trainer(model, x_train, None, optimizer="adam", lr=1e-3, batch_size=20, estimator=estimator,
                      k=k, binarize=mode, seed=seed, progress=False, verbose=False)
    trainer.optimizer.eps = 1e-4                       # the paper's Adam epsilon
    rng = np.random.default_rng([seed, 3])
    before = float(np.mean(log_marginal(model, x_test[:100], k=eval_k, rng=rng, progress=False)))
    done, curve, curve_seconds = 0, [], 0.0
    for stage_epochs, lr in schedule(epochs):
        trainer.optimizer.lr = lr
        done += stage_epochs
        trainer.run(done)
        # the learning curve: -log p(x) on the first CURVE_IMAGES test images after each stage
        t0 = clock.seconds()
        lm_stage = log_marginal(model, x_test[:CURVE_IMAGES], k=eval_k, rng=np.random.default_rng([seed, 5]),
                                progress=False)
        curve_seconds += clock.seconds() - t0
        curve.append(dict(epochs=trainer.epoch, lr=lr, neg_log_px=-float(np.mean(lm_stage)),
                          train_objective=trainer.history[-1]["train_objective"]))
        log(f"{name}: epoch {trainer.epoch}, lr {lr:.2e}, train objective {curve[-1]['train_objective']:.2f}, "
            f"-log p(x) on {len(lm_stage)} test images {curve[-1]['neg_log_px']:.2f}")
    train_seconds = clock.seconds() - curve_seconds
    fig = test_figures(model, x_test, eval_k, rng)
    res = dict(name=name, estimator=estimator, k=k, data=kind, epochs=trainer.epoch, steps=trainer.step,
               schedule=schedule(epochs), eval_k=eval_k, n_test=len(x_test),
               neg_log_px=-fig["log_px"], neg_log_px_se=fig["log_px_se"],
               neg_log_px_before_training=-before, curve=curve, curve_images=min(CURVE_IMAGES, len(x_test)),
               test_neg_elbo=-fig["test_elbo"], active_units=fig["active_units"],
               train_seconds=round(train_seconds, 1), eval_seconds=round(fig["seconds"], 1),
               command=command_line(), machine=machine())
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(res, f, indent=1)
    log(f"{name}: {res}")
    return res


def report(out, runs, eval_k):
    rows, results = [], {}
    for name in runs:
        path = os.path.join(out, f"{name}.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            r = json.load(f)
        results[name] = r
        _, _, kind, paper, paper_au = RUNS[name]
        rows.append([name.replace("_", " "), "dynamic" if kind == "dynamic" else "fixed (Larochelle)",
                     r["epochs"], r["n_test"], f"{r['neg_log_px']:.2f} ± {r['neg_log_px_se']:.2f}", paper,
                     f"{r['neg_log_px'] - paper:+.2f}", r["active_units"], paper_au if paper_au else "–",
                     f"{r['test_neg_elbo']:.2f}", f"{r['train_seconds'] / 60:.0f} + {r['eval_seconds'] / 60:.0f}"])
    table = markdown_table(["model", "binarization", "passes (paper: 3280)", "test images", f"ours: test −log p(x), k = {eval_k}",
                            "paper", "ours − paper", "active units", "paper", "ours: test −ELBO",
                            "minutes (train + eval)"], rows)
    if results:
        plot(results, os.path.join(out, "iwae.png"))
    return table, results


def plot(results, path):
    """Left: ours next to the paper's; right: the learning curves (runs that stored one)."""
    from matplotlib.figure import Figure
    with_curves = [n for n in results if results[n].get("curve")]
    fig = Figure(figsize=(11 if with_curves else 6, 3.8))
    ax = fig.add_subplot(1, 2 if with_curves else 1, 1)
    names = list(results)
    x = np.arange(len(names))
    ax.bar(x - 0.2, [results[n]["neg_log_px"] for n in names], 0.4, label="ours",
           yerr=[results[n]["neg_log_px_se"] for n in names])
    ax.bar(x + 0.2, [RUNS[n][3] for n in names], 0.4, label="paper (3,280 passes)")
    values = [results[n]["neg_log_px"] for n in names] + [RUNS[n][3] for n in names]
    ax.set_ylim(min(values) - 3, max(values) + 3)
    ax.set_xticks(x, [f"{n}\n({results[n]['epochs']} passes)" for n in names])
    ax.set_ylabel("test −log p(x), nats (lower is better)")
    ax.set_title("IWAE Table 1, one stochastic layer")
    ax.legend()
    if with_curves:
        ax2 = fig.add_subplot(1, 2, 2)
        for i, n in enumerate(with_curves):
            c = results[n]["curve"]
            # the fixed binarization has its own test set, whose first images are harder than MNIST's
            where = " (Larochelle's test images)" if RUNS[n][2] == "fixed" else ""
            ax2.plot([r["epochs"] for r in c], [r["neg_log_px"] for r in c], "o-", color=f"C{i}",
                     label=f"ours, {n.replace('_', ' ')}{where}")
            ax2.plot([PAPER_PASSES], [RUNS[n][3]], "*", color=f"C{i}", ms=12, label=f"paper, {n.replace('_', ' ')}")
        ax2.set_xscale("log")
        ax2.set_xlabel("passes over the training set")
        ax2.set_ylabel(f"test −log p(x), nats (first {results[with_curves[0]]['curve_images']} test images)")
        ax2.set_title("after each learning-rate stage")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", choices=list(RUNS), action="append", help="train and evaluate this model (repeatable)")
    p.add_argument("--report", action="store_true", help="write the table and plot from the finished runs")
    p.add_argument("--epochs", type=int, default=100,
                   help="passes over the data, the paper's schedule compressed (paper: 3280)")
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--n-test", type=int, default=None, help="evaluate on the first N test images (default: all 10,000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny runs (seconds), for the tests")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    out = results_dir("iwae" + ("_quick" if args.quick else ""), args.out)
    runs = args.run or []
    if args.quick:
        args.epochs, args.eval_k, runs, args.report = 1, 50, ["vae_k1", "iwae_k5"], True
    for name in runs:
        train_and_evaluate(name, args.epochs, args.eval_k, args.seed, args.quick, out, args.n_test)
    if args.report:
        table, results = report(out, list(RUNS), args.eval_k)
        result = dict(results=results, quick=args.quick, command=command_line(),
                      wall_seconds=sum(r["train_seconds"] + r["eval_seconds"] for r in results.values()),
                      machine=machine())
        notes = (f"Test −log p(x) in nats per example (± one standard error over the test images), k = {args.eval_k} "
                 "samples from q(z|x); the paper trains for 3,280 passes, we for the number shown (schedule "
                 "compressed, same learning rates); wall time is the sum over the runs.")
        write_result(out, result, table, notes)
        return result
    return None


if __name__ == "__main__":
    main()
