"""Fashion-MNIST: how much do two seeds' test bounds differ, and how much of that is the test binarization?

    python reproduce/fashion_mnist_seed_spread.py [--steps 5000] [--k 50]

Issue 17, item 12: the full runs of seeds 0 and 1 (results/fashion_mnist*, 100,500 steps, K = 5000)
agree to 5e-4 nats, with a standard error of 0.76 over the test images.  That standard error is
the spread of the images, which both runs share; it says nothing about how far two runs can be
apart.  This script measures the two components of a run-to-run difference on short runs of the
same model and setting (fashion_mnist.py's): each seed's model is evaluated on both seeds' test
binarizations (fashion_mnist.py draws it with default_rng([seed, 7])), so that

    binarization effect = the same model on binarization A minus on B  (paired over the images),
    model effect        = model 0 minus model 1 on the same binarization (paired over the images),

each with its paired standard error.  Short runs: the model effect at 100,000 steps is not
measured here (it would take the two full runs again, about 30 minutes of CPU).
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import load, machine, one_layer_vae  # noqa: E402
from numpyvae.data import binarize  # noqa: E402
from numpyvae.evaluate import log_marginal  # noqa: E402
from numpyvae.train import Trainer  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--n-test", type=int, default=None)
    args = p.parse_args(argv)
    d = load("fashion-mnist")
    tests = {s: binarize(d.x_test, "dynamic", np.random.default_rng([s, 7]))[:args.n_test] for s in (0, 1)}
    print(f"test pixels that differ between the two binarizations: {np.mean(tests[0] != tests[1]):.3f}")
    epochs = math.ceil(args.steps / math.ceil(len(d.x_train) / 80))
    per_image = {}
    for seed in (0, 1):
        model = one_layer_vae(seed)
        Trainer(model, d.x_train, None, optimizer="adam", lr=3e-4, batch_size=80, estimator="analytic", k=1,
                binarize="dynamic", seed=seed, progress=False, verbose=False).run(epochs)
        for b in (0, 1):
            per_image[seed, b] = log_marginal(model, tests[b], k=args.k, rng=np.random.default_rng([seed, b, 3]),
                                              progress=False)
            print(f"model of seed {seed} on binarization {b}: mean log p(x) bound {per_image[seed, b].mean():.3f}",
                  flush=True)

    def paired(a, b):
        diff = per_image[a] - per_image[b]
        return diff.mean(), diff.std(ddof=1) / math.sqrt(len(diff))
    print(f"\n{epochs} epochs ({epochs * math.ceil(len(d.x_train) / 80)} steps), K = {args.k}, "
          f"{len(tests[0])} test images; {machine()}")
    for what, a, b in (("binarization effect, model 0 (A - B)", (0, 0), (0, 1)),
                       ("binarization effect, model 1 (A - B)", (1, 0), (1, 1)),
                       ("model effect on binarization A (0 - 1)", (0, 0), (1, 0)),
                       ("model effect on binarization B (0 - 1)", (0, 1), (1, 1)),
                       ("the full runs' comparison: model 0 on A - model 1 on B", (0, 0), (1, 1))):
        m, se = paired(a, b)
        print(f"{what:55s} {m:+.3f} +- {se:.3f} nats (paired s.e.)")
    print(f"standard error over the images (the figure the results quote): "
          f"{per_image[0, 0].std(ddof=1) / math.sqrt(len(per_image[0, 0])):.3f}")


if __name__ == "__main__":
    main()
