"""Figures of a trained VAE and of its training history.

Every function draws on a fresh ``matplotlib.figure.Figure`` and returns it;
nothing here touches pyplot's global state or chooses a backend.  So the
same functions show inline in Jupyter (a returned Figure displays itself)
and are written to disk by the command line with :func:`save_figure`.
They only read the model and the data, never change them.

Units: losses in nats per example; z in the latent space's own units (the
prior p(z) = N(0, I) has standard deviation 1 along every axis).
"""
import io
import os
from statistics import NormalDist

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .errors import InputError
from .fileio import atomic_write

# nats per example: the unit of every loss the package reports
NATS = "nats per example"

# The lectures' matplotlib settings (each lecture applies them: plt.rcParams.update(LECTURE_RC)).
# Figures are read from the back of a room, so every text is at least 10 pt
# (tests/test_book.py measures it): the smallest relative size the lectures and
# these functions use is "small", 0.833 x font.size, which is 10.4 pt at 12.5.
LECTURE_RC = {"font.size": 12.5}


def save_figure(fig, path, dpi=110):
    """Write ``fig`` as a PNG to ``path`` atomically (no half-written file); returns the path."""
    if not isinstance(fig, Figure):
        raise InputError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write(path, buf.getvalue())
    return os.fspath(path)


def image_grid(images, image_shape, n_cols):
    """Tile images (N, h*w) into one (rows*h + gaps, n_cols*w + gaps) array, 1-pixel white gaps."""
    images = np.asarray(images)
    try:
        h, w = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise InputError(f"image_shape: expected (height, width), got {image_shape!r}") from None
    if images.ndim != 2 or images.shape[1] != h * w:
        raise InputError(f"image_shape: {h} x {w} = {h * w} pixels, but the images have shape {images.shape}")
    n_rows = int(np.ceil(len(images) / n_cols))
    grid = np.ones((n_rows * (h + 1) - 1, n_cols * (w + 1) - 1))
    for i, img in enumerate(images):
        r, c = divmod(i, n_cols)
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = np.clip(img.reshape(h, w), 0, 1)
    return grid


def _show_grid(ax, grid, title):
    """Grey-level images in [0, 1] (white = 1) without axes."""
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.set_axis_off()


# ---- the history ---------------------------------------------------------------

def _column(history, key):
    """The history's values of ``key`` as floats (NaN where None); InputError if a row lacks it."""
    values = []
    for i, row in enumerate(history):
        if not isinstance(row, dict) or key not in row:
            have = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise InputError(f"history[{i}]: expected a dict with a key {key!r}, got {have}")
        try:
            values.append(np.nan if row[key] is None else float(row[key]))
        except (TypeError, ValueError):
            raise InputError(f"history[{i}][{key!r}]: expected a number or None, got {row[key]!r}") from None
    return np.array(values)


