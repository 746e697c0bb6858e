"""numpyvae.plots: figures drawn on explicit Figures, showing the numbers they claim to show."""
import io
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

import numpyvae
from numpyvae import plots
from numpyvae.errors import InputError

SHAPE = (4, 4)


def _model(z_dim=2, seed=0):
    return numpyvae.VAE(16, hidden=[8], z_dim=z_dim, activation="tanh", dtype=np.float64, seed=seed)


def _x(n=30, seed=1):
    return np.random.default_rng(seed).uniform(size=(n, 16))


def _history(betas, test=True):
    """Hand-made rows with the Trainer's keys: -ELBO = recon + KL, objective = recon + beta KL."""
    rows = []
    for i, beta in enumerate(betas):
        recon, kl = 50.0 - 2 * i, 3.0 + i
        row = dict(epoch=i + 1, step=10 * (i + 1), beta=beta, seconds=0.1,
                   train_objective=recon + beta * kl, train_neg_elbo=recon + kl, train_recon=recon, train_kl=kl,
                   test_neg_elbo=None, test_recon=None, test_kl=None)
        if test:
            row.update(test_neg_elbo=recon + kl + 4, test_recon=recon + 3, test_kl=kl + 1)
        rows.append(row)
    return rows


def _drawn(fig):
    """Render once (ticks are placed at draw time) and return the figure."""
    fig.savefig(io.BytesIO(), format="png")
    return fig


def _labelled(ax):
    return ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def _assert_close(what, ours, expected, atol=1e-12):
    ours, expected = np.asarray(ours, dtype=float), np.asarray(expected, dtype=float)
    assert ours.shape == expected.shape, f"{what}: shape ours {ours.shape} vs expected {expected.shape}"
    bad = np.argwhere(~np.isclose(ours, expected, atol=atol, rtol=1e-9))
    assert len(bad) == 0, f"{what}: at index {tuple(bad[0])} ours {ours[tuple(bad[0])]} vs expected {expected[tuple(bad[0])]}"


