"""Plant wrong displayed formulas in note 13 (planar flows), one at a time, and show each fails pytest.

Run from the repository root:  python mutation/planted_formulas_flows.py
Each plant edits the displayed LaTeX of one $$ block of derivations/13-planar-flows.md,
runs tests/test_displayed_formulas_flows.py and the parse check of
tests/test_displayed_formulas.py, restores the note, and prints which tests failed
(a plant that fails nothing is reported as SURVIVED and makes the script exit 1).
"""
from plant_displays import run

NOTE = "derivations/13-planar-flows.md"
PLANTS = [
 (r"= \log q_0(z_0) - \sum_{k=1}^{K}", r"= \log q_0(z_0) + \sum_{k=1}^{K}", "13.1: the log-dets added (a sign)"),
 (r"J = I + \hat u \otimes \psi(z)", r"J = I + \psi(z) \otimes \hat u", "13.3: the outer product transposed"),
 (r"\psi(z) = (1 - \tanh^2(\langle w, z \rangle + b))\, w", r"\psi(z) = \tanh(\langle w, z \rangle + b)\, w",
  "13.3: psi with h instead of h'"),
 (r"\det(I + a \otimes c) = 1 + \langle c, a \rangle", r"\det(I + a \otimes c) = 1 - \langle c, a \rangle",
  "13.4: the determinant lemma with a sign"),
 (r"\log \left| \det J \right| = \log \left| 1 + (1 - t^2) \langle w, \hat u \rangle \right|",
  r"\log \left| \det J \right| = \log \left| 1 - (1 - t^2) \langle w, \hat u \rangle \right|", "13.4: a sign in the log-det"),
 (r"-\frac{2 (1 - t^2) t \langle w, \hat u \rangle}", r"-\frac{2 (1 - t^2)^2 t \langle w, \hat u \rangle}",
  "13.5: d ell / d b with (1 - t^2) squared (the slip this note's first draft made)"),
 (r"\frac{\partial \ell}{\partial w} = \frac{\partial \ell}{\partial b} z + ", r"\frac{\partial \ell}{\partial w} = ",
  "13.5: d ell / d w without the path through t"),
 (r"\hat u = u + (m(\langle w, u \rangle) - \langle w, u \rangle) \frac{w}{\langle w, w \rangle}",
  r"\hat u = u + m(\langle w, u \rangle) \frac{w}{\langle w, w \rangle}", "13.6: u_hat without the - <w, u>"),
 (r"m(a) = -1 + \operatorname{softplus}(a)", r"m(a) = 1 + \operatorname{softplus}(a)", "13.6: m with +1"),
 (r"\bar u = \bar g + \frac{(\sigma(a) - 1)", r"\bar u = \bar g + \frac{\sigma(a)", "13.7: m' - 1 written as m'"),
 (r"= t^2 + (1 - t^2) (1 + \langle w, \hat u \rangle) \ge 0", r"= t^2 + (1 - t^2) \langle w, \hat u \rangle \ge 0",
  "13.8: the rearrangement without its 1"),
 (r"z = y - \hat u \tanh(s)", r"z = y + \hat u \tanh(s)", "13.9: the inverse with a sign"),
 (r"\beta \frac{\partial h}{\partial r} r \, v \otimes v", r"\beta \frac{\partial h}{\partial r} \, v \otimes v",
  "13.11: the radial Jacobian without the factor r"),
 (r"\log \left| \det J \right| = (Z - 1) \log", r"\log \left| \det J \right| = Z \log", "13.12: Z factors 1 + beta h, not Z - 1"),
 (r"= 1 + \beta \alpha h^2", r"= 1 + \beta h^2", "13.12: the second factor without alpha"),
 (r"\beta = -\alpha + \operatorname{softplus}(c)", r"\beta = \alpha + \operatorname{softplus}(c)", "13.13: beta with +alpha"),
 (r"\frac{\partial \ell}{\partial \alpha} = \frac{\partial \ell}{\partial r} + ", r"\frac{\partial \ell}{\partial \alpha} = ",
  "13.14: d ell / d alpha without the path through h"),
 (r"r^2 + (\alpha + \beta - \lVert y - z_0 \rVert) r", r"r^2 + (\alpha - \beta - \lVert y - z_0 \rVert) r",
  "13.15: the inverse's quadratic with -beta"),
]
TESTS = ["tests/test_displayed_formulas_flows.py", "tests/test_displayed_formulas.py::test_every_displayed_formula_parses"]

if __name__ == "__main__":
    raise SystemExit(run(NOTE, PLANTS, TESTS))