def _focus(ax, series):
    """Fit the y-axis to the curves after their first few epochs, when an early value would squash them.

    series: list of 1-D arrays (NaN allowed).  The first epochs of a run often
    sit far above the rest (Frey Face: +330 nats, then -800); they are left
    off the top, and the returned x-axis label says so (None: nothing cut).
    """
    values = np.array([v for v in series if not np.all(np.isnan(v))])
    if values.size == 0 or values.shape[1] < 10:
        return None
    skip = max(1, values.shape[1] // 20)
    lo, hi = np.nanmin(values), np.nanmax(values[:, skip:])
    span = max(hi - lo, 1e-12)
    if np.nanmax(values) > hi + span:                # the early values would take most of the panel
        ax.set_ylim(lo - 0.05 * span, hi + 0.15 * span)
        return "epoch (epoch 1 reaches above the top)" if skip == 1 else f"epoch (epochs 1-{skip} reach above the top)"
    return None


def learning_curves(history):
    """Three panels against the epoch, all in nats per example.

    Left: the training objective that was minimised (beta-weighted; drawn
    only when beta != 1 at some epoch, else it is the -ELBO), the training
    -ELBO at beta = 1 and the test -ELBO; when beta changes during training
    (KL warm-up) it is drawn on a second axis.  Middle and right: the two
    terms of the -ELBO, each on its own scale: the reconstruction term
    -E_q log p(x|z) and KL(q(z|x) || p(z)), train and test.

    history : the list of dict rows of ``Trainer.run`` (keys epoch, beta,
              train_objective, train_neg_elbo, train_recon, train_kl,
              test_neg_elbo, test_recon, test_kl; test values may be None).
    """
    if not isinstance(history, (list, tuple)) or len(history) == 0:
        raise InputError("history: expected a non-empty list of epoch rows")
    epoch = _column(history, "epoch")
    beta = _column(history, "beta")
    style = dict(marker="o", markersize=3) if len(history) <= 30 else {}
    fig = Figure(figsize=(15, 4), layout="constrained")
    ax_bound, ax_recon, ax_kl = fig.subplots(1, 3)

    objective, neg_elbo = _column(history, "train_objective"), _column(history, "train_neg_elbo")
    test = _column(history, "test_neg_elbo")
    ax_bound.plot(epoch, neg_elbo, color="C0", label="train -ELBO (beta = 1)", **style)
    if np.any(beta != 1):                     # at beta = 1 the objective is the -ELBO itself
        ax_bound.plot(epoch, objective, color="C0", linestyle="--",
                      label="train objective (beta-weighted, minimised)", **style)
    if not np.all(np.isnan(test)):
        ax_bound.plot(epoch, test, color="C1", label="test -ELBO (beta = 1)", **style)
    xlabels = {ax_bound: _focus(ax_bound, [neg_elbo, objective, test])}
    ax_bound.set_title("Loss: -ELBO = reconstruction + KL")
    ax_bound.set_ylabel(f"-ELBO, {NATS}")
    if np.ptp(beta) > 0:
        ax_beta = ax_bound.twinx()
        ax_beta.plot(epoch, beta, color="grey", linestyle=":", label="beta (KL weight)")
        ax_beta.set_ylabel("beta (KL weight, no unit)")
        ax_beta.set_ylim(0, 1.6 * max(1.0, beta.max()))     # beta stays below the legend's corner
        lines = ax_bound.get_lines() + ax_beta.get_lines()
        # the legend goes on the twin axis, which is drawn last, so no line crosses it
        ax_beta.legend(lines, [ln.get_label() for ln in lines], fontsize="small", loc="upper right", framealpha=0.9)
    else:
        ax_bound.legend(fontsize="small", title=f"beta = {beta[0]:g}")

    for ax, key, title, label in ((ax_recon, "recon", "Reconstruction term", "reconstruction -E_q log p(x|z)"),
                                  (ax_kl, "kl", "KL term", "KL(q(z|x) || p(z))")):
        curves = []
        for split, color in (("train", "C0"), ("test", "C1")):
            values = _column(history, f"{split}_{key}")
            if not np.all(np.isnan(values)):
                ax.plot(epoch, values, color=color, label=f"{split} {label}", **style)
                curves.append(values)
        xlabels[ax] = _focus(ax, curves)
        ax.set_title(title)
        ax.set_ylabel(NATS)
        ax.legend(fontsize="small")
    for ax in (ax_bound, ax_recon, ax_kl):
        ax.set_xlabel(xlabels[ax] or "epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    return fig


# ---- images ----------------------------------------------------------------------

def reconstructions(model, x, image_shape, n=10):
    """Images (top row) over the mean of p(x|z) at z = mu(x) (bottom row); x (N, D), first n used."""
    x = model.check_x(x)[:n]
    recon = model.reconstruct(x)
    fig = Figure(figsize=(max(4.0, 0.8 * len(x)), 2.2), layout="constrained")
    _show_grid(fig.subplots(), image_grid(np.concatenate([x, recon]), image_shape, len(x)),
               "images (top) and reconstructions at z = mu(x) (bottom)")
    return fig


def prior_samples(model, image_shape, rng, n=64):
    """Means of p(x|z) for n draws z ~ p(z) (N(0, I), or the model's learned prior) from ``rng``, in a square-ish grid."""
    fig = Figure(figsize=(6, 6), layout="constrained")
    prior = "N(0, I)" if not model.prior.params else f"the learned {type(model.prior).__name__}"
    _show_grid(fig.subplots(), image_grid(model.sample(n, rng), image_shape, int(np.ceil(np.sqrt(n)))),
               f"{n} samples: mean of p(x|z), z ~ {prior}")
    return fig


# ---- the latent space ---------------------------------------------------------------

def _principal_axes(mu):
    """mu (N, Z) centred and projected on its 2 principal axes; returns (N, 2) and variance fractions."""
    centred = mu - mu.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    share = s ** 2 / max(float(np.sum(s ** 2)), 1e-300)
    return centred @ vt[:2].T, share[:2]


def latent_scatter(model, x, labels=None, class_names=None):
    """Posterior means mu(x) of the examples x (N, D), one dot each, coloured by label.

    Z = 1: mu_1 against the label; Z = 2: (mu_1, mu_2) directly; Z > 2: mu
    projected on its first two principal axes (the axis labels say how
    much of mu's variance each carries).  labels (N,) ints or None;
    class_names: list of names indexed by label, or None (the numbers are shown).
    """
    mu, _ = model.encode(model.check_x(x))
    mu = mu.astype(np.float64)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(mu),) or not np.issubdtype(labels.dtype, np.integer):
            raise InputError(f"labels: expected {len(mu)} integers, got shape {labels.shape}, dtype {labels.dtype}")
        if class_names is not None and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise InputError(f"class_names: expected a name for every label 0..{labels.max()}, "
                             f"got {len(class_names)} names")
    fig = Figure(figsize=(7, 5.5), layout="constrained")
    ax = fig.subplots()
    if model.z_dim == 1:
        jitter = np.random.default_rng(0).uniform(-0.2, 0.2, len(mu))   # fixed seed: the same picture every time
        coords = np.stack([mu[:, 0], (labels if labels is not None else np.zeros(len(mu))) + jitter], axis=1)
        xlabel, ylabel = "mu_1 (posterior mean of z_1)", "label (jittered)"
    elif model.z_dim == 2:
        coords = mu
        xlabel, ylabel = "mu_1 (posterior mean of z_1)", "mu_2 (posterior mean of z_2)"
    else:
        coords, share = _principal_axes(mu)
        xlabel = f"principal axis 1 of mu ({100 * share[0]:.0f}% of its variance)"
        ylabel = f"principal axis 2 of mu ({100 * share[1]:.0f}% of its variance)"
    if labels is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=6, color="C0")
    else:
        classes = np.unique(labels)
        cmap = "tab10" if len(classes) <= 10 else "tab20"
        palette = colormaps[cmap]             # a legend, not a colour bar: labels are categories
        for i, c in enumerate(classes):
            name = class_names[int(c)] if class_names is not None else str(c)
            keep = labels == c
            ax.scatter(coords[keep, 0], coords[keep, 1], s=6, color=palette(i % palette.N), label=name)
        ax.legend(title="label", fontsize="small", markerscale=2.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"Posterior means of {len(mu)} examples (Z = {model.z_dim})")
    ax.grid(alpha=0.3)
    return fig


