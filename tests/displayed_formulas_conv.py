"""Read note 12's displayed formulas (index and matrix notation) and evaluate them as written.

Note 12 (derivations/12-convolution.md) writes its layers entry by entry:
``y_{n f i j} = b_f + \\sum_{c=0}^{C-1} ... W_{f c u v} \\tilde x_{n, c, s i + u, s j + v}``.
The notation table of tests/displayed_formulas.py reads per-coordinate
subscripts as whole arrays and turns a sum into a plain sum over one axis,
which cannot express index arithmetic such as ``s i + u``.  So
``displayed_formulas.equations`` hands this note's displays to ``normalise``
below, which rewrites them, still without storing any formula, into what
SymPy's ``parse_latex`` reads:

* an *indexed entry* -- a letter (or ``\\bar``/``\\tilde`` of one) whose
  subscript is a list of index letters (``n f c i j u v r q``, e.g.
  ``W_{f c u v}``, ``b_f``) or has commas (``\\tilde x_{n, c, s i + u, s j + v}``)
  -- becomes a call ``W(f, c, u, v)``: the entry of the array W there;
* ``\\sum_{c=0}^{C-1}`` stays a SymPy sum with its bounds; a sum whose
  subscript only names indices (``\\sum_{n, i, j}``, ``\\sum_f``) runs over the
  whole range of each (its upper bound becomes infinity, and ``evaluate``
  takes the length of the array axis that index runs along);
* ``\\sum_{\\substack{i, u:\\ s i + u = r \\\\ ...}}``, a sum restricted by
  equations, becomes the sum over all ``i, u`` of ``\\delta_{s i + u, r}``
  (Kronecker) times the summand;
* ``\\langle a, b \\rangle`` becomes an inner product, ``\\mathbf 1`` a column of
  ones, ``^\\top`` the transpose (of a matrix) or adjoint (of a linear map);
* in a display with no indexed entry (the matrix forms C2 and C4) a
  juxtaposition of factors becomes an *ordered* product ``P_{prod}(a, b)``:
  SymPy's products commute, so without this ``X W^\\top`` and ``W^\\top X``
  would parse the same; here the order the reader sees is the order multiplied.

``evaluate`` computes a parsed side with every index as an integer NumPy
array along an axis of its own (all entries at once), a sum as a sum over
that axis, and an entry of an array by indexing -- an index outside the
array is an error (never a silent zero, never NumPy's wrap-around of
negative indices).  The free indices of an equation are those of its
left-hand entry and run over that array's shape; an index free on the right
but not on the left fails the check.
"""
import functools
import re

import numpy as np

import displayed_formulas as F

INDEX = set("nfcijuvrq")              # the note's index letters (prose: n batch, f filter, c channel, ...)


# -------------------------------------------------------------------- reading
def _sum_heads(s):
    """\\sum_{\\substack{vars: cond \\\\ ...}} and \\sum_{a, b} / \\sum_a -> sums with bounds 0..infinity."""
    out, i = [], 0
    while True:
        m = re.compile(r"\\sum_").search(s, i)
        if not m:
            out.append(s[i:])
            return "".join(out)
        out.append(s[i:m.start()])
        j = m.end()
        if s[j] == "{":
            k = F.matching(s, j)
            sub = s[j + 1:k - 1].strip()
        else:
            k, sub = j + 1, s[j]
        if s.startswith("^", k) or "=" in sub and "\\substack" not in sub:   # \sum_{c=0}^{C-1}: as written
            out.append(s[m.start():k])
            i = k
            continue
        deltas, names = [], []
        if sub.startswith("\\substack"):
            body = sub[len("\\substack"):].strip()[1:-1]
            for part in body.split("\\\\"):
                names_part, cond = part.split(":", 1)
                names += [n.strip() for n in names_part.split(",")]
                lhs, rhs = cond.replace("\\ ", " ").split("=")
                deltas.append(f"\\delta_{{{lhs.strip()}, {rhs.strip()}}}")
        else:
            names = [n.strip() for n in sub.split(",")]
        if not all(re.fullmatch(r"[a-z]", n) for n in names):
            raise ValueError(f"cannot read the sum's indices {sub!r}")
        out.append(" ".join(f"\\sum_{{{n}=0}}^{{\\infty}}" for n in names) + " " + " ".join(deltas) + " ")
        i = k


