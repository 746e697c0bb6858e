"""The learned priors (numpyvae/prior.py): the mixture of Gaussians and the VampPrior.

Independent truths: the mixture's log-density against a direct sum of its
Gaussians (a loop over components, math.exp and math.log on float64
scalars); its density integrating to 1 over a 2-D grid; the VampPrior with
one pseudo-input against that posterior's Gaussian density, and with several
against the mean of the posteriors' densities; the sampled KL against the KL
by quadrature in 1-D and 2-D.  Every gradient checked in float64 by centred
differences with eps held fixed (relative error < 1e-7).
"""
import json
import math

import numpy as np
import pytest

from numpyvae import VAE, CheckpointError, InputError
from numpyvae import checkpoint as ckpt
from numpyvae.distributions import gaussian_log_prob
from numpyvae.estimators import ESTIMATORS, mc
from numpyvae.gradcheck import TOL, check_function, check_model, compare, numerical_gradient
from numpyvae.prior import MixtureDensity, MixturePrior, log_softmax
from numpyvae.train import Trainer

MIXTURE = {"name": "mixture", "components": 3}
VAMP = {"name": "vampprior", "components": 4}


def mixture(C=3, Z=2, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    means = spread * rng.standard_normal((C, Z))
    logvars = 0.6 * rng.standard_normal((C, Z))
    return MixtureDensity(means, logvars, log_softmax(rng.standard_normal(C)))


def direct_log_prob(density, z):
    """log sum_c pi_c prod_j N(z_j; m_cj, v_cj), one component and one coordinate at a time."""
    total = 0.0
    for m, s, lw in zip(density.means, density.logvars, density.log_weights):
        dens = math.exp(lw)
        for zj, mj, sj in zip(z, m, s):
            v = math.exp(sj)
            dens *= math.exp(-(zj - mj) ** 2 / (2 * v)) / math.sqrt(2 * math.pi * v)
        total += dens
    return math.log(total)


# ---- the mixture's density: independent truths ---------------------------------------------

def test_mixture_log_prob_equals_the_direct_sum_of_its_gaussians():
    d = mixture(C=4, Z=3)
    z = np.random.default_rng(1).standard_normal((5, 2, 3)) * 1.5
    ours = d.log_prob(z)
    for idx in np.ndindex(z.shape[:-1]):
        expected = direct_log_prob(d, z[idx])
        assert abs(ours[idx] - expected) < 1e-12 * max(1, abs(expected)), f"at {idx}: ours {ours[idx]} vs expected {expected}"


def test_mixture_density_integrates_to_one_in_2d():
    d = mixture(C=3, Z=2, spread=1.0)
    t = np.linspace(-12, 12, 1201)
    grid = np.stack(np.meshgrid(t, t, indexing="ij"), axis=-1)          # (1201, 1201, 2)
    mass = np.exp(d.log_prob(grid)).sum() * (t[1] - t[0]) ** 2
    assert abs(mass - 1) < 1e-8, f"ours {mass} vs expected 1"


def test_mixture_log_prob_is_finite_at_extreme_but_finite_inputs():
    d = MixtureDensity(np.array([[0.0, 0.0], [1e3, -1e3]]), np.array([[-25.0, -25.0], [25.0, 25.0]]),
                       log_softmax(np.array([700.0, -700.0])))
    z = np.array([[1e6, -1e6], [0.0, 0.0], [1e-8, 0.0]])
    lp, g = d.log_prob(z), d.log_prob_grad(z)
    assert np.all(np.isfinite(lp)) and np.all(np.isfinite(g)), f"ours {lp}, {g}: expected finite"
    assert np.all(np.isfinite(log_softmax(np.array([1e300, -1e300, 0.0]))))


def test_mixture_samples_have_the_mixture_mean():
    d = mixture(C=3, Z=2)
    z = d.sample(np.random.default_rng(2), 200_000)
    pi = np.exp(d.log_weights)
    expected = pi @ d.means
    se = z.std(axis=0) / math.sqrt(len(z))
    assert np.all(np.abs(z.mean(axis=0) - expected) < 5 * se), f"ours {z.mean(axis=0)} vs expected {expected}"


# ---- the mixture's gradients ------------------------------------------------------------------

def test_mixture_log_prob_grad_wrt_z():
    d = mixture(C=4, Z=3)
    z = np.random.default_rng(3).standard_normal((6, 3))
    c = check_function(lambda: float(d.log_prob(z).sum()), d.log_prob_grad(z), z, "d log p / dz")
    assert c.error < TOL, str(c)


@pytest.mark.parametrize("part", ["means", "logvars", "log_weights"])
def test_mixture_backward_wrt_its_parameters(part):
    d = mixture(C=4, Z=3)
    rng = np.random.default_rng(4)
    z, g = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5))
    ours = dict(zip(["means", "logvars", "log_weights"], d.backward(z, g)))[part]
    arr = getattr(d, part)

    def f():
        d.precisions = np.exp(-d.logvars)
        return float(np.sum(g * d.log_prob(z)))
    c = check_function(f, ours, arr, part)
    assert c.error < TOL, str(c)


