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
