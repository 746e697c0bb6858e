"""The conditional VAE (numpyvae/cvae.py): gradients, and log p(x | y) against an exact model.

The exact case: a linear-Gaussian CVAE, p(z) = N(0, I),
p(x | z, y) = N(A z + V onehot(y) + b, s2 I), whose marginal
p(x | y) = N(V onehot(y) + b, A A^T + s2 I) and posterior are Gaussian in
closed form.  With A's columns orthogonal the posterior is diagonal, so a
linear encoder can hold it exactly: then the ELBO equals log p(x | y) and
every importance weight is the same, and the importance-sampled estimate is
exact for any k.  With a perturbed encoder the estimate must come within its
standard error of the truth as k grows.
"""
import math

import numpy as np
import pytest

from numpyvae import InputError
from numpyvae.cvae import CVAE, train
from numpyvae.gradcheck import compare, numerical_gradient

D, Y, Z, S2 = 5, 3, 2, 0.3


def linear_gaussian_cvae(seed=0):
    """A CVAE whose decoder is p(x|z,y) = N(A z + V y + b, S2 I) and whose encoder is the exact posterior."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((D, Z)))
    a = np.array([1.5, 0.7])
    A, V, b = Q * a, 2 * rng.standard_normal((D, Y)), rng.standard_normal(D)
    m = CVAE(D, Y, hidden=[], z_dim=Z, likelihood="gaussian", dtype=np.float64)
    dec, enc = m.decoder.linears[0], m.encoder.linears[0]
    dec.W[...] = 0
    dec.W[:Z, :D], dec.W[Z:, :D] = A.T, V.T
    dec.b[:D], dec.b[D:] = b, math.log(S2)
    post_var = 1 / (1 + a ** 2 / S2)                         # (I + A^T A / s2)^-1, diagonal
    M = (post_var[:, None] * A.T) / S2                       # posterior mean = M (x - V y - b)
    enc.W[...] = 0
    enc.W[:D, :Z], enc.W[D:, :Z] = M.T, -(M @ V).T
    enc.b[:Z], enc.b[Z:] = -M @ b, np.log(post_var)
    return m, A, V, b


def exact_log_p_x_given_y(x, y, A, V, b):
    C = A @ A.T + S2 * np.eye(D)
    diff = x - (V[:, y].T + b)
    _, logdet = np.linalg.slogdet(C)
    return -0.5 * (D * math.log(2 * math.pi) + logdet + np.sum(diff * np.linalg.solve(C, diff.T).T, axis=1))


def data(n=6, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, D)) * 2, rng.integers(0, Y, n)


def test_exact_posterior_gives_the_exact_log_p_x_given_y_for_any_k():
    m, A, V, b = linear_gaussian_cvae()
    x, y = data()
    expected = exact_log_p_x_given_y(x, y, A, V, b)
    for k in (1, 7):
        ours = m.log_marginal(x, y, np.random.default_rng(2), k=k, chunk=3)
        np.testing.assert_allclose(ours, expected, rtol=1e-11, err_msg=f"k={k}: ours vs expected log p(x|y)")
    # every sampled log p(x, z|y) - log q(z|x, y) is log p(x|y) itself at the true posterior
    elbo = m.elbo(x, y, np.random.default_rng(3), "mc", k=3)
    np.testing.assert_allclose(elbo, expected, rtol=1e-11, err_msg="sampled ELBO at the true posterior vs log p(x|y)")


def test_importance_sampling_approaches_log_p_x_given_y_with_a_wrong_encoder():
    m, A, V, b = linear_gaussian_cvae()
    enc = m.encoder.linears[0]
    enc.b[:Z] += 0.4                                          # a biased posterior mean,
    enc.b[Z:] += 0.5                                          # and too wide
    x, y = data(n=4)
    expected = exact_log_p_x_given_y(x, y, A, V, b)
    elbo = m.elbo(x, y, np.random.default_rng(4), "analytic", k=4000)      # the ELBO itself, nearly
    assert np.all(elbo < expected - 0.05), f"ELBO {elbo} should sit below log p(x|y) {expected}"
    runs = np.stack([m.log_marginal(x, y, np.random.default_rng(10 + r), k=2000, chunk=500) for r in range(4)])
    ours, se = runs.mean(axis=0), runs.std(axis=0, ddof=1) / 2 + 1e-3
    for i in range(len(x)):
        assert abs(ours[i] - expected[i]) < 4 * se[i] + 0.01, \
            f"example {i}: ours {ours[i]:.4f} vs expected {expected[i]:.4f} (se {se[i]:.4f})"


def test_same_z_under_every_class_moves_the_mean_by_the_label_columns():
    """Style vs content: in the linear model class c adds V[:, c], whatever z is."""
    m, A, V, b = linear_gaussian_cvae()
    z = np.random.default_rng(5).standard_normal((4, Z))
    means = m.decode_every_class(z)                           # (Y, 4, D)
    assert means.shape == (Y, 4, D)
    for c in range(Y):
        expected = z @ A.T + V[:, c] + b
        np.testing.assert_allclose(means[c], expected, rtol=1e-12, err_msg=f"class {c}: ours vs expected A z + V_c + b")


def test_class_conditional_samples_are_decoded_under_their_own_label():
    m, A, V, b = linear_gaussian_cvae()
    y = np.array([2, 0, 1, 2])
    ours = m.sample(y, np.random.default_rng(6))
    z = m.prior.sample(np.random.default_rng(6), 4, Z, np.float64)
    np.testing.assert_allclose(ours, z @ A.T + V[:, y].T + b, rtol=1e-12)


@pytest.mark.parametrize("estimator", ["analytic", "mc", "iwae"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_cvae_gradient_every_parameter_float64(estimator, likelihood):
    m = CVAE(6, 3, hidden=[5], z_dim=2, likelihood=likelihood, dtype=np.float64, seed=2)
    rng = np.random.default_rng(7)
    x, y, eps = rng.random((4, 6)), np.array([0, 2, 1, 2]), rng.standard_normal((3, 4, 2))
    _, grads = m.loss_and_grads(x, y, eps=eps, estimator=estimator, beta=0.8)
    grads = {k: v.copy() for k, v in grads.items()}
    f = lambda: m.loss_and_grads(x, y, eps=eps, estimator=estimator, beta=0.8)[0]
    for name, p in m.params.items():
        c = compare(name, grads[name], numerical_gradient(f, p))
        assert c.passed, str(c)


def test_cvae_with_a_mixture_prior_gradient():
    m = CVAE(6, 3, hidden=[5], z_dim=2, dtype=np.float64, seed=3, prior={"name": "mixture", "components": 2})
    rng = np.random.default_rng(8)
    x, y, eps = rng.random((3, 6)), np.array([1, 0, 2]), rng.standard_normal((2, 3, 2))
    _, grads = m.loss_and_grads(x, y, eps=eps, estimator="mc")
    grads = {k: v.copy() for k, v in grads.items()}
    f = lambda: m.loss_and_grads(x, y, eps=eps, estimator="mc")[0]
    for name in ("prior.means", "prior.logits", "encoder.0.W", "decoder.1.W"):
        c = compare(name, grads[name], numerical_gradient(f, m.params[name]))
        assert c.passed, str(c)


def test_the_label_changes_the_bound():
    m = CVAE(6, 3, hidden=[5], z_dim=2, dtype=np.float64, seed=4)
    x, eps = np.random.default_rng(9).random((1, 6)), np.zeros((1, 1, 2))
    losses = [m.loss_and_grads(x, [c], eps=eps)[0] for c in range(3)]
    assert len(set(losses)) == 3, f"ours {losses}: every label should give a different bound"


def test_training_lowers_the_objective():
    rng = np.random.default_rng(10)
    y = rng.integers(0, 3, 60)
    x = (rng.random((60, 6)) < 0.2 + 0.6 * (np.arange(6) % 3 == y[:, None])).astype(np.float32)
    m = CVAE(6, 3, hidden=[8], z_dim=2, seed=5)
    history = train(m, x, y, 15, np.random.default_rng(11), batch_size=20, lr=1e-2)
    assert history[-1] < history[0] - 0.5, f"ours {history[0]:.3f} -> {history[-1]:.3f}: expected a drop"


@pytest.mark.parametrize("y, message", [([0, 1, 3], "y"), ([0, -1, 1], "y"), ([0, 1], "3 labels"),
                                        ([0, 1.5, 1], "whole-number"), ([0, np.nan, 1], "y"), ("abc", "y")])
def test_bad_labels_are_refused_by_name(y, message):
    m = CVAE(6, 3, hidden=[5], z_dim=2)
    with pytest.raises(InputError, match=message):
        m.loss_and_grads(np.zeros((3, 6)), y, rng=np.random.default_rng(0))


def test_bad_arguments_are_refused():
    with pytest.raises(InputError, match="n_classes"):
        CVAE(6, 0)
    with pytest.raises(InputError, match="VampPrior"):
        CVAE(6, 3, prior={"name": "vampprior", "components": 2})
    with pytest.raises(InputError, match="analytic"):
        CVAE(6, 3, hidden=[5], z_dim=2, prior={"name": "mixture", "components": 2}).loss_and_grads(
            np.zeros((2, 6)), [0, 1], rng=np.random.default_rng(0))
    with pytest.raises(InputError, match="model"):
        train(object(), np.zeros((2, 6)), [0, 1], 1, np.random.default_rng(0))
    from numpyvae.train import Trainer
    with pytest.raises(InputError, match="cvae.train"):
        Trainer(CVAE(6, 3, hidden=[5], z_dim=2), np.zeros((4, 6)), batch_size=2)


def test_a_cvae_checkpoint_round_trips_and_its_fields_are_checked(tmp_path):
    import json
    from numpyvae import CheckpointError
    from numpyvae import checkpoint as ckpt
    m = CVAE(6, 3, hidden=[5], z_dim=2, seed=7, prior={"name": "mixture", "components": 2})
    ckpt.save_model(tmp_path / "c.npz", m)
    loaded = ckpt.load_model(tmp_path / "c.npz")
    assert isinstance(loaded, CVAE) and loaded.config == m.config, f"ours {loaded.config} vs expected {m.config}"
    for k, v in m.params.items():
        np.testing.assert_array_equal(loaded.params[k], v, err_msg=k)
    ckpt.load_model(tmp_path / "c.npz", CVAE(6, 3, hidden=[5], z_dim=2, seed=8, prior={"name": "mixture", "components": 2}))
    arrays = dict(np.load(tmp_path / "c.npz", allow_pickle=False))
    for bad in (0, "three", 2):              # 2 classes: the first layer's shape no longer matches
        config = json.loads(str(arrays["model_config"]))
        config["n_classes"] = bad
        np.savez(tmp_path / "bad.npz", **dict(arrays, model_config=np.array(json.dumps(config))))
        with pytest.raises(CheckpointError, match="n_classes" if bad != 2 else "shape"):
            ckpt.load_model(tmp_path / "bad.npz")
    with pytest.raises(CheckpointError, match="does not match"):
        ckpt.load_model(tmp_path / "c.npz", CVAE(6, 4, hidden=[5], z_dim=2, prior={"name": "mixture", "components": 2}))


def test_per_example_weights_gradient_and_default():
    m = CVAE(6, 3, hidden=[5], z_dim=2, dtype=np.float64, seed=9, prior={"name": "mixture", "components": 2})
    rng = np.random.default_rng(12)
    x, y, eps, w = rng.random((4, 6)), np.array([0, 2, 1, 2]), rng.standard_normal((2, 4, 2)), rng.random(4)
    mean_loss = m.loss_and_grads(x, y, eps=eps, estimator="mc")[0]
    assert abs(m.loss_and_grads(x, y, eps=eps, estimator="mc", weights=np.full(4, 0.25))[0] - mean_loss) < 1e-12
    _, grads = m.loss_and_grads(x, y, eps=eps, estimator="iwae", weights=w)
    grads = {k: v.copy() for k, v in grads.items()}
    f = lambda: m.loss_and_grads(x, y, eps=eps, estimator="iwae", weights=w)[0]
    for name, p in m.params.items():
        c = compare(name, grads[name], numerical_gradient(f, p))
        assert c.passed, str(c)
    for bad in (np.ones(3), -np.ones(4), np.array([1, np.nan, 1, 1])):
        with pytest.raises(InputError, match="weights"):
            m.loss_and_grads(x, y, eps=eps, estimator="mc", weights=bad)


def test_the_command_line_refuses_a_cvae_checkpoint_by_name(tmp_path, capsys):
    from numpyvae import checkpoint as ckpt
    from numpyvae.cli import main
    ckpt.save_model(tmp_path / "c.npz", CVAE(64, 10, hidden=[5], z_dim=2))
    for argv in (["evaluate", str(tmp_path / "c.npz"), "--dataset", "digits", "-k", "2"],
                 ["sample", str(tmp_path / "c.npz"), "--out", str(tmp_path / "s.png")]):
        assert main(argv) != 0
        err = capsys.readouterr().err
        assert "conditional VAE" in err and "Traceback" not in err, err
