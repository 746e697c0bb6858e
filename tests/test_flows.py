"""Planar flows (numpyvae/flows.py): gradient checks, and the densities against independent truths.

Truths that do not come from the code under test:
  * the log-det against the log|det| of a finite-difference Jacobian (np.linalg.slogdet);
  * the flowed density integrating to 1, and its mean matching the samples' mean, by 2-D quadrature;
  * for a VAE with a 2-D latent: log p(x) by 2-D quadrature of p(x|z) p(z), against log_marginal with
    q_K as the proposal, and the flow ELBO against log p(x) - KL(q_K || p(z|x)), the KL by quadrature.
"""
import numpy as np
import pytest

from numpyvae import InputError, VAE
from numpyvae import flows
from numpyvae.checkpoint import load_model, save_model
from numpyvae.evaluate import log_marginal
from numpyvae.gradcheck import compare, numerical_gradient

TOL = 1e-7


def assert_checks(checks):
    for c in checks:
        print(c)
        assert c.error < TOL, str(c)


def random_flow(rng, B, K, Z, scale=1.0):
    return (scale * rng.standard_normal((B, K, Z)), scale * rng.standard_normal((B, K, Z)),
            rng.standard_normal((B, K)))


# ---- the u reparameterization ------------------------------------------------------------------

@pytest.mark.parametrize("a", [-50.0, -3.0, -1.0, 0.0, 0.5, 40.0])
def test_u_hat_keeps_every_step_invertible(a):
    """w.u_hat = m(w.u) = -1 + softplus(w.u) >= -1 whatever u (> -1 until softplus underflows; 1e-12 for rounding): w.u = a."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3))
    u = rng.standard_normal((4, 3))
    u += ((a - np.sum(w * u, axis=1)) / np.sum(w * w, axis=1))[:, None] * w     # now w.u = a exactly
    u_hat, _ = flows.u_hat_forward(u, w)
    c = np.sum(w * u_hat, axis=1)
    expected = -1.0 + np.logaddexp(0.0, a)
    print("w.u_hat ours", c, "vs expected", expected)
    assert np.all(c >= -1.0 - 1e-12) and np.allclose(c, expected, rtol=1e-12, atol=1e-12)


def test_u_hat_at_w_zero_is_finite():
    u_hat, cache = flows.u_hat_forward(np.ones((2, 3)), np.zeros((2, 3)))
    du, dw = flows.u_hat_backward(np.ones((2, 3)), cache)
    assert np.all(np.isfinite(u_hat)) and np.all(np.isfinite(du)) and np.all(np.isfinite(dw))


@pytest.mark.parametrize("seed", range(4))
def test_u_hat_backward(seed):
    rng = np.random.default_rng(seed)
    u, w = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 2, 4))
    g = rng.standard_normal(u.shape)
    _, cache = flows.u_hat_forward(u, w)
    du, dw = flows.u_hat_backward(g, cache)
    f = lambda: float(np.sum(flows.u_hat_forward(u, w)[0] * g))
    assert_checks([compare("u", du, numerical_gradient(f, u)), compare("w", dw, numerical_gradient(f, w))])


# ---- one step and K steps: backward --------------------------------------------------------------

@pytest.mark.parametrize("seed,S,B,K,Z", [(0, 3, 2, 1, 1), (1, 4, 3, 3, 2), (2, 2, 2, 5, 4), (3, 1, 1, 2, 3)])
def test_flow_backward_through_u_hat(seed, S, B, K, Z):
    """The K-step flow and u_hat together, every input: z_0, u, w, b (vector-Jacobian check, float64)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((S, B, Z))
    u, w, b = random_flow(rng, B, K, Z)
    gy, gl = rng.standard_normal((S, B, Z)), rng.standard_normal((S, B))

    def f():
        u_hat, _ = flows.u_hat_forward(u, w)
        y, logdet, _ = flows.flow_forward(z, u_hat, w, b)
        return float(np.sum(y * gy) + np.sum(logdet * gl))

    u_hat, ucache = flows.u_hat_forward(u, w)
    _, _, cache = flows.flow_forward(z, u_hat, w, b)
    dz, du_hat, dw, db = flows.flow_backward(gy, gl, cache)
    du, dw_u = flows.u_hat_backward(du_hat, ucache)
    floor = 1e-4 * max(1.0, abs(f()))
    assert_checks([compare(name, ours, numerical_gradient(f, arr), floor)
                   for name, ours, arr in (("z", dz, z), ("u", du, u), ("w", dw + dw_u, w), ("b", db, b))])