def manifold_z(n=15, lo=0.05, hi=0.95):
    """The grid values of each latent axis: N(0, 1) quantiles at n evenly spaced levels in [lo, hi]."""
    return np.array([NormalDist().inv_cdf(p) for p in np.linspace(lo, hi, n)])


def latent_manifold(model, image_shape, n=15):
    """For Z = 2: the mean of p(x|z) on an n x n grid of z, with the z values on the axes.

    The grid takes the N(0, 1) quantiles 0.05 .. 0.95 along each axis, so it
    covers where the prior puts 90% of its mass per axis; z_2 grows upwards.
    """
    if model.z_dim != 2:
        raise InputError(f"model: the manifold grid needs a 2-D latent space, this model has Z = {model.z_dim}")
    q = manifold_z(n)
    z = np.array([[z1, z2] for z2 in q[::-1] for z1 in q], dtype=model.dtype)   # top row = largest z_2
    grid = image_grid(model.mean_image(model.decode(z)), image_shape, n)
    h, w = image_shape
    aspect = grid.shape[0] / grid.shape[1]                       # tall images (faces) make a tall grid
    fig = Figure(figsize=(7.5 / max(1.0, aspect), 7.5 * min(1.0, aspect) + 0.6), layout="constrained")
    ax = fig.subplots()
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    centres_x = np.arange(n) * (w + 1) + (w - 1) / 2
    centres_y = np.arange(n) * (h + 1) + (h - 1) / 2
    every = int(np.ceil(n / 8))                                  # at most 8 labels per axis, so they never overlap
    label = lambda v: f"{round(float(v), 2) + 0.0:.2f}"       # + 0.0: the middle of the grid is 0.00, not -0.00
    ax.set_xticks(centres_x[::every], [label(v) for v in q[::every]])
    ax.set_yticks(centres_y[::every], [label(v) for v in q[::-1][::every]])
    ax.set_xlabel("z_1")
    ax.set_ylabel("z_2")
    ax.set_title("Decoded means of p(x|z) on a grid of z (N(0, 1) quantiles 5%..95%)")
    return fig


