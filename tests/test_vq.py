"""Vector quantization (numpyvae/discrete/vq.py, vqvae.py): the nearest code by brute force, the backward pass
against centred differences of the surrogate it is the gradient of (indices and stop-gradients frozen),
usage and perplexity against their definitions, and a short training run on the digits."""
import math

import numpy as np
import pytest

from numpyvae.discrete import vq
from numpyvae.discrete.vqvae import VQVAE
from numpyvae.errors import InputError
from numpyvae.gradcheck import compare, numerical_gradient


def test_nearest_code_by_brute_force():
    rng = np.random.default_rng(0)
    z_e, E = rng.normal(size=(3, 4, 2)), rng.normal(size=(7, 2))
    k = vq.nearest(z_e, E)
    for b in range(3):
        for m in range(4):
            dists = [float(np.sum((z_e[b, m] - E[j]) ** 2)) for j in range(7)]
            assert k[b, m] == int(np.argmin(dists)), f"position ({b}, {m}): ours {k[b, m]} vs {np.argmin(dists)}"


def test_quantize_backward_is_the_gradient_of_the_frozen_surrogate():
    """With k, sg[z_e] = ze0 and sg[z_q] = zq0 frozen, and a decoder stand-in <w, z_e + (zq0 - ze0)>:
    L(z_e, E) = <w, z_e + zq0 - ze0> + a sum ||ze0 - E[k]||^2 + c beta sum ||z_e - zq0||^2."""
    rng = np.random.default_rng(1)
    z_e, E, w = rng.normal(size=(3, 4, 2)), rng.normal(size=(5, 2)), rng.normal(size=(3, 4, 2))
    a, c, beta = rng.uniform(0.5, 2, size=3), rng.uniform(0.5, 2, size=3), 0.3
    z_q, cb, cm, cache = vq.quantize(z_e, E, beta)
    k, ze0, zq0 = cache[2], z_e.copy(), z_q.copy()
    dz_e, dE = vq.quantize_backward(w, a, c, cache, 5)

    def surrogate():
        return float((w * (z_e + zq0 - ze0)).sum() + (a * ((ze0 - E[k]) ** 2).sum(axis=(1, 2))).sum()
                     + (c * beta * ((z_e - zq0) ** 2).sum(axis=(1, 2))).sum())
    for name, ours, x in (("dz_e", dz_e, z_e), ("dE", dE, E)):
        check = compare(name, ours, numerical_gradient(surrogate, x))
        assert check.passed, str(check)
    np.testing.assert_allclose(cb, ((ze0 - zq0) ** 2).sum(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(cm, beta * cb, rtol=1e-12)


def test_vqvae_gradient_matches_centred_differences_of_its_surrogate():
    model = VQVAE(6, n_positions=3, code_dim=2, n_codes=5, hidden=[5], beta=0.4, dtype=np.float64, seed=2)
    x = (np.random.default_rng(3).random((4, 6)) > 0.5).astype(float)
    model.params["codebook.E"][...] = np.random.default_rng(4).normal(size=(5, 2))     # codes at the encoder's scale
    loss, grads = model.loss_and_grads(x)
    grads = {k: v.copy() for k, v in grads.items()}
    z_e0 = model._encode(x)[0].copy()
    k = vq.nearest(z_e0, model.E)
    zq0 = model.E[k].copy()

    def surrogate():
        z_e = model._encode(x)[0]
        out = model.decoder.call((z_e + zq0 - z_e0).reshape(len(x), -1))[0]           # straight-through input
        log_px = (x * out - np.logaddexp(0, out)).sum(axis=1)
        return float((-log_px + ((z_e0 - model.E[k]) ** 2).sum(axis=(1, 2))
                      + model.beta * ((z_e - zq0) ** 2).sum(axis=(1, 2))).mean())
    assert surrogate() == pytest.approx(loss, rel=1e-12)
    for name, p in model.params.items():
        check = compare(name, grads[name], numerical_gradient(surrogate, p))
        assert check.passed, str(check)


def test_usage_and_perplexity_against_their_definitions():
    counts, perplexity, dead = vq.usage(np.array([[0, 1], [2, 3]]), 4)
    assert list(counts) == [1, 1, 1, 1] and perplexity == pytest.approx(4.0) and dead == 0
    counts, perplexity, dead = vq.usage(np.array([[2, 2, 2]]), 5)
    assert perplexity == pytest.approx(1.0) and dead == 4
    counts, perplexity, dead = vq.usage(np.array([0, 0, 0, 1]), 3)
    u = np.array([0.75, 0.25])
    assert perplexity == pytest.approx(math.exp(-(u * np.log(u)).sum())) and dead == 1


def test_a_short_training_run_lowers_the_loss_and_uses_several_codes():
    from numpyvae.data import binarize, load
    from numpyvae.optim import Adam
    x = binarize(load("digits").x_train[:512], "threshold")
    model = VQVAE(64, n_positions=4, code_dim=3, n_codes=16, hidden=[64], seed=0)
    opt = Adam(model.params, lr=3e-3)
    rng = np.random.default_rng(5)
    first = model.loss_and_grads(x)[0]
    for _ in range(150):
        opt.step(model.loss_and_grads(x[rng.integers(0, len(x), 64)])[1])
    last = model.loss_and_grads(x)[0]
    counts, perplexity, dead = model.usage(x)
    print(f"loss {first:.2f} -> {last:.2f} nats; perplexity {perplexity:.2f} of 16 codes, {dead} dead")
    assert last < first - 5, (first, last)
    assert perplexity > 2, f"codebook perplexity {perplexity:.2f}: collapsed onto one code"


def test_vqvae_refuses_bad_input_by_name():
    model = VQVAE(6, n_positions=2, code_dim=2, n_codes=3, hidden=[4])
    for fn, name in ((lambda: model.loss_and_grads(np.full((2, 6), 2.0)), "x"),
                     (lambda: model.loss_and_grads(np.zeros((2, 5))), "x"),
                     (lambda: model.loss_and_grads(np.zeros((2, 6)), grads={"a": 1}), "grads"),
                     (lambda: VQVAE(6, beta=-1.0), "beta"),
                     (lambda: VQVAE(6, n_codes=0), "n_codes")):
        with pytest.raises(InputError, match=name):
            fn()


def test_ema_with_decay_zero_puts_each_used_code_at_the_mean_of_its_vectors():
    rng = np.random.default_rng(6)
    z_e, E = rng.normal(size=(4, 5, 2)), rng.normal(size=(6, 2))
    k = vq.nearest(z_e, E)
    counts, sums = np.ones(6), E.copy()
    vq.ema_update(E, counts, sums, z_e, k, decay=0.0, eps=1e-12)          # (eps: an unused code is 0 / eps)
    for j in range(6):
        chosen = z_e[k == j]
        if len(chosen):
            np.testing.assert_allclose(E[j], chosen.mean(axis=0), rtol=1e-9, err_msg=f"code {j}: ours vs the mean")
    assert np.all(np.isfinite(E))


def test_ema_converges_to_the_mean_and_leaves_unused_codes_finite():
    """Fixed assignments and decay 0.9: after many steps each used code is the mean of its vectors; N_k of an
    unused code decays towards 0 and the Laplace smoothing keeps its e_k finite."""
    rng = np.random.default_rng(7)
    z_e, E = rng.normal(size=(3, 4, 2)), rng.normal(size=(5, 2)) * 10
    k = np.array([[0, 0, 1, 1], [2, 2, 0, 1], [0, 2, 1, 2]])            # codes 3, 4 never chosen
    counts, sums = np.ones(5), E.copy()
    for _ in range(400):
        vq.ema_update(E, counts, sums, z_e, k, decay=0.9)
    for j in range(3):
        np.testing.assert_allclose(E[j], z_e[k == j].mean(axis=0), rtol=1e-4, err_msg=f"code {j}")
    assert np.all(np.isfinite(E))


def test_vqvae_with_the_ema_codebook_trains_and_gives_the_codes_no_gradient():
    from numpyvae.data import binarize, load
    from numpyvae.optim import Adam
    x = binarize(load("digits").x_train[:512], "threshold")
    model = VQVAE(64, n_positions=4, code_dim=3, n_codes=16, hidden=[64], seed=0, codebook="ema", decay=0.9)
    opt, rng = Adam(model.params, lr=3e-3), np.random.default_rng(8)
    first = model.loss_and_grads(x)[0]
    for _ in range(150):
        _, grads = model.loss_and_grads(x[rng.integers(0, len(x), 64)])
        assert not grads["codebook.E"].any(), "the EMA codebook takes no gradient"
        opt.step(grads)
        model.ema_step()
    last = model.loss_and_grads(x)[0]
    print(f"EMA codebook: loss {first:.2f} -> {last:.2f}; perplexity {model.usage(x)[1]:.2f}")
    assert last < first - 5 and model.usage(x)[1] > 2
    with pytest.raises(InputError, match="codebook"):
        VQVAE(6, codebook="kmeans")
