"""The training step of each issue-20 variant against the plain VAE's, interleaved in one process.

    python benchmarks/variant_steps.py [--rounds 7] [--steps 30] [--batch 128] [--components 500]

The pytorch/examples model (784-400-20, ReLU, Bernoulli decoder, float32, Adam) as the plain VAE
(estimator "analytic", and "mc", whose KL is sampled like the variants'), with K = 10 planar flow
steps in q(z|x), with a mixture-of-Gaussians prior and with a VampPrior (--components each; 500 is
Tomczak & Welling's MNIST setting). Random data of the right shape. Each round runs every variant
--steps steps after one warm-up step, one variant after the other; the ratio to the plain VAE ("mc")
is computed within each round and the median over rounds printed with its lowest-highest spread,
so a drift in the machine's speed hits all alike. A measurement script, not a test.
"""
import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from numpyvae.optim import Adam  # noqa: E402
from numpyvae.vae import VAE  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--components", type=int, default=500)
    args = p.parse_args(argv)
    c = args.components
    variants = {                                   # name: (VAE keyword arguments, estimator)
        "plain VAE, analytic KL": ({}, "analytic"),
        "plain VAE, sampled KL (mc)": ({}, "mc"),
        "K = 10 planar flows (mc)": ({"flow_steps": 10}, "mc"),
        f"mixture prior, {c} components (mc)": ({"prior": {"name": "mixture", "components": c}}, "mc"),
        f"VampPrior, {c} pseudo-inputs (mc)": ({"prior": {"name": "vampprior", "components": c}}, "mc"),
    }
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.batch, 784)).astype(np.float32)
    runs = {}
    for name, (kw, est) in variants.items():
        model = VAE(784, (400,), 20, dtype=np.float32, seed=0, **kw)
        runs[name] = (model, Adam(model.params), est)
    times = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, (model, opt, est) in runs.items():
            opt.step(model.loss_and_grads(x, rng=rng, estimator=est)[1])     # warm-up
            t0 = time.perf_counter()
            for _ in range(args.steps):
                opt.step(model.loss_and_grads(x, rng=rng, estimator=est)[1])
            times[name].append((time.perf_counter() - t0) / args.steps * 1000)
    base = np.array(times["plain VAE, sampled KL (mc)"])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"NumPy {np.__version__}; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; "
          f"load average before {os.getloadavg()[0]:.2f}")
    print(f"784-400-20, batch {args.batch}, float32, Adam; {args.rounds} interleaved rounds of {args.steps} steps; "
          f"median [lowest-highest round]\n")
    print("| variant | ms per step | time / plain VAE's (mc) |")
    print("|---|---|---|")
    for name, t in times.items():
        t = np.array(t)
        r = t / base
        print(f"| {name} | {np.median(t):.2f} [{t.min():.2f}-{t.max():.2f}] | "
              f"{np.median(r):.2f}x [{r.min():.2f}x-{r.max():.2f}x] |")


if __name__ == "__main__":
    main()