def test_mixture_prior_gradient_through_the_log_softmax_and_the_clip():
    p = MixturePrior(3, 2, np.random.default_rng(5))
    p.params["logits"][...] = [0.3, -1.0, 2.0]
    p.params["logvars"][0, 0] = 31.0                       # beyond LOGVAR_LIMIT: no gradient there
    rng = np.random.default_rng(6)
    z, g = rng.standard_normal((7, 2)), rng.standard_normal(7)
    grads = p.new_grad_buffers()
    density, cache = p.density()
    p.density_backward(z, g, density, cache, grads)
    for name, arr in p.params.items():
        c = compare(name, grads[name], numerical_gradient(lambda: float(np.sum(g * p.log_prob(z))), arr, h=1e-5, order=2))
        assert c.error < TOL, str(c)
    assert grads["logvars"][0, 0] == 0


def test_responsibilities_sum_to_one_and_pick_the_nearest_component():
    d = MixtureDensity(np.array([[-5.0], [5.0]]), np.zeros((2, 1)), np.log([0.5, 0.5]))
    a, _ = d._components(np.array([[-5.0], [5.0]]))
    _, r = d._responsibilities(a)
    np.testing.assert_allclose(r.sum(axis=1), 1, rtol=0, atol=1e-15)
    assert r[0, 0] > 0.99 and r[1, 1] > 0.99, f"ours {r} vs expected near [[1, 0], [0, 1]]"


# ---- the VampPrior: independent truths -----------------------------------------------------------

def test_vampprior_with_one_pseudo_input_is_that_posteriors_gaussian():
    m = VAE(6, [5], 2, dtype=np.float64, seed=2, prior={"name": "vampprior", "components": 1})
    u = m.params["prior.pseudo_inputs"]
    u[...] = np.random.default_rng(7).random(u.shape)
    mu, logvar = m.encode(u)
    z = np.random.default_rng(8).standard_normal((4, 3, 2))
    ours, expected = m.prior.log_prob(z), gaussian_log_prob(z, mu[0], logvar[0])
    np.testing.assert_allclose(ours, expected, rtol=1e-13, err_msg="ours vs expected log q(z|u)")


def test_vampprior_is_the_mean_of_the_posteriors_at_the_pseudo_inputs():
    m = VAE(6, [5], 2, dtype=np.float64, seed=3, prior=VAMP)
    u = m.params["prior.pseudo_inputs"]
    u[...] = np.random.default_rng(9).random(u.shape)
    mu, logvar = m.encode(u)
    z = np.random.default_rng(10).standard_normal((5, 2))
    for n in range(len(z)):
        expected = math.log(sum(math.exp(gaussian_log_prob(z[n], mu[c], logvar[c])) for c in range(4)) / 4)
        ours = float(m.prior.log_prob(z[n]))
        assert abs(ours - expected) < 1e-12, f"row {n}: ours {ours} vs expected {expected}"


# ---- the KL term, sampled, against quadrature -----------------------------------------------------

def kl_by_quadrature(mu, logvar, density, t):
    grid = np.stack(np.meshgrid(*([t] * len(mu)), indexing="ij"), axis=-1)
    log_q = gaussian_log_prob(grid, mu, logvar)
    return float(np.sum(np.exp(log_q) * (log_q - density.log_prob(grid))) * (t[1] - t[0]) ** len(mu))


