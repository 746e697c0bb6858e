"""Figures from a trained model and its history (matplotlib, Agg backend).

Each function draws one figure and saves it as PNG atomically; they only
read the model and the data, never change them.
"""
import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .checkpoint import atomic_write  # noqa: E402
from .layers import sigmoid  # noqa: E402


def _save(fig, path):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return os.fspath(path)


def image_grid(images, image_shape, n_cols):
    """Tile images (N, h*w) into one (rows*h, n_cols*w) array with 1-pixel gaps."""
    h, w = image_shape
    n_rows = int(np.ceil(len(images) / n_cols))
    grid = np.ones((n_rows * (h + 1) - 1, n_cols * (w + 1) - 1))
    for i, img in enumerate(images):
        r, c = divmod(i, n_cols)
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = np.clip(img.reshape(h, w), 0, 1)
    return grid


def _show(ax, grid, title):
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")


def learning_curves(history, path):
    """Train and test loss (-ELBO, nats per example) against the epoch."""
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [r["epoch"] for r in history]
    style = "o-" if len(history) <= 30 else "-"
    ax.plot(epochs, [r["train_loss"] for r in history], style, label="train (-ELBO)")
    test = [r["test_loss"] for r in history]
    if any(t is not None for t in test):
        ax.plot(epochs, [np.nan if t is None else t for t in test], style.replace("o", "s"), label="test (-ELBO, z sampled)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per example")
    ax.set_title("Learning curves")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def reconstructions(model, x, image_shape, path, n=10):
    """Test images (top row) over their reconstructions at z = mu (bottom row)."""
    x = x[:n]
    recon = model.reconstruct(x)
    fig, ax = plt.subplots(figsize=(1.0 * n, 2.4))
    _show(ax, image_grid(np.concatenate([x, recon]), image_shape, len(x)), "test images (top) and reconstructions (bottom)")
    return _save(fig, path)


def prior_samples(model, image_shape, path, rng, n=64):
    """Means of p(x|z) for z drawn from the prior N(0, I)."""
    fig, ax = plt.subplots(figsize=(6, 6))
    _show(ax, image_grid(model.sample(n, rng), image_shape, int(np.ceil(np.sqrt(n)))), "samples from the prior")
    return _save(fig, path)


def latent_manifold(model, image_shape, path, n=15):
    """For Z = 2: decoded means on a grid of z at the N(0, 1) quantiles 0.05..0.95."""
    from statistics import NormalDist
    qs = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)])
    z = np.array([[zx, zy] for zy in qs[::-1] for zx in qs], dtype=model.dtype)
    fig, ax = plt.subplots(figsize=(7, 7))
    _show(ax, image_grid(model.mean_image(model.decode(z)), image_shape, n), "learned 2-D manifold: decoded z on a grid")
    return _save(fig, path)


def latent_scatter(model, x, labels, path):
    """Posterior means mu(x), coloured by label; projected on their 2 principal axes when Z > 2."""
    mu, _ = model.encode(model.check_x(x))
    mu = mu.astype(np.float64)
    if mu.shape[1] > 2:
        centred = mu - mu.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        mu, xlabel, ylabel = centred @ vt[:2].T, "principal axis 1 of mu", "principal axis 2 of mu"
    else:
        xlabel, ylabel = "mu_1", "mu_2"
    fig, ax = plt.subplots(figsize=(6, 5))
    sc = ax.scatter(mu[:, 0], mu[:, 1], c=labels if labels is not None else "C0", cmap="tab10", s=6)
    if labels is not None:
        fig.colorbar(sc, ax=ax, label="label")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title("Posterior means of the test set")
    return _save(fig, path)


def latent_space(model, x, labels, image_shape, path):
    """The manifold grid when Z = 2, otherwise the scatter of posterior means."""
    if model.z_dim == 2:
        return latent_manifold(model, image_shape, path)
    return latent_scatter(model, x, labels, path)
