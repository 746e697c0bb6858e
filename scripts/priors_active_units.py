"""Active units under the standard-normal prior, a learned mixture and the VampPrior (issue 20).

    python scripts/priors_active_units.py [--z-dim 32] [--epochs 100] [--seeds 0 1]

Trains the same MLP VAE (64 tanh units, Adam 1e-3, batch 100, estimator "mc",
k = 1) on the embedded 8x8 digits with each prior, and reports for each the
posterior-mean variance Cov_x E_q[z_u] of every latent unit over the test
digits (Burda et al.'s activity statistic), the number of units above 0.01
(Burda's threshold) and above 0.1, and the sampled KL.  Prints a Markdown
table; about a minute per seed on an idle 2-core machine.
"""
import argparse
import time

import numpy as np

from numpyvae import VAE
from numpyvae.data import load
from numpyvae.evaluate import active_units, bounds
from numpyvae.train import Trainer

PRIORS = {"standard": None, "mixture": "mixture", "vampprior": "vampprior"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--z-dim", type=int, default=32)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--components", type=int, default=50)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = p.parse_args(argv)
    d = load("digits")
    rows, t0 = [], time.perf_counter()
    for seed in args.seeds:
        for name, prior in PRIORS.items():
            model = VAE(d.x_dim, [64], args.z_dim, activation="tanh", seed=seed,
                        prior=None if prior is None else {"name": prior, "components": args.components})
            Trainer(model, d.x_train, batch_size=100, estimator="mc", binarize="dynamic", seed=seed,
                    verbose=False, progress=False).run(args.epochs)
            x = d.x_test
            n01, var = active_units(model, x, 0.01)
            n1, _ = active_units(model, x, 0.1)
            kl = bounds(model, x, np.random.default_rng(seed))["kl"]
            rows.append((name, seed, n01, n1, kl, np.sort(var)[::-1]))
    print(f"| prior | seed | active (Cov > 0.01) | active (Cov > 0.1) | KL (sampled, nats) | Cov_x E_q[z_u], largest to smallest |")
    print("|---|---|---|---|---|---|")
    for name, seed, n01, n1, kl, var in rows:
        print(f"| {name} | {seed} | {n01}/{args.z_dim} | {n1}/{args.z_dim} | {kl:.2f} | "
              + " ".join(f"{v:.2g}" for v in var) + " |")
    print(f"\ndigits, Z = {args.z_dim}, {args.epochs} epochs, {args.components} components / pseudo-inputs; "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
