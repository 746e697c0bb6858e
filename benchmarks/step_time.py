"""Time one training step (loss_and_grads + Adam) of numpyvae on the CPU.

    python benchmarks/step_time.py [--x-dim 784] [--hidden 400] [--z-dim 20] [--batch 128] [--dtype float32]
    python benchmarks/step_time.py --prior vampprior --components 500 --estimator mc     # a learned prior
    python benchmarks/step_time.py --flow-steps 10 --estimator mc      # with K = 10 planar flows in q(z|x)

Prints the machine, the median milliseconds per step over --repeats timed
runs of --steps steps each, and the implied seconds per MNIST epoch
(60,000 examples).  Random data of the right shape is used: the time of a
step does not depend on the pixel values.
"""
import argparse
import os
import platform
import time

import numpy as np

from numpyvae import VAE
from numpyvae.optim import Adam


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--x-dim", type=int, default=784)
    p.add_argument("--hidden", type=int, nargs="+", default=[400])
    p.add_argument("--z-dim", type=int, default=20)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--estimator", default="analytic")
    p.add_argument("--flow-steps", type=int, default=0, help="K planar flow steps in the posterior (use --estimator mc)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--prior", choices=["standard", "mixture", "vampprior"], default="standard")
    p.add_argument("--components", type=int, default=500, help="mixture components or pseudo-inputs")
    args = p.parse_args()
    prior = None if args.prior == "standard" else {"name": args.prior, "components": args.components}
    if prior is not None and args.estimator == "analytic":
        p.error(f"--prior {args.prior} has no closed-form KL: give --estimator mc (or iwae, stl)")

    dtype = np.dtype(args.dtype).type
    rng = np.random.default_rng(0)
    model = VAE(args.x_dim, args.hidden, args.z_dim, dtype=dtype, seed=0, prior=prior, flow_steps=args.flow_steps)
    opt = Adam(model.params)
    x = rng.uniform(size=(args.batch, args.x_dim)).astype(dtype)
    for _ in range(5):                                   # warm up BLAS and caches
        opt.step(model.loss_and_grads(x, rng=rng, estimator=args.estimator)[1])
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            opt.step(model.loss_and_grads(x, rng=rng, estimator=args.estimator)[1])
        times.append((time.perf_counter() - t0) / args.steps)
    ms = 1000 * float(np.median(times))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.processor() or 'cpu'}, "
          f"Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"model {args.x_dim}-{'-'.join(map(str, args.hidden))}-{args.z_dim}, batch {args.batch}, {args.dtype}, "
          f"{args.estimator}, prior {args.prior}{'' if prior is None else f' ({args.components} components)'}"
          f"{f', {args.flow_steps} planar flow steps' if args.flow_steps else ''}: "
          f"{ms:.2f} ms per step (median of {args.repeats} x {args.steps} steps)")
    print(f"implied MNIST epoch (60,000 examples): {ms / 1000 * np.ceil(60000 / args.batch):.1f} s")


if __name__ == "__main__":
    main()