@pytest.mark.parametrize("Z", [1, 2])
def test_sampled_kl_matches_quadrature(Z):
    density = mixture(C=3, Z=Z, seed=11, spread=1.5)
    mu, logvar = np.full((1, Z), 0.4), np.full((1, Z), -0.5)
    expected = kl_by_quadrature(mu[0], logvar[0], density, np.linspace(-10, 10, 2001 if Z == 1 else 801))
    K = 100_000
    z = mu + np.exp(0.5 * logvar) * np.random.default_rng(12).standard_normal((K, 1, Z))
    per_sample = gaussian_log_prob(z, mu, logvar) - density.log_prob(z)          # (K, 1)
    ours = float(mc(np.zeros((K, 1)), z, mu, logvar, prior=density).kl[0])
    se = float(per_sample.std()) / math.sqrt(K)
    assert abs(ours - expected) < 4 * se, f"Z={Z}: ours {ours:.5f} vs expected {expected:.5f} (se {se:.5f})"


def test_analytic_refuses_a_learned_prior_by_name():
    m = VAE(6, [5], 2, dtype=np.float64, prior=MIXTURE)
    with pytest.raises(InputError, match="MixturePrior"):
        m.loss_and_grads(np.random.default_rng(0).random((3, 6)), rng=np.random.default_rng(1))


# ---- the whole model's gradient, every parameter, in float64 -----------------------------------

@pytest.mark.parametrize("prior", [MIXTURE, VAMP], ids=["mixture", "vampprior"])
@pytest.mark.parametrize("estimator", ["mc", "iwae", "stl", "score"])
def test_whole_model_gradient_with_a_learned_prior(prior, estimator):
    m = VAE(6, [5], 2, dtype=np.float64, seed=1, prior=prior)
    rng = np.random.default_rng(13)
    x, eps = rng.random((4, 6)), rng.standard_normal((3, 4, 2))
    for c in check_model(m, x, eps, estimator, beta=0.7):
        assert c.passed, str(c)


def test_pseudo_input_gradient_and_the_encoders_share_from_the_prior():
    """The VampPrior reaches the encoder twice: through the data and through the pseudo-inputs."""
    m = VAE(6, [5], 2, dtype=np.float64, seed=4, prior=VAMP)
    rng = np.random.default_rng(14)
    x, eps = rng.random((3, 6)), rng.standard_normal((2, 3, 2))
    _, grads = m.loss_and_grads(x, eps=eps, estimator="mc")
    grads = {k: v.copy() for k, v in grads.items()}
    f = lambda: m.loss_and_grads(x, eps=eps, estimator="mc")[0]
    for name in ("prior.pseudo_inputs", "encoder.0.W"):
        c = compare(name, grads[name], numerical_gradient(f, m.params[name]))
        assert c.passed, str(c)
    assert np.abs(grads["prior.pseudo_inputs"]).max() > 1e-4, "the pseudo-inputs get a gradient"


def test_caller_buffers_equal_the_models_own_with_a_learned_prior():
    m = VAE(6, [5], 2, dtype=np.float64, seed=5, prior=VAMP)
    rng = np.random.default_rng(15)
    x, eps = rng.random((4, 6)), rng.standard_normal((2, 4, 2))
    _, own = m.loss_and_grads(x, eps=eps, estimator="iwae")
    own = {k: v.copy() for k, v in own.items()}
    halves = m.new_grad_buffers()
    for rows in (slice(0, 2), slice(2, 4)):
        part = m.new_grad_buffers()
        m.loss_and_grads(x[rows], eps=eps[:, rows], estimator="iwae", grads=part)
        for k in halves:
            halves[k] += 0.5 * part[k]
    for k in own:
        np.testing.assert_allclose(halves[k], own[k], rtol=1e-12, atol=1e-15, err_msg=k)


# ---- training, checkpoints, bad input ----------------------------------------------------------