# ---- the log-det against a numerical Jacobian ------------------------------------------------------

@pytest.mark.parametrize("seed,K,Z", [(0, 1, 2), (1, 4, 3), (2, 8, 5)])
def test_log_det_matches_finite_difference_jacobian(seed, K, Z):
    rng = np.random.default_rng(seed)
    B = 3
    u, w, b = random_flow(rng, B, K, Z, scale=1.5)
    u[:, 0] = -4.0 * w[:, 0] / np.sum(w[:, 0] ** 2, axis=-1, keepdims=True)     # w.u = -4: u_hat must repair it
    u_hat, _ = flows.u_hat_forward(u, w)
    z0 = rng.standard_normal((2, B, Z))
    _, logdet, _ = flows.flow_forward(z0, u_hat, w, b)
    h = 1e-5
    for s in range(2):
        for i in range(B):
            J = np.empty((Z, Z))
            for j in range(Z):
                zp, zm = z0[s:s + 1, i:i + 1].copy(), z0[s:s + 1, i:i + 1].copy()
                zp[..., j] += h
                zm[..., j] -= h
                yp = flows.flow_forward(zp, u_hat[i:i + 1], w[i:i + 1], b[i:i + 1])[0]
                ym = flows.flow_forward(zm, u_hat[i:i + 1], w[i:i + 1], b[i:i + 1])[0]
                J[:, j] = ((yp - ym) / (2 * h)).ravel()
            sign, expected = np.linalg.slogdet(J)
            print(f"sample {s} row {i}: log|det| ours {logdet[s, i]:.12f} vs finite-difference Jacobian {expected:.12f}")
            assert sign > 0 and abs(logdet[s, i] - expected) < 1e-7 * max(1.0, abs(expected))


def test_inverse_undoes_the_flow():
    rng = np.random.default_rng(5)
    u, w, b = random_flow(rng, 2, 6, 3, scale=2.0)
    u_hat, _ = flows.u_hat_forward(u, w)
    z0 = 2 * rng.standard_normal((50, 2, 3))
    back = flows.flow_inverse(flows.flow_forward(z0, u_hat, w, b)[0], u_hat, w, b)
    print("worst |f^-1(f(z)) - z|:", np.abs(back - z0).max())
    assert np.abs(back - z0).max() < 1e-10


# ---- radial steps ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed,S,B,K,Z", [(0, 3, 2, 1, 1), (1, 4, 3, 3, 2), (2, 2, 2, 5, 4)])
def test_radial_backward_through_its_parameters(seed, S, B, K, Z):
    rng = np.random.default_rng(seed)
    z, c = rng.standard_normal((S, B, Z)), rng.standard_normal((B, K, Z))
    a, b = rng.standard_normal((B, K)), rng.standard_normal((B, K))
    gy, gl = rng.standard_normal((S, B, Z)), rng.standard_normal((S, B))

    def f():
        alpha, beta, _ = flows.radial_params_forward(a, b)
        y, logdet, _ = flows.radial_flow_forward(z, c, alpha, beta)
        return float(np.sum(y * gy) + np.sum(logdet * gl))

    alpha, beta, pcache = flows.radial_params_forward(a, b)
    _, _, cache = flows.radial_flow_forward(z, c, alpha, beta)
    dz, dc, dalpha, dbeta = flows.radial_flow_backward(gy, gl, cache)
    da, db = flows.radial_params_backward(dalpha, dbeta, pcache)
    floor = 1e-4 * max(1.0, abs(f()))
    assert_checks([compare(name, ours, numerical_gradient(f, arr), floor)
                   for name, ours, arr in (("z", dz, z), ("centres", dc, c), ("a", da, a), ("c", db, b))])


