"""Note 12's displayed formulas (C1-C4), parsed from the LaTeX the reader sees and evaluated entry by entry.

The scheme of tests/test_displayed_formulas.py (issue 17) for the convolution
note: ``displayed_formulas.equations`` reads these displays with
tests/displayed_formulas_conv.py (index notation: ``W_{f c u v}`` is an entry,
``\\sum_{n, i, j}`` a sum over whole ranges, ``\\sum_{\\substack{...}}`` a
restricted sum).  Each check evaluates every side of every equation on a
small concrete instance, for every entry of its left-hand side at once, with
the named quantities bound twice:

* "package": numpyvae.conv -- Conv2d's forward, dW, db and input gradient,
  im2col, ConvTranspose2d, the layers' output sizes;
* "truth": independent of the package -- scipy.signal.correlate2d for the
  forward pass, the column matrix built by loops from its definition,
  centred differences of l = sum(y * ybar) for the gradients, a dense matrix
  of the map built entry by entry from the definition (its transpose is the
  adjoint), and output sizes by counting window positions.

Every relation the display states must hold in both.  Where the package's
numbers could differ from the truth's without the display noticing (the
gradients, <Ax, y>), they are also compared with each other.  Planted wrong
displays: mutation/planted_formulas_conv.py (14, each fails here).
"""
import itertools
import re

import numpy as np
import pytest

pytest.importorskip("sympy", reason="the displayed-formula checks need SymPy (pip install -e '.[test]')")
pytest.importorskip("antlr4", reason="SymPy's LaTeX parser needs antlr4-python3-runtime 4.11 (the test extra)")
signal = pytest.importorskip("scipy.signal", reason="the independent forward pass is scipy.signal.correlate2d")

import displayed_formulas as F  # noqa: E402
from displayed_formulas_conv import Op, check  # noqa: E402

from numpyvae.conv import Conv2d, ConvTranspose2d, im2col  # noqa: E402

BINDINGS = ("package", "truth")
# (N, C, H, W, F, kh, kw, s, p): a stride that leaves a row and a column of x unread, a non-square kernel;
# and stride 1 with no padding
INSTANCES = [(2, 2, 6, 5, 3, 3, 2, 2, 1), (2, 2, 4, 5, 2, 2, 3, 1, 0)]


def run(label, ns, what=None, **tol):
    out = []
    for chain in F.equations(label):
        out.append(check(chain, ns, what or f"formula {label}", **tol))
    return out


class Instance:
    """x, W, b, ybar drawn once; the layer of the package holding the same numbers."""

    def __init__(self, N, C, H, Wd, Fo, kh, kw, s, p, seed=12):
        rng = np.random.default_rng(seed)
        self.N, self.C, self.H, self.Wd, self.F, self.kh, self.kw, self.s, self.p = N, C, H, Wd, Fo, kh, kw, s, p
        self.Ho, self.Wo = self.count_windows(H, kh, s, p), self.count_windows(Wd, kw, s, p)
        self.x = rng.standard_normal((N, C, H, Wd))
        self.W = rng.standard_normal((Fo, C, kh, kw))
        self.b = rng.standard_normal(Fo)
        self.ybar = rng.standard_normal((N, Fo, self.Ho, self.Wo))
        self.xt = np.pad(self.x, ((0, 0), (0, 0), (p, p), (p, p)))

    @staticmethod
    def count_windows(n, k, s, p):
        """How many window corners 0, s, 2s, ... fit a kernel k inside n + 2p: counted, not by the formula."""
        return sum(1 for i in range(n + 2 * p) if s * i + k <= n + 2 * p)

    def layer(self, padding=None):
        layer = Conv2d(self.C, self.F, (self.kh, self.kw), stride=self.s,
                       padding=self.p if padding is None else padding, dtype=np.float64)
        layer.W[...] = self.W
        layer.b[...] = self.b
        return layer

    def truth_forward(self, xt, W, b):
        """y from the padded x by scipy's 2-D cross-correlation ('valid'), every s-th window kept."""
        y = np.zeros((xt.shape[0], W.shape[0], self.Ho, self.Wo))
        for n, f in itertools.product(range(xt.shape[0]), range(W.shape[0])):
            full = sum(signal.correlate2d(xt[n, c], W[f, c], mode="valid") for c in range(W.shape[1]))
            y[n, f] = full[::self.s, ::self.s][:self.Ho, :self.Wo] + b[f]
        return y

    def scalars(self):
        return {"s": self.s, "p": self.p, "C": self.C, "k_h": self.kh, "k_w": self.kw, "H": self.H}


