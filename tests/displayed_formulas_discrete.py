"""Read note 15's displayed formulas (categorical latents) and evaluate them as written.

Note 15 (derivations/15-discrete-latents.md) shows one latent of K classes.
``displayed_formulas.equations`` hands its displays to ``normalise`` below,
which rewrites them, without storing any formula, into what SymPy's
``parse_latex`` reads, and ``evaluate`` is displayed_formulas.evaluate with
the operators defined here.  The notation:

* a class subscript (``q_k``, ``l_j``, ``y_j``, ``\\bar z_j``) is dropped: the
  symbol is an array over the classes, axis 0, shape (K, 1);
* ``z`` (in displays about expectations) is every configuration at once,
  one-hot, shape (K, C): configurations run along the last axis, and a
  function of z (``q(z)``, ``f(z)``, ``\\log p(x \\mid z)``) gives (C,);
* ``z_s`` is S given samples, (K, S), and ``b_s`` the S baselines;
* ``\\sum_{k}`` / ``\\sum_{j}`` sum over the classes (axis 0, kept as (1, ...)),
  ``\\sum_{s}`` over the samples and ``\\sum_{z}`` over the configurations
  (the last axis);
* ``\\mathbb E_{q}[X]`` is sum_c q(z_c) X(z_c) over the configurations (last axis);
* ``\\nabla_{v} X`` is the derivative by centred differences in every entry
  of v (a parameter such as the logits l, or a value such as z, perturbed
  alone): shape v.shape for a scalar X, (v.size, *X.shape) otherwise;
* names: ``\\hat g_{\\mathrm{MA}}`` -> g_{ma}, ``\\bar f`` -> f_{bar}, ``b_{t+1}``
  -> b_{next}, ``b_t`` -> b_{now}, ``\\operatorname{KL}(q \\| p)`` -> K_{L},
  ``\\mathcal L`` -> L_{elbo}, ``P(\\arg\\max_k (l_k + g_k) = j)`` -> P_{gmax}, ...
"""
import re

import numpy as np

import displayed_formulas as F

NAMES = [
    (r"\\hat\s*g_\{\\mathrm\{MA\}\}", "g_{ma}"),
    (r"\\hat\s*g_\{\\mathrm\{LOO\}\}", "g_{loo}"),
    (r"\\bar\s*f_t", "f_{bar}"),
    (r"\\bar\s*f", "f_{bar}"),
    (r"\\bar\s*([lyz])(?:_[jk])?", r"\1_{bar}"),
    (r"b_\{t\+1\}", "b_{next}"),
    (r"b_t\b", "b_{now}"),
    (r"b_s\b", "b_{loo}"),
    (r"z_s\b", "z_{smp}"),
    (r"P\(\\arg\\max_k \(l_k \+ g_k\) = j\)", "P_{gmax}"),
    (r"\\operatorname\{KL\}\(q \\\| p\)", "K_{L}"),
    (r"\\mathcal\s*L", "L_{elbo}"),
    (r"\\log p\(x \\mid z\)", r"\\log L_{lik}(z)"),
    (r"\\log_2 p\(x\)", r"\\log_{2} M_{px}"),
    (r"\\log p\(x\)", r"\\log M_{px}"),
    (r"\\mathrm\{bpd\}", "B_{pd}"),
    (r"q\(z\)", "Q(z)"),
    (r"q\(z_\{smp\}\)", "Q(z_{smp})"),
    (r"p\(z\)", "R_{prior}(z)"),
    (r"([a-zA-Z])_(?:[jk])(?![a-zA-Z{])", r"\1"),             # class subscripts: arrays over the classes
]
SUMS = {"k": "S_{cls}", "j": "S_{cls}", "s": "S_{smp}", "z": "S_{cfg}"}


def normalise(latex):
    s = " ".join(latex.split("\n"))
    for pattern, repl in F.CLEANUP:
        s = re.sub(pattern, repl, s)
    s = re.sub(r"\s+", " ", s).strip().rstrip(".,").strip()
    for pattern, repl in NAMES:
        s = re.sub(pattern, repl, s)
    s = F.rewrite_operator(s, r"\\mathbb\s*E_\{q\}", "E_{q}")
    s = re.sub(r"(?<![\\a-zA-Z_{}])([a-z])\s+\(", r"\1 \\cdot (", s)     # q (a + b): a product, not a call
    for var, name in SUMS.items():
        while (m := re.search(r"\\sum_\{" + var + r"\}\s*", s)):
            j = F.term_end(s, m.end(), stops=("\\qquad",))   # a summand ends at + - = , or \qquad
            s = s[:m.start()] + name + "(" + s[m.end():j].strip() + ")" + s[j:]
    while True:                                       # \nabla_{v} X -> D_{v}(X)
        m = re.search(r"\\nabla_\{([a-z])\}", s)
        if not m:
            break
        i = m.end()
        j = F.operand_end(s, i)
        s = s[:m.start()] + f"D_{{{m.group(1)}}}(" + s[i:j].strip() + ")" + s[j:]
    if "\\" in re.sub(r"\\(frac|log|tau|alpha|cdot|qquad)(?![a-zA-Z])", "", s):
        raise ValueError(f"note 15: cannot read {s!r}")
    return re.sub(r"\s+", " ", s).strip()


# ----------------------------------------------------------------- operators
@F.operator
def sum_classes(args, ctx):
    return np.sum(F.evaluate(args[0], ctx), axis=0, keepdims=True)


@F.operator
def sum_last(args, ctx):
    """A sum over samples or configurations (the last axis); a per-class array (K, n) stays a column (K, 1)."""
    values = np.asarray(F.evaluate(args[0], ctx))
    return np.sum(values, axis=-1, keepdims=values.ndim >= 2)


@F.operator
def expectation_q(args, ctx):
    """E_q[X] = sum over the configurations (last axis of X) weighted by q(z_c)."""
    weights = F.value(ctx, "Q")(F.value(ctx, "z"))
    values = np.asarray(F.evaluate(args[0], ctx))
    return np.sum(values * weights, axis=-1, keepdims=values.ndim >= 2)


def derivative_in(var):
    """D_{var}(X): centred differences of X in every entry of var (a parameter, or a value perturbed alone)."""
    @F.operator
    def D(args, ctx):
        if var in ctx.params:
            base, moved = ctx.params[var], (lambda v: ctx.with_params(**{var: v}))
        else:
            base, moved = np.asarray(F.value(ctx, var), float), (lambda v: ctx.with_values(**{var: v}))
        f0 = np.asarray(F.evaluate(args[0], ctx), float)
        out = np.empty((base.size, *f0.shape))
        for i in range(base.size):
            up, down = base.copy().ravel(), base.copy().ravel()
            up[i] += ctx.h
            down[i] -= ctx.h
            out[i] = (np.asarray(F.evaluate(args[0], moved(up.reshape(base.shape))))
                      - np.asarray(F.evaluate(args[0], moved(down.reshape(base.shape))))) / (2 * ctx.h)
        return out.reshape(base.shape) if f0.ndim == 0 else out
    return D


OPERATORS = {"S_{cls}": sum_classes, "S_{smp}": sum_last, "S_{cfg}": sum_last, "E_{q}": expectation_q,
             "D_{l}": derivative_in("l"), "D_{z}": derivative_in("z")}