@pytest.mark.parametrize("raw", [-40.0, -3.0, 0.0, 5.0])
def test_radial_beta_never_below_minus_alpha_and_the_log_det_is_the_jacobians(raw):
    rng = np.random.default_rng(int(raw) + 50)
    Z, K = 3, 4
    c = rng.standard_normal((1, K, Z))
    alpha, beta, _ = flows.radial_params_forward(np.full((1, K), raw), np.full((1, K), raw))
    print("alpha", alpha, "beta", beta)
    assert np.all(alpha > 0) and np.all(beta >= -alpha)
    z = rng.standard_normal((2, 1, Z))
    y, logdet, _ = flows.radial_flow_forward(z, c, alpha, beta)
    h = 1e-6
    for s in range(2):
        J = np.stack([(flows.radial_flow_forward(z[s:s + 1] + h * e, c, alpha, beta)[0]
                       - flows.radial_flow_forward(z[s:s + 1] - h * e, c, alpha, beta)[0])[0, 0] / (2 * h)
                      for e in np.eye(Z)], axis=1)
        sign, expected = np.linalg.slogdet(J)
        print(f"log|det| ours {logdet[s, 0]:.10f} vs finite-difference Jacobian {expected:.10f}")
        assert sign > 0 and abs(logdet[s, 0] - expected) < 1e-6 * max(1, abs(expected))
    assert np.abs(flows.radial_flow_inverse(y, c, alpha, beta) - z).max() < 1e-9


# ---- the flowed density by 2-D quadrature ------------------------------------------------------------

def _grid(lo, hi, n):
    t = np.linspace(lo, hi, n)
    zz = np.stack(np.meshgrid(t, t, indexing="ij"), axis=-1).reshape(-1, 1, 2)
    return zz, (t[1] - t[0]) ** 2


def test_flowed_density_integrates_to_one_and_has_the_samples_mean():
    """q_K on a grid, by inverting the flow: its integral is 1 and its mean is the flowed samples' mean.

    The first step's raw u has w.u = -1.5 (a non-invertible planar map, folding the plane): only
    u_hat makes the density a density (with u in its place the integral is 0.13).
    """
    rng = np.random.default_rng(2)
    K = 4
    u, w, b = random_flow(rng, 1, K, 2, scale=0.8)
    u[:, 0] = -1.5 * w[:, 0] / np.sum(w[:, 0] ** 2, axis=-1, keepdims=True)
    mu, logvar = np.array([[0.3, -0.2]]), np.array([[-0.4, 0.2]])
    zz, cell = _grid(-9.0, 9.0, 401)
    log_q = flows.flowed_log_density(zz, mu, logvar, u, w, b)[:, 0]
    q = np.exp(log_q)
    mass = q.sum() * cell
    mean = (q[:, None] * zz[:, 0]).sum(axis=0) * cell
    u_hat, _ = flows.u_hat_forward(u, w)
    z0 = mu + np.exp(0.5 * logvar) * rng.standard_normal((200_000, 1, 2))
    zK = flows.flow_forward(z0, u_hat, w, b)[0][:, 0]
    se = zK.std(axis=0) / np.sqrt(len(zK))
    print(f"integral of q_K: ours {mass:.6f} vs expected 1; mean by quadrature {mean} vs samples {zK.mean(0)} "
          f"(+- {se})")
    assert abs(mass - 1.0) < 1e-6
    assert np.all(np.abs(mean - zK.mean(axis=0)) < 4 * se + 2e-3)


# ---- the flow VAE ------------------------------------------------------------------------------------

def small_flow_vae(K=3, z_dim=2, dtype=np.float64, seed=2, flow="planar"):
    return VAE(6, hidden=[5], z_dim=z_dim, dtype=dtype, flow_steps=K, activation="tanh", seed=seed, flow=flow)


