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

A check cell runs the *public* cases in the student's own kernel
("all public checks passed; hidden checks run when graded").

For a lecturer (``python -m numpyvae.exercises --help``; the guide is
notebooks/homework/README.md)::

    python -m numpyvae.exercises make-student notebooks/homework --out handout/
    python -m numpyvae.exercises make-manifest notebooks/homework/01-backward-passes.ipynb --out hw1.json
    python -m numpyvae.exercises grade --manifest hw1.json submissions/ --csv grades.csv --json-dir results/

``grade`` never runs a submission's code in its own process: each exercise
runs in a runner process (``runner``), and the judge (``grader``) computes
every verdict from the outputs it returns.

Modules: ``report`` (verdicts), ``diagnose`` (hints from the numbers),
``guard`` (the student's exceptions as sentences), ``checks`` (the
exercises: cases, run, judge), ``manifest`` (the instructor's assignment),
``runner`` (where student code runs), ``grader`` (the judge),
``notebook`` (reading notebooks, student versions).
"""
from .checks import (EXERCISES, check_activation, check_bernoulli, check_fixed_gaussian, check_gradient, check_kl,
                     check_kl_diag, check_linear, check_reparameterize, check_vae_backward, grade_activation,
                     grade_bernoulli, grade_fixed_gaussian, grade_gradient, grade_kl, grade_kl_diag, grade_linear,
                     grade_names, grade_reparameterize, grade_vae_backward, small_vae)
from .conv_checks import check_conv2d, grade_conv2d
from .flow_checks import check_planar, grade_planar
from .gumbel_checks import check_gumbel_softmax, grade_gumbel_softmax
from .report import Part, Report

__all__ = ["EXERCISES", "Part", "Report", "check_activation", "check_conv2d", "grade_conv2d", "check_planar",
           "grade_planar", "check_gumbel_softmax", "grade_gumbel_softmax", "check_bernoulli", "check_fixed_gaussian",
           "check_gradient", "check_kl", "check_kl_diag", "check_linear", "check_reparameterize",
           "check_vae_backward", "grade_activation", "grade_bernoulli", "grade_fixed_gaussian", "grade_gradient",
           "grade_kl", "grade_kl_diag", "grade_linear", "grade_names", "grade_reparameterize",
           "grade_vae_backward", "small_vae"]
