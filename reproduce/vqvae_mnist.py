"""A small VQ-VAE on binarized MNIST: reconstruction, codebook usage, and its step time beside the Gaussian VAE's.

    NUMPYVAE_DATA=../shared/data python reproduce/vqvae_mnist.py        # 20 epochs (tens of minutes)
    python reproduce/vqvae_mnist.py --quick                            # the embedded digits, seconds

Then a masked autoregressive prior over the code grid (MADE, numpyvae/discrete/made.py) is fitted to
the training images' codes; samples.png decodes code grids drawn uniformly and drawn from the prior.

Model: encoder 784-400-(M*d), M = 16 positions of d = 8 numbers, K = 64 codes, decoder (M*d)-400-784,
ReLU, Bernoulli decoder, beta = 0.25 (van den Oord et al. 2017's commitment weight), the codebook by
moving averages with decay 0.99 (``--codebook loss``: by the codebook loss instead); Adam at 1e-3,
batches of 100, MNIST binarized once at 0.5.  Reported on the first ``--n-test`` test images: the
reconstruction term -log p(x | z_q(x)) in nats (a reconstruction error, not a likelihood of x: no prior
over the codes is fitted), codebook usage (perplexity, dead codes), and the seconds per training step of
this model and of numpyvae's Gaussian VAE 784-400-20 (analytic KL, one sample) at the same batch size,
timed in the same process on the same machine (stated in the table).  Writes
reproduce/results/vqvae_mnist/ (result.json, table.md).
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
from numpyvae.discrete import VQVAE  # noqa: E402
from numpyvae.discrete.made import MADE  # noqa: E402
from numpyvae.layers import sigmoid  # noqa: E402
from numpyvae.optim import Adam  # noqa: E402


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--prior-epochs", type=int, default=20)
    p.add_argument("--codebook", choices=("ema", "loss"), default="ema",
                   help="codes by moving averages (decay 0.99) or by the codebook loss's gradient")
    p.add_argument("--quick", action="store_true")
    return p.parse_args(argv)


def step_seconds(model, x, loss_and_grads, steps=20):
    """Median wall time of one training step (loss, gradient, Adam update) over ``steps`` steps."""
    opt, times = Adam(model.params, lr=1e-3), []
    for i in range(steps):
        t = time.perf_counter()
        opt.step(loss_and_grads(x)[1])
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def draw_samples(samples, path, side):
    """One row of 16 decoded images per kind of code grid, saved as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(samples), 16, figsize=(16, 1.2 * len(samples) + 0.4))
    for row, (name, images) in zip(axes, samples.items()):
        for ax, img in zip(row, images):
            ax.imshow(img.reshape(side, side), cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
        row[0].set_title(name, loc="left", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def draw_usage(counts, path, perplexity):
    """Codebook usage on the test images: each code's share of the positions, most used first, dead codes in red."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    counts = np.asarray(counts)
    order = np.argsort(-counts, kind="stable")
    share = counts[order] / counts.sum()
    dead = counts[order] == 0
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar(np.arange(len(counts)), share, color=np.where(dead, "tab:red", "tab:blue"), width=0.8)
    ax.axhline(1 / len(counts), color="gray", lw=1, ls="--", label=f"uniform use (1/{len(counts)})")
    if dead.any():
        ax.plot(np.flatnonzero(dead), np.zeros(dead.sum()), "x", color="tab:red", ms=6,
                label=f"dead codes ({dead.sum()}): never chosen")
    ax.set_xlabel("code, most used first", fontsize=10)
    ax.set_ylabel("share of positions", fontsize=10)
    ax.set_title(f"Codebook usage on the test images (perplexity {perplexity:.1f} of {len(counts)})", fontsize=10)
    ax.legend(fontsize=10)
    ax.tick_params(labelsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    clock = Clock()
    if args.quick:
        d = load("digits")
        x_train, x_test = binarize(d.x_train, "threshold"), binarize(d.x_test, "threshold")[:100]
        size = dict(n_positions=4, code_dim=3, n_codes=16, hidden=[64])
        args.epochs, args.prior_epochs, hidden = 3, 5, [64]
    else:
        d = load("mnist")
        x_train, x_test = binarize(d.x_train, "threshold"), binarize(d.x_test, "threshold")[:args.n_test]
        size = dict(n_positions=16, code_dim=8, n_codes=64, hidden=[400])
        hidden = [400]
    out = results_dir("vqvae_mnist" + ("_quick" if args.quick else ""), args.out)
    model = VQVAE(x_train.shape[1], beta=0.25, seed=args.seed, codebook=args.codebook, decay=0.99, **size)
    opt, rng, curve = Adam(model.params, lr=1e-3), np.random.default_rng(args.seed), []
    for epoch in range(args.epochs):
        order, total, n = rng.permutation(len(x_train)), 0.0, 0
        for start in range(0, len(order) - 99, 100):
            loss, grads = model.loss_and_grads(x_train[order[start:start + 100]])
            opt.step(grads)
            if args.codebook == "ema":
                model.ema_step()
            total, n = total + model.last["recon"], n + 1
        curve.append(total / n)
        log(f"epoch {epoch + 1}: train -log p(x|z_q) {curve[-1]:.2f} nats")
    model.loss_and_grads(x_test)
    recon = model.last["recon"]
    counts, perplexity, dead = model.usage(x_test)
    # the prior over code grids, fitted on the training images' codes (the VQ-VAE held fixed)
    train_codes = np.concatenate([model.codes(x_train[i:i + 1000]) for i in range(0, len(x_train), 1000)])
    prior = MADE(model.M, model.K, hidden=4 * model.M * (2 if args.quick else 8), seed=args.seed)
    p_opt = Adam(prior.params, lr=1e-3)
    for epoch in range(args.prior_epochs):
        for start in range(0, len(train_codes), 100):
            p_opt.step(prior.loss_and_grads(train_codes[rng.permutation(len(train_codes))[:100]])[1])
    prior_nll = -float(prior.log_prob(model.codes(x_test)).mean())
    uniform_nll = model.M * float(np.log(model.K))
    log(f"prior: test codes -log p(c) {prior_nll:.2f} nats (uniform: {uniform_nll:.2f})")
    samples = {}
    srng = np.random.default_rng([args.seed, 9])
    for name, codes in (("uniform codes", srng.integers(0, model.K, size=(16, model.M))),
                        ("codes from the MADE prior", prior.sample(16, srng))):
        z_q = model.E[codes].reshape(16, -1)
        samples[name] = sigmoid(model.decoder.call(z_q)[0])
    samples["test images"] = x_test[:16]
    samples["their reconstructions"] = model.reconstruct(x_test[:16])
    draw_samples(samples, os.path.join(out, "samples.png"), int(np.sqrt(x_train.shape[1])))
    draw_usage(counts, os.path.join(out, "usage.png"), perplexity)
    batch = x_train[:100]
    timed = VQVAE(x_train.shape[1], beta=0.25, seed=1, **size)
    vq_step = step_seconds(timed, batch, timed.loss_and_grads)
    gauss = VAE(x_train.shape[1], hidden, 20, seed=1)
    g_rng = np.random.default_rng(2)
    g_step = step_seconds(gauss, batch, lambda x: gauss.loss_and_grads(x, rng=g_rng))
    rows = [["VQ-VAE", f"{recon:.2f}", f"{perplexity:.1f} of {model.K}", dead, f"{1000 * vq_step:.2f}"],
            [f"Gaussian VAE {x_train.shape[1]}-{hidden[0]}-20", "—", "—", "—", f"{1000 * g_step:.2f}"]]
    table = markdown_table(["model", "test -log p(x|z_q) (nats)", "codebook perplexity", "dead codes",
                            "ms per training step (batch 100)"], rows)
    result = dict(command=command_line(), machine=machine(), wall_seconds=clock.seconds(), quick=args.quick,
                  epochs=args.epochs, n_test=int(len(x_test)), size=size, codebook=args.codebook,
                  train_curve=curve, test_recon=recon,
                  perplexity=perplexity, dead_codes=dead, code_counts=counts.tolist(),
                  vq_step_seconds=vq_step, gaussian_step_seconds=g_step, prior_nll=prior_nll,
                  uniform_prior_nll=uniform_nll)
    notes = (f"The codes' prior (MADE, {args.prior_epochs} epochs on the training codes): test codes' -log p(c) = "
             f"{prior_nll:.2f} nats per image, against {uniform_nll:.2f} for uniform codes; samples.png decodes 16 "
             "code grids of each under two rows of test images and their reconstructions; usage.png shows each code's share of the test positions, dead codes in red. -log p(x|z_q) is a reconstruction error, not -log p(x). "
             "Step times are medians of 20 steps in one process; a benchmark needs an idle machine. "
             + ("QUICK MODE: the 8x8 digits and a tiny model." if args.quick else ""))
    write_result(out, result, table, notes)
    return result


if __name__ == "__main__":
    main()