@pytest.mark.parametrize("flow", ["planar", "radial"])
@pytest.mark.parametrize("estimator", ["mc", "iwae"])
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_flow_vae_gradients(estimator, beta, flow):
    """Every parameter of the encoder (which outputs mu, logvar and the flow) and the decoder, float64."""
    rng = np.random.default_rng(1)
    x = (rng.random((3, 6)) < 0.5).astype(float)
    model = small_flow_vae(flow=flow)
    eps = rng.standard_normal((4, 3, 2))
    _, grads = model.loss_and_grads(x, eps=eps, estimator=estimator, beta=beta)
    grads = {name: g.copy() for name, g in grads.items()}
    f = lambda: model.loss_and_grads(x, eps=eps, estimator=estimator, beta=beta)[0]
    assert_checks([compare(name, grads[name], numerical_gradient(f, p)) for name, p in model.params.items()])


def test_check_model_checks_a_flow_model():
    from numpyvae.gradcheck import check_model
    rng = np.random.default_rng(4)
    model = small_flow_vae(K=2)
    checks = check_model(model, (rng.random((2, 6)) < 0.5).astype(float), rng.standard_normal((3, 2, 2)), "iwae")
    assert_checks(checks)
    assert len(checks) == len(model.params)


def test_flow_vae_with_zero_steps_is_the_plain_vae():
    a, b = VAE(6, hidden=[5], z_dim=2, dtype=np.float64), VAE(6, hidden=[5], z_dim=2, dtype=np.float64, flow_steps=0)
    x = np.random.default_rng(0).random((3, 6))
    eps = np.random.default_rng(1).standard_normal((2, 3, 2))
    assert a.loss_and_grads(x, eps=eps, estimator="mc")[0] == b.loss_and_grads(x, eps=eps, estimator="mc")[0]
    assert "flow_steps" not in b.config


def _log_joint_on_grid(model, x, zz):
    """log p(x|z) + log p(z) at the grid points zz (N, 1, 2), for every example: (N, B)."""
    out = model.decode(zz[:, 0]).reshape(len(zz), 1, -1)
    return model.log_px(x[None], out) - 0.5 * np.sum(zz * zz, axis=-1) - np.log(2 * np.pi)


@pytest.mark.parametrize("flow", ["planar", "radial"])
def test_flow_vae_log_marginal_and_elbo_against_quadrature(flow):
    """log p(x) by 2-D quadrature over z is the truth; log_marginal (q_K as proposal) must find it within
    its Monte Carlo error, and the flow ELBO must equal log p(x) - KL(q_K || p(z|x)), the KL by
    quadrature with q_K evaluated on the grid by inverting the flow."""
    rng = np.random.default_rng(3)
    model = small_flow_vae(K=3, seed=4, flow=flow)
    x = (rng.random((3, 6)) < 0.5).astype(float)
    zz, cell = _grid(-8.0, 8.0, 301)
    log_joint = _log_joint_on_grid(model, x, zz)                            # (N, B)
    m = log_joint.max(axis=0)
    log_px_true = m + np.log(np.exp(log_joint - m).sum(axis=0) * cell)

    k = 20000
    mu, logvar, flow = model.encode_flow(x)
    (z, log_q), _ = model.posterior.sample(mu, logvar, flow, np.random.default_rng(7).standard_normal((k, 3, 2)))
    log_w = model.log_px(x, model.decode(z.reshape(-1, 2)).reshape(k, 3, -1)) + model.prior.log_prob(z) - log_q
    w = np.exp(log_w - log_w.max(axis=0))
    se = w.std(axis=0) / w.mean(axis=0) / np.sqrt(k)                       # of log mean w, by the delta method
    est = log_marginal(model, x, k=k, rng=np.random.default_rng(0), workers=1)
    print("log p(x): log_marginal", est, "vs quadrature", log_px_true, "standard error", se)
    assert np.all(np.abs(est - log_px_true) < 4 * se + 1e-3)

    elbo = model.elbo(x, np.random.default_rng(1), estimator="mc", k=k)
    elbo_se = log_w.std(axis=0) / np.sqrt(k)
    post = model.posterior
    for i in range(len(x)):
        # log q_K on the grid: invert the flow with the parameters as the encoder gave them
        row = tuple(a[i:i + 1] for a in flow)
        z0 = post.inverse(zz, *row)
        logdet = post.forward(z0, *row)[1][:, 0]
        log_q = -0.5 * np.sum(np.log(2 * np.pi) + logvar[i] + (z0[:, 0] - mu[i]) ** 2 * np.exp(-logvar[i]), -1) - logdet
        q = np.exp(log_q)
        kl = np.sum(q * (log_q - (log_joint[:, i] - log_px_true[i]))) * cell
        print(f"example {i}: flow ELBO {elbo[i]:.4f} +- {elbo_se[i]:.4f} vs log p(x) - KL by quadrature "
              f"{log_px_true[i] - kl:.4f}; integral of q_K {q.sum() * cell:.8f}")
        # a radial step's density has a kink at its centre (r = 0), which the grid's sum resolves less well
        assert abs(q.sum() * cell - 1) < (1e-6 if flow == "planar" else 1e-4)
        assert abs(elbo[i] - (log_px_true[i] - kl)) < 4 * elbo_se[i] + 1e-3


