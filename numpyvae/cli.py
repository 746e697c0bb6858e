"""The command line: ``python -m numpyvae train | evaluate | sample``.

    python -m numpyvae train                      # 8x8 digits, offline, < 1 minute
    python -m numpyvae train --dataset mnist --epochs 10
    python -m numpyvae train --resume runs/digits/checkpoint.npz
    python -m numpyvae evaluate runs/mnist/checkpoint.npz --dataset mnist
    python -m numpyvae sample runs/digits/checkpoint.npz --out samples.png
"""
import argparse
import os
import sys
import time

import numpy as np

from . import checkpoint as ckpt
from .errors import NumpyVAEError
from .estimators import ESTIMATORS
from .layers import ACTIVATIONS
from .optim import OPTIMIZERS
from .train import BINARIZE, Trainer, write_history
from .vae import GAUSSIAN_MEANS, LIKELIHOODS, VAE

# Defaults per dataset: hidden sizes, z_dim, likelihood (and the Gaussian
# decoder's mean), epochs, batch_size.
DEFAULTS = {
    "digits": dict(hidden=[128], z_dim=2, likelihood="bernoulli", epochs=150, batch_size=32),
    "mnist": dict(hidden=[400], z_dim=20, likelihood="bernoulli", epochs=10, batch_size=128),
    "fashion-mnist": dict(hidden=[400], z_dim=20, likelihood="bernoulli", epochs=10, batch_size=128),
    "binarized-mnist": dict(hidden=[400], z_dim=20, likelihood="bernoulli", epochs=10, batch_size=128),
    "frey-face": dict(hidden=[200], z_dim=2, likelihood="gaussian", gaussian_mean="sigmoid", epochs=300,
                      batch_size=100),
}


def build_parser():
    p = argparse.ArgumentParser(prog="numpyvae", description="A Variational Autoencoder in NumPy.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a VAE and write history, checkpoint and plots")
    t.add_argument("--dataset", choices=sorted(DEFAULTS), default="digits")
    t.add_argument("--data-dir", help="folder holding the dataset files (else $NUMPYVAE_DATA, cache, download)")
    t.add_argument("--hidden", type=int, nargs="+", help="hidden layer sizes (default per dataset)")
    t.add_argument("--z-dim", type=int, help="latent dimension")
    t.add_argument("--likelihood", choices=LIKELIHOODS)
    t.add_argument("--gaussian-mean", choices=GAUSSIAN_MEANS,
                   help="the Gaussian decoder's mean: raw output, or squashed into (0, 1) (default per dataset)")
    t.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    t.add_argument("--init", choices=["glorot", "normal"], default="glorot")
    t.add_argument("--estimator", choices=sorted(ESTIMATORS), default="analytic")
    t.add_argument("-k", type=int, default=1, help="samples per example")
    t.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    t.add_argument("--lr", type=float, help="learning rate (default: the optimizer's)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--binarize", choices=BINARIZE, default="none")
    t.add_argument("--beta", type=float, default=1.0, help="weight of the KL term")
    t.add_argument("--warmup-epochs", type=float, default=0.0, help="epochs of linear KL warm-up")
    t.add_argument("--test-k", type=int, default=1, help="samples for the test bound (>1: IWAE bound)")
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", help="output folder (default runs/DATASET)")
    t.add_argument("--resume", metavar="CHECKPOINT", help="continue the run saved in CHECKPOINT")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (it is drawn only on a terminal anyway)")
    t.add_argument("--no-plots", action="store_true")

    e = sub.add_parser("evaluate", help="print the test ELBO of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", choices=sorted(DEFAULTS), default=None, help="default: the one it was trained on")
    e.add_argument("--data-dir")
    e.add_argument("-k", type=int, default=1, help="samples per example (>1 also prints the IWAE bound)")
    e.add_argument("--log-marginal", type=int, default=0, metavar="K",
                   help="also estimate log p(x) by importance sampling with K samples")
    e.add_argument("--binarize", choices=BINARIZE, default=None)
    e.add_argument("--seed", type=int, default=0)

    s = sub.add_parser("sample", help="write a grid of samples from the prior")
    s.add_argument("checkpoint")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--out", default="samples.png")
    s.add_argument("--seed", type=int, default=0)
    return p


def _load_data(name, data_dir, progress=True):
    from .data import load
    return load(name, data_dir, progress=progress)


