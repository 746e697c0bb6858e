"""Read note 14's displayed formulas (learned priors, the conditional VAE) in the notation of note 14.

Note 14 (derivations/14-learned-priors-and-cvae.md) writes a mixture's
components with the index c (``m_c``, ``\\sum_c``, ``r_c``), the softmax's with
b, the samples with k (``z_k``), and densities the notation table of
tests/displayed_formulas.py does not name: a component ``\\mathcal N(z; m_c,
e^{s_c})``, the VampPrior's ``q(z \\mid u_c)``, and the conditional model's
``p(x \\mid z, y)``, ``q(z \\mid x, y)``, ``p(x \\mid y)``.  ``normalise`` renames
these (still without storing any formula) and then reads the display with
``displayed_formulas.normalise``:

* ``\\mathcal N(z; m_c, e^{s_c})`` -> ``N_{comp}``, the C component densities at z (an array over c);
* ``q(z \\mid u_c)`` -> ``Q_{vamp}(z)``, the encoder's C posteriors at the pseudo-inputs, at z;
* ``p(x \\mid z, y)`` -> ``L_{cond}(z)``; ``q(z \\mid x, y)`` -> ``Q(z)`` (the proposal, as q(z | x) in
  note 02); ``p(x \\mid y)`` -> ``M_{pxy}``;
* a sample ``z_k`` -> the array ``z_{s}`` of K draws (a sum over k is a sum over them);
* M2: ``\\mathcal L(x, y)`` -> ``L_{lab}``, ``\\mathcal U(x)`` -> ``U_{unl}``, ``q(y \\mid x)`` -> ``Q_{cls}`` (arrays
  over the labels; ``\\sum_y`` sums over them), ``p(x, y)`` -> ``J_{xy}``, ``p(y)`` -> ``P_{y}``;
* the index c (and b) is a per-coordinate index: ``m_c`` is the array of the C means, ``\\sum_c``
  sums over them (the last axis), exactly as j is read in the other notes.
"""
import re

import displayed_formulas as F


def normalise(latex):
    s = " ".join(latex.split("\n"))
    s = re.sub(r"\\mathcal\s*N\s*\(\s*z\s*;\s*m_c\s*,\s*e\^\{s_c\}\s*\)", "N_{comp}", s)
    s = re.sub(r"q\(\s*z\s*\\mid\s*u_c\s*\)", r"Q_{vamp}(z)", s)
    s = re.sub(r"p\(\s*x\s*\\mid\s*z(_k)?\s*,\s*y\s*\)", lambda m: r"L_{cond}(z%s)" % ("_{s}" if m.group(1) else ""), s)
    s = re.sub(r"q\(\s*z(_k)?\s*\\mid\s*x(?:\s*,\s*y)?\s*\)", lambda m: r"Q(z%s)" % ("_{s}" if m.group(1) else ""), s)
    s = re.sub(r"p\(\s*x\s*\\mid\s*y\s*\)", "M_{pxy}", s)
    s = re.sub(r"p\(\s*z_k\s*\)", r"R_{prior}(z_{s})", s)
    s = re.sub(r"z_k\b", "z_{s}", s)
    # M2: the label as a latent (its posterior q(y | x) an array over the labels), the bounds L and U
    s = re.sub(r"\\mathcal\s*L\(\s*x\s*,\s*[yc]\s*\)", "L_{lab}", s)
    s = re.sub(r"\\mathcal\s*U\(\s*x\s*\)", "U_{unl}", s)
    s = re.sub(r"q\(\s*[yc]\s*\\mid\s*x\s*\)", "Q_{cls}", s)
    s = re.sub(r"p\(\s*x\s*,\s*y\s*\)", "J_{xy}", s)
    s = re.sub(r"p\(\s*y\s*\)", "P_{y}", s)
    s = re.sub(r"\\sum_y\b", r"\\sum_j", s)
    s = re.sub(r"\\partial\s*a_c", r"\\partial a", s)
    s = re.sub(r"_(?:c|b)\b", "_j", s)             # the component index: per coordinate, like j
    s = re.sub(r"_\{(?:c|b)\}", "_j", s)
    s = F.normalise(s)
    return re.sub(r"Q_\{cls\}\s*\(", r"Q_{cls} \\cdot (", s)       # a product, not a call of Q_{cls}