@pytest.mark.parametrize("kind", ["planar", "radial"])
def test_flow_posterior_log_q_matches_the_inverse_maps_jacobian(kind):
    """log q_K(z_K|x) as PlanarFlow.sample returns it, against log q_0(f^-1(y)) + log|det d f^-1/dy| with the
    inverse's Jacobian by centred differences (no log-det formula on this side)."""
    rng = np.random.default_rng(8)
    model = small_flow_vae(K=4, z_dim=3, seed=9, flow=kind)
    x = (rng.random((2, 6)) < 0.5).astype(float)
    mu, logvar, flow = model.encode_flow(x)
    eps = rng.standard_normal((3, 2, 3))
    (z, log_q), _ = model.posterior.sample(mu, logvar, flow, eps)
    h = 1e-6
    for s in range(3):
        for i in range(2):
            inverse = lambda y: model.posterior.inverse(y[None, None], *(a[i:i + 1] for a in flow))[0, 0]
            J = np.stack([(inverse(z[s, i] + h * e) - inverse(z[s, i] - h * e)) / (2 * h) for e in np.eye(3)], axis=1)
            z0 = inverse(z[s, i])
            log_q0 = -0.5 * np.sum(np.log(2 * np.pi) + logvar[i] + (z0 - mu[i]) ** 2 * np.exp(-logvar[i]))
            expected = log_q0 + np.linalg.slogdet(J)[1]
            print(f"sample {s}, example {i}: log q_K ours {log_q[s, i]:.10f} vs by the inverse's Jacobian {expected:.10f}")
            assert abs(log_q[s, i] - expected) < 1e-6


def test_flow_vae_refuses_what_it_cannot_do():
    model = small_flow_vae()
    x = np.full((2, 6), 0.5)
    for name in ("analytic", "stl", "score"):
        with pytest.raises(InputError, match="estimator"):
            model.loss_and_grads(x, rng=np.random.default_rng(0), estimator=name)
    with pytest.raises(InputError, match="flow_steps"):
        VAE(6, flow_steps=-1)
    with pytest.raises(InputError, match="flow_steps"):
        VAE(6, flow_steps=10**6)
    with pytest.raises(InputError, match="flow_steps"):
        VAE(6, flow_steps=2.5)
    with pytest.raises(InputError, match="flow"):
        VAE(6, flow="radial")
    with pytest.raises(InputError, match="flow"):
        VAE(6, flow_steps=2, flow="sylvester")
    with pytest.raises(InputError, match="encode_flow"):
        VAE(6).encode_flow(x)
    with pytest.raises(InputError, match="log_q"):
        from numpyvae.estimators import flow_mc
        flow_mc(np.zeros((2, 3)), np.zeros((2, 3, 1)), np.zeros((3, 2)))
    with pytest.raises(InputError, match="u, w, b"):
        flows.planar_flow(np.zeros((2, 3, 2)), np.zeros((3, 1, 2)), np.zeros((3, 1, 2)), np.zeros((3, 2)))