def interpolation(model, x_start, x_end, image_shape, n_steps=10):
    """Decoded means along the straight line between the posterior means of pairs of images.

    x_start, x_end : (P, D) pairs of images (or (D,) for one pair).
    Row p shows x_start[p], the decoded z_t = (1 - t) mu(x_start) + t mu(x_end)
    for n_steps values of t in [0, 1], then x_end[p].
    """
    x_start, x_end = (np.atleast_2d(np.asarray(a)) for a in (x_start, x_end))
    x_start, x_end = model.check_x(x_start, "x_start"), model.check_x(x_end, "x_end")
    if x_start.shape != x_end.shape:
        raise InputError(f"x_start, x_end: expected the same shape, got {x_start.shape} and {x_end.shape}")
    if int(n_steps) < 2:
        raise InputError(f"n_steps: expected an integer >= 2, got {n_steps!r}")
    t = np.linspace(0.0, 1.0, int(n_steps))
    mu_a, _ = model.encode(x_start)
    mu_b, _ = model.encode(x_end)
    z = (1 - t[None, :, None]) * mu_a[:, None, :] + t[None, :, None] * mu_b[:, None, :]   # (P, T, Z)
    decoded = model.mean_image(model.decode(z.reshape(-1, model.z_dim).astype(model.dtype)))
    rows = [np.concatenate([x_start[p:p + 1], decoded[p * len(t):(p + 1) * len(t)], x_end[p:p + 1]])
            for p in range(len(x_start))]
    cols = len(t) + 2
    grid = image_grid(np.concatenate(rows), image_shape, cols)
    h, w = image_shape
    fig = Figure(figsize=(0.75 * cols + 1, 0.8 * len(x_start) + 1.3), layout="constrained")
    ax = fig.subplots()
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    centres = np.arange(cols) * (w + 1) + (w - 1) / 2
    ax.set_xticks(centres, ["start"] + [f"{v:.2g}" for v in t] + ["end"])
    ax.set_yticks([])
    ax.set_xlabel("t in z_t = (1 - t) mu(start) + t mu(end)   (outer columns: the two images themselves)")
    ax.set_title("Interpolation between posterior means, decoded")
    return fig
