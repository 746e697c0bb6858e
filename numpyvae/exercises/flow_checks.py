"""Homework 4: a planar flow step's log-determinant and its gradient, as an exercise of the grader.

The student writes two functions (derivations/13-planar-flows.md, (13.4) and (13.5)):

* ``planar_logdet(z, u_hat, w, b) -> (N,)``: log|det df/dz| of f(z) = z + u_hat tanh(w.z + b) at
  each row of z (N, Z); u_hat, w (Z,), b a number;
* ``planar_logdet_backward(g, z, u_hat, w, b) -> (dz, du_hat, dw, db)``: the gradient of
  sum_n g_n logdet_n, shapes (N, Z), (Z,), (Z,) and a number.

Split as every exercise of ``checks`` is:

* ``planar_cases(seed, hidden)``: the public case (N, Z = 5, 3) and, with the manifest's
  ``hidden`` seed, hidden ones: one row, Z = 1, a larger Z, <w, u_hat> close to -1 (a step that
  nearly folds: det close to 0), float32 inputs;
* ``planar_run(objects, case)`` (the student's process): calls both functions, and takes the
  gradient of the student's own forward by centred differences (to tell a wrong forward from a
  wrong backward);
* ``planar_judge(case, out)`` (the judge's process): the expected log-det is log|det| of the full
  matrix I + u_hat psi^T by np.linalg.slogdet (no determinant lemma), and the expected gradients
  are centred differences of that, never the student's code nor ``numpyvae.flows``
  (tests/test_flow_homework.py checks them against the package); wrong answers that typical slips
  give are computed the same way, each with the sentence that says what went wrong.
"""
import numpy as np

from .diagnose import compare
from .guard import NotWritten, StudentError, call
from .report import Part, FAIL

PARTS = ("logdet", "dz", "du_hat", "dw", "db")


def logdet_by_matrices(z, u_hat, w, b):
    """log|det(I + u_hat psi(z)^T)| for each row of z, psi = (1 - tanh^2(w.z + b)) w: the full matrix, slogdet."""
    t = np.tanh(z @ w + b)
    Z = len(w)
    J = np.eye(Z)[None] + u_hat[None, :, None] * ((1 - t * t)[:, None] * w[None, :])[:, None, :]
    return np.linalg.slogdet(J)[1]


