"""Read note 13's displayed formulas (planar flows) into what SymPy's parse_latex reads.

Note 13 (derivations/13-planar-flows.md) writes vectors with inner products
``\\langle w, z \\rangle``, an outer product ``a \\otimes c`` and the vector
``\\hat u``.  SymPy's products commute and act entrywise on the arrays the
evaluator binds, so before the common notation table
(tests/displayed_formulas.py's ``normalise``) this reader rewrites, without
storing any formula:

* ``\\langle a, b \\rangle`` -> ``P_{dot}(a, b)``, the inner product (sum over the last axis);
* ``a \\otimes c`` -> ``P_{outer}(a, c)``, the matrix a_i c_j;
* ``\\hat u`` -> ``\\upsilon``, one symbol (so that ``\\partial \\ell / \\partial \\hat u`` parses
  as a derivative in it);
* ``\\det J_k`` -> ``\\det(J_k)`` (a stack of matrices; the determinant of each);
* ``\\bar g``, ``\\bar u`` -> ``g_{bar}``, ``u_{bar}`` (the common table's rule).

A check then binds P_{dot}, P_{outer} and every named quantity to arrays,
and ``displayed_formulas.evaluate`` computes each side.
"""
import re

import displayed_formulas as F


def _inner(s):
    """\\langle a, b \\rangle -> P_{dot}(a, b), innermost first."""
    pat = re.compile(r"\\langle\s*([^\\,]*(?:\\[a-zA-Z]+[^\\,]*)*?)\s*,\s*((?:(?!\\langle|\\rangle).)*?)\s*\\rangle")
    while True:
        new = pat.sub(lambda m: f"P_{{dot}}({m.group(1).strip()}, {m.group(2).strip()})", s)
        if new == s:
            return s
        s = new


def normalise(latex):
    s = " ".join(latex.split("\n"))
    s = re.sub(r"\\hat\s*(?:\{u\}|u)", r"\\upsilon ", s)
    s = _inner(s)
    operand = r"(\\[a-zA-Z]+(?:\([^()]*\))?|[A-Za-z](?:\([^()]*\))?)"      # a symbol, or a call psi(z)
    s = re.sub(operand + r"\s*\\otimes\s*" + operand, r"P_{outer}(\1, \2)", s)
    s = re.sub(r"\\det\s*J_k", r"\\det(J_k)", s)
    s = re.sub(r"\\det\s*J\b", r"\\det(J)", s)
    return F.normalise(s)