@pytest.mark.parametrize("flow", ["planar", "radial"])
def test_flow_vae_survives_a_checkpoint(tmp_path, flow):
    model = small_flow_vae(dtype=np.float32, flow=flow)
    path = str(tmp_path / "flow.npz")
    save_model(path, model)
    back = load_model(path)
    x = np.full((2, 6), 0.5, dtype=np.float32)
    eps = np.random.default_rng(0).standard_normal((2, 2, 2)).astype(np.float32)
    assert back.config == model.config and back.config["flow_steps"] == 3 and back.config["flow"] == flow
    assert back.loss_and_grads(x, eps=eps, estimator="mc")[0] == model.loss_and_grads(x, eps=eps, estimator="mc")[0]


def test_flow_vae_trains_in_float32():
    from numpyvae.train import Trainer
    rng = np.random.default_rng(0)
    x = (rng.random((64, 6)) < 0.3).astype(np.float32)
    model = VAE(6, hidden=[8], z_dim=2, flow_steps=2)
    before = float(model.elbo(x, np.random.default_rng(1), "mc", k=200).mean())
    trainer = Trainer(model, x, x, estimator="mc", batch_size=16, verbose=False, progress=False)
    trainer.run(10)
    after = float(model.elbo(x, np.random.default_rng(1), "mc", k=200).mean())
    print(f"flow ELBO (k = 200) before training {before:.3f}, after 10 epochs {after:.3f}")
    assert after > before + 0.2
    with pytest.raises(InputError, match="estimator"):
        Trainer(model, x, estimator="analytic", batch_size=16, verbose=False)


def test_command_line_trains_and_evaluates_a_flow_model(tmp_path, capsys):
    from numpyvae.cli import main
    out = str(tmp_path / "run")
    assert main(["train", "--dataset", "digits", "--flow-steps", "2", "--estimator", "mc", "--epochs", "1",
                 "--out", out, "--no-progress", "--quiet"]) == 0
    model = load_model(out + "/checkpoint.npz")
    assert model.flow_steps == 2 and model.encoder.call(np.zeros((1, 64), np.float32))[0].shape == (1, 2 * 2 + 2 * 5)
    capsys.readouterr()
    assert main(["evaluate", out + "/checkpoint.npz", "--log-marginal", "20"]) == 0
    assert "importance-sampled estimate of -log p(x), k=20" in capsys.readouterr().out
    assert main(["train", "--dataset", "digits", "--flow-steps", "2", "--flow", "radial", "--estimator", "iwae", "-k", "2",
                 "--epochs", "1", "--out", str(tmp_path / "radial"), "--no-progress", "--quiet", "--no-plots"]) == 0
    assert load_model(str(tmp_path / "radial" / "checkpoint.npz")).config["flow"] == "radial"
    assert main(["train", "--dataset", "digits", "--flow-steps", "2", "--epochs", "1", "--out", str(tmp_path / "x"),
                 "--no-progress", "--quiet"]) != 0
    assert "a flowed posterior takes ['iwae', 'mc']" in capsys.readouterr().err


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e3, 1e30])
def test_extreme_flow_parameters_give_finite_numbers_or_input_error(dtype, scale):
    """The encoder's flow outputs blown up: every entry point returns finite numbers or raises InputError."""
    model = VAE(6, hidden=[5], z_dim=2, flow_steps=3, dtype=dtype, seed=1)
    model.params["encoder.1.W"][...] *= scale
    x = np.full((2, 6), 0.5)
    calls = {"loss mc": lambda: model.loss_and_grads(x, rng=np.random.default_rng(0), estimator="mc")[0],
             "loss iwae": lambda: model.loss_and_grads(x, rng=np.random.default_rng(0), estimator="iwae", k=3)[0],
             "elbo": lambda: model.elbo(x, np.random.default_rng(0), "mc", 2),
             "log_marginal": lambda: log_marginal(model, x, k=5, rng=np.random.default_rng(0), workers=1),
             "reconstruct": lambda: model.reconstruct(x, np.random.default_rng(0))}
    for name, call in calls.items():
        with np.errstate(all="ignore"):
            try:
                value = np.asarray(call(), dtype=float)
            except InputError as exc:
                print(f"{name}: InputError {exc}")
                continue
        print(f"{name}: finite {np.all(np.isfinite(value))}")
        assert np.all(np.isfinite(value)), f"{name}: ours {value} vs expected finite numbers or InputError"
