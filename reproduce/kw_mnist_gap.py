"""Where the MNIST Nz = 3 train-test gap lives: in the decoder's log p(x), or in the encoder.

    NUMPYVAE_DATA=../shared/data python reproduce/kw_mnist_gap.py [--samples 1e7] [--images 1000] [--quick]

kw_mnist.py's Nz = 3 model (784-500-3, tanh, Bernoulli on grey levels,
Adagrad step 0.02) lands 2.75 nats lower on the test images than on the
training images, where the paper's curves show no gap.  This script trains
the same model to --samples, then on --images training and --images test
images measures three numbers per image (nats):

  amortized ELBO : the bound with the encoder's q(z|x), what Fig. 2 plots
  optimized ELBO : the bound with q's mean and log-variance optimized for
                   that image alone, the decoder fixed (Adam, from the
                   encoder's values)
  log p(x)       : importance-sampled, k = 5000, with the optimized q as the
                   proposal (closer to the posterior than the encoder's q, so
                   the estimate's downward bias is smaller)

so that  amortized ELBO = log p(x) - approximation gap - amortization gap,
with approximation gap = log p(x) - optimized ELBO (q is Gaussian) and
amortization gap = optimized ELBO - amortized ELBO (one encoder for all x).
The train-test difference of each term says where the 2.75 nats come from:
a decoder that fits the training images better (log p(x)), or an encoder
that infers their z better (amortization).
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Clock, command_line, load, log, machine, markdown_table, results_dir, write_result  # noqa: E402
import kw_fig2  # noqa: E402
from kw_mnist import ARCH  # noqa: E402

from numpyvae.distributions import kl_std_normal, kl_std_normal_grads, reparameterize, reparameterize_backward  # noqa: E402
from numpyvae.estimators import _logsumexp, log_weights  # noqa: E402
from numpyvae.optim import Adam  # noqa: E402


def elbo_and_grads(model, x, mu, logvar, eps):
    """The ELBO of each x (B, D) under q = N(mu, exp(logvar)), decoder fixed, and its gradient in mu, logvar.

    eps (K, B, Z): the samples, held fixed.  Analytic KL (eq. 7*).
    Returns elbo (B,), d elbo / d mu (B, Z), d elbo / d logvar (B, Z).
    """
    K, B, Z = eps.shape
    z, cache = reparameterize(mu, logvar, eps)                      # z = mu + sigma eps, eq. (5*)
    out = model.decoder.forward(z.reshape(K * B, Z)).reshape(K, B, -1)
    log_px = model.log_px(x, out)                                   # (K, B)
    dout = model.dlog_px(x, out) / K                                # d mean_k log p(x|z_k) / d out
    dz = model.decoder.backward(dout.reshape(K * B, -1)).reshape(K, B, Z)
    dmu, dlogvar = reparameterize_backward(dz, cache)
    dkl_mu, dkl_logvar = kl_std_normal_grads(mu, logvar)
    return log_px.mean(axis=0) - kl_std_normal(mu, logvar), dmu - dkl_mu, dlogvar - dkl_logvar


def optimize_q(model, x, steps, samples, lr, rng):
    """Each image's own q: mu, logvar (B, Z) from the encoder's values, Adam on the ELBO."""
    mu, logvar = (a.astype(np.float64) for a in model.encode(x))
    params = {"mu": mu, "logvar": logvar}
    adam = Adam(params, lr=lr)
    for _ in range(steps):
        eps = rng.standard_normal((samples, len(x), model.z_dim))
        _, dmu, dlogvar = elbo_and_grads(model, x, mu, logvar, eps)
        adam.step({"mu": -dmu, "logvar": -dlogvar})                 # Adam minimises: the negative ELBO
    return mu, logvar


def log_px_estimate(model, x, mu, logvar, k, rng, chunk=250):
    """log (1/k) sum_i p(x, z_i) / q(z_i) with z_i ~ q = N(mu, exp(logvar)): (B,), seed eq. (3*)."""
    total = np.full(len(x), -np.inf)
    for done in range(0, k, chunk):
        eps = rng.standard_normal((min(chunk, k - done), len(x), model.z_dim))
        z, _ = reparameterize(mu, logvar, eps)
        out = model.decoder.forward(z.reshape(-1, model.z_dim)).reshape(len(eps), len(x), -1)
        total = np.logaddexp(total, _logsumexp(log_weights(model.log_px(x, out), z, mu, logvar), axis=0))
    return total - math.log(k)


def measure(model, x, args, rng):
    """{amortized, optimized, log_px}: per-image arrays (B,), the ELBOs on the same eps."""
    mu0, logvar0 = (a.astype(np.float64) for a in model.encode(x))
    mu1, logvar1 = optimize_q(model, x, args.opt_steps, 20, args.opt_lr, rng)
    eps = rng.standard_normal((args.eval_samples, len(x), model.z_dim))
    amortized = elbo_and_grads(model, x, mu0, logvar0, eps)[0]
    optimized = elbo_and_grads(model, x, mu1, logvar1, eps)[0]
    log_px = np.concatenate([log_px_estimate(model, x[i:i + 100], mu1[i:i + 100], logvar1[i:i + 100], args.k, rng)
                             for i in range(0, len(x), 100)])
    return dict(amortized=amortized, optimized=optimized, log_px=log_px)


def main(argv=None):
    p = kw_fig2.arguments(__doc__, "kw_mnist_gap", z_dims=[3], pick_steps=0)
    p.add_argument("--images", type=int, default=1000, help="training and test images measured")
    p.add_argument("--opt-steps", type=int, default=500, help="Adam steps of each image's own q")
    p.add_argument("--opt-lr", type=float, default=0.01)
    p.add_argument("--eval-samples", type=int, default=200, help="eps samples per image for the ELBOs")
    p.add_argument("--k", type=int, default=5000, help="importance samples for log p(x)")
    args = p.parse_args(argv)
    data = load("mnist")
    x_train, x_test = data.x_train, data.x_test
    if args.quick:   # seconds: 3,000 training images, 2x10^4 samples, 100 images measured
        args.samples, args.images, args.opt_steps, args.eval_samples, args.k = 2e4, 100, 50, 50, 200
        x_train = x_train[:3000]
    clock = Clock()
    out = results_dir("kw_mnist_gap" + ("_quick" if args.quick else ""), args.out)
    lr = args.step_size or 0.02                                     # kw_mnist.py's pick at Nz = 3
    trainer = kw_fig2.new_trainer(x_train, 3, lr, ARCH, args.seed, args.weight_decay, args.init_std,
                                  args.adagrad_warmup)
    trainer.run(math.ceil(args.samples / len(x_train)))
    log(f"trained to {trainer.epoch * len(x_train):,} samples ({trainer.step} steps)")
    model = trainer.model
    rng = np.random.default_rng([args.seed, 3])
    sets = {"train": x_train[:args.images], "test": x_test[:args.images]}
    per = {name: measure(model, x, args, rng) for name, x in sets.items()}

    rows, means = [], {}
    for name, m in per.items():
        m = dict(m, amortization_gap=m["optimized"] - m["amortized"], approximation_gap=m["log_px"] - m["optimized"])
        mean = {key: float(np.mean(v)) for key, v in m.items()}
        se = {key: float(np.std(v) / math.sqrt(len(v))) for key, v in m.items()}     # the gaps: paired per image
        means[name] = dict(mean=mean, se=se)
        rows.append([name, f"{mean['amortized']:.2f}", f"{mean['optimized']:.2f}", f"{mean['log_px']:.2f}",
                     f"{mean['amortization_gap']:.2f}", f"{mean['approximation_gap']:.2f}"])
    diff = {key: means["train"]["mean"][key] - means["test"]["mean"][key] for key in means["train"]["mean"]}
    rows.append(["train - test", f"{diff['amortized']:+.2f}", f"{diff['optimized']:+.2f}", f"{diff['log_px']:+.2f}",
                 f"{diff['amortization_gap']:+.2f}", f"{diff['approximation_gap']:+.2f}"])
    table = markdown_table(["images", "amortized ELBO", "optimized ELBO", "log p(x), k = %d" % args.k,
                            "amortization gap", "approximation gap"], rows)
    notes = (f"Nz = 3, {trainer.epoch * len(x_train):,} training samples, step {lr}; the first {args.images:,} "
             f"training and test images; nats per image. Standard errors of the means, train / test: "
             + ", ".join(f"{key} {means['train']['se'][key]:.2f} / {means['test']['se'][key]:.2f}"
                         for key in ("amortized", "optimized", "log_px", "amortization_gap", "approximation_gap"))
             + ". The train - test row splits the gap in the amortized ELBO (the plotted bound) into "
             "log p(x) - approximation gap - amortization gap.")
    result = dict(samples_trained=trainer.epoch * len(x_train), step_size=lr, images=args.images, sets=means,
                  train_minus_test=diff, opt_steps=args.opt_steps, opt_lr=args.opt_lr,
                  eval_samples=args.eval_samples, k=args.k, seed=args.seed, quick=args.quick,
                  command=command_line(), machine=machine(), wall_seconds=clock.seconds())
    plot(means, args.k, os.path.join(out, "gap.png"))
    write_result(out, result, table, notes)
    log(f"wrote {out}")
    return result


def plot(means, k, path):
    """Left: the three numbers on the training and the test images; right: the two gaps between them."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sets = ("train", "test")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    levels = [("amortized", "amortized ELBO (encoder's q)"), ("optimized", "optimized ELBO (each image's own q)"),
              ("log_px", f"log p(x), k = {k}")]
    for i, (key, label) in enumerate(levels):
        left.errorbar(np.arange(2) + (i - 1) * 0.12, [means[s]["mean"][key] for s in sets],
                      yerr=[2 * means[s]["se"][key] for s in sets], fmt="o", capsize=4, label=label)
    left.set_xticks([0, 1], ["first training images", "first test images"])
    left.set_xlim(-0.5, 1.5)
    left.set_ylabel("nats per image (higher is better)")
    left.set_title("MNIST, Nz = 3: three bounds (error bars: 2 s.e.)")
    left.legend(fontsize=8)
    gaps = [("amortization_gap", "amortization gap: optimized - amortized ELBO"),
            ("approximation_gap", "approximation gap: log p(x) - optimized ELBO")]
    paired = all(key in means[s]["se"] for key, _ in gaps for s in sets)     # recorded since the 300-image run
    for i, (key, label) in enumerate(gaps):
        right.bar(np.arange(2) + (i - 0.5) * 0.35, [means[s]["mean"][key] for s in sets], 0.35,
                  yerr=[2 * means[s]["se"][key] for s in sets] if paired else None, capsize=4, label=label)
    right.set_xticks([0, 1], ["first training images", "first test images"])
    right.set_ylabel("nats per image")
    right.set_title("The two gaps" + (" (error bars: 2 paired s.e.)" if paired else ""))
    right.legend(fontsize=8, loc="upper left")
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
