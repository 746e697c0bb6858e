"""Measure the estimators on a VAE trained on the embedded digits.

    python scripts/estimator_variance.py [--epochs 100] [--draws 200] [--seed 0] [--k-marginal 5000]

1. Trains a 64-128-8 VAE (ReLU, Bernoulli, analytic estimator, Adam 1e-3,
   batch 32) on the 1,397 training digits.
2. On a fixed batch of 100 test digits, draws the encoder's gradient
   ``--draws`` times with fresh eps (k = 1) for the estimators analytic,
   mc, stl and score (in float64), and reports the summed per-coordinate
   variance, and that variance divided by the squared norm of the mean
   gradient.
3. Reports the test IWAE bound for k = 1, 5, 50 and the importance-sampled
   log p(x) with k = 5000 on the 400 test digits.

Writes derivations/results/estimator-variance.md (atomically) and prints it.
"""
import argparse
import os
import platform
import time

import numpy as np

from numpyvae import VAE
from numpyvae.checkpoint import atomic_write
from numpyvae.data import load
from numpyvae.evaluate import active_units, log_marginal
from numpyvae.train import Trainer

OUT = os.path.join(os.path.dirname(__file__), "..", "derivations", "results", "estimator-variance.md")


def encoder_gradients(model, x, estimator, draws, rng):
    """(draws, n_params) matrix of encoder gradients, one row per fresh eps."""
    rows = []
    for _ in range(draws):
        _, grads = model.loss_and_grads(x, rng=rng, estimator=estimator)
        rows.append(np.concatenate([g.ravel() for name, g in grads.items() if name.startswith("encoder")]))
    return np.array(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k-marginal", type=int, default=5000, help="importance samples for log p(x)")
    p.add_argument("--out", default=OUT)
    args = p.parse_args(argv)
    t0 = time.perf_counter()

    data = load("digits")
    model = VAE(data.x_dim, [128], 8, seed=args.seed)
    trainer = Trainer(model, data.x_train, data.x_test, batch_size=32, seed=args.seed, progress=False, verbose=False)
    trainer.run(args.epochs)
    trained = trainer.history[-1]

    model64 = VAE(**{**model.config, "dtype": np.float64})
    for name, value in model.params.items():
        model64.params[name][...] = value
    rng = np.random.default_rng(args.seed + 1)
    x = data.x_test[:100].astype(np.float64)
    rows = []
    for estimator in ("analytic", "mc", "stl", "score"):
        g = encoder_gradients(model64, x, estimator, args.draws, rng)
        variance = float(g.var(axis=0).sum())
        rows.append((estimator, variance, variance / float(np.sum(g.mean(axis=0) ** 2))))

    x_test = data.x_test.astype(np.float64)
    bounds = [(k, float(np.mean(model64.elbo(x_test, rng, "iwae", k)))) for k in (1, 5, 50)]
    lm = float(np.mean(log_marginal(model64, x_test, k=args.k_marginal, rng=rng)))
    active, _ = active_units(model64, x_test)
    seconds = time.perf_counter() - t0

    lines = [
        "# Measured: estimator variance and bounds of a VAE trained on the digits",
        "",
        f"Made by `python scripts/estimator_variance.py --epochs {args.epochs} --draws {args.draws} --seed {args.seed}"
        f"{'' if args.k_marginal == 5000 else f' --k-marginal {args.k_marginal}'}` "
        f"in {seconds:.0f} s on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"NumPy {np.__version__}.",
        "",
        f"Model: 64-128-8, ReLU, Bernoulli, trained {args.epochs} epochs with the analytic estimator "
        f"(train -ELBO {trained['train_neg_elbo']:.2f}, test -ELBO {trained['test_neg_elbo']:.2f} nats); "
        f"{active} of 8 latent units active (Cov_x(mu) > 1e-2).",
        "",
        f"## Variance of the encoder gradient (100 test digits, k = 1, {args.draws} draws of eps, float64)",
        "",
        "| estimator | summed variance | variance / ‖mean‖² |",
        "|---|---|---|",
        *[f"| {name} | {var:.4g} | {rel:.4g} |" for name, var, rel in rows],
        "",
        f"The score-function gradient's variance is {rows[3][1] / rows[0][1]:.0f} times the analytic "
        f"(reparameterized) one; STL's is {rows[2][1] / rows[1][1]:.2f} times that of the full Monte Carlo "
        "gradient, whose score term (zero in expectation) it drops.",
        "",
        "## Bounds on the 400 test digits (nats per example; higher is tighter)",
        "",
        "| bound | value |",
        "|---|---|",
        *[f"| IWAE, k = {k} | {b:.3f} |" for k, b in bounds],
        f"| log p(x), importance sampled, k = {args.k_marginal} | {lm:.3f} |",
        "",
    ]
    text = "\n".join(lines)
    atomic_write(args.out, text.encode())
    print(text)


if __name__ == "__main__":
    main()
