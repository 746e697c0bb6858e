"""The semi-supervised M2 (numpyvae/m2.py): gradients, and the unlabelled bound against an exact model.

Exact case: the linear-Gaussian CVAE of tests/test_cvae.py (exact posterior
encoder) with a linear classifier holding the exact p(y | x) -- the classes
are Gaussians with a shared covariance, so log p(y | x) is linear in x.
Then every bound is tight: U(x) = log p(x) = log (1/Y) sum_y p(x | y).  With
another classifier the gap is exactly KL(q(y | x) || p(y | x)).
"""
import math

import numpy as np
import pytest

from numpyvae import InputError
from numpyvae.cvae import CVAE
from numpyvae.gradcheck import compare, numerical_gradient
from numpyvae.layers import log_softmax
from numpyvae.m2 import M2, train
from test_cvae import D, S2, Y, data, exact_log_p_x_given_y, linear_gaussian_cvae


def exact_m2(seed=0):
    cvae, A, V, b = linear_gaussian_cvae(seed)
    m = M2(cvae, classifier_hidden=[], seed=1)
    C = A @ A.T + S2 * np.eye(D)
    means = (V + b[:, None]).T                                   # (Y, D): the class means of x
    P = np.linalg.solve(C, means.T)                              # C^-1 mu_y, (D, Y)
    lin = m.classifier.linears[0]
    lin.W[...] = P
    lin.b[...] = -0.5 * np.sum(means.T * P, axis=0)
    return m, A, V, b


def exact_log_px(x, A, V, b):
    per_class = np.stack([exact_log_p_x_given_y(x, np.full(len(x), c), A, V, b) for c in range(Y)], axis=1)
    top = per_class.max(axis=1)
    return top + np.log(np.exp(per_class - top[:, None]).sum(axis=1)) - math.log(Y), per_class


def test_unlabelled_bound_is_log_px_at_the_exact_posteriors():
    m, A, V, b = exact_m2()
    x, _ = data(n=5)
    expected, per_class = exact_log_px(x, A, V, b)
    L, U = m.bounds(x, np.random.default_rng(0), "mc", k=2)
    np.testing.assert_allclose(L, per_class - math.log(Y), rtol=1e-10, err_msg="L(x, y) vs log p(x, y)")
    np.testing.assert_allclose(U, expected, rtol=1e-10, err_msg="U(x) vs log p(x)")


def test_unlabelled_gap_is_the_classifiers_kl():
    m, A, V, b = exact_m2()
    m.classifier.linears[0].b[...] += np.array([0.7, -0.4, 0.1])  # q(y|x) no longer p(y|x)
    x, _ = data(n=5)
    expected, per_class = exact_log_px(x, A, V, b)
    log_post = per_class - np.log(np.exp(per_class - per_class.max(1, keepdims=True)).sum(1, keepdims=True)) \
        - per_class.max(1, keepdims=True)
    q, _ = m.classify(x)
    kl = np.sum(q * (np.log(q) - log_post), axis=1)
    _, U = m.bounds(x, np.random.default_rng(1), "mc", k=2)
    assert kl.max() > 0.05, f"the instance's gaps {kl} are too small to see"
    np.testing.assert_allclose(U, expected - kl, rtol=1e-10, err_msg="U(x) vs log p(x) - KL(q(y|x) || p(y|x))")


@pytest.mark.parametrize("estimator", ["analytic", "iwae"])
def test_m2_gradient_every_parameter_float64(estimator):
    cvae = CVAE(6, 3, hidden=[5], z_dim=2, dtype=np.float64, seed=2, activation="tanh")   # no ReLU kink
    m = M2(cvae, classifier_hidden=[4], activation="tanh", seed=3)
    rng = np.random.default_rng(4)
    x_l, y_l, x_u = rng.random((3, 6)), np.array([2, 0, 1]), rng.random((4, 6))
    eps_l, eps_u = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 4, 2))
    kw = dict(eps_l=eps_l, eps_u=eps_u, estimator=estimator, alpha=0.7)
    _, grads = m.loss_and_grads(x_l, y_l, x_u, **kw)
    f = lambda: m.loss_and_grads(x_l, y_l, x_u, **kw)[0]
    for name, p in m.params.items():
        c = compare(name, grads[name], numerical_gradient(f, p))
        assert c.passed, str(c)


