"""Read the formulas the derivation notes display, and evaluate them as written.

Scheme (see derivations/README.md, "How the displayed formulas are checked"):
every ``$$ ... $$`` block in derivations/*.md is preceded by a marker line
``<!-- formula: LABEL -->``.  ``equations(LABEL)`` takes the LaTeX the reader
sees, rewrites the notes' notation into the subset SymPy's ``parse_latex``
reads (the table ``NOTATION`` below: spacing and sizing dropped, ``\\tfrac12``
spelled out, densities named, expectations, sums and gradients turned into
operators), splits it at ``\\qquad`` into equations and at = / >= / <= into
chains, and parses every side.  ``evaluate`` then computes each side
*numerically*, on a concrete instance chosen by the check, with expectations
done by Gauss-Hermite quadrature under q, integrals by the trapezoid rule on a
fine grid and derivatives by centred differences.  Nothing here stores a copy
of a formula: editing a displayed formula changes what is evaluated.

Limits (stated in derivations/README.md): products commute in SymPy, so a
matrix formula is evaluated on a 1x1 (scalar) instance and a transposition
error in it is not seen by this parse (the gradient checks see the code's).
Per-coordinate subscripts (j, d, i, k, n, u) are dropped: the symbols become
arrays over that coordinate.
"""
import functools
import math
import pathlib
import re

import numpy as np

NOTES = pathlib.Path(__file__).resolve().parent.parent / "derivations"
MARKER = re.compile(r"^<!-- formula: ([\w.-]+) -->\n\$\$\n(.*?)\n\$\$", re.S | re.M)
BLOCK = re.compile(r"^\$\$\n(.*?)\n\$\$", re.S | re.M)