@pytest.mark.parametrize("prior", [MIXTURE, VAMP], ids=["mixture", "vampprior"])
def test_prior_parameters_are_trained_and_checkpointed(tmp_path, prior):
    x = (np.random.default_rng(16).random((40, 6)) > 0.5).astype(np.float32)
    m = VAE(6, [8], 2, prior=prior, seed=6)
    before = {k: v.copy() for k, v in m.params.items() if k.startswith("prior.")}
    t = Trainer(m, x, estimator="mc", batch_size=10, lr=1e-2, verbose=False)
    t.run(2)
    for k, v in before.items():
        assert not np.allclose(m.params[k], v), f"{k} did not change in training"
    ckpt.save_trainer(tmp_path / "t.npz", t)
    loaded = ckpt.load_model(tmp_path / "t.npz")
    assert loaded.config["prior"] == prior, f"ours {loaded.config['prior']} vs expected {prior}"
    for k, v in m.params.items():
        np.testing.assert_array_equal(loaded.params[k], v, err_msg=k)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(loaded.sample(3, np.random.default_rng(1)), m.sample(3, np.random.default_rng(1)))
    t2 = Trainer(VAE(6, [8], 2, prior=prior, seed=9), x, estimator="mc", batch_size=10, lr=1e-2, verbose=False)
    ckpt.load_trainer_state(tmp_path / "t.npz", t2)
    for k in m.params:                                      # Adam's slots of the prior's parameters too
        np.testing.assert_array_equal(t2.optimizer.slots["m"][k], t.optimizer.slots["m"][k], err_msg=k)
    del rng


def _rewrite(path, out, **changes):
    arrays = dict(np.load(path, allow_pickle=False))
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize("change, message", [
    ({"param/prior.means": None}, "'prior.means' missing"),
    ({"param/prior.means": np.zeros((2, 2))}, "shape"),
    ({"param/prior.logits": np.array([0.0, np.nan, 1.0])}, "NaN or inf"),
    ({"param/prior.logvars": np.zeros((3, 2), dtype=np.int64)}, "dtype"),
])
def test_checkpoint_prior_fields_are_checked(tmp_path, change, message):
    m = VAE(6, [5], 2, prior=MIXTURE)
    ckpt.save_model(tmp_path / "m.npz", m)
    with pytest.raises(CheckpointError, match=message):
        ckpt.load_model(_rewrite(tmp_path / "m.npz", tmp_path / "bad.npz", **change))


@pytest.mark.parametrize("prior, message", [
    ({"name": "mixture", "components": 0}, "components"),
    ({"name": "flow", "components": 2}, "name"),
    ({"name": "mixture"}, "prior"),
    ("vamp", "prior"),
])
def test_checkpoint_prior_config_is_checked(tmp_path, prior, message):
    ckpt.save_model(tmp_path / "m.npz", VAE(6, [5], 2, prior=MIXTURE))
    config = json.loads(str(np.load(tmp_path / "m.npz")["model_config"]))
    config["prior"] = prior
    with pytest.raises(CheckpointError, match=message):
        ckpt.load_model(_rewrite(tmp_path / "m.npz", tmp_path / "bad.npz", model_config=np.array(json.dumps(config))))


def test_a_standard_normal_model_keeps_the_config_it_had_and_loads_with_an_explicit_null(tmp_path):
    ckpt.save_model(tmp_path / "m.npz", VAE(6, [5], 2))
    config = json.loads(str(np.load(tmp_path / "m.npz")["model_config"]))
    assert "prior" not in config, f"ours {config} vs expected no 'prior' entry (as before learned priors)"
    config["prior"] = None
    m = ckpt.load_model(_rewrite(tmp_path / "m.npz", tmp_path / "null.npz", model_config=np.array(json.dumps(config))),
                        VAE(6, [5], 2))
    assert "prior" not in m.config and not m.prior.params


@pytest.mark.parametrize("prior", [{"name": "mixture", "components": -1}, {"name": "mixture", "components": 2.5},
                                   {"name": "gmm", "components": 2}, {"name": "vampprior"}, 3,
                                   {"name": "vampprior", "components": 10**9}])
def test_bad_prior_arguments_are_refused_by_name(prior):
    with pytest.raises(InputError, match="prior"):
        VAE(6, [5], 2, prior=prior)