def ns_of(d):
    """The instance's values under the names the parse gives (k_h is read as k_{h})."""
    return {F.clean(re.sub(r"_([A-Za-z])$", r"_{\1}", k)): v for k, v in d.items()}


def centred(loss, a, h=1.0):
    """Centred differences of loss() in every entry of a (loss is linear in a: exact up to rounding)."""
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        keep = a[idx]
        a[idx] = keep + h
        up = loss()
        a[idx] = keep - h
        down = loss()
        a[idx] = keep
        g[idx] = (up - down) / (2 * h)
    return g


# ---------------------------------------------------------------- coverage
def test_every_conv_display_is_read_in_index_notation():
    labelled, _ = F.note_blocks()
    mine = sorted(k for k, (note, _) in labelled.items() if note == "12-convolution.md")
    assert mine == ["12.C1", "12.C2", "12.C3", "12.C3p", "12.C4"], mine
    for label in mine:
        assert all(side is not None for chain in F.equations(label) for side in chain[0::2]), label


# ------------------------------------------------------------------- (C1)
def windows_truth(H, k, s, p):
    return np.array([Instance.count_windows(a, b, c, d) for a, b, c, d in zip(H, k, s, p)])


def output_sizes():
    """Every (H, k, s, p) with H <= 9, k <= 4, s <= 3, p < k and H + 2p >= k (an image the layer accepts)."""
    rows = [(H, k, s, p) for H in range(1, 10) for k in range(1, 5) for s in range(1, 4) for p in range(k)
            if H + 2 * p >= k]
    return [np.array(c) for c in zip(*rows)]


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("inst", INSTANCES, ids=["s2p1", "s1p0"])
def test_formula_12_C1(binding, inst):
    I = Instance(*inst)
    if binding == "package":
        y = I.layer().forward(I.x)
    else:
        y = I.truth_forward(I.xt, I.W, I.b)
    ns = ns_of({**I.scalars(), "y": y, "b": I.b, "W": I.W, "x_{tilde}": I.xt})
    entries, sizes = F.equations("12.C1")
    lhs, rhs = check(entries, ns, "formula 12.C1")
    assert lhs.shape == (I.N, I.F, I.Ho, I.Wo)
    # H_o, over every small (H, k, s, p): the package's output size, or the windows counted
    H, k, s, p = output_sizes()
    if binding == "package":
        Ho = np.array([Conv2d(1, 1, int(kk), stride=int(ss), padding=int(pp)).output_shape((1, int(hh), int(hh)))[1]
                       for hh, kk, ss, pp in zip(H, k, s, p)])
    else:
        Ho = windows_truth(H, k, s, p)
    check(sizes, ns_of({"H_o": Ho, "H": H, "k_h": k, "s": s, "p": p}), "formula 12.C1 (H_o)")


# ------------------------------------------------------------------- (C2)
@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("inst", INSTANCES, ids=["s2p1", "s1p0"])
def test_formula_12_C2(binding, inst):
    I = Instance(*inst)
    s = I.s
    if binding == "package":
        Xcol = im2col(I.x, (I.kh, I.kw), I.s, I.p, (I.Ho, I.Wo))
        Y = I.layer().forward(I.x)
    else:                                      # rows (n, i, j), columns (c, u, v), from the definition
        Xcol = np.array([[I.xt[n, c, s * i + u, s * j + v] for c in range(I.C) for u in range(I.kh) for v in range(I.kw)]
                         for n in range(I.N) for i in range(I.Ho) for j in range(I.Wo)])
        Y = I.truth_forward(I.xt, I.W, I.b)
    Ymat = Y.transpose(0, 2, 3, 1).reshape(-1, I.F)           # rows (n, i, j), columns f
    ns = ns_of({"Y_{mat}": Ymat, "X_{col}": Xcol, "W_{mat}": I.W.reshape(I.F, -1), "b": I.b[:, None],
                "U_{ones}": np.ones((len(Ymat), 1))})
    (lhs, rhs), = run("12.C2", ns)
    assert np.shape(rhs) == (I.N * I.Ho * I.Wo, I.F), np.shape(rhs)