def test_import_and_drawing_choose_no_backend_and_never_touch_pyplot():
    code = (
        "import sys, matplotlib\n"
        "raw = lambda: dict.__getitem__(matplotlib.rcParams, 'backend')  # read without resolving it\n"
        "before = raw()\n"
        "import numpy as np, numpyvae\n"
        "from numpyvae import plots\n"
        "m = numpyvae.VAE(16, hidden=[8], z_dim=2, seed=0)\n"
        "x = np.random.default_rng(0).uniform(size=(20, 16)).astype(np.float32)\n"
        "plots.reconstructions(m, x, (4, 4)); plots.prior_samples(m, (4, 4), np.random.default_rng(0), n=4)\n"
        "plots.latent_scatter(m, x); plots.latent_manifold(m, (4, 4), n=3); plots.interpolation(m, x[0], x[1], (4, 4))\n"
        "after = raw()\n"
        "print(before, after, 'matplotlib.pyplot' in sys.modules)\n"
        "assert before == after, (before, after)\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "MPLBACKEND"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, f"backend changed or pyplot imported: {done.stdout} {done.stderr}"


def test_learning_curves_show_objective_elbo_and_terms_with_integer_epoch_ticks():
    history = _history([0.2, 0.6, 1.0])
    fig = _drawn(plots.learning_curves(history))
    assert isinstance(fig, Figure)
    ax_bound, ax_recon, ax_kl = fig.axes[:3]
    for ax in (ax_bound, ax_recon, ax_kl):
        assert _labelled(ax) and ax.get_xlabel() == "epoch", (ax.get_title(), ax.get_xlabel(), ax.get_ylabel())
        assert "nats per example" in ax.get_ylabel(), ax.get_ylabel()
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert all(float(t).is_integer() for t in ticks), f"epoch ticks not integers: {ticks}"
    bound = _lines(ax_bound)
    _assert_close("train -ELBO", bound["train -ELBO (beta = 1)"].get_ydata(), [r["train_neg_elbo"] for r in history])
    _assert_close("objective", bound["train objective (beta-weighted, minimised)"].get_ydata(),
                  [r["train_objective"] for r in history])
    _assert_close("test -ELBO", bound["test -ELBO (beta = 1)"].get_ydata(), [r["test_neg_elbo"] for r in history])
    beta_axis = fig.axes[3]                                  # warm-up: beta on a second axis
    _assert_close("beta", _lines(beta_axis)["beta (KL weight)"].get_ydata(), [0.2, 0.6, 1.0])
    legend = [t.get_text() for t in beta_axis.get_legend().get_texts()]   # one legend names all four lines
    assert legend == ["train -ELBO (beta = 1)", "train objective (beta-weighted, minimised)",
                      "test -ELBO (beta = 1)", "beta (KL weight)"], legend
    for split in ("train", "test"):
        _assert_close(f"{split} recon", _lines(ax_recon)[f"{split} reconstruction -E_q log p(x|z)"].get_ydata(),
                      [r[f"{split}_recon"] for r in history])
        _assert_close(f"{split} kl", _lines(ax_kl)[f"{split} KL(q(z|x) || p(z))"].get_ydata(),
                      [r[f"{split}_kl"] for r in history])


def test_learning_curves_at_beta_one_without_test_set_draw_no_duplicate_objective():
    history = _history([1.0, 1.0], test=False)
    history[1]["train_objective"] *= 1 + 1e-7      # float32 sums: the objective and the -ELBO differ in the last digits
    fig = plots.learning_curves(history)
    assert len(fig.axes) == 3, f"no beta axis expected when beta is constant, got {len(fig.axes)} axes"
    assert set(_lines(fig.axes[0])) == {"train -ELBO (beta = 1)"}, set(_lines(fig.axes[0]))
    assert set(_lines(fig.axes[1])) == {"train reconstruction -E_q log p(x|z)"}, set(_lines(fig.axes[1]))
    assert set(_lines(fig.axes[2])) == {"train KL(q(z|x) || p(z))"}, set(_lines(fig.axes[2]))


def test_learning_curves_leave_a_far_first_epoch_off_the_top():
    history = _history([1.0] * 40)
    for i, row in enumerate(history):                # Frey-like: +330 nats at epoch 1, then about -800
        row["train_neg_elbo"] = row["train_objective"] = 330.0 if i == 0 else -800.0 - i
        row["test_neg_elbo"] = -65.0 if i == 0 else -790.0 - i
    ax = _drawn(plots.learning_curves(history)).axes[0]
    low, high = ax.get_ylim()
    late = [r[key] for r in history[2:] for key in ("train_neg_elbo", "test_neg_elbo")]
    assert high < 330 and low <= min(late) and high >= max(late), f"ylim {low, high} vs late values {min(late), max(late)}"
    assert "above the top" in ax.get_xlabel(), f"no note that the first epochs are cut off: {ax.get_xlabel()!r}"
    short = _drawn(plots.learning_curves(_history([1.0] * 3))).axes[0]   # no cut when nothing is far off
    assert short.get_xlabel() == "epoch", short.get_xlabel()


@pytest.mark.parametrize("bad", [[], [{"epoch": 1}], "history", [5], [dict(_history([1.0])[0], train_kl="a lot")]])
def test_learning_curves_refuse_rows_without_the_keys(bad):
    with pytest.raises(InputError, match="history"):
        plots.learning_curves(bad)


def test_reconstructions_show_images_over_decoded_posterior_means():
    model, x = _model(), _x(5)
    fig = plots.reconstructions(model, x, SHAPE, n=5)
    ax = fig.axes[0]
    expected = plots.image_grid(np.concatenate([x, model.reconstruct(x)]), SHAPE, 5)
    _assert_close("reconstruction grid", ax.get_images()[0].get_array(), expected)
    assert ax.get_title()


def test_prior_samples_use_the_given_generator():
    model = _model()
    fig = plots.prior_samples(model, SHAPE, np.random.default_rng(3), n=9)
    expected = plots.image_grid(model.sample(9, np.random.default_rng(3)), SHAPE, 3)
    _assert_close("sample grid", fig.axes[0].get_images()[0].get_array(), expected)
    assert "N(0, I)" in fig.axes[0].get_title()


def test_latent_scatter_2d_plots_mu_with_class_names():
    model, x = _model(), _x(40)
    labels = np.arange(40) % 3
    fig = plots.latent_scatter(model, x, labels, class_names=["zero", "one", "two"])
    ax = fig.axes[0]
    assert _labelled(ax) and "mu_1" in ax.get_xlabel() and "mu_2" in ax.get_ylabel()
    mu, _ = model.encode(x)
    for c, coll in enumerate(ax.collections):
        _assert_close(f"class {c} points", coll.get_offsets(), mu[labels == c])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["zero", "one", "two"]


def test_latent_scatter_above_2d_uses_principal_axes():
    model, x = _model(z_dim=5), _x(60)
    fig = plots.latent_scatter(model, x)
    ax = fig.axes[0]
    assert "principal axis 1" in ax.get_xlabel() and "principal axis 2" in ax.get_ylabel()
    pts = np.asarray(ax.collections[0].get_offsets())
    mu, _ = model.encode(x)
    eig = np.sort(np.linalg.eigvalsh(np.cov(mu.T)))[::-1]   # the projection's variances are the top eigenvalues
    _assert_close("variance along the principal axes", np.var(pts, axis=0, ddof=1), eig[:2], atol=1e-10)
    _assert_close("mean of the projection", pts.mean(axis=0), [0, 0], atol=1e-12)


def test_latent_scatter_refuses_labels_without_names():
    with pytest.raises(InputError, match="class_names"):
        plots.latent_scatter(_model(), _x(4), np.array([0, 1, 2, 3]), class_names=["a", "b"])


def test_manifold_tiles_are_decoded_at_the_z_on_the_axes():
    model, n = _model(), 5
    fig = _drawn(plots.latent_manifold(model, SHAPE, n=n))
    ax = fig.axes[0]
    q = plots.manifold_z(n)
    assert ax.get_xlabel() == "z_1" and ax.get_ylabel() == "z_2" and ax.get_title()
    shown = [float(t.get_text()) for t in ax.get_xticklabels()]
    _assert_close("z_1 tick labels", shown, q, atol=0.005)
    _assert_close("z_2 tick labels", [float(t.get_text()) for t in ax.get_yticklabels()], q[::-1], atol=0.005)
    wide = _drawn(plots.latent_manifold(model, SHAPE, n=15)).axes[0]          # its middle z is -1e-17
    texts = [t.get_text() for t in wide.get_xticklabels() + wide.get_yticklabels()]
    assert "-0.00" not in texts, f"a tick reads -0.00: {texts}"
    assert len(wide.get_xticklabels()) <= 8, f"{len(wide.get_xticklabels())} z_1 labels on 15 tiles: they overlap"
    grid = ax.get_images()[0].get_array()
    top_left = model.mean_image(model.decode(np.array([[q[0], q[-1]]]))).reshape(SHAPE)     # small z_1, large z_2
    bottom_right = model.mean_image(model.decode(np.array([[q[-1], q[0]]]))).reshape(SHAPE)
    _assert_close("top-left tile", grid[:4, :4], top_left)
    _assert_close("bottom-right tile", grid[-4:, -4:], bottom_right)


def test_manifold_refuses_a_latent_space_that_is_not_2d():
    with pytest.raises(InputError, match="Z = 3"):
        plots.latent_manifold(_model(z_dim=3), SHAPE)


def test_interpolation_decodes_the_straight_line_between_posterior_means():
    model, x = _model(), _x(4)
    fig = plots.interpolation(model, x[:2], x[2:], SHAPE, n_steps=5)
    grid = fig.axes[0].get_images()[0].get_array()
    tile = lambda r, c: grid[r * 5:r * 5 + 4, c * 5:c * 5 + 4]
    mu, _ = model.encode(x)
    for p in range(2):
        _assert_close(f"row {p} start image", tile(p, 0), x[p].reshape(SHAPE))
        _assert_close(f"row {p} end image", tile(p, 6), x[2 + p].reshape(SHAPE))
        for col, t in ((1, 0.0), (3, 0.5), (5, 1.0)):
            z = (1 - t) * mu[p] + t * mu[2 + p]
            _assert_close(f"row {p} t={t}", tile(p, col), model.mean_image(model.decode(z[None])).reshape(SHAPE))
    assert fig.axes[0].get_title() and "t" in fig.axes[0].get_xlabel()


def test_save_figure_writes_a_png(tmp_path):
    path = plots.save_figure(plots.prior_samples(_model(), SHAPE, np.random.default_rng(0), n=4), tmp_path / "s.png")
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    with pytest.raises(InputError, match="fig"):
        plots.save_figure("not a figure", tmp_path / "t.png")


def test_latent_scatter_1d_puts_mu_against_the_label():
    model, x = _model(z_dim=1), _x(30)
    labels = np.arange(30) % 2
    ax = plots.latent_scatter(model, x, labels).axes[0]
    mu, _ = model.encode(x)
    for c, coll in enumerate(ax.collections):
        pts = np.asarray(coll.get_offsets())
        _assert_close(f"class {c}: mu_1", pts[:, 0], mu[labels == c, 0])
        assert np.all(np.abs(pts[:, 1] - c) <= 0.2), f"class {c}: heights {pts[:, 1]} not within 0.2 of {c}"
    assert "mu_1" in ax.get_xlabel() and "label" in ax.get_ylabel()


@pytest.mark.parametrize("shape", [(5, 5), (4,), "4x4", None])
def test_an_image_shape_that_does_not_fit_the_pixels_is_refused(shape):
    with pytest.raises(InputError, match="image_shape"):
        plots.reconstructions(_model(), _x(3), shape)
