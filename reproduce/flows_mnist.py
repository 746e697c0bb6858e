"""The plain VAE, K = 10 planar flows in q(z|x), and the VampPrior, on binarized MNIST (issue 20).

    NUMPYVAE_DATA=../shared/data python reproduce/flows_mnist.py               # all variants, seeds 0 and 1
    NUMPYVAE_DATA=../shared/data python reproduce/flows_mnist.py --seeds 1     # one seed (run two at once)
    python reproduce/flows_mnist.py --quick                                    # seconds: what the tests run

One schedule, fixed in advance for every variant and both seeds (no per-variant
tuning), on the fixed binarization of Larochelle & Murray (50,000 training
images): a 784-400-40 MLP (ReLU, Bernoulli decoder) whose q(z|x) is

* ``plain``: a diagonal Gaussian, prior N(0, I);
* ``flow``: the diagonal Gaussian pushed through K = 10 planar steps whose
  parameters the encoder produces per example (Rezende & Mohamed 2015, Sec. 4.2;
  derivations/13-planar-flows.md), prior N(0, I);
* ``vampprior``: the diagonal Gaussian, prior the VampPrior with 500
  pseudo-inputs (Tomczak & Welling 2018; derivations/14-learned-priors.md).

All three are trained with the same estimator, the one-sample Monte Carlo ELBO
("mc": log p(x|z) + log p(z) - log q(z|x) at one z; for the flow the flow ELBO),
Adam at lr 1e-3, batches of 100, ``--epochs`` passes.  Each model is then judged
on the first ``--n-test`` test images: the test ELBO (one sample, mean of 10
draws) and the importance-sampled log p(x) with k = ``--eval-k`` samples from
the model's own q (for the flow, q_K).  The importance-sampled figure is a
stochastic lower bound on log p(x) (its expectation is), so -log p(x) is an upper
bound, as are the papers'.  Variants are compared per seed on the same images:
the mean per-image difference of log p(x) from the plain VAE's and its standard
error (paired), and over the seeds.

Every trained run is written to ``runs/<variant>-seed<s>.json`` under the output
folder as soon as it finishes (atomically), and a later invocation reuses it when
its schedule matches, so two invocations can train the two seeds side by side and
an interrupted run loses only the model in training.  The table is built from
every run present for the requested seeds.

The published numbers set beside ours (PUBLISHED below) come from deeper models
and far longer schedules; they were quoted from memory of the papers, not
checked against them in this repository: the table says so.

Writes reproduce/results/flows_mnist/ (result.json, table.md, runs/).  ``--quick``
trains tiny models (hidden 32, Z = 4, K = 2, 10 pseudo-inputs) for one epoch on
1,000 training images and judges 50 test images with k = 50: its numbers mean
nothing, it checks the plumbing.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (Clock, command_line, load, log, machine, markdown_table, paired, results_dir,  # noqa: E402
                    stored_run, write_result)
from numpyvae import VAE  # noqa: E402
from numpyvae.evaluate import log_marginal  # noqa: E402
from numpyvae.train import Trainer  # noqa: E402

VARIANTS = ("plain", "flow", "vampprior")
# -ln p(x) on binarized MNIST as we recall the papers' tables -- NOT checked against the papers here
# (no access in this repository's sessions): Rezende & Mohamed (2015), Table 2, a deep latent Gaussian
# model with diagonal covariance and with K = 10 planar flows; Tomczak & Welling (2018), Table 2, a
# one-layer VAE with the VampPrior on static MNIST.  Different models and far longer schedules than ours.
PUBLISHED = {"plain": ("Rezende & Mohamed 2015, Table 2: DLGM, diagonal covariance", 89.9),
             "flow": ("Rezende & Mohamed 2015, Table 2: DLGM + NF (k = 10)", 87.5),
             "vampprior": ("Tomczak & Welling 2018, Table 2: VAE (L = 1) + VampPrior, static MNIST", 85.57)}


def schedule(args):
    """Everything that fixes a run besides its variant and seed: a stored run is reused only if it matches."""
    return dict(dataset=args.dataset, n_train=args.n_train, epochs=args.epochs, hidden=args.hidden,
                z_dim=args.z_dim, flow_steps=args.flow_steps, components=args.components,
                batch_size=args.batch_size, n_test=args.n_test, eval_k=args.eval_k, train_figures=True)


def build(variant, args, seed):
    """The untrained model of one variant."""
    return VAE(784, hidden=[args.hidden], z_dim=args.z_dim, activation="relu", seed=seed,
               flow_steps=args.flow_steps if variant == "flow" else 0,
               prior={"name": "vampprior", "components": args.components} if variant == "vampprior" else None)


def judge(model, x, seed, args):
    """The ELBO (one sample, mean of 10 draws) and importance-sampled log p(x) of each image of x, float64."""
    rng = np.random.default_rng([seed, 5])
    elbo = np.mean([model.elbo(x, rng, "mc") for _ in range(10)], axis=0).astype(np.float64)
    log_px = log_marginal(model, x, k=args.eval_k, rng=np.random.default_rng([seed, 6]), progress=False)
    return elbo, log_px


def run_one(variant, seed, x_train, x_test, args):
    """Train one model and judge it: a dict of its figures (per-image log p(x) included).

    The same figures on the first n_test *training* images measure how far the
    model fits its training set better than unseen images (no early stopping)."""
    log(f"{variant}, seed {seed}: {args.epochs} epochs")
    clock = Clock()
    model = build(variant, args, seed)
    trainer = Trainer(model, x_train, optimizer="adam", lr=1e-3, batch_size=args.batch_size,
                      estimator="mc", binarize="none", seed=seed, progress=False, verbose=False)
    trainer.run(args.epochs)
    train_seconds = clock.seconds()
    elbo, log_px = judge(model, x_test, seed, args)
    train_elbo, train_log_px = judge(model, x_train[:len(x_test)], seed, args)
    n = len(x_test)
    log(f"{variant}, seed {seed}: test ELBO {elbo.mean():.2f}, log p(x) {log_px.mean():.2f} (k = {args.eval_k}), "
        f"{train_seconds:.0f} s training, {clock.seconds() - train_seconds:.0f} s judging; on {n} training images: "
        f"ELBO {train_elbo.mean():.2f}, log p(x) {train_log_px.mean():.2f}")
    return dict(variant=variant, seed=seed, flow_steps=model.flow_steps, elbo=float(elbo.mean()),
                elbo_se=float(elbo.std(ddof=1) / np.sqrt(n)), log_px=float(log_px.mean()),
                log_px_se=float(log_px.std(ddof=1) / np.sqrt(n)), train_seconds=round(train_seconds, 1),
                train_images_elbo=float(train_elbo.mean()), train_images_log_px=float(train_log_px.mean()),
                train_images_log_px_se=float(train_log_px.std(ddof=1) / np.sqrt(n)),
                history=[{k: v for k, v in row.items() if isinstance(v, (int, float))} for row in trainer.history],
                step_ms=round(1000 * train_seconds / trainer.step, 2), seconds=round(clock.seconds(), 1),
                machine=machine(), per_image_log_px=[float(v) for v in log_px])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    args.dataset, args.hidden, args.z_dim, args.flow_steps, args.components = "binarized-mnist", 400, 40, 10, 500
    args.batch_size, args.n_train = 100, None
    if args.quick:
        args.epochs, args.n_test, args.eval_k, args.flow_steps = 1, 50, 50, 2
        args.hidden, args.z_dim, args.components, args.n_train = 32, 4, 10, 1000
    out = results_dir("flows_mnist" + ("_quick" if args.quick and args.out is None else ""), args.out)
    clock = Clock()
    data = load(args.dataset)
    x_train, x_test = data.x_train[:args.n_train], data.x_test[:args.n_test]
    by = {}
    for seed in args.seeds:
        for variant in args.variants:
            by[variant, seed] = stored_run(out, f"{variant}-seed{seed}", schedule(args),
                                           lambda: run_one(variant, seed, x_train, x_test, args))
    variants = [v for v in VARIANTS if v in args.variants]
    compared = [v for v in variants if v != "plain"] if "plain" in variants else []
    diffs, overall = {}, {}
    for v in compared:
        diffs[v] = {str(s): dict(zip(("mean", "se"), paired(by[v, s]["per_image_log_px"],
                                                           by["plain", s]["per_image_log_px"])))
                    for s in args.seeds}
        # over the seeds: each image's difference averaged over the seeds, then mean and standard error over images
        per_image = np.mean([np.subtract(by[v, s]["per_image_log_px"], by["plain", s]["per_image_log_px"])
                             for s in args.seeds], axis=0)
        overall[v] = dict(mean=float(per_image.mean()), se=float(per_image.std(ddof=1) / np.sqrt(len(per_image))))
    names = {"plain": "plain VAE (diagonal Gaussian q, N(0, I) prior)",
             "flow": f"K = {args.flow_steps} planar flows in q", "vampprior": f"VampPrior, {args.components} pseudo-inputs"}
    rows = []
    for v in variants:
        rs = [by[v, s] for s in args.seeds]
        rows.append([names[v], ", ".join(f"{-r['log_px']:.2f} ± {r['log_px_se']:.2f}" for r in rs),
                     ", ".join(f"{-r['elbo']:.2f}" for r in rs),
                     ", ".join(f"{-r['train_images_log_px']:.2f}" for r in rs),
                     "—" if v not in overall else f"{-overall[v]['mean']:+.2f} ± {overall[v]['se']:.2f}",
                     ", ".join(f"{r['step_ms']:.1f}" for r in rs),
                     f"{PUBLISHED[v][1]} ({PUBLISHED[v][0]}; quoted, not checked here)"])
    table = markdown_table(["model", f"−log p(x), k = {args.eval_k}, seeds {', '.join(map(str, args.seeds))} (nats)",
                            "−ELBO (nats)", f"−log p(x) on the first {args.n_test} training images",
                            "−log p(x) minus the plain VAE's, paired, both seeds",
                            "ms per step", "published −log p(x) (nats)"], rows)
    notes = (f"The first {args.n_test} test images of binarized MNIST (Larochelle & Murray's fixed binarization). "
             f"Every variant: 784-{args.hidden}-{args.z_dim} ReLU MLP, Bernoulli decoder, estimator 'mc' (one "
             f"sample), Adam lr 1e-3, batch {args.batch_size}, {args.epochs} epochs on the "
             f"{len(x_train)} training images, no early stopping. ± is a standard error over the test images; the "
             "paired column averages each image's difference over the seeds (negative: lower −log p(x) than the "
             "plain VAE). −log p(x) is importance-sampled with q (for the flow, q_K): an upper bound in "
             "expectation. The published values come from deeper models trained far longer.")
    notes += (" ms per step: a run's training seconds over its steps; the full runs were made two at a time (one "
              "invocation per seed, side by side, one BLAS thread each) on the 2-core machine, then gathered by "
              "this invocation.")
    run_seconds = sum(r["seconds"] for r in by.values())
    notes += (f" Wall time below: the {len(by)} runs' own seconds (training and judging), summed; "
              f"this invocation took {clock.seconds():.0f} s.")
    if args.quick:
        notes += " QUICK MODE: tiny models, numbers meaningless."
    result = dict(command=command_line(), machine=machine(), wall_seconds=run_seconds, quick=args.quick,
                  schedule=schedule(args), seeds=args.seeds, variants=variants,
                  runs=[by[v, s] for s in args.seeds for v in variants],
                  paired_minus_plain=diffs, paired_over_seeds=overall, published=PUBLISHED)
    write_result(out, result, table, notes)
    return result


if __name__ == "__main__":
    main()