# ------------------------------------------------------------------- (C3)
def gradients(I, binding):
    """Wbar, bbar, the padded input's gradient and x's gradient, of l = sum(y * ybar)."""
    if binding == "package":
        layer = I.layer()
        layer.forward(I.x)
        xbar = layer.backward(I.ybar)
        Wbar, bbar = layer.dW.copy(), layer.db.copy()
        unpadded = I.layer(padding=0)                      # the same layer applied to x tilde itself
        unpadded.forward(I.xt)
        xtbar = unpadded.backward(I.ybar)
    else:
        W, b, xt = I.W.copy(), I.b.copy(), I.xt.copy()
        loss = lambda: float(np.sum(I.truth_forward(xt, W, b) * I.ybar))
        Wbar, bbar, xtbar = centred(loss, W), centred(loss, b), centred(loss, xt)
        x = I.x.copy()
        pad = ((0, 0), (0, 0), (I.p, I.p), (I.p, I.p))
        xbar = centred(lambda: float(np.sum(I.truth_forward(np.pad(x, pad), W, b) * I.ybar)), x)
    return Wbar, bbar, xtbar, xbar


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("inst", INSTANCES, ids=["s2p1", "s1p0"])
def test_formula_12_C3(binding, inst):
    I = Instance(*inst)
    Wbar, bbar, xtbar, xbar = gradients(I, binding)
    ns = ns_of({**I.scalars(), "W_{bar}": Wbar, "b_{bar}": bbar, "x_{bartilde}": xtbar, "y_{bar}": I.ybar,
                "x_{tilde}": I.xt, "W": I.W})
    (w, w_rhs), (b, b_rhs), (xt, xt_rhs) = run("12.C3", ns, rtol=1e-9, atol=1e-9)
    if binding == "truth":                     # and the package's gradients are those same numbers
        P = gradients(I, "package")
        for name, ours, expected in zip(("Wbar", "bbar", "xtbar", "xbar"), P, (Wbar, bbar, xtbar, xbar)):
            bad = ~np.isclose(ours, expected, rtol=1e-9, atol=1e-9)
            k = np.unravel_index(int(np.argmax(bad)), bad.shape)
            assert not bad.any(), f"{name} at {k}: package {ours[k]!r} vs centred differences {expected[k]!r}"


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("inst", INSTANCES, ids=["s2p1", "s1p0"])
def test_formula_12_C3p(binding, inst):
    I = Instance(*inst)
    _, _, xtbar, xbar = gradients(I, binding)
    (lhs, rhs), = run("12.C3p", ns_of({"p": I.p, "x_{bar}": xbar, "x_{bartilde}": xtbar}), rtol=1e-9, atol=1e-9)
    assert lhs.shape == I.x.shape