# -------------------------------------------------------------------- reading
def note_blocks():
    """{label: (note file name, latex)} for every marked display block; also the unmarked ones."""
    labelled, unmarked = {}, []
    for path in sorted(NOTES.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        marked_starts = set()
        for m in MARKER.finditer(text):
            if m.group(1) in labelled:
                raise ValueError(f"formula label {m.group(1)!r} used twice ({path.name})")
            labelled[m.group(1)] = (path.name, m.group(2))
            marked_starts.add(m.start(2))
        for m in BLOCK.finditer(text):
            if m.start(1) not in marked_starts:
                line = text[:m.start()].count("\n") + 1
                unmarked.append(f"{path.name}:{line}")
    return labelled, unmarked


def matching(s, i):
    """Index just past the group that opens at s[i] ('(', '[' or '{')."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    opener, closer, depth = s[i], pairs[s[i]], 0
    for j in range(i, len(s)):
        if s[j] == opener:
            depth += 1
        elif s[j] == closer:
            depth -= 1
            if depth == 0:
                return j + 1
    raise ValueError(f"unbalanced {opener!r} in {s!r}")


def skip_scripts(s, i):
    """Skip sub/superscripts (_x, _{..}, ^x, ^{..}) starting at i."""
    while i < len(s) and s[i] in "_^":
        i += 1
        if s[i] == "{":
            i = matching(s, i)
        elif s[i] == "\\":
            m = re.match(r"\\[a-zA-Z]+", s[i:])
            i += m.end()
        else:
            i += 1
    return i


def operand_end(s, i):
    """End of the operand starting at i: an optional \\log, then one group or one atom with its call."""
    while s[i] == " ":
        i += 1
    m = re.match(r"\\log\s*", s[i:])
    if m:
        i += m.end()
    if s[i] in "([{":
        return matching(s, i)
    m = re.match(r"\\?[A-Za-z]+(_\{[^{}]*\}|_\\[a-zA-Z]+|_[A-Za-z])?", s[i:])
    i += m.end()
    if i < len(s) and s[i] == "(":
        i = matching(s, i)
    return i


def term_end(s, i, stops=("\\ge", "\\le")):
    """End of a sum's summand when it is not bracketed: the next top-level + - = , or one of
    ``stops``, or the bracket that closes around it, or the end."""
    depth = 0
    for j in range(i, len(s)):
        c = s[j]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return j
            depth -= 1
        elif depth == 0 and (c in "+-=," or any(s.startswith(stop, j) for stop in stops)):
            return j
    return len(s)


def rewrite_operator(s, pattern, name, arg="group"):
    """Replace `pattern` (regex, at a backslash) by name(argument)."""
    while True:
        m = re.search(pattern, s)
        if not m:
            return s
        i = skip_scripts(s, m.end()) if arg != "operand" else m.end()
        sub = s[m.end():i]
        while i < len(s) and s[i] == " ":
            i += 1
        if arg == "operand":
            j = operand_end(s, i)
            inner = s[i:j]
        elif s[i] in "([{":
            j = matching(s, i)
            inner = s[i + 1:j - 1]
        else:
            j = term_end(s, i)
            inner = s[i:j]
        s = s[:m.start()] + (name(sub) if callable(name) else name) + "(" + inner + ")" + s[j:]


def kl_name(args):
    second = args.split("\\|")[-1]
    return "K_{post}" if re.search(r"z\s*\\mid\s*x", second) else "K_{prior}"


def rewrite_kl(s):
    while True:
        m = re.search(r"\\operatorname\{KL\}\s*\(", s)
        if not m:
            return re.sub(r"\\operatorname\{KL\}", "K", s)
        j = matching(s, m.end() - 1)
        args = s[m.end():j - 1]
        s = s[:m.start()] + (kl_name(args) if "\\|" in args else "K") + s[j:]


# The notes' notation -> what parse_latex reads, in three stages.
CLEANUP = [                                   # 1. layout only
    (r"\\tag\{[^}]*\}", ""),
    (r"P\(\\text\{(\w+)\}\)", r"P_{\1}"),
    (r"\\text\{[^}]*\}", ""),
    (r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|textstyle|displaystyle)\b", ""),
    (r"\\[!,;:](?![a-zA-Z])", " "),
    (r"\\[td]frac", r"\\frac"),
    (r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}"),
    (r"\\frac\s*(\d)\s*([a-zA-Z])", r"\\frac{\1}{\2}"),
    (r"\\odot", r"\\cdot"),
    (r"\\operatorname\{logvar\}", r"\\lambda"),
    (r"\\overline\{\\lambda\}", r"\\lambda_{bar}"),
]
NAMES = [                                     # 3. names of things
    (r"\\operatorname\{softplus\}", r"s_{p}"),
    (r"\\operatorname\{SNR\}", r"N_{snr}"),
    (r"\\operatorname\{Var\}\s*\[([^\]]*)\]", r"V(\1)"),
    (r"\\operatorname\{Cov\}\s*\[([^\]]*)\]", r"C_{ov}(\1)"),
    (r"\\bar\s*\\mu", r"\\mu_{bar}"),
    (r"\\bar\s*\{?([a-zA-Z])\}?(?:_[jdiknu])?", r"\1_{bar}"),
    (r"\\tilde\s*\{?([a-zA-Z])\}?(?:_[jdiknu])?", r"\1_{tilde}"),
    (r"\\hat\s*\{?([a-zA-Z])\}?(?:_[jdiknu])?", r"\1_{hat}"),
    (r"\\lVert\s*(.*?)\s*\\rVert", r"n(\1)"),
    (r"\\mathcal\s*L_\\beta", r"L_{beta}"),
    (r"\\mathcal\s*L_k", r"L_{iwae}"),
    (r"\\mathcal\s*L", "L_{elbo}"),
    (r"\\log\s*\\mathcal\s*N\(x;\s*m,\s*e\^\{v\}\)", r"G_{log}"),
    (r"\\log\s*\\mathcal\s*N", r"G_{log}"),
    (r"\\mathcal\s*N\s*\(0,\s*I\)", r"N_{std}"),
    (r"([pq])_(?:\\theta|\\phi)", r"\1"),
    (r"p'\(x'\)", r"M_{pprime}"),
    (r"p\(x\s*\\mid\s*([a-z])\)", r"L_{lik}(\1)"),
    (r"p\(z\s*\\mid\s*x\)", r"T_{post}(z)"),
    (r"q\(z\s*\\mid\s*x\)", r"Q(z)"),
    (r"p\(x,\s*z\)", r"J_{joint}(z)"),
    (r"p\(z\)", r"R_{prior}(z)"),
    (r"q\(z\)", r"Q(z)"),
    (r"p\(x\)", r"M_{px}"),
    (r"\\det\s*([A-Za-z])", r"\\det(\1)"),
    (r"\^\\top", r"^{T}"),
    (r"_\{n\\cdot\}", ""),
    # D_{phi}( ... )|_{z fixed}: the derivative with z held fixed
    (r"D_\{(\w+)\}\(((?:[^()]|\([^()]*\))*)\)\s*\|_\{z\\?\s*\}", r"H_{\1}(\2)"),
    (r"(\\partial\s*(?:\\[a-zA-Z]+|[A-Za-z]))_(?:[jdiknu]|\{[jdiknu]\})", r"\1"),
    # per-coordinate subscripts: the symbol becomes an array over that coordinate
    (r"(\\[a-zA-Z]+|[A-Za-z])_(?:[jdiknu]|\{[jdiknu]\})(?![A-Za-z{=])", r"{\1}"),
    (r"\\varepsilon", r"\\epsilon"),
]


def normalise(latex):
    s = " ".join(latex.split("\n"))
    while "\\underbrace{" in s:                      # \underbrace{A}_{...} -> A
        i = s.index("\\underbrace{")
        j = matching(s, i + len("\\underbrace"))
        k = skip_scripts(s, j)
        s = s[:i] + s[i + len("\\underbrace{"):j - 1] + s[k:]
    for pattern, repl in CLEANUP:
        s = re.sub(pattern, repl, s)
    s = re.sub(r"\s+", " ", s).strip().rstrip(".,").strip()
    # 2. operators: KL(q || p), E_q[.], nabla_x, sum
    s = rewrite_kl(s)
    s = re.sub(r"\\mathbb\s*E", r"\\mathbb E", s)
    s = rewrite_operator(s, r"\\mathbb E",
                         lambda sub: "E_{eps}" if "epsilon" in sub else "E")
    while True:                                       # \nabla_x F -> D_{x}(F)
        m = re.search(r"\\nabla(_\{\\?[a-zA-Z]+\}|_\\[a-zA-Z]+|_[a-zA-Z])?", s)
        if not m:
            break
        var = (m.group(1) or "_all")[1:].strip("{}").lstrip("\\")
        i = m.end()
        j = operand_end(s, i)
        s = s[:m.start()] + f"D_{{{var}}}(" + s[i:j] + ")" + s[j:]
    s = rewrite_operator(s, r"\\sum", "S_{sum}")
    for pattern, repl in NAMES:
        s = re.sub(pattern, repl, s)
    return re.sub(r"\s+", " ", s).strip()


def reader(note):
    """The notation a note is read in: note 12 writes entries with index arithmetic (displayed_formulas_conv),
    note 15 one categorical latent with sums over classes, samples and configurations (displayed_formulas_discrete)."""
    if note == "12-convolution.md":
        import displayed_formulas_conv
        return displayed_formulas_conv.normalise
    if note == "13-planar-flows.md":                 # inner and outer products of vectors
        import displayed_formulas_flows
        return displayed_formulas_flows.normalise
    if note == "14-learned-priors-and-cvae.md":     # mixture components c, samples z_k, the CVAE's densities
        import displayed_formulas_priors
        return displayed_formulas_priors.normalise
    if note == "15-discrete-latents.md":
        import displayed_formulas_discrete
        return displayed_formulas_discrete.normalise
    return normalise


RELATION = re.compile(r"=:|\\ge(?:q)?\b|\\le(?:q)?\b|\\approx|\\sim|=")


def split_top(s, sep):
    """Split s at top-level occurrences of the regex sep."""
    parts, depth, last, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            m = sep.match(s, i)
            if m and m.end() > i:
                parts.append((s[last:i], m.group(0)))
                last = i = m.end()
                continue
        i += 1
    parts.append((s[last:], None))
    return parts


@functools.lru_cache(maxsize=None)
def parse(tex):
    from sympy.parsing.latex import parse_latex
    return parse_latex(tex)


def equations(label):
    """The displayed block LABEL as a list of chains [(side0, rel0, side1, rel1, side2, ...)], parsed."""
    labelled, _ = note_blocks()
    note, latex = labelled[label]
    s = reader(note)(latex)
    out = []
    for eq, _ in split_top(s, re.compile(r"\\qquad|\\quad")):
        eq = eq.strip().rstrip(".,").strip()
        if not eq:
            continue
        chain = []
        for side, rel in split_top(eq, RELATION):
            side = side.strip().rstrip(",").strip()
            chain.append(parse(side) if side else None)
            if rel is not None:
                chain.append({"=:": "=", "\\geq": "\\ge", "\\leq": "\\le"}.get(rel, rel))
        out.append(chain)
    return out


# ----------------------------------------------------------------- evaluation
class Context:
    """A concrete instance: base parameters and a function building every symbol's value from them."""

    def __init__(self, params, build, overrides=None, h=1e-5, grid=None):
        self.params = {k: np.asarray(v, dtype=float) for k, v in params.items()}
        self.build = build
        self.overrides = overrides or {}
        self.h = h
        self.grid = grid

    def with_params(self, **changes):
        p = dict(self.params, **changes)
        return Context(p, self.build, self.overrides, self.h, self.grid)

    def with_values(self, **values):
        return Context(self.params, self.build, dict(self.overrides, **values), self.h, self.grid)

    @functools.cached_property
    def ns(self):
        ns = {"pi": math.pi, "det": lambda C: np.linalg.det(C) if np.ndim(C) >= 2 else C}
        ns.update(self.build(self.params))
        ns.update(self.params)
        ns.update(self.overrides)
        return {clean(k) if not k.startswith("alias:") else k: v for k, v in ns.items()}


def clean(name):
    """A parsed name, canonical: parse_latex reads a subscript as a (commutative) product of letters,
    so S_{sum} comes back as S_{s*(m*u)}; the letters of a subscript are sorted on both sides."""
    name = re.sub(r"[\\*() ]", "", name)
    return re.sub(r"_\{([^{}]*)\}", lambda m: "_{" + "".join(sorted(m.group(1))) + "}", name)


def symbol_name(sym):
    return clean(sym.name)


def evaluate(expr, ctx):
    """The value of a parsed side on the instance ctx (NumPy arrays broadcast elementwise)."""
    import sympy
    from sympy.core.function import AppliedUndef

    ev = functools.partial(evaluate, ctx=ctx)
    if expr is sympy.E or (isinstance(expr, sympy.Symbol) and expr.name == "e"):
        return math.e
    if expr is sympy.pi:
        return math.pi
    if expr.is_Number:
        return float(expr)
    if isinstance(expr, sympy.Symbol):
        name = symbol_name(expr)
        if name not in ctx.ns:
            raise KeyError(f"the instance has no value for the symbol {name!r}")
        value = ctx.ns[name]
        return value(ctx) if isinstance(value, Lazy) else value
    if isinstance(expr, sympy.Add):
        return functools.reduce(lambda a, b: a + b, (ev(a) for a in expr.args))
    if isinstance(expr, sympy.Mul):
        return functools.reduce(lambda a, b: a * b, (ev(a) for a in expr.args))
    if isinstance(expr, sympy.Pow):
        base, exponent = expr.args
        if isinstance(exponent, sympy.Symbol) and exponent.name in ("T", "top"):
            return np.swapaxes(np.asarray(ev(base)), -1, -2) if np.ndim(ev(base)) >= 2 else ev(base)
        if isinstance(base, sympy.Symbol) and base.name == "e":
            return np.exp(ev(exponent))
        return np.power(ev(base), ev(exponent))
    if isinstance(expr, sympy.log):
        return np.log(ev(expr.args[0])) / (1.0 if len(expr.args) == 1 else np.log(ev(expr.args[1])))
    if isinstance(expr, sympy.exp):
        return np.exp(ev(expr.args[0]))
    if isinstance(expr, sympy.Abs):
        return np.abs(ev(expr.args[0]))
    if isinstance(expr, sympy.Derivative):
        target, (var, order) = expr.args[0], expr.variable_count[0]
        return derivative(lambda c: evaluate(target, c), ctx, symbol_name(var))
    if isinstance(expr, sympy.Integral):
        integrand, limits = expr.args[0], expr.args[1]
        var = symbol_name(limits[0])
        grid = ctx.grid
        values = evaluate(integrand, ctx.with_values(**{var: grid}))
        return np.trapezoid(values, grid) if hasattr(np, "trapezoid") else np.trapz(values, grid)
    if isinstance(expr, AppliedUndef) or (isinstance(expr, sympy.Function) and clean(expr.func.__name__) in ctx.ns):
        name = clean(expr.func.__name__)
        if name not in ctx.ns:
            raise KeyError(f"the instance has no function {name!r}")
        f = ctx.ns[name]
        if getattr(f, "operator", False):
            return f(expr.args, ctx)
        return f(*(ev(a) for a in expr.args))
    if isinstance(expr, sympy.Function):
        name = expr.func.__name__
        f = getattr(np, name, None)
        if f is None:
            raise KeyError(f"no numerical meaning for the function {name!r}")
        return f(*(ev(a) for a in expr.args))
    raise TypeError(f"cannot evaluate {type(expr).__name__}: {expr}")


def derivative(value_of, ctx, var):
    """Centred differences of value_of(ctx) in the parameter var (aliases via ctx.ns['alias:'+var]).

    A scalar value gets its full gradient (one entry perturbed at a time); an array value is
    differentiated per coordinate (all entries perturbed at once: its derivative in its own
    coordinate, the diagonal of the Jacobian, which is what the notes' per-coordinate formulas mean).
    """
    var = ctx.ns.get("alias:" + var, var)
    if var in ctx.params:                       # a parameter: everything built from it follows
        base, moved = ctx.params[var], (lambda v: ctx.with_params(**{var: v}))
    elif var in ctx.ns:                         # any other value: perturbed alone, the rest held fixed
        base, moved = np.asarray(value(ctx, var), dtype=float), (lambda v: ctx.with_values(**{var: v}))
    else:
        raise KeyError(f"cannot differentiate: the instance has no {var!r}")
    h = ctx.h
    f0 = np.asarray(value_of(ctx))
    if f0.ndim == 0 and base.ndim > 0:
        grad = np.empty_like(base)
        for idx in np.ndindex(base.shape):
            up, down = base.copy(), base.copy()
            up[idx] += h
            down[idx] -= h
            grad[idx] = (value_of(moved(up)) - value_of(moved(down))) / (2 * h)
        return grad
    return (np.asarray(value_of(moved(base + h))) - np.asarray(value_of(moved(base - h)))) / (2 * h)


class Lazy:
    """A symbol's value computed from the context when it is read (so derivatives and overrides reach it)."""

    def __init__(self, f):
        self.f = f

    def __call__(self, ctx):
        return self.f(ctx)


def value(ctx, name):
    v = ctx.ns[clean(name)]
    return v(ctx) if isinstance(v, Lazy) else v


def operator(f):
    f.operator = True
    return f


def gauss_hermite_expectation(n=80):
    """E_q[X] for q = N(mu, sigma^2) per coordinate (the instance's 'mu', 'sigma'), X evaluated at z."""
    t, w = np.polynomial.hermite.hermgauss(n)

    @operator
    def E(args, ctx):
        mu, sigma = np.asarray(ctx.ns["mu"]), np.asarray(ctx.ns["sigma"])
        z = mu + np.sqrt(2.0) * sigma * t.reshape((-1,) + (1,) * mu.ndim)
        values = np.asarray(evaluate(args[0], ctx.with_values(z=z)))
        return np.tensordot(w / np.sqrt(np.pi), values, axes=(0, 0))
    return E


def check_chain(chain, ctx, what, rtol=1e-7, atol=1e-9):
    """Every relation of a parsed chain holds on ctx; the message gives ours vs expected."""
    values = [None if side is None else evaluate(side, ctx) for side in chain[0::2]]
    rels = chain[1::2]
    for i, rel in enumerate(rels):
        a, b = values[i], values[i + 1]
        if a is None or b is None or rel == "\\sim":
            continue
        a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
        if rel == "=":
            bad = ~np.isclose(a, b, rtol=rtol, atol=atol)
        elif rel == "\\ge":
            bad = a < b - atol
        elif rel == "\\le":
            bad = a > b + atol
        elif rel == "\\approx":
            bad = ~np.isclose(a, b, rtol=1e-2, atol=1e-2)
        else:
            raise ValueError(f"unknown relation {rel}")
        if np.any(bad):
            k = np.unravel_index(int(np.argmax(bad)), bad.shape) if bad.ndim else ()
            raise AssertionError(f"{what}: side {i} {rel} side {i + 1} fails at index {k}: "
                                 f"ours {a[k]!r} vs expected {b[k]!r} ({chain[2 * i]}  {rel}  {chain[2 * i + 2]})")
    return values
