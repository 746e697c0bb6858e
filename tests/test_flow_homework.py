"""Homework 4's grader (numpyvae/exercises/flow_checks.py): its expected values, and a hint for each slip.

The judge's expected values are slogdet of the full Jacobian and centred differences of it; here they
are checked against the package's planar step (numpyvae.flows, itself gradient-checked in
tests/test_flows.py), and every typical slip is graded FAIL with the sentence that names it.
"""
import numpy as np
import pytest

from numpyvae import flows
from numpyvae.exercises import grade_planar
from numpyvae.exercises.flow_checks import expected_gradients, logdet_by_matrices, planar_cases


@pytest.mark.parametrize("case", planar_cases(0, 7), ids=lambda c: c["label"])
def test_the_judges_values_are_the_packages(case):
    z, u_hat, w, g, b = case["z"], case["u_hat"], case["w"], case["g"], case["b"]
    _, logdet, cache = flows.planar_forward(z[:, None, :], u_hat[None], w[None], np.array([b]))
    dz, du_hat, dw, db = flows.planar_backward(np.zeros((len(z), 1, len(w))), g[:, None], cache)
    ref = logdet_by_matrices(z, u_hat, w, b)
    print(f"{case['label']}: logdet ours (slogdet) {ref} vs package {logdet[:, 0]}")
    assert np.allclose(ref, logdet[:, 0], rtol=1e-12, atol=1e-12)
    for name, ours, pkg in zip(("dz", "du_hat", "dw", "db"), expected_gradients(g, z, u_hat, w, b),
                               (dz[:, 0], du_hat[0], dw[0], db[0])):
        assert np.allclose(ours, pkg, rtol=1e-6, atol=1e-8), f"{name}: judge {ours} vs package {pkg}"


def right_logdet(z, u_hat, w, b):
    t = np.tanh(z @ w + b)
    return np.log(np.abs(1 + (1 - t ** 2) * (w @ u_hat)))


def right_backward(g, z, u_hat, w, b):
    t = np.tanh(z @ w + b)
    h1, c = 1 - t ** 2, w @ u_hat
    dD = g / (1 + h1 * c)
    ds = dD * c * (-2 * t) * h1
    dc = np.sum(dD * h1)
    return ds[:, None] * w[None], dc * w, ds @ z + dc * u_hat, float(np.sum(ds))


def test_a_right_answer_passes_public_and_hidden_cases():
    report = grade_planar(right_logdet, right_backward, hidden=12345)
    print(report)
    assert report.passed


def _with(part, value_of):
    """right_backward with one of its four outputs replaced by value_of(g, z, u_hat, w, b)."""
    i = ("dz", "du_hat", "dw", "db").index(part)

    def backward(g, z, u_hat, w, b):
        out = list(right_backward(g, z, u_hat, w, b))
        out[i] = value_of(g, z, u_hat, w, b)
        return tuple(out)
    return backward


def _parts(g, z, u_hat, w, b):
    t = np.tanh(z @ w + b)
    h1, c = 1 - t ** 2, w @ u_hat
    dD = g / (1 + h1 * c)
    return t, h1, c, dD, dD * c * (-2 * t) * h1


SLIPS = [
    ("logdet", lambda z, u, w, b: np.log(np.abs(1 - (1 - np.tanh(z @ w + b) ** 2) * (w @ u))), None, "sign"),
    ("logdet", lambda z, u, w, b: np.full(len(z), np.log(abs(1 + w @ u))), None, "psi is missing h'"),
    ("logdet", lambda z, u, w, b: np.log(np.abs(1 + np.tanh(z @ w + b) * (w @ u))), None, "h is used where h'"),
    ("logdet", lambda z, u, w, b: 1 + (1 - np.tanh(z @ w + b) ** 2) * (w @ u), None, "the log is missing"),
    ("db", None, lambda g, z, u, w, b: _parts(g, z, u, w, b)[4], "not summed over the rows"),
    ("db", None, lambda g, z, u, w, b: float(np.sum(_parts(g, z, u, w, b)[4] / _parts(g, z, u, w, b)[1])),
     "dt/ds = 1 - t^2 is missing"),
    ("dw", None, lambda g, z, u, w, b: np.sum(_parts(g, z, u, w, b)[4][:, None] * z, axis=0), "only the path through t"),
    ("dw", None, lambda g, z, u, w, b: np.sum(_parts(g, z, u, w, b)[3] * _parts(g, z, u, w, b)[1]) * u,
     "only the path through <w, u_hat>"),
    ("du_hat", None, lambda g, z, u, w, b: np.sum(_parts(g, z, u, w, b)[3]) * w, "missing h'"),
    ("dz", None, lambda g, z, u, w, b: -right_backward(g, z, u, w, b)[0], "wrong sign"),
]


@pytest.mark.parametrize("part,logdet,backward,hint", SLIPS, ids=[f"{s[0]}-{s[3]}" for s in SLIPS])
def test_each_slip_fails_with_its_hint(part, logdet, backward, hint):
    report = grade_planar(logdet or right_logdet, _with(part, backward) if backward else right_backward)
    print(report)
    verdicts = {p.name: p for p in report.parts}
    assert not verdicts[part].passed, f"{part}: ours PASS vs expected FAIL\n{report}"
    assert hint in verdicts[part].hint, f"{part}: ours hint {verdicts[part].hint!r} vs expected one naming {hint!r}"
    others = [p.name for p in report.parts if p.name != part and not p.passed and part != "logdet"]
    assert not others, f"a slip in {part} failed {others} too\n{report}"
