"""Homework 5 (the Gumbel-softmax sample and its gradient): the judge is right, and each typical slip
is caught with the sentence that names it."""
import numpy as np
import pytest

from numpyvae.discrete import categorical as cat
from numpyvae.exercises import grade_gumbel_softmax
from numpyvae.exercises.gumbel_checks import gumbel_cases, gumbel_judge, gumbel_run


def softmax(a, axis=-1):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def forward(logits, g, tau):
    return softmax((logits + g) / tau)


def backward(dy, y, tau):
    return y * (dy - (y * dy).sum(axis=1, keepdims=True)) / tau


def test_the_judges_expected_values_are_the_packages():
    """The judge's y (its own softmax) and dlogits (centred differences) against numpyvae.discrete."""
    for case in gumbel_cases(0, hidden=3):
        if case["dtype"] == "float32":
            continue
        l, g, dy, tau = case["logits"], case["g"], case["dy"], case["tau"]
        y, cache = cat.gumbel_softmax(l[:, None, :], g[None, :, None, :], tau)
        out = {"y": y[0, :, 0], "y, large logits": softmax(case["big"] / 0.5),
               "dlogits": cat.gumbel_softmax_backward(dy[None, :, None, :], cache)[:, 0], "failed": []}
        parts = dict((name, fn()) for name, fn in gumbel_judge(case, out))
        assert all(p.passed for p in parts.values()), f"{case['label']}: ours {parts} vs every part PASS"


def test_a_right_answer_passes_public_and_hidden_cases():
    report = grade_gumbel_softmax(forward, backward, hidden=11)
    assert report.passed, str(report)


SLIPS = [
    ("tau missing (forward)", lambda l, g, t: softmax(l + g), backward, "y", "tau is missing"),
    ("tau multiplied", lambda l, g, t: softmax((l + g) * t), backward, "y", "tau multiplies"),
    ("noise subtracted", lambda l, g, t: softmax((l - g) / t), backward, "y", "noise is subtracted"),
    ("softmax over the batch", lambda l, g, t: softmax((l + g) / t, axis=0), backward, "y", "over the batch"),
    ("no max subtracted", lambda l, g, t: np.exp((l + g) / t) / np.exp((l + g) / t).sum(1, keepdims=True), backward,
     "y, large logits", "subtract the row's maximum"),
    ("Jacobian's sign", forward, lambda dy, y, t: y * (dy + (y * dy).sum(1, keepdims=True)) / t, "dlogits",
     "Jacobian's sign"),
    ("1/tau missing", forward, lambda dy, y, t: y * (dy - (y * dy).sum(1, keepdims=True)), "dlogits",
     "1/tau is missing"),
    ("times tau", forward, lambda dy, y, t: y * (dy - (y * dy).sum(1, keepdims=True)) * t, "dlogits",
     "multiplied by tau"),
    ("no centring", forward, lambda dy, y, t: y * dy / t, "dlogits", "centring term is missing"),
    ("sum over the batch", forward, lambda dy, y, t: y * (dy - (y * dy).sum(0, keepdims=True)) / t, "dlogits",
     "over the batch"),
]


@pytest.mark.parametrize("name,fwd,bwd,part,hint", SLIPS, ids=[s[0] for s in SLIPS])
def test_each_slip_fails_its_part_with_its_hint(name, fwd, bwd, part, hint):
    with np.errstate(over="ignore", invalid="ignore"):
        report = grade_gumbel_softmax(fwd, bwd)
    failed = {p.name: p for p in report.parts if not p.passed}
    print(report)
    assert part in failed, f"{name}: ours\n{report}\nvs expected part {part!r} to FAIL"
    assert hint in failed[part].hint, f"{name}: hint ours {failed[part].hint!r} vs expected one with {hint!r}"


def test_the_backward_is_judged_on_the_reference_y():
    """A wrong forward does not fail the backward too: run hands the backward the reference y."""
    report = grade_gumbel_softmax(lambda l, g, t: softmax(l + g), backward)
    assert [p.passed for p in report.parts] == [False, True, True], str(report)


def test_float32_answers_are_judged_at_float32_precision():
    case = gumbel_cases(0, hidden=5)[3]
    assert case["dtype"] == "float32"
    out = gumbel_run((forward, backward), case)
    assert out["y"].dtype == np.float32
    assert all(fn().passed for _, fn in gumbel_judge(case, out))
