"""Plant wrong displayed formulas in note 12 (convolution), one at a time, and show each fails pytest.

Run from the repository root:  python mutation/planted_formulas_conv.py
Each plant edits the displayed LaTeX of one $$ block of derivations/12-convolution.md,
runs tests/test_displayed_formulas_conv.py, the parse check of
tests/test_displayed_formulas.py and the note's doctests, restores the note, and
prints which tests failed (a plant that fails nothing is reported as SURVIVED and
makes the script exit 1).
"""
from plant_displays import run

NOTE = "derivations/12-convolution.md"
PLANTS = [
 (r"W_{f c u v}\, \tilde x_{n, c, s i + u, s j + v},", r"W_{f c u v}\, \tilde x_{n, c, i + u, j + v},",
  "C1: the stride missing (s i + u -> i + u)"),
 (r"W_{f c u v}\, \tilde x_{n, c, s i + u, s j + v},", r"W_{f, c, k_h - 1 - u, k_w - 1 - v}\, \tilde x_{n, c, s i + u, s j + v},",
  "C1: the kernel flipped (a true convolution instead of the cross-correlation)"),
 (r"\right\rfloor + 1", r"\right\rfloor", "C1: H_o without its + 1"),
 (r"Y_{\mathrm{mat}} = X_{\mathrm{col}} W_{\mathrm{mat}}^\top", r"Y_{\mathrm{mat}} = W_{\mathrm{mat}}^\top X_{\mathrm{col}}",
  "C2: the product's factors swapped (W_mat^T X_col)"),
 (r"\mathbf 1 b^\top", r"\mathbf 1 b", "C2: the bias row without its transpose"),
 (r"\bar y_{n f i j}\, \tilde x_{n, c, s i + u, s j + v},", r"\bar y_{n f i j}\, \tilde x_{n, c, s i + k_h - 1 - u, s j + k_w - 1 - v},",
  "C3: dW with the kernel offset flipped"),
 (r"\bar b_f = \sum_{n, i, j} \bar y_{n f i j}", r"\bar b_f = \sum_{n} \bar y_{n f i j}", "C3: the bias gradient summed over the batch only"),
 (r"\bar b_f = \sum_{n, i, j} \bar y_{n f i j}", r"\bar b_f = \sum_{i, j} \bar y_{n f i j}", "C3: the bias gradient summed over positions only"),
 (r"i, u:\ s i + u = r \\ j, v:\ s j + v = q", r"i, u:\ i + u = r \\ j, v:\ j + v = q", "C3: the input gradient without the stride (ybar not dilated)"),
 (r"i, u:\ s i + u = r \\ j, v:\ s j + v = q", r"i, u:\ s i - u = r \\ j, v:\ s j - v = q", "C3: the input gradient with u, v entering the wrong way"),
 (r"\bar x_{n c r q} = \bar{\tilde x}_{n, c, r + p, q + p}", r"\bar x_{n c r q} = \bar{\tilde x}_{n, c, r, q}", "C3p: x's gradient cut from the corner, not the centre"),
 (r"\langle x, A^\top y \rangle", r"\langle x, A y \rangle", "C4: the adjoint without its transpose"),
 (r"- 2 p + k_h + o", r"- p + k_h + o", "C4: H_out with -p instead of -2p"),
 (r"(H_{\mathrm{in}} - 1)\, s", r"H_{\mathrm{in}}\, s", "C4: H_out with H_in s instead of (H_in - 1) s"),
]
TESTS = ["tests/test_displayed_formulas_conv.py", "tests/test_displayed_formulas.py::test_every_displayed_formula_parses", NOTE]

if __name__ == "__main__":
    raise SystemExit(run(NOTE, PLANTS, TESTS, pytest_args=("-k", "not test_a_")))   # the controls edit the unplanted text themselves
