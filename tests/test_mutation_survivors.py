"""Tests for the mutants the first mutation report wrongly called equivalent (issue 17).

mutation/REPORT.md listed 20 survivors as equivalent.  Two were not:
  - gradcheck.Check.passed with `<=` instead of `<`: a check with error exactly
    TOL (1e-7) would pass;
  - the probe in gradcheck._changes_output with -0.5 instead of 0.5: entries equal
    to +-0.5 are fixed points of arr - 0.5 + |arr|, so an undeclared parameter
    filled with 0.5 would not be seen to change the output and check_layer
    would check the layer without it.
mutation/recheck.py re-applies each of these mutants and shows the tests below fail.
"""
import numpy as np
import pytest

from numpyvae import InputError
from numpyvae.gradcheck import TOL, Check, check_layer, layer_params
from numpyvae.layers import Linear


def test_a_check_at_exactly_the_tolerance_fails():
    assert TOL == 1e-7
    at = Check("x", TOL, (0,), 1.0, 1.0)
    below = Check("x", float(np.nextafter(TOL, 0)), (0,), 1.0, 1.0)
    assert not at.passed, f"error exactly {TOL!r}: ours passed={at.passed} vs expected False (the verdict is error < TOL)"
    assert below.passed, f"error just below TOL: ours passed={below.passed} vs expected True"


class ScaledLinear(Linear):
    """A Linear layer with an extra multiplicative parameter and no gradient for it (a bug to catch)."""

    def __init__(self, value, **kw):
        super().__init__(3, 2, dtype=np.float64, rng=np.random.default_rng(0), **kw)
        self.scale = np.full(2, value)

    def forward(self, x):
        return super().forward(x) * self.scale


@pytest.mark.parametrize("value", [0.5, -0.5, 0.0, 1.0])
def test_an_undeclared_parameter_is_refused_whatever_its_value(value):
    layer = ScaledLinear(value)
    x = np.random.default_rng(1).standard_normal((4, 3))
    with pytest.raises(InputError, match="scale changes the output but has no gradient"):
        layer_params(layer, x)
    with pytest.raises(InputError, match="scale"):
        check_layer(layer, x, np.random.default_rng(2))
