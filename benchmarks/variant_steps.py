"""The training step of each issue-20 and issue-21 variant against the plain VAE's, interleaved in one process.

    python benchmarks/variant_steps.py [--rounds 7] [--steps 30] [--batch 128] [--components 500]

The pytorch/examples model (784-400-20, ReLU, Bernoulli decoder, float32, Adam) as the plain VAE
(estimator "analytic", and "mc", whose KL is sampled like the variants'), with K = 10 planar flow
steps in q(z|x), with a mixture-of-Gaussians prior and with a VampPrior (--components each; 500 is
Tomczak & Welling's MNIST setting); and the discrete models of issue 21 with the same hidden layer:
the categorical VAE with 20 x 10 latents (the score function with a leave-one-out baseline, S = 2
samples; Gumbel-softmax, S = 1) and the VQ-VAE of reproduce/vqvae_mnist.py (16 positions of 8
numbers, 64 codes, the moving-average codebook update included). Random binary data of the right
shape. Each round runs every variant
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

from numpyvae.discrete import CategoricalVAE, VQVAE  # noqa: E402
from numpyvae.optim import Adam  # noqa: E402
from numpyvae.vae import VAE  # noqa: E402


def vae_step(x, rng, estimator, **kw):
    """One Adam step of a VAE of the pytorch/examples shape with the given options: a function of no arguments."""
    model = VAE(784, (400,), 20, dtype=np.float32, seed=0, **kw)
    opt = Adam(model.params)
    return lambda: opt.step(model.loss_and_grads(x, rng=rng, estimator=estimator)[1])


def categorical_step(x, rng, estimator, samples):
    """One Adam step of the 20 x 10 categorical VAE with one hidden layer of 400 units."""
    model = CategoricalVAE(784, n_latents=20, n_classes=10, hidden=[400], seed=0)
    opt = Adam(model.params)
    return lambda: opt.step(model.loss_and_grads(x, rng=rng, estimator=estimator, samples=samples, tau=1.0)[1])


def vqvae_step(x):
    """One Adam step and moving-average codebook update of reproduce/vqvae_mnist.py's VQ-VAE."""
    model = VQVAE(784, beta=0.25, seed=0, codebook="ema", decay=0.99, n_positions=16, code_dim=8, n_codes=64,
                  hidden=[400])
    opt = Adam(model.params)

    def step():
        opt.step(model.loss_and_grads(x)[1])
        model.ema_step()
    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--components", type=int, default=500)
    args = p.parse_args(argv)
    c = args.components
    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(args.batch, 784)) < 0.5).astype(np.float32)
    steps = {                                       # name: one training step, a function of no arguments
        "plain VAE, analytic KL": vae_step(x, rng, "analytic"),
        "plain VAE, sampled KL (mc)": vae_step(x, rng, "mc"),
        "K = 10 planar flows (mc)": vae_step(x, rng, "mc", flow_steps=10),
        f"mixture prior, {c} components (mc)": vae_step(x, rng, "mc", prior={"name": "mixture", "components": c}),
        f"VampPrior, {c} pseudo-inputs (mc)": vae_step(x, rng, "mc", prior={"name": "vampprior", "components": c}),
        "categorical VAE 20 x 10, score function + leave-one-out (S = 2)": categorical_step(x, rng, "score_loo", 2),
        "categorical VAE 20 x 10, Gumbel-softmax (S = 1)": categorical_step(x, rng, "gumbel_softmax", 1),
        "VQ-VAE, 16 x 8 numbers, 64 codes (EMA codebook)": vqvae_step(x),
    }
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            step()                                                            # warm-up
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - t0) / args.steps * 1000)
    base = np.array(times["plain VAE, sampled KL (mc)"])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"NumPy {np.__version__}; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; "
          f"load average before {os.getloadavg()[0]:.2f}")
    print(f"784-400-20 (discrete models: one hidden layer of 400), batch {args.batch}, Adam; {args.rounds} interleaved rounds of {args.steps} steps; "
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