def _deltas(s):
    """\\delta_{a, b} (Kronecker: 1 where a = b, else 0) -> K_{delta}(a, b)."""
    while (m := re.search(r"\\delta_\{", s)):
        k = F.matching(s, m.end() - 1)
        s = s[:m.start()] + "K_{delta}(" + s[m.end():k - 1] + ")" + s[k:]
    return s


BASE = r"(\\bar\s*\{\s*\\tilde\s*([a-zA-Z])\s*\}|\\bar\s*\{?([a-zA-Z])\}?|\\tilde\s*\{?([a-zA-Z])\}?|(?<![\\a-zA-Z])([a-zA-Z]))"


def _entries(s):
    """Indexed entries -> calls; \\bar, \\tilde names; returns (text, whether any entry was found)."""
    found = False
    out, i = [], 0
    pat = re.compile(BASE + r"(?:_(\{)|_([a-zA-Z]))?")
    while True:
        m = pat.search(s, i)
        if not m:
            out.append(s[i:])
            return "".join(out), found
        out.append(s[i:m.start()])
        bt, bar, tilde, plain = m.group(2), m.group(3), m.group(4), m.group(5)
        name = (f"{bt}_{{bartilde}}" if bt else f"{bar}_{{bar}}" if bar else f"{tilde}_{{tilde}}" if tilde else plain)
        end = m.end()
        if m.group(6):
            k = F.matching(s, m.end() - 1)
            sub, end = s[m.end():k - 1], k
        else:
            sub = m.group(7)
        if sub is None:
            out.append(name)
        elif "\\mathrm" not in sub and ("," in sub or set(sub.replace(" ", "")) <= INDEX):
            found = True
            if "," in sub:
                args = [a.strip() for a, _ in F.split_top(sub, re.compile(","))]
            else:
                args = list(sub.replace(" ", ""))
            if bt or bar or tilde:
                out.append(f"{name}({', '.join(args)})")
            else:
                out.append(f"{plain}({', '.join(args)})")
        else:                                                  # a name's subscript: k_h, H_o, X_{\mathrm{col}}
            if bt or bar or tilde:
                raise ValueError(f"cannot read {m.group(0)!r}")
            out.append(s[m.start():end])
        i = end


SEPARATORS = re.compile(r"\\qquad|\\quad|=|\+|-|,")


def _factors(term):
    """Split a product written by juxtaposition into its factors (each with its scripts and call)."""
    out, i, n = [], 0, len(term)
    while i < n:
        if term[i] == " ":
            i += 1
            continue
        start = i
        if term[i] in "([":
            i = F.matching(term, i)
        elif term[i].isdigit():
            while i < n and (term[i].isdigit() or term[i] == "."):
                i += 1
        else:
            m = re.match(r"\\?[A-Za-z]+", term[i:])
            if not m:
                raise ValueError(f"cannot read a factor at {term[i:]!r}")
            i += m.end()
            i = F.skip_scripts(term, i)
            if i < n and term[i] == "(":                      # a call: I_{inner}(...)
                i = F.matching(term, i)
        i = F.skip_scripts(term, i)
        out.append(term[start:i])
    return out


def _ordered_products(s):
    """In a display without indexed entries, juxtaposition is an ordered product P_{prod}(a, b, ...)."""
    return "".join(_product(part) + (sep or "") for part, sep in F.split_top(s, SEPARATORS))


def _product(term):
    if not term.strip():
        return term
    factors = []
    for f in _factors(term):
        if f[0] == "(":
            f = "(" + _ordered_products(f[1:-1]) + ")" + f[F.matching(f, 0):]
        elif "(" in f and f.endswith(")"):                   # a call: its arguments are read the same way
            k = f.index("(")
            f = f[:k] + "(" + _ordered_products(f[k + 1:-1]) + ")"
        factors.append(f)
    return " " + (factors[0] if len(factors) == 1 else "P_{prod}(" + ", ".join(factors) + ")") + " "


def normalise(latex):
    s = " ".join(latex.split("\n"))
    # "for all x, y": a quantifier, not an equation (the check evaluates several x, y)
    s = re.sub(r"\\quad\s*\\text\{for all\s*\}[^\\]*", " ", s)
    s = _sum_heads(s)
    s = _deltas(s)
    for pattern, repl in F.CLEANUP:
        s = re.sub(pattern, repl, s)
    s = re.sub(r"\\langle", r"I_{inner}(", s)
    s = re.sub(r"\\rangle", ")", s)
    s = re.sub(r"\\mathbf\s*\{?1\}?", "U_{ones}", s)
    s = re.sub(r"\^\\top", "^{T}", s)
    s = re.sub(r"\\lfloor", r"\\lfloor ", s)
    s, indexed = _entries(s)
    s = re.sub(r"\\mathrm\s*\{(\w+)\}", r"\1", s)
    s = re.sub(r"\s+", " ", s).strip().rstrip(".,").strip()
    if not indexed:
        s = _ordered_products(s)
    return re.sub(r"\s+", " ", s).strip()