def test_log_softmax_rows_is_stable():
    out = log_softmax(np.array([[1e300, 0.0, -1e300], [0.0, 0.0, 0.0]]))
    assert np.all(np.isfinite(out[1])) and out[0, 0] == 0 and np.allclose(out[1], -math.log(3))


def test_training_on_a_few_labels_classifies_the_digits():
    from numpyvae.data import load
    d = load("digits")
    rng = np.random.default_rng(5)
    labelled = np.concatenate([rng.choice(np.flatnonzero(d.y_train == c), 5, replace=False) for c in range(10)])
    m = M2(CVAE(d.x_dim, 10, hidden=[32], z_dim=4, seed=0), classifier_hidden=[32], seed=0)
    history = train(m, d.x_train[labelled], d.y_train[labelled], d.x_train, 4, np.random.default_rng(6),
                    batch_size=50, lr=3e-3, alpha=10.0)
    accuracy = np.mean(m.classify(d.x_test)[1] == d.y_test)
    assert history[-1] < history[0] and accuracy > 0.5, f"accuracy {accuracy:.3f}, losses {history}"


def test_bad_arguments_are_refused():
    with pytest.raises(InputError, match="cvae"):
        M2(object())
    m = M2(CVAE(6, 3, hidden=[5], z_dim=2), classifier_hidden=[4])
    with pytest.raises(InputError, match="y_l"):
        m.loss_and_grads(np.zeros((2, 6)), [0, 5], np.zeros((2, 6)), rng=np.random.default_rng(0))
    with pytest.raises(InputError, match="alpha"):
        m.loss_and_grads(np.zeros((2, 6)), [0, 1], np.zeros((2, 6)), rng=np.random.default_rng(0), alpha=-1)
    with pytest.raises(InputError, match="x_u"):
        m.loss_and_grads(np.zeros((2, 6)), [0, 1], np.zeros((2, 5)), rng=np.random.default_rng(0))


def test_reproduce_m2_quick_mode_runs_and_reports_paired_errors(tmp_path):
    import os
    import sys
    from datasets_helpers import REPO
    sys.path.insert(0, os.path.join(REPO, "reproduce"))
    try:
        import m2_mnist
    finally:
        sys.path.pop(0)
    result = m2_mnist.main(["--quick", "--out", str(tmp_path)])
    r = result["runs"]["0"]
    assert r["n_labels"] == 50 and 0 <= r["m2_error"] <= 100 and 0 <= r["baseline_error"] <= 100
    assert abs(r["paired_difference"] - (r["m2_error"] - r["baseline_error"])) < 1e-9
    assert (tmp_path / "table.md").exists()


def test_the_training_loss_is_the_stated_objective():
    """-(mean L(x_l, y_l) + mean U(x_u) + alpha mean log q(y_l|x_l)), from bounds() and classify() (exact model:
    every sampled bound is exact, so the eps drawn do not matter)."""
    m, A, V, b = exact_m2()
    m.classifier.linears[0].b[...] += np.array([0.5, -0.3, 0.2])
    x, y = data(n=6)
    x_l, y_l, x_u = x[:3], y[:3], x[3:]
    L_l, _ = m.bounds(x_l, np.random.default_rng(0), "mc")
    _, U = m.bounds(x_u, np.random.default_rng(1), "mc")
    q_l, _ = m.classify(x_l)
    alpha = 0.8
    expected = -(L_l[np.arange(3), y_l].mean() + U.mean() + alpha * np.log(q_l[np.arange(3), y_l]).mean())
    ours, _ = m.loss_and_grads(x_l, y_l, x_u, rng=np.random.default_rng(2), estimator="mc", alpha=alpha)
    assert abs(ours - expected) < 1e-9 * abs(expected), f"ours {ours} vs expected {expected}"
