"""Homework that grades itself: graders for the backward-pass exercises.

A test cell of a homework notebook calls a check with the student's code::

    from numpyvae.exercises import check_linear
    check_linear(Linear)           # prints PASS/FAIL per part; AssertionError on a failure

Each check is seeded, grades every part separately (forward, each
gradient) against the package's reference implementation and centred
differences in float64, and on failure says which part, the worst index,
ours vs expected, and a HINT read off the numbers (sign flipped, averaged
instead of summed, missing .T, never written, variance used as standard
deviation, ...).  ``grade_*`` return the Report without raising.

For a lecturer (``python -m numpyvae.exercises --help``)::

    python -m numpyvae.exercises make-student notebooks/homework --out handout/
    python -m numpyvae.exercises grade submission.ipynb

Modules: ``report`` (verdicts), ``diagnose`` (hints from the numbers),
``guard`` (the student's exceptions as sentences), ``checks`` (the
exercises), ``notebook`` (student versions and grading a notebook).
"""
from .checks import (EXERCISES, check_activation, check_bernoulli, check_fixed_gaussian, check_gradient, check_kl,
                     check_kl_diag, check_linear, check_reparameterize, check_vae_backward, grade_activation,
                     grade_bernoulli, grade_fixed_gaussian, grade_gradient, grade_kl, grade_kl_diag, grade_linear,
                     grade_names, grade_reparameterize, grade_vae_backward, small_vae)
from .report import Part, Report

__all__ = ["EXERCISES", "Part", "Report", "check_activation", "check_bernoulli", "check_fixed_gaussian",
           "check_gradient", "check_kl", "check_kl_diag", "check_linear", "check_reparameterize",
           "check_vae_backward", "grade_activation", "grade_bernoulli", "grade_fixed_gaussian", "grade_gradient",
           "grade_kl", "grade_kl_diag", "grade_linear", "grade_names", "grade_reparameterize",
           "grade_vae_backward", "small_vae"]