def cmd_train(args):
    if args.resume:
        model_config, config, meta = ckpt.trainer_config(args.resume)
        model = ckpt.build_model(model_config, args.resume)
        data = _load_data(meta["dataset"], args.data_dir or meta.get("data_dir"), not args.no_progress)
        trainer = Trainer(model, data.x_train, data.x_test, progress=False if args.no_progress else None, **config)
        ckpt.load_trainer_state(args.resume, trainer)
        epochs = args.epochs or meta["epochs"]
        out = args.out or os.path.dirname(os.path.abspath(args.resume))
        print(f"resuming {args.resume} at epoch {trainer.epoch}, step {trainer.step}", file=sys.stderr)
    else:
        d = DEFAULTS[args.dataset]
        data = _load_data(args.dataset, args.data_dir, not args.no_progress)
        likelihood = args.likelihood or d["likelihood"]
        gaussian_mean = args.gaussian_mean or (d.get("gaussian_mean", "identity") if likelihood == "gaussian" else "identity")
        model = VAE(data.x_dim, args.hidden or d["hidden"], args.z_dim or d["z_dim"],
                    likelihood=likelihood, activation=args.activation, init=args.init,
                    dtype=np.dtype(args.dtype).type, seed=args.seed, gaussian_mean=gaussian_mean)
        trainer = Trainer(model, data.x_train, data.x_test, optimizer=args.optimizer, lr=args.lr,
                          batch_size=args.batch_size or d["batch_size"], estimator=args.estimator,
                          k=args.k, binarize=args.binarize, beta=args.beta, warmup_epochs=args.warmup_epochs,
                          test_k=args.test_k, seed=args.seed, progress=False if args.no_progress else None)
        epochs = args.epochs if args.epochs is not None else d["epochs"]
        out = args.out or os.path.join("runs", args.dataset)
    os.makedirs(out, exist_ok=True)
    run_info = {"dataset": data.name, "data_dir": args.data_dir, "epochs": epochs,
                "image_shape": list(data.image_shape)}
    path = os.path.join(out, "checkpoint.npz")
    t0 = time.perf_counter()
    try:
        trainer.run(epochs, checkpoint=path, run_info=run_info)
    finally:
        if trainer.history:
            write_history(trainer.history, os.path.join(out, "history.csv"))
            write_history(trainer.history, os.path.join(out, "history.json"))
    seconds = time.perf_counter() - t0
    files = ["checkpoint.npz", "history.csv", "history.json"]
    if not args.no_plots:
        files += make_plots(model, trainer, data, out, args.seed)
    last = trainer.history[-1] if trainer.history else {}
    summary = f"trained {trainer.epoch} epochs ({trainer.step} steps) in {seconds:.1f} s"
    if last:
        summary += f": train -ELBO {last['train_neg_elbo']:.2f}"
        if last["beta"] != 1.0 or trainer.estimator == "iwae":
            summary += f" (objective {last['train_objective']:.2f})"
        if last.get("test_neg_elbo") is not None:
            summary += f", test -ELBO {last['test_neg_elbo']:.2f}"
        summary += " nats per example"
    print(summary)
    print(f"wrote {', '.join(files)} to {out}")
    return 0


def make_plots(model, trainer, data, out, seed):
    """Draw the run's figures into ``out``; returns the file names written."""
    from . import plots
    rng = np.random.default_rng(seed)
    on_test = trainer.x_test_used is not None
    x = trainer.x_test_used if on_test else trainer.x_train
    labels = data.y_test if on_test else data.y_train
    class_names = getattr(data, "class_names", None)
    figures = {
        "learning_curves.png": lambda: plots.learning_curves(trainer.history),
        "reconstructions.png": lambda: plots.reconstructions(model, x, data.image_shape),
        "samples.png": lambda: plots.prior_samples(model, data.image_shape, rng),
        "latent.png": lambda: plots.latent_scatter(model, x[:2000], None if labels is None else labels[:2000],
                                                   class_names),
        "interpolation.png": lambda: plots.interpolation(model, x[0:4], x[4:8], data.image_shape),
    }
    if model.z_dim == 2:
        figures["manifold.png"] = lambda: plots.latent_manifold(model, data.image_shape)
    if not trainer.history:
        del figures["learning_curves.png"]
    for name, draw in figures.items():
        plots.save_figure(draw(), os.path.join(out, name))
    return list(figures)


def _meta(path):
    return ckpt.run_info(path)


def cmd_evaluate(args):
    from .evaluate import active_units, bounds, log_marginal
    from .data import binarize
    model = ckpt.load_model(args.checkpoint)
    meta = _meta(args.checkpoint)
    name = args.dataset or meta.get("dataset")
    if name is None:
        raise NumpyVAEError("--dataset: the checkpoint does not say which dataset it was trained on; name one")
    data = _load_data(name, args.data_dir or meta.get("data_dir"))
    if data.x_dim != model.x_dim:
        raise NumpyVAEError(f"--dataset: {name} has images of {data.x_dim} pixels, the model in "
                            f"{args.checkpoint} was trained on {model.x_dim}; name the dataset it was trained on")
    rng = np.random.default_rng(args.seed)
    x = binarize(model.check_x(data.x_test, "x_test"), args.binarize or "none", np.random.default_rng([args.seed, 1]))
    b = bounds(model, x, rng, k=args.k)
    print(f"{name} test set, {len(x)} images: -ELBO {b['neg_elbo']:.3f} = reconstruction {b['recon']:.3f} "
          f"+ KL {b['kl']:.3f} nats per example (z sampled, k=1)")
    if args.k > 1:
        print(f"IWAE bound, k={args.k}: -log p(x) <= {b['neg_iwae']:.3f} nats per example (a stochastic bound)")
    if args.log_marginal:
        lm = log_marginal(model, x, k=args.log_marginal, rng=rng)
        print(f"importance-sampled estimate of -log p(x), k={args.log_marginal}: {-lm.mean():.3f} nats per example "
              "(a stochastic upper bound on -log p(x), tighter as k grows)")
    active, _ = active_units(model, x)
    print(f"active units (Cov_x(E_q[z_j]) > 1e-2): {active} of {model.z_dim}")
    return 0


def cmd_sample(args):
    from . import plots
    model = ckpt.load_model(args.checkpoint)
    shape = _meta(args.checkpoint).get("image_shape")
    if shape is None:
        side = int(round(np.sqrt(model.x_dim)))
        shape = (side, side) if side * side == model.x_dim else (1, model.x_dim)
    path = plots.save_figure(plots.prior_samples(model, tuple(shape), np.random.default_rng(args.seed), n=args.n),
                             args.out)
    print(f"wrote {args.n} samples to {path}")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample}[args.command](args)
    except NumpyVAEError as exc:
        print(f"numpyvae: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
