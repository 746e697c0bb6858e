"""Fashion-MNIST, one-layer VAE (Lam et al. 2025, Table 5, the standard reparameterization estimator).

    python reproduce/fashion_mnist.py [--steps 100000] [--quick]

Setting: 784-200-200-50 with tanh, Bernoulli decoder, Fashion-MNIST
dynamically binarized, Adam with learning rate 3e-4, minibatches of 80,
100,000 steps, the analytic-KL ELBO; test bound log p(x) estimated with
K = 5000 importance samples.  The paper reports -238.64 +- 0.25.  What the
paper leaves open we take from numpyvae's defaults: Glorot initialization,
Adam's eps 1e-8; the test set is binarized once with a seeded generator.
Data: Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist)
or NUMPYVAE_DATA.
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (Clock, command_line, load, log, machine, markdown_table, one_layer_vae,  # noqa: E402
                    results_dir, test_figures, write_result)
from numpyvae.data import binarize  # noqa: E402
from numpyvae.evaluate import log_marginal  # noqa: E402
from numpyvae.train import Trainer  # noqa: E402

PAPER = (-238.64, 0.25)    # test log p(x) bound, K = 5000, mean +- its stated spread


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=100000)
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--n-test", type=int, default=None, help="evaluate on the first N test images (default: all 10,000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", choices=["glorot", "pytorch"], default="glorot",
                   help="initial weights: numpyvae's Glorot, or PyTorch's nn.Linear default, "
                        "W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (a guess at the paper's)")
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds), for the tests")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    clock = Clock()
    out = results_dir("fashion_mnist" + ("_quick" if args.quick else ""), args.out)
    d = load("fashion-mnist")
    x_train = d.x_train
    x_test = binarize(d.x_test, "dynamic", np.random.default_rng([args.seed, 7]))   # one fixed draw
    if args.quick:
        args.steps, args.eval_k = 300, 50
        x_train, x_test = x_train[:4000], x_test[:100]
    x_test = x_test[:args.n_test]
    model = one_layer_vae(args.seed)
    if args.init == "pytorch":
        pytorch_init(model, np.random.default_rng([args.seed, 11]))
    trainer = Trainer(model, x_train, None, optimizer="adam", lr=3e-4, batch_size=80, estimator="analytic",
                      k=1, binarize="dynamic", seed=args.seed, progress=False, verbose=False)
    rng = np.random.default_rng([args.seed, 3])
    before = float(np.mean(log_marginal(model, x_test[:100], k=args.eval_k, rng=rng, progress=False)))
    steps_per_epoch = math.ceil(len(x_train) / 80)
    epochs = math.ceil(args.steps / steps_per_epoch)     # whole epochs: the last one may pass args.steps
    for e in range(10, epochs + 10, 10):
        trainer.run(min(e, epochs))
        log(f"epoch {trainer.epoch}, step {trainer.step}")
    train_seconds = clock.seconds()
    fig = test_figures(model, x_test, args.eval_k, rng)
    ours, se, n_active, eval_seconds = fig["log_px"], fig["log_px_se"], fig["active_units"], fig["seconds"]
    table = markdown_table(
        ["", "steps", "test images", f"test log p(x) bound, K = {args.eval_k}", "test ELBO", "active units"],
        [["ours", trainer.step, len(x_test), f"{ours:.2f} ± {se:.2f} (s.e.)", f"{fig['test_elbo']:.2f}", n_active],
         ["paper (Lam et al. 2025, Table 5)", 100000, 10000, f"{PAPER[0]} ± {PAPER[1]}", "", ""],
         ["ours − paper", "", "", f"{ours - PAPER[0]:+.2f}", "", ""]])
    result = dict(init=args.init, ours=ours, ours_se=se, before_training=before, test_elbo=fig["test_elbo"], active_units=n_active,
                  steps=trainer.step, epochs=trainer.epoch, eval_k=args.eval_k, n_test=len(x_test), paper=PAPER,
                  train_seconds=round(train_seconds, 1), eval_seconds=round(eval_seconds, 1), quick=args.quick,
                  command=command_line(), wall_seconds=clock.seconds(), machine=machine())
    notes = ("Nats per example; ± is our standard error over the test images (the paper's ± is its own spread). "
             f"Training {train_seconds / 60:.0f} min, the k = {args.eval_k} evaluation {eval_seconds / 60:.0f} min.")
    write_result(out, result, table, notes)
    plot(result, os.path.join(out, "fashion_mnist.png"))
    log(f"wrote {out}")
    return result


def pytorch_init(model, rng):
    """Redraw every Linear's W and b from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), in place."""
    for mlp in (model.encoder, model.decoder):
        for lin in mlp.linears:
            bound = 1.0 / np.sqrt(lin.W.shape[0])
            lin.W[...] = rng.uniform(-bound, bound, lin.W.shape)
            lin.b[...] = rng.uniform(-bound, bound, lin.b.shape)


def plot(result, path):
    """Ours and the paper's value as points with their error bars (a bar from 0 would hide the difference)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(4.5, 3.5))
    ax = fig.add_subplot()
    ax.errorbar([0], [result["ours"]], yerr=[result["ours_se"]], fmt="o", capsize=6, ms=8,
                label=f"ours ({result['steps']:,} steps, {result['n_test']:,} test images; ± s.e.)")
    ax.errorbar([1], [PAPER[0]], yerr=[PAPER[1]], fmt="s", capsize=6, ms=8, color="C1",
                label="Lam et al. 2025, Table 5 (± its spread)")
    lo, hi = min(result["ours"], PAPER[0]), max(result["ours"], PAPER[0])
    ax.set_ylim(lo - 3, hi + 3)
    ax.set_xlim(-0.7, 1.7)
    ax.set_xticks([0, 1], ["ours", "paper"])
    ax.set_ylabel("test log p(x) bound, K = 5000 (nats)")
    ax.set_title("Fashion-MNIST, one-layer VAE (higher is better)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="lower center")
    fig.savefig(path, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