def _numerical(f, x, h=1e-6):
    """Centred differences of the scalar f(x) (x an array, copied)."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (f(up) - f(down)) / (2 * h)
    return grad


def expected_gradients(g, z, u_hat, w, b):
    """(dz, du_hat, dw, db) of sum_n g_n logdet_n, by centred differences of ``logdet_by_matrices``."""
    L = lambda z_, u_, w_, b_: float(np.sum(g * logdet_by_matrices(z_, u_, w_, b_)))
    return (_numerical(lambda v: L(v, u_hat, w, b), z), _numerical(lambda v: L(z, v, w, b), u_hat),
            _numerical(lambda v: L(z, u_hat, v, b), w), float(_numerical(lambda v: L(z, u_hat, w, v), np.array(b))))


# ---- the cases --------------------------------------------------------------------------------

def planar_case(rng, N, Z, c=None, dtype="float64", label="the public case"):
    """z (N, Z), u_hat, w (Z,), b, upstream g (N,); with c given, u_hat is moved along w so that <w, u_hat> = c."""
    z, u_hat, w = rng.standard_normal((N, Z)), rng.standard_normal(Z), rng.standard_normal(Z)
    if c is not None:
        u_hat = u_hat + (c - w @ u_hat) / (w @ w) * w
    elif w @ u_hat < -0.8:                                 # keep the public step safely invertible
        u_hat = -u_hat
    return {"z": z, "u_hat": u_hat, "w": w, "b": float(rng.standard_normal()), "g": rng.standard_normal(N),
            "dtype": dtype, "label": label}


def planar_cases(seed=0, hidden=None):
    """Public: N, Z = 5, 3.  Hidden: N = 1; Z = 1; N, Z = 4, 6; <w, u_hat> = -0.97; float32 (3, 2)."""
    from .checks import _rng
    cases = [planar_case(np.random.default_rng(seed), 5, 3)]
    if hidden is None:
        return cases
    shapes = [(1, 3, None, "float64"), (4, 1, None, "float64"), (4, 6, None, "float64"), (6, 2, -0.97, "float64"),
              (3, 2, None, "float32")]
    for k, (N, Z, c, dtype) in enumerate(shapes, 1):
        cases.append(planar_case(_rng(seed, hidden, k), N, Z, c, dtype,
                                 f"hidden case {k} (N={N}, Z={Z}" + (f", <w, u_hat> = {c}" if c is not None else "")
                                 + (", float32 inputs)" if dtype == "float32" else ")")))
    return cases


# ---- the student's side (runner process) ------------------------------------------------------------

def planar_run(objects, case):
    from .checks import Failed, _array, _cast, _own_gradient
    planar_logdet, planar_logdet_backward = objects
    z, u_hat, w, g = _cast(case, ["z", "u_hat", "w", "g"])
    b = np.asarray(case["b"]).astype(z.dtype)[()]
    out, failed = {}, []
    try:
        out["logdet"] = _array(call("planar_logdet(z, u_hat, w, b)", planar_logdet, z, u_hat, w, b))
    except (StudentError, NotWritten) as err:
        failed.append(Failed.of(["logdet"], err))
    try:
        what = "planar_logdet_backward(g, z, u_hat, w, b)"
        result = call(what, planar_logdet_backward, g, z, u_hat, w, b)
        if not (isinstance(result, (tuple, list)) and len(result) == 4):
            raise StudentError(f"{what} returned {type(result).__name__}, expected four values (dz, du_hat, dw, db)")
        for name, value in zip(PARTS[1:], result):
            out[name] = _array(value)
        if "logdet" in out:
            args = [z, u_hat, w, np.asarray(b, dtype=z.dtype)]
            for name, i in (("dz", 0), ("du_hat", 1), ("dw", 2), ("db", 3)):
                out["own " + name] = _own_gradient(planar_logdet, args, i, g)
    except (StudentError, NotWritten) as err:
        failed.append(Failed.of(list(PARTS[1:]), err))
    out["failed"] = failed
    return out


# ---- the judge's side ---------------------------------------------------------------------------

def planar_judge(case, out):
    from .checks import _f64
    z, u_hat, w, g = _f64(case, ["z", "u_hat", "w", "g"])
    b = float(np.float64(np.asarray(case["b"]).astype(case.get("dtype", "float64"))))
    t = np.tanh(z @ w + b)
    h1 = 1 - t * t
    c = w @ u_hat
    det = 1 + h1 * c
    logdet = logdet_by_matrices(z, u_hat, w, b)
    dz, du_hat, dw, db = expected_gradients(g, z, u_hat, w, b)
    batch = {"N": (len(z), "the rows of z")}

    # typical slips, computed: each a wrong answer with the sentence that says what went wrong
    k = g / det                                          # d/d det of sum g log det
    db_ok = np.sum(k * c * -2 * t * h1)
    logdet_alternatives = {
        "the sign of u_hat.psi is flipped: det = 1 + (1 - t^2) <w, u_hat>, with a plus.": np.log(np.abs(1 - h1 * c)),
        "psi is missing h'(w.z + b) = 1 - tanh^2: psi(z) = (1 - t^2) w, so det = 1 + (1 - t^2) <w, u_hat>.":
            np.full(len(z), np.log(np.abs(1 + c))),
        "h is used where h' belongs: psi(z) = h'(w.z + b) w with h' = 1 - tanh^2, not tanh.": np.log(np.abs(1 + t * c)),
        "the log is missing: the log-determinant is log|1 + (1 - t^2) <w, u_hat>|.": det,
    }
    db_alternatives = {
        "db is not summed over the rows: b is shared by every row of z, so its gradient is the sum over n.":
            k * c * -2 * t * h1,
        "the factor dt/ds = 1 - t^2 is missing: d(1 - t^2)/db = -2t (1 - t^2).": np.sum(k * c * -2 * t),
        "the sign is flipped: d(1 - t^2)/dt = -2t.": -db_ok,
    }
    ds = k * c * -2 * t * h1                             # d/ds of each row's term
    dz_alternatives = {"dz has the wrong sign.": -dz, "dz is missing the factor dt/ds = 1 - t^2.":
                       (k * c * -2 * t)[:, None] * w[None]}
    du_alternatives = {
        "du_hat is not summed over the rows: u_hat is shared by every row.": (k * h1)[:, None] * w[None],
        "du_hat is missing h'(w.z + b) = 1 - t^2: d det / d u_hat = (1 - t^2) w.": np.sum(k)[None] * w,
    }
    dw_alternatives = {
        "dw has only the path through <w, u_hat>: w also enters through t = tanh(w.z + b) (a term ds z).":
            np.sum((k * h1)[:, None] * u_hat[None], axis=0),
        "dw has only the path through t: w also enters det through <w, u_hat> (a term (1 - t^2) u_hat / det).":
            np.sum(ds[:, None] * z, axis=0),
        "dw is not summed over the rows: w is shared by every row.": ds[:, None] * z + (k * h1)[:, None] * u_hat[None],
    }

    def scalar_db():
        ours = out.get("db")
        if ours is not None and np.ndim(ours) == 1 and np.shape(ours) == (len(z),):
            return Part("db", FAIL, f"ours has shape {np.shape(ours)}, expected a number",
                        next(iter(db_alternatives)))
        return compare("db", None if ours is None else np.asarray(ours).reshape(()) if np.size(ours) == 1 else ours,
                       np.asarray(db), batch, db_alternatives, own=out.get("own db"))

    return [
        ("logdet", lambda: compare("logdet", out["logdet"], logdet, alternatives=logdet_alternatives)),
        ("dz", lambda: compare("dz", out["dz"], dz, batch, dz_alternatives, own=out.get("own dz"))),
        ("du_hat", lambda: compare("du_hat", out["du_hat"], du_hat, batch, du_alternatives, own=out.get("own du_hat"))),
        ("dw", lambda: compare("dw", out["dw"], dw, batch, dw_alternatives, own=out.get("own dw"))),
        ("db", scalar_db),
    ]


# ---- what the notebook's test cell calls ---------------------------------------------------------

def grade_planar(planar_logdet, planar_logdet_backward, seed=0, hidden=None):
    """Grade planar_logdet(z, u_hat, w, b) -> (N,) and planar_logdet_backward(g, z, u_hat, w, b) ->
    (dz, du_hat, dw, db), on the public case (and the hidden ones, given the manifest's seed).  A Report."""
    from .checks import _note, grade_in_process
    return _note(grade_in_process("planar", (planar_logdet, planar_logdet_backward), seed, hidden), hidden)


def check_planar(planar_logdet, planar_logdet_backward, seed=0, hidden=None):
    """Print the planar flow exercise's verdicts; AssertionError if a part failed (NotImplementedError if not written)."""
    from .checks import _checked
    return _checked(grade_planar(planar_logdet, planar_logdet_backward, seed, hidden))