def test_learned_prior_refuses_bad_z():
    m = VAE(6, [5], 2, prior=MIXTURE)
    for z, message in ((np.zeros((3, 4)), "z: expected shape"), (np.array([[np.nan, 0.0]]), "z")):
        with pytest.raises(InputError, match=message):
            m.prior.log_prob(z)


def test_every_estimator_but_analytic_gives_dlog_pz():
    rng = np.random.default_rng(17)
    log_px, z, mu, logvar = rng.standard_normal((3, 2)), rng.standard_normal((3, 2, 2)), rng.standard_normal((2, 2)), \
        rng.standard_normal((2, 2)) * 0.1
    density = mixture(C=2, Z=2)
    for name, est in ESTIMATORS.items():
        if name == "analytic":
            continue
        e = est(log_px, z, mu, logvar, 0.5, prior=density)
        assert e.dlog_pz is not None and e.dlog_pz.shape == (3, 2), name


def test_the_command_line_evaluates_and_samples_a_learned_prior_model(tmp_path, capsys):
    from numpyvae.cli import main
    from numpyvae.data import load
    d = load("digits")
    m = VAE(d.x_dim, [16], 2, prior=VAMP, seed=1)
    Trainer(m, d.x_train[:200], estimator="mc", batch_size=50, verbose=False, progress=False).run(1)
    ckpt.save_model(tmp_path / "v.npz", m)
    assert main(["evaluate", str(tmp_path / "v.npz"), "--dataset", "digits", "-k", "5"]) == 0
    out = capsys.readouterr()
    assert "the KL sampled too" in out.out + out.err, out
    assert main(["sample", str(tmp_path / "v.npz"), "--out", str(tmp_path / "s.png"), "--n", "4"]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0


def test_the_command_line_trains_resumes_and_checks_a_learned_prior(tmp_path, capsys):
    from numpyvae.cli import main
    run = tmp_path / "run"
    common = ["--hidden", "8", "--z-dim", "2", "--no-progress", "--no-plots", "--quiet"]
    assert main(["train", "--epochs", "1", "--out", str(run), "--prior", "vampprior:5", "--estimator", "mc", *common]) == 0
    m = ckpt.load_model(run / "checkpoint.npz")
    assert m.config["prior"] == {"name": "vampprior", "components": 5} and m.params["prior.pseudo_inputs"].shape == (5, 64)
    assert main(["train", "--resume", str(run / "checkpoint.npz"), "--epochs", "2", "--no-progress", "--quiet"]) == 0
    assert ckpt.load_model(run / "checkpoint.npz").config["prior"]["name"] == "vampprior"
    capsys.readouterr()
    assert main(["train", "--resume", str(run / "checkpoint.npz"), "--epochs", "3", "--prior", "mixture:5",
                 "--no-progress"]) != 0
    assert "--prior mixture:5 (the run has vampprior:5)" in capsys.readouterr().err
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "a"), "--prior", "mixture:3", *common]) != 0
    assert "'analytic' needs a closed-form KL" in capsys.readouterr().err
    for bad in ("vamp:3", "mixture:0", "mixture", "mixture:x"):
        with pytest.raises(SystemExit):
            main(["train", "--epochs", "1", "--out", str(tmp_path / "b"), "--prior", bad, *common])
        assert "--prior" in capsys.readouterr().err


def test_vampprior_through_a_convolutional_encoder_gradient():
    """The pseudo-inputs are images for a conv encoder: their gradient comes back through Conv2d's backward."""
    enc = [{"layer": "reshape", "shape": [1, 4, 4]},
           {"layer": "conv2d", "out_channels": 2, "kernel_size": 2, "stride": 2},
           {"layer": "tanh"}, {"layer": "flatten"}, {"layer": "linear", "units": 4}]
    dec = [{"layer": "linear", "units": 6}, {"layer": "tanh"}, {"layer": "linear", "units": 16}]
    m = VAE(16, z_dim=2, dtype=np.float64, seed=5, encoder=enc, decoder=dec, prior={"name": "vampprior", "components": 2})
    rng = np.random.default_rng(18)
    x, eps = rng.random((3, 16)), rng.standard_normal((2, 3, 2))
    for c in check_model(m, x, eps, "mc"):
        assert c.passed, str(c)
