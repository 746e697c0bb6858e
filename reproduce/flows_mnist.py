"""The plain VAE against K = 10 planar flows in the posterior, on binarized MNIST (issue 20).

    NUMPYVAE_DATA=../shared/data python reproduce/flows_mnist.py            # the full comparison (see below)
    python reproduce/flows_mnist.py --quick                                 # seconds: what the tests run

One schedule, fixed in advance for both variants and both seeds (no per-variant
tuning): a 784-400-40 MLP (ReLU, Bernoulli decoder), q(z|x) a diagonal Gaussian
(``flow_steps=0``) or a diagonal Gaussian pushed through K = 10 planar steps whose
parameters the encoder produces per example (``flow_steps=10``, Rezende &
Mohamed 2015, Sec. 4.2); both trained with the same estimator, the one-sample
Monte Carlo ELBO ("mc": for the flow it is the flow ELBO,
derivations/13-planar-flows.md), Adam at lr 1e-3, batches of 100, dynamic
binarization, ``--epochs`` passes.  Every model is then judged on the first
``--n-test`` test images, binarized once with a seeded generator: the test ELBO
(one sample, mean of 10 draws) and the importance-sampled log p(x) with k =
``--eval-k`` samples from the model's own q (for the flow, q_K).  The two
variants are compared per seed on the same images: the mean per-image
difference of log p(x) with its standard error (paired), and over the seeds.

The published numbers to set beside ours (Rezende & Mohamed 2015, Table 2:
-ln p(x) of a deep latent Gaussian model on binarized MNIST, diagonal covariance
and K = 10 planar steps) are bounds after a far longer schedule with a deeper
model; they are not re-derived here and are written in the table as quoted,
not as checked (PUBLISHED below).

Writes reproduce/results/flows_mnist/ (result.json, table.md).  ``--quick`` trains
tiny models (hidden 32, Z = 4, K = 2) for one epoch on 1,000 training images and
evaluates 50 test images with k = 50: its numbers mean nothing, it checks the
plumbing.  The full run was not made in this session (the machine is shared), so
its cost is not measured here: ``python benchmarks/step_time.py --z-dim 40
--batch 100 --flow-steps 10 --estimator mc`` times one step on an idle machine.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Clock, command_line, load, log, machine, markdown_table, results_dir, write_result  # noqa: E402
from numpyvae import VAE  # noqa: E402
from numpyvae.data import binarize  # noqa: E402
from numpyvae.evaluate import log_marginal  # noqa: E402
from numpyvae.train import Trainer  # noqa: E402

# Rezende & Mohamed (2015), Table 2, -ln p(x) on binarized MNIST: quoted for comparison, NOT checked
# against the paper in this session (no access); a deeper model and a far longer schedule than ours.
PUBLISHED = {"plain": ("DLGM, diagonal covariance", 89.9), "flow": ("DLGM + NF (k = 10)", 87.5)}


def paired(a, b):
    """Mean and standard error of the per-image difference a - b (the same images for both)."""
    d = np.asarray(a) - np.asarray(b)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def run_one(variant, seed, data, x_test, args):
    """Train one model and judge it: a dict of its figures (per-image log p(x) included)."""
    clock = Clock()
    model = VAE(784, hidden=[args.hidden], z_dim=args.z_dim, activation="relu", seed=seed,
                flow_steps=args.flow_steps if variant == "flow" else 0)
    trainer = Trainer(model, data.x_train[:args.n_train], optimizer="adam", lr=1e-3, batch_size=args.batch_size,
                      estimator="mc", binarize="dynamic", seed=seed, progress=False, verbose=False)
    trainer.run(args.epochs)
    train_seconds = clock.seconds()
    rng = np.random.default_rng([seed, 5])
    elbo = np.mean([model.elbo(x_test, rng, "mc") for _ in range(10)], axis=0).astype(np.float64)
    log_px = log_marginal(model, x_test, k=args.eval_k, rng=np.random.default_rng([seed, 6]), progress=False)
    n = len(x_test)
    log(f"{variant}, seed {seed}: test ELBO {elbo.mean():.2f}, log p(x) {log_px.mean():.2f} (k = {args.eval_k}), "
        f"{train_seconds:.0f} s training")
    return dict(variant=variant, seed=seed, flow_steps=model.flow_steps, elbo=float(elbo.mean()),
                elbo_se=float(elbo.std(ddof=1) / np.sqrt(n)), log_px=float(log_px.mean()),
                log_px_se=float(log_px.std(ddof=1) / np.sqrt(n)), train_seconds=train_seconds,
                seconds=clock.seconds(), per_image_log_px=[float(v) for v in log_px])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--flow-steps", type=int, default=10)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    args.hidden, args.z_dim, args.batch_size, args.n_train = 400, 40, 100, None
    if args.quick:
        args.epochs, args.n_test, args.eval_k, args.flow_steps = 1, 50, 50, 2
        args.hidden, args.z_dim, args.n_train = 32, 4, 1000
    out = results_dir("flows_mnist" + ("_quick" if args.quick and args.out is None else ""), args.out)
    clock = Clock()
    data = load("mnist")
    x_test = binarize(data.x_test[:args.n_test], "dynamic", np.random.default_rng([0, 7]))
    runs = [run_one(variant, seed, data, x_test, args) for seed in args.seeds for variant in ("plain", "flow")]
    by = {(r["variant"], r["seed"]): r for r in runs}
    diffs = {}
    for seed in args.seeds:
        d, se = paired(by["flow", seed]["per_image_log_px"], by["plain", seed]["per_image_log_px"])
        diffs[seed] = dict(mean=d, se=se)
    # over the seeds: each image's difference averaged over the seeds, then mean and standard error over images
    per_image = np.mean([np.subtract(by["flow", s]["per_image_log_px"], by["plain", s]["per_image_log_px"])
                         for s in args.seeds], axis=0)
    overall = dict(mean=float(per_image.mean()), se=float(per_image.std(ddof=1) / np.sqrt(len(per_image))))
    rows = []
    for variant in ("plain", "flow"):
        rs = [by[variant, s] for s in args.seeds]
        name = "plain VAE (diagonal Gaussian q)" if variant == "plain" else f"K = {args.flow_steps} planar flows"
        rows.append([name, ", ".join(f"{-r['log_px']:.2f} ± {r['log_px_se']:.2f}" for r in rs),
                     ", ".join(f"{-r['elbo']:.2f}" for r in rs),
                     f"{PUBLISHED[variant][1]} ({PUBLISHED[variant][0]}; quoted, not checked here)"])
    rows.append(["log p(x): flow minus plain, paired (nats)",
                 ", ".join(f"{diffs[s]['mean']:+.2f} ± {diffs[s]['se']:.2f}" for s in args.seeds),
                 f"over the seeds: {overall['mean']:+.2f} ± {overall['se']:.2f}", "-"])
    table = markdown_table([f"model", f"-log p(x), k = {args.eval_k}, seeds {args.seeds} (nats)",
                            "-ELBO (nats)", "Rezende & Mohamed 2015, Table 2"], rows)
    notes = (f"The first {args.n_test} MNIST test images, binarized once (seed 0). Both variants: 784-"
             f"{args.hidden}-{args.z_dim} ReLU MLP, estimator 'mc', Adam lr 1e-3, batch {args.batch_size}, dynamic "
             f"binarization, {args.epochs} epochs" + (f" on the first {args.n_train} training images" if args.n_train
                                                      else "") + ". ± is a standard error over the test images.")
    if args.quick:
        notes += " QUICK MODE: tiny models, numbers meaningless."
    result = dict(command=command_line(), machine=machine(), wall_seconds=clock.seconds(), quick=args.quick,
                  epochs=args.epochs, n_test=args.n_test, eval_k=args.eval_k, flow_steps=args.flow_steps,
                  hidden=args.hidden, z_dim=args.z_dim, seeds=args.seeds, runs=runs,
                  paired_flow_minus_plain={str(s): v for s, v in diffs.items()}, paired_over_seeds=overall,
                  published=PUBLISHED)
    write_result(out, result, table, notes)
    return result


if __name__ == "__main__":
    main()