# ----------------------------------------------------------------- evaluation
class Op:
    """A linear map given as a function, with its adjoint (``A^\\top``) as another."""

    def __init__(self, apply, adjoint):
        self.apply, self.adjoint = apply, adjoint

    def __call__(self, v):
        return self.apply(v)

    @property
    def T(self):
        return Op(self.adjoint, self.apply)


def _matmul(a, b):
    if isinstance(a, Op):
        return a(b)
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim == 2 and b.ndim >= 1:
        if a.shape[-1] != b.shape[0]:
            raise AssertionError(f"a product in the display multiplies a {a.shape} matrix by a {b.shape} one")
        return a @ b
    return a * b


class Env:
    """The indices' values: each an integer array along its own axis of `ndim` axes."""

    def __init__(self, axes, values=None):
        self.axes, self.values = axes, dict(values or {})

    def bind(self, name, rng):
        shape = [1] * len(self.axes)
        shape[self.axes[name]] = -1
        return Env(self.axes, {**self.values, name: np.arange(*rng).reshape(shape)})


def index_names(expr):
    """Every Sum variable of a parsed side."""
    import sympy
    names = set()
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Sum):
            names |= {F.clean(lim[0].name) for lim in node.limits}
    return names


def free_indices(lhs, ns):
    """The bare index symbols of a left-hand entry A(n, f, i, j) of an array A, in order."""
    import sympy
    from sympy.core.function import AppliedUndef
    if isinstance(lhs, AppliedUndef) and isinstance(ns.get(F.clean(lhs.func.__name__)), np.ndarray):
        return [F.clean(a.name) for a in lhs.args if isinstance(a, sympy.Symbol)]
    return []


def _extent(expr, var, ns):
    """The length of the array axis along which index `var` runs bare in expr (every such axis must agree)."""
    import sympy
    from sympy.core.function import AppliedUndef
    lengths = set()
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, AppliedUndef):
            arr = ns.get(F.clean(node.func.__name__))
            if isinstance(arr, np.ndarray):
                for k, a in enumerate(node.args):
                    if isinstance(a, sympy.Symbol) and F.clean(a.name) == var:
                        lengths.add(arr.shape[k])
    if len(lengths) != 1:
        raise AssertionError(f"the sum over {var} has no single range: it indexes axes of lengths {sorted(lengths)}")
    return lengths.pop()


def evaluate(expr, ns, env):
    """The value of a parsed side: ns maps (clean) names to values, env binds the indices."""
    import sympy
    from sympy.core.function import AppliedUndef

    ev = functools.partial(evaluate, ns=ns, env=env)
    if expr.is_Integer:
        return int(expr)
    if expr.is_Number:
        return float(expr)
    if isinstance(expr, sympy.Symbol):
        name = F.clean(expr.name)
        if name in env.values:
            return env.values[name]
        if name in env.axes:
            raise AssertionError(f"the index {name} is used where it is not bound (free on the right-hand side "
                                 "but not on the left, or outside its sum)")
        if name not in ns:
            raise KeyError(f"the instance has no value for the symbol {name!r}")
        return ns[name]
    if isinstance(expr, sympy.Add):
        return functools.reduce(lambda a, b: a + b, (ev(a) for a in expr.args))
    if isinstance(expr, sympy.Mul):
        return functools.reduce(lambda a, b: a * b, (ev(a) for a in expr.args))
    if isinstance(expr, sympy.Pow):
        base, exponent = expr.args
        if isinstance(exponent, sympy.Symbol) and exponent.name == "T":
            return ev(base).T
        e = ev(exponent)
        return np.power(np.asarray(ev(base), dtype=float) if np.any(np.asarray(e) < 0) else ev(base), e)
    if isinstance(expr, sympy.floor):
        return np.floor(ev(expr.args[0])).astype(int)
    if isinstance(expr, sympy.Sum):
        return _sum(expr.function, list(expr.limits), ns, env)
    if isinstance(expr, AppliedUndef):
        name = F.clean(expr.func.__name__)
        args = [ev(a) for a in expr.args]
        if name == F.clean("K_{delta}"):
            return (np.asarray(args[0]) == np.asarray(args[1])).astype(float)
        if name == F.clean("P_{prod}"):
            return functools.reduce(_matmul, args)
        if name == F.clean("I_{inner}"):
            return float(np.vdot(np.asarray(args[0], float), np.asarray(args[1], float)))
        if name not in ns:
            raise KeyError(f"the instance has no array or function {name!r}")
        f = ns[name]
        if callable(f):
            return f(*args)
        return entry(f, name, args)
    raise TypeError(f"cannot evaluate {type(expr).__name__}: {expr}")