# ------------------------------------------------------------------- (C4)
def dense_map(I):
    """The matrix of x -> y (bias 0) entry by entry from (C1): row (n, f, i, j), column (n, c, r, q) of x."""
    A = np.zeros((I.N, I.F, I.Ho, I.Wo, I.N, I.C, I.H, I.Wd))
    for n, f, i, j, c, u, v in itertools.product(range(I.N), range(I.F), range(I.Ho), range(I.Wo),
                                                 range(I.C), range(I.kh), range(I.kw)):
        r, q = I.s * i + u - I.p, I.s * j + v - I.p               # the unpadded pixel under the window
        if 0 <= r < I.H and 0 <= q < I.Wd:
            A[n, f, i, j, n, c, r, q] += I.W[f, c, u, v]
    return A.reshape(I.N * I.F * I.Ho * I.Wo, -1)


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("inst", INSTANCES, ids=["s2p1", "s1p0"])
def test_formula_12_C4(binding, inst):
    I = Instance(*inst)
    adjoint_chain, size_chain = F.equations("12.C4")
    o = I.H - ((I.Ho - 1) * I.s - 2 * I.p + I.kh)                  # the output padding that gives H back
    rng = np.random.default_rng(4)
    values = []
    for trial in range(3):                                         # "for all x, y": three pairs
        x, y = rng.standard_normal(I.x.shape), rng.standard_normal(I.ybar.shape)
        if binding == "package":
            conv = I.layer()
            conv.b[...] = 0
            convt = ConvTranspose2d(I.F, I.C, (I.kh, I.kw), stride=I.s, padding=I.p, output_padding=o,
                                    dtype=np.float64)
            convt.W[...] = I.W
            A = Op(conv.forward, convt.forward)
        else:
            A, x, y = dense_map(I), x.ravel(), y.ravel()
        values.append(check(adjoint_chain, ns_of({"A": A, "x": x, "y": y}), "formula 12.C4", rtol=1e-12))
    if binding == "package":                   # the same inner products as the definition's matrix gives
        A, T = dense_map(I), []
        rng = np.random.default_rng(4)
        for trial in range(3):
            x, y = rng.standard_normal(I.x.shape), rng.standard_normal(I.ybar.shape)
            T.append(float(y.ravel() @ (A @ x.ravel())))
        ours = [v[0] for v in values]
        assert np.allclose(ours, T, rtol=1e-12), f"<Ax, y>: package {ours} vs the definition's matrix {T}"
    # H_out over every small (H_in, k, s, p, o): the package's size, or the (o+1)-th smallest H a conv maps to H_in
    rows = [(h, k, s, p, oo) for h in range(1, 7) for k in range(1, 5) for s in range(1, 4) for p in range(k)
            for oo in range(s) if (h - 1) * s - 2 * p + k >= 1]
    Hin, k, s, p, oo = (np.array(c) for c in zip(*rows))
    if binding == "package":
        Hout = np.array([ConvTranspose2d(1, 1, int(kk), stride=int(ss), padding=int(pp), output_padding=int(op))
                         .output_shape((1, int(h), int(h)))[1] for h, kk, ss, pp, op in zip(Hin, k, s, p, oo)])
    else:
        Hout = []
        for h, kk, ss, pp, op in zip(Hin, k, s, p, oo):
            sizes = [n for n in range(1, 60) if Instance.count_windows(n, kk, ss, pp) == h]
            assert len(sizes) == ss, f"{ss} input sizes should map to {h}, found {sizes}"
            Hout.append(sizes[op])
        Hout = np.array(Hout)
    check(size_chain, ns_of({"H_{out}": Hout, "H_{in}": Hin, "k_h": k, "s": s, "p": p, "o": oo}),
          "formula 12.C4 (H_out)")


# ------------------------------------------------------------------ controls
def with_display(monkeypatch, label, old, new):
    labelled, unmarked = F.note_blocks()
    note, latex = labelled[label]
    assert latex.count(old) == 1, f"the control's text is no longer in {label}: {old}"
    monkeypatch.setattr(F, "note_blocks", lambda: ({**labelled, label: (note, latex.replace(old, new))}, unmarked))
    F.parse.cache_clear()


def test_a_wrong_conv_formula_is_seen(monkeypatch):
    """The control: (C1) with the stride dropped from the window's corner must fail."""
    with_display(monkeypatch, "12.C1", r"\tilde x_{n, c, s i + u, s j + v}", r"\tilde x_{n, c, i + u, j + v}")
    with pytest.raises(AssertionError, match="formula 12.C1"):
        test_formula_12_C1("package", INSTANCES[0])
    with pytest.raises(AssertionError, match="formula 12.C1"):
        test_formula_12_C1("truth", INSTANCES[0])


def test_a_correct_conv_rewrite_still_passes(monkeypatch):
    """The control's other half: (C1) and (C2) written differently but equal (sums reordered, terms swapped)."""
    with_display(monkeypatch, "12.C1",
                 r"b_f + \sum_{c=0}^{C-1} \sum_{u=0}^{k_h - 1} \sum_{v=0}^{k_w - 1} W_{f c u v}\, \tilde x_{n, c, s i + u, s j + v}",
                 r"\sum_{u=0}^{k_h - 1} \sum_{v=0}^{k_w - 1} \sum_{c=0}^{C-1} \tilde x_{n, c, u + s i, v + s j} W_{f c u v} + b_f")
    for binding, inst in itertools.product(BINDINGS, INSTANCES):
        test_formula_12_C1(binding, inst)
    with_display(monkeypatch, "12.C2", r"X_{\mathrm{col}} W_{\mathrm{mat}}^\top + \mathbf 1 b^\top",
                 r"\mathbf 1 b^\top + X_{\mathrm{col}} W_{\mathrm{mat}}^\top")
    for binding, inst in itertools.product(BINDINGS, INSTANCES):
        test_formula_12_C2(binding, inst)
