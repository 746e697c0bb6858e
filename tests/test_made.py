"""The masked autoregressive prior over codes (numpyvae/discrete/made.py): autoregressive by construction,
normalised over every grid (enumeration), its gradient against centred differences, its samples against
the exact probabilities."""
import itertools

import numpy as np
import pytest

from numpyvae.discrete.made import MADE
from numpyvae.errors import InputError
from numpyvae.gradcheck import compare, numerical_gradient


def made(M=3, K=3, H=7, seed=0):
    model = MADE(M, K, hidden=H, seed=seed)
    rng = np.random.default_rng(seed + 10)
    for p in model.params.values():
        p[...] = rng.normal(size=p.shape)                 # biases too: no unit sits at its kink by construction
    return model


def test_position_m_sees_only_the_codes_before_it():
    model = made(M=4, K=3, H=9)
    rng = np.random.default_rng(1)
    for _ in range(20):
        c = rng.integers(0, 3, size=(1, 4))
        o, _ = model._forward(model._one_hot(c))
        for j in range(4):                               # change the code at position j
            c2 = c.copy()
            c2[0, j] = (c2[0, j] + 1) % 3
            o2, _ = model._forward(model._one_hot(c2))
            for m in range(j + 1):                       # positions 0..j must not see it
                assert np.array_equal(o[0, m], o2[0, m]), f"position {m} changed when code {j} changed"


def test_probabilities_sum_to_one_over_every_grid():
    model = made()
    grids = np.array(list(itertools.product(range(3), repeat=3)))
    total = np.exp(model.log_prob(grids)).sum()
    assert total == pytest.approx(1.0, abs=1e-12), f"sum over all 27 grids: ours {total!r} vs expected 1"


def test_gradient_matches_centred_differences():
    model = made()
    codes = np.random.default_rng(2).integers(0, 3, size=(5, 3))
    loss, grads = model.loss_and_grads(codes)
    grads = {k: v.copy() for k, v in grads.items()}
    assert loss == pytest.approx(-model.log_prob(codes).mean(), rel=1e-12)
    for name, p in model.params.items():
        check = compare(name, grads[name], numerical_gradient(lambda: -float(model.log_prob(codes).mean()), p))
        assert check.passed, str(check)


def test_samples_follow_the_exact_probabilities():
    model = made(M=2, K=3, H=5, seed=3)
    grids = np.array(list(itertools.product(range(3), repeat=2)))
    p = np.exp(model.log_prob(grids))
    s = model.sample(60_000, np.random.default_rng(4))
    counts = np.array([np.sum((s == g).all(axis=1)) for g in grids])
    chi2 = float(((counts - 60_000 * p) ** 2 / (60_000 * p)).sum())
    print("counts", counts, "expected", np.round(60_000 * p), "chi2", chi2)
    assert chi2 < 26.1, f"chi-square {chi2:.1f} with 8 degrees of freedom (p < 0.001): ours {counts} vs {60_000 * p}"


def test_training_lowers_the_code_likelihood_and_bad_input_is_refused():
    rng = np.random.default_rng(5)
    first = rng.integers(0, 4, size=400)
    codes = np.stack([first, (first + 1) % 4, rng.integers(0, 4, size=400)], axis=1)   # c2 follows c1
    model = MADE(3, 4, hidden=16, seed=1)
    from numpyvae.optim import Adam
    opt = Adam(model.params, lr=1e-2)
    start = model.loss_and_grads(codes)[0]
    for _ in range(300):
        opt.step(model.loss_and_grads(codes)[1])
    end = model.loss_and_grads(codes)[0]
    # the data's entropy: log 4 (c1) + 0 (c2 given c1) + log 4 (c3) nats
    print(f"{start:.3f} -> {end:.3f} nats; the data's entropy {2 * np.log(4):.3f}")
    assert end < 2 * np.log(4) + 0.1 < start
    for bad in (np.full((2, 3), 4), np.full((2, 3), 0.5), np.zeros((2, 2))):
        with pytest.raises(InputError, match="codes"):
            model.log_prob(bad)
    with pytest.raises(InputError, match="n_positions"):
        MADE(1, 3)