def entry(arr, name, idx):
    """arr at the index arrays idx; an index outside the array is an error."""
    if len(idx) != arr.ndim:
        raise AssertionError(f"{name} has {arr.ndim} indices, the display gives {len(idx)}")
    for k, i in enumerate(idx):
        i = np.asarray(i)
        if i.dtype.kind not in "iu":
            raise AssertionError(f"{name}: index {k} is not an integer ({i.dtype})")
        if i.size and (i.min() < 0 or i.max() >= arr.shape[k]):
            raise AssertionError(f"{name}: index {k} runs over {i.min()}..{i.max()}, outside its axis 0..{arr.shape[k] - 1}")
    return arr[tuple(np.asarray(i) for i in idx)]


def _sum(body, limits, ns, env):
    if not limits:
        return evaluate(body, ns, env)
    (var, lo, hi), inner = limits[-1], limits[:-1]                  # SymPy lists the innermost sum first
    name = F.clean(var.name)
    import sympy
    lo = int(evaluate(lo, ns, env))
    hi = _extent(sympy.Sum(body, *inner) if inner else body, name, ns) if hi == sympy.oo else int(evaluate(hi, ns, env)) + 1
    env2 = env.bind(name, (lo, hi))
    value = np.asarray(_sum(body, inner, ns, env2), dtype=float)
    value = np.broadcast_to(value, np.broadcast_shapes(value.shape, env2.values[name].shape))
    return value.sum(axis=env.axes[name], keepdims=True)


def check(chain, ns, what, rtol=1e-10, atol=1e-12):
    """Every relation of a parsed chain holds on the instance ns, entry by entry; returns each side's value.

    The left-hand side, when it is an entry A(n, f, i, j), sets the free indices and their ranges.
    """
    sides = chain[0::2]
    names = sorted(set().union(*(index_names(s) for s in sides if s is not None)))
    free = free_indices(sides[0], ns)
    axes = {n: k for k, n in enumerate(free + [n for n in names if n not in free])}
    for n in "nfcijuvrq":                        # any other index letter a side uses: known, so reported if unbound
        axes.setdefault(n, len(axes))
    env = Env(axes)
    if free:
        arr = ns[F.clean(sides[0].func.__name__)]
        for k, n in enumerate(free):
            env = env.bind(n, (0, arr.shape[k]))
    shape = tuple(arr.shape[:len(free)]) if free else ()
    values = []
    for s in sides:
        v = evaluate(s, ns, env)
        if isinstance(v, np.ndarray) and v.ndim == len(axes):
            v = v.reshape(v.shape[:len(free)] + (-1,))
            if v.shape[-1] != 1:
                raise AssertionError(f"{what}: a side depends on an index that is neither free nor summed ({s})")
            v = v[..., 0]
        values.append(np.broadcast_to(np.asarray(v, float), shape) if free else v)
    for i, rel in enumerate(chain[1::2]):
        a, b = values[i], values[i + 1]
        if rel != "=":
            raise ValueError(f"{what}: unexpected relation {rel}")
        a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
        bad = ~np.isclose(a, b, rtol=rtol, atol=atol)
        if np.any(bad):
            k = np.unravel_index(int(np.argmax(bad)), bad.shape) if bad.ndim else ()
            at = ", ".join(f"{n}={int(v)}" for n, v in zip(free, k)) if free else f"case {tuple(int(v) for v in k)}"
            raise AssertionError(f"{what}: side {i} = side {i + 1} fails at ({at}): ours {float(a[k])!r} vs "
                                 f"expected {float(b[k])!r}  ({chain[2 * i]}  =  {chain[2 * i + 2]})")
    return values
