"""The standard-normal prior, a learned mixture of Gaussians and the VampPrior, on one fixed schedule.

    python reproduce/vampprior_mnist.py [--dataset binarized-mnist] [--epochs 10] [--seeds 0 1]
                                        [--n-test 1000] [--eval-k 5000] [--components 500] [--quick]

One schedule, fixed in advance for every variant (no per-variant tuning):
an MLP VAE with one hidden layer of ``--hidden`` (300) tanh units, Z = 40
(Tomczak & Welling's latent size), a Bernoulli decoder; Adam (lr 1e-3),
batch 100, ``--epochs`` epochs, the "mc" estimator with one sample (the KL
term sampled, since neither learned prior has it in closed form; the
standard-normal run uses the same estimator, so only the prior differs).
The VampPrior has ``--components`` pseudo-inputs (Tomczak & Welling use
500), the mixture as many components.  Every variant is trained with each
seed in ``--seeds``; then, on the first ``--n-test`` test images (binarized
once, seeded, for "mnist"; binarized MNIST is binary already):

* the test -ELBO (one z per image, the mean of 10 draws);
* the importance-sampled -log p(x) with K = ``--eval-k`` (a stochastic upper
  bound on the true -log p(x)), and its paired difference from the
  standard-normal prior's over the same images and seed (mean, standard error);
* the active units (Burda et al.: Cov_x E_q[z_u] > 0.01) and the sampled KL.

Published values (Tomczak & Welling 2018, AISTATS, Table 2: one-layer VAE on
static/dynamic MNIST with the standard, MoG and VampPrior priors) were NOT
checked here: this session could not read the table.  Copy them in from the
paper before quoting them beside ours.

The full schedule has not been run (a few hours on 2 shared cores: run it
on an idle machine).  ``--quick`` (the tests run it) trains tiny models on
the embedded 8x8 digits in seconds; its numbers are not comparable with the
paper's.  Writes reproduce/results/vampprior_<dataset>[_quick]/ (result.json, table.md).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Clock, command_line, load, log, machine, markdown_table, results_dir, write_result  # noqa: E402
from numpyvae import VAE  # noqa: E402
from numpyvae.data import binarize  # noqa: E402
from numpyvae.evaluate import active_units, bounds, log_marginal  # noqa: E402
from numpyvae.train import Trainer  # noqa: E402

VARIANTS = ("standard", "mixture", "vampprior")


def build(variant, args, x_dim, seed):
    prior = None if variant == "standard" else {"name": variant, "components": args.components}
    return VAE(x_dim, [args.hidden], args.z_dim, activation="tanh", seed=seed, prior=prior)


def evaluate(model, x_test, args, seed):
    """The test figures of one trained model; per-image log p(x) kept for the paired differences."""
    rng = np.random.default_rng([seed, 5])
    elbo = np.mean([model.elbo(x_test, rng, "mc") for _ in range(10)], axis=0).astype(np.float64)
    t = time.perf_counter()
    log_px = log_marginal(model, x_test, k=args.eval_k, rng=np.random.default_rng([seed, 6]), progress=False)
    n = len(x_test)
    n_active, _ = active_units(model, x_test)
    return dict(neg_elbo=-float(elbo.mean()), neg_elbo_se=float(elbo.std(ddof=1) / np.sqrt(n)),
                neg_log_px=-float(log_px.mean()), neg_log_px_se=float(log_px.std(ddof=1) / np.sqrt(n)),
                kl=bounds(model, x_test, rng)["kl"], active_units=n_active,
                eval_seconds=round(time.perf_counter() - t, 1)), log_px


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="binarized-mnist", choices=["binarized-mnist", "mnist", "digits"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--hidden", type=int, default=300)
    p.add_argument("--z-dim", type=int, default=40)
    p.add_argument("--components", type=int, default=500)
    p.add_argument("--n-train", type=int, default=None, help="train on the first N training images (default: all)")
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--quick", action="store_true", help="digits, 2 epochs, tiny models, K = 20 (seconds; for the tests)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.dataset, args.epochs, args.seeds, args.hidden, args.z_dim = "digits", 2, [0], 16, 4
        args.components, args.n_test, args.eval_k = 10, 20, 20
    clock = Clock()
    out = results_dir(f"vampprior_{args.dataset}" + ("_quick" if args.quick else ""), args.out)
    d = load(args.dataset)
    rng_bin = np.random.default_rng(7)
    x_train, x_test = d.x_train[:args.n_train], d.x_test[:args.n_test]
    if args.dataset != "binarized-mnist":
        x_test = binarize(x_test, "dynamic", rng_bin)
    binarize_train = "none" if args.dataset == "binarized-mnist" else "dynamic"

    runs, per_image = {}, {}
    for seed in args.seeds:
        for variant in VARIANTS:
            log(f"{variant}, seed {seed}: {args.epochs} epochs")
            model = build(variant, args, d.x_train.shape[1], seed)
            trainer = Trainer(model, x_train, optimizer="adam", lr=1e-3, batch_size=100, estimator="mc", k=1,
                              binarize=binarize_train, seed=seed, verbose=False, progress=False)
            t = time.perf_counter()
            trainer.run(args.epochs)
            train_seconds = time.perf_counter() - t
            figures, log_px = evaluate(model, x_test, args, seed)
            runs[f"{variant}/{seed}"] = dict(figures, train_seconds=round(train_seconds, 1),
                                             step_ms=round(1000 * train_seconds / trainer.step, 2))
            per_image[(variant, seed)] = log_px

    differences = {}
    for variant in VARIANTS[1:]:
        d_all = np.concatenate([per_image[(variant, s)] - per_image[("standard", s)] for s in args.seeds])
        differences[f"{variant} - standard"] = dict(
            mean=float(d_all.mean()), se=float(d_all.std(ddof=1) / np.sqrt(len(d_all))))
    rows = []
    for variant in VARIANTS:
        rs = [runs[f"{variant}/{s}"] for s in args.seeds]
        rows.append([variant, ", ".join(f"{r['neg_elbo']:.2f}" for r in rs),
                     ", ".join(f"{r['neg_log_px']:.2f} ± {r['neg_log_px_se']:.2f}" for r in rs),
                     ", ".join(str(r["active_units"]) for r in rs), ", ".join(f"{r['kl']:.2f}" for r in rs),
                     ", ".join(f"{r['step_ms']:.1f}" for r in rs),
                     "—" if variant == "standard" else
                     f"{-differences[f'{variant} - standard']['mean']:+.2f} ± {differences[f'{variant} - standard']['se']:.2f}"])
    table = markdown_table(["prior", "test −ELBO (per seed)", f"test −log p(x), K = {args.eval_k}",
                            "active units", "KL (sampled)", "ms per step", "−log p(x) vs standard (paired)"], rows)
    notes = (f"{args.dataset} ({len(x_train)} training images), seeds {args.seeds}, {args.epochs} epochs, MLP {args.hidden} tanh units, Z = {args.z_dim}, "
             f"{args.components} components / pseudo-inputs, Adam 1e-3, batch 100, estimator mc (k = 1); the first "
             f"{args.n_test} test images. ± is the standard error over the images; the paired column is the mean "
             "over images and seeds of the difference in −log p(x) from the standard-normal prior's (negative: "
             "better than the standard prior). −log p(x) is importance-sampled (a stochastic upper bound).")
    result = dict(dataset=args.dataset, n_train=len(x_train), epochs=args.epochs, seeds=args.seeds, n_test=args.n_test, eval_k=args.eval_k,
                  components=args.components, hidden=args.hidden, z_dim=args.z_dim, runs=runs,
                  paired_log_px_differences=differences, command=command_line(), wall_seconds=clock.seconds(),
                  machine=machine(), quick=args.quick, date=time.strftime("%Y-%m-%d"))
    write_result(out, result, table, notes)
    return result


if __name__ == "__main__":
    main()
