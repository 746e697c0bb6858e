"""The homework grader, tested both ways: every master solution passes, and every
typical mistake, planted on purpose, is caught with the right part, index and hint.

Student code here records the arrays the grader hands it, so each test recomputes
the expected gradient itself and checks the index the grader names.
"""
import csv
import json
import os
import re

import numpy as np
import pytest

from numpyvae import InputError
from numpyvae.exercises import (EXERCISES, check_activation, check_bernoulli, check_fixed_gaussian, check_gradient,
                                check_kl, check_kl_diag, check_linear, check_reparameterize, check_vae_backward,
                                grade_names)
from numpyvae.exercises.__main__ import main
from numpyvae.exercises.notebook import BEGIN, END, make_student, read_notebook, source_of
from numpyvae.exercises.runner import execute
from numpyvae.gradcheck import check_function

HOMEWORK = os.path.join(os.path.dirname(__file__), "..", "notebooks", "homework")
# registered exercises whose master is not written yet, and where their grader is tested meanwhile
PENDING = {}      # exercises registered without a master yet (none)
MASTERS = sorted(os.path.join(HOMEWORK, f) for f in os.listdir(HOMEWORK) if f.endswith(".ipynb"))


def run_cells(nb, name="notebook"):
    """The definitions of a notebook's code cells, run here (as the runner does): (namespace, errors)."""
    return execute([(i, source_of(c)) for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code"])


def failure(check, *args):
    """The AssertionError message of a check that must fail."""
    with pytest.raises(AssertionError) as info:
        check(*args)
    return str(info.value)


def part_of(message, part):
    """The FAIL line of ``part`` and its HINT line (joined), or fail naming what was there."""
    lines = message.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"FAIL  {part}:"):
            hint = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].strip().startswith("HINT") else ""
            return line + " " + hint
    raise AssertionError(f"ours: no FAIL line for part {part!r} vs expected one, in:\n{message}")


def worst_index(ours, expected):
    """The indices the grader may name: where |ours - expected| is largest (ties within 1e-9 included)."""
    diff = np.abs(ours - expected)
    return [tuple(int(i) for i in idx) for idx in np.argwhere(diff >= diff.max() * (1 - 1e-9))]


def assert_caught(message, part, hint, index=None):
    line = part_of(message, part)
    assert hint in line, f"part {part}: ours {line!r} vs expected a hint containing {hint!r}"
    if index is not None:
        assert any(f"worst entry at index {i}:" in line for i in index) and " vs expected " in line, \
            f"part {part}: ours {line!r} vs expected the worst index (one of {index}) and 'ours ... vs expected ...'"
    assert "Traceback" not in message, f"a traceback leaked into the message:\n{message}"


# ---- every solution in the masters passes --------------------------------------------------

@pytest.mark.parametrize("master", MASTERS, ids=os.path.basename)
def test_master_solutions_pass_every_part(master):
    nb = read_notebook(master)
    namespace, errors = run_cells(nb, os.path.basename(master))
    assert not errors, f"ours: cells raised {errors} vs expected none"
    listed = nb["metadata"]["numpyvae"]["exercises"]
    for exercise in listed:
        report = grade_names(exercise, namespace, seed=0)
        print(report)
        assert report.passed, f"{exercise}: ours\n{report}\nvs expected every part PASS"


def test_every_exercise_is_in_a_master():
    listed = [e for m in MASTERS for e in read_notebook(m)["metadata"]["numpyvae"]["exercises"]]
    expected = sorted(set(EXERCISES) - set(PENDING))
    assert sorted(listed) == expected, f"ours {sorted(listed)} vs expected {expected}"


@pytest.mark.parametrize("seed", [1, 7])
def test_master_solutions_pass_other_seeds(seed):
    namespace = {}
    for master in MASTERS:
        namespace.update(run_cells(read_notebook(master))[0])
    for exercise in set(EXERCISES) - set(PENDING):
        report = grade_names(exercise, namespace, seed=seed)
        assert report.passed, f"seed {seed}: ours\n{report}\nvs expected every part PASS"


@pytest.mark.parametrize("kind", ["tanh", "sigmoid", "relu", "leaky_relu", "softplus"])
def test_package_layers_and_functions_pass_their_graders(kind):
    from numpyvae import distributions as dist
    from numpyvae.exercises import grade_activation, grade_bernoulli, grade_kl
    from numpyvae.layers import ACTIVATIONS
    for report in (grade_activation(ACTIVATIONS[kind], kind, seed=3),
                   grade_bernoulli(dist.bernoulli_log_prob, dist.bernoulli_log_prob_grad, seed=3),
                   grade_kl(dist.kl_std_normal, dist.kl_std_normal_grads, seed=3)):
        assert report.passed, f"ours\n{report}\nvs expected every part PASS"


# ---- Linear ----------------------------------------------------------------------------------

def make_linear(dx=None, dW=None, db=None, init=True):
    """A Linear whose backward uses the given formulas (None: skip that gradient, or the right dx)."""
    class Linear:
        seen = {}

        def __init__(self, n_in, n_out, rng):
            self.W, self.b = rng.normal(size=(n_in, n_out)), np.zeros(n_out)
            if init:
                self.dW, self.db = np.zeros_like(self.W), np.zeros_like(self.b)

        def forward(self, x):
            self.x = x
            return x @ self.W + self.b

        def backward(self, dout):
            Linear.seen.update(x=self.x, dout=dout, W=self.W)
            if dW:
                self.dW = dW(self.x, dout, self.W)
            if db:
                self.db = db(self.x, dout, self.W)
            return dx(self.x, dout, self.W) if dx else dout @ self.W.T
    return Linear


RIGHT_DW, RIGHT_DB = (lambda x, d, W: x.T @ d), (lambda x, d, W: d.sum(axis=0))


def test_linear_missing_transpose_in_dW():
    msg = failure(check_linear, make_linear(dW=lambda x, d, W: d.T @ x, db=RIGHT_DB))
    assert_caught(msg, "dW", "ours is the transpose of the expected: a missing .T")
    assert "ours has shape (3, 5), expected (5, 3)" in part_of(msg, "dW"), part_of(msg, "dW")


def test_linear_missing_transpose_in_dx_is_a_sentence():
    msg = failure(check_linear, make_linear(dx=lambda x, d, W: d @ W, dW=RIGHT_DW, db=RIGHT_DB))
    assert_caught(msg, "dx", "a missing .T is the usual cause")
    line = part_of(msg, "dx")
    assert "raised ValueError" in line and "d @ W" in line, f"ours {line!r} vs expected the student's line quoted"


def test_linear_sign_error():
    L = make_linear(dx=lambda x, d, W: -(d @ W.T), dW=RIGHT_DW, db=RIGHT_DB)
    msg = failure(check_linear, L)
    expected = L.seen["dout"] @ L.seen["W"].T
    assert_caught(msg, "dx", "the sign is flipped", worst_index(-expected, expected))
    assert "FAIL  dW" not in msg and "FAIL  db" not in msg, msg


def test_linear_mean_instead_of_sum():
    L = make_linear(dW=RIGHT_DW, db=lambda x, d, W: d.mean(axis=0))
    msg = failure(check_linear, L)
    expected = L.seen["dout"].sum(axis=0)
    assert_caught(msg, "db", "averaged over the batch instead of summed", worst_index(expected / 4, expected))
    assert "expected / N (N = 4)" in msg, msg


def test_linear_forgotten_bias_gradient():
    L = make_linear(dW=RIGHT_DW)                  # db stays the zeros of __init__
    msg = failure(check_linear, L)
    expected = L.seen["dout"].sum(axis=0)
    assert_caught(msg, "db", "the gradient is never written", worst_index(0 * expected, expected))
    msg = failure(check_linear, make_linear(dW=RIGHT_DW, init=False))      # no db attribute at all
    assert_caught(msg, "db", "store the gradient of b in self.db")
    assert "Linear has no attribute db after backward" in msg, msg


def test_linear_bias_gradient_not_summed():
    msg = failure(check_linear, make_linear(dW=RIGHT_DW, db=lambda x, d, W: d))
    assert_caught(msg, "db", "db is dout itself: sum it over the batch axis (axis=0)")
    assert "ours has shape (4, 3), expected (3,)" in part_of(msg, "db"), msg


def test_linear_weight_gradient_never_written():
    msg = failure(check_linear, make_linear(db=RIGHT_DB))
    assert_caught(msg, "dW", "never written")


def test_linear_none_returned():
    msg = failure(check_linear, make_linear(dx=lambda x, d, W: None, dW=RIGHT_DW, db=RIGHT_DB))
    assert_caught(msg, "dx", "a missing return statement")
    assert "ours is None" in msg, msg


def test_linear_accumulated_gradient():
    class Accumulating(make_linear(dW=RIGHT_DW, db=RIGHT_DB)):
        def backward(self, dout):
            dx = super().backward(dout)
            self.dW = getattr(self, "_dW", 0) + self.dW
            self._dW = self.dW                     # += across calls
            return dx
    assert_caught(failure(check_linear, Accumulating), "dW", "accumulated (+=) instead of assigned (=)")


def test_linear_exception_inside_student_code_is_a_sentence():
    def bad_db(x, d, W):
        return d.sum(axis=0)[7]                    # IndexError
    msg = failure(check_linear, make_linear(dW=RIGHT_DW, db=bad_db))
    line = part_of(msg, "dx")
    assert "Linear.backward(dout) raised IndexError: index 7 is out of bounds" in line, line
    assert "return d.sum(axis=0)[7]" in line, f"ours {line!r} vs expected the student's line quoted"
    assert "not graded: see dx" in part_of(msg, "db"), msg


# ---- activations -----------------------------------------------------------------------------

class TanhInputNotOutput:
    def forward(self, x):
        self.x = x
        return np.tanh(x)

    def backward(self, dout):
        TanhInputNotOutput.seen = (self.x, dout)
        return dout * (1 - self.x ** 2)            # slip: input where the output belongs


def test_tanh_input_instead_of_output():
    msg = failure(check_activation, TanhInputNotOutput, "tanh")
    x, dout = TanhInputNotOutput.seen
    expected = dout * (1 - np.tanh(x) ** 2)
    assert_caught(msg, "dx", "uses the input x where it needs the output", worst_index(dout * (1 - x ** 2), expected))


def test_tanh_forgot_dout():
    class NoChain(TanhInputNotOutput):
        def backward(self, dout):
            return 1 - np.tanh(self.x) ** 2
    assert_caught(failure(check_activation, NoChain, "tanh"), "dx", "multiply it by dout")


def test_relu_wrong_only_for_negative_inputs():
    class LeakyByMistake:
        def forward(self, x):
            self.x = x
            return np.maximum(x, 0)

        def backward(self, dout):
            return np.where(self.x > 0, dout, 0.1 * dout)
    assert_caught(failure(check_activation, LeakyByMistake, "relu"), "dx", "only the entries where x < 0 are wrong")


# ---- Bernoulli -------------------------------------------------------------------------------

def softplus(l):
    return np.logaddexp(0, l)


def good_log_prob(x, l):
    return np.sum(x * l - softplus(l), axis=-1)


def good_grad(x, l):
    return x - np.exp(-softplus(-l))


def test_bernoulli_sign_error_and_overflow():
    seen = {}

    def naive(x, l):
        return np.sum(x * np.log(1 / (1 + np.exp(-l))) + (1 - x) * np.log(1 - 1 / (1 + np.exp(-l))), axis=-1)

    def flipped(x, l):
        seen.update(x=x, l=l)
        return -good_grad(x, l)
    msg = failure(check_bernoulli, naive, flipped)
    assert_caught(msg, "log_prob, large |logits|", "write log p = sum x*l - softplus(l)")
    expected = good_grad(seen["x"], seen["l"])
    assert_caught(msg, "gradient", "the sign is flipped", worst_index(-expected, expected))
    assert "PASS  log_prob:" in msg or "FAIL  log_prob:" not in msg, msg


def test_bernoulli_mean_over_pixels():
    msg = failure(check_bernoulli, lambda x, l: np.mean(x * l - softplus(l), axis=-1), good_grad)
    assert_caught(msg, "log_prob", "averaged over the D pixels instead of summed")


def test_bernoulli_wrong_branch_found_by_where():
    def buggy(x, l):
        e = np.exp(-np.abs(l))
        return x - np.where(l >= 0, 1 / (1 + e), 1 / (1 + np.exp(l)))
    assert_caught(failure(check_bernoulli, good_log_prob, buggy), "gradient", "only the entries where logits < 0")


# ---- reparameterization ---------------------------------------------------------------------

def var_as_std(mu, logvar, eps):
    return mu + np.exp(logvar) * eps               # the variance used as the standard deviation


def var_as_std_backward(dz, mu, logvar, eps):
    var_as_std_backward.seen = (dz, logvar, eps)
    return dz, dz * np.exp(logvar) * eps           # ... consistently differentiated


def test_variance_as_standard_deviation_passes_a_gradient_check_but_not_the_grader():
    rng = np.random.default_rng(0)
    mu, logvar, eps, g = rng.normal(size=(4, 3, 2))
    own = check_function(lambda: float(np.sum(var_as_std(mu, logvar, eps) * g)),
                         var_as_std_backward(g, mu, logvar, eps)[1], logvar, "logvar")
    assert own.passed, f"the planted error should be self-consistent: {own}"
    msg = failure(check_reparameterize, var_as_std, var_as_std_backward)
    assert_caught(msg, "forward z", "the variance exp(logvar) is used as the standard deviation")
    dz, logvar, eps = var_as_std_backward.seen
    expected = dz * 0.5 * np.exp(0.5 * logvar) * eps
    assert_caught(msg, "dlogvar", "a gradient check of your code alone passes: the forward is what is wrong",
                  worst_index(dz * np.exp(logvar) * eps, expected))


def test_reparameterization_missing_eps_and_none():
    right = lambda mu, logvar, eps: mu + np.exp(logvar / 2) * eps
    msg = failure(check_reparameterize, right, lambda dz, mu, logvar, eps: (dz, 0.5 * np.exp(logvar / 2) * dz))
    assert_caught(msg, "dlogvar", "eps is missing")
    msg = failure(check_reparameterize, right, lambda dz, mu, logvar, eps: None)
    assert_caught(msg, "dmu", "expected a pair (dmu, dlogvar)")


# ---- KL -----------------------------------------------------------------------------------

def kl_right(mu, logvar):
    return 0.5 * np.sum(mu ** 2 + np.exp(logvar) - 1 - logvar, axis=-1)


def test_kl_sign_half_and_missing_one():
    seen = {}

    def grads(mu, logvar):
        seen.update(mu=mu, logvar=logvar)
        return -mu, np.exp(logvar) - 1             # sign of dmu; the 1/2 of dlogvar dropped
    msg = failure(check_kl, kl_right, grads)
    assert_caught(msg, "dmu", "the sign is flipped", worst_index(-seen["mu"], seen["mu"]))
    expected = 0.5 * (np.exp(seen["logvar"]) - 1)
    assert_caught(msg, "dlogvar", "a factor 1/2 is missing", worst_index(2 * expected, expected))
    msg = failure(check_kl, kl_right, lambda mu, logvar: (mu, 0.5 * np.exp(logvar)))
    assert_caught(msg, "dlogvar", "the -1 from the -logvar term is missing")


def test_kl_mean_over_latents_and_not_summed():
    msg = failure(check_kl, lambda mu, logvar: kl_right(mu, logvar) / mu.shape[1], lambda m, lv: (m, (np.exp(lv) - 1) / 2))
    assert_caught(msg, "kl", "averaged over the latent dimensions instead of summed")
    msg = failure(check_kl, lambda mu, logvar: 0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar),
                  lambda m, lv: (m, (np.exp(lv) - 1) / 2))
    assert_caught(msg, "kl", "sum over it (axis=-1)")


# ---- the whole VAE --------------------------------------------------------------------------

def make_vae_backward(scale=True, kl=True, encoder=True, sign=1.0, kl_mu=True, kl_logvar=True):
    """The homework's vae_loss_and_grads with one planted slip."""
    def vae_loss_and_grads(model, x, eps):
        B, Z = eps.shape
        h = model.encoder.forward(x)
        mu, logvar = h[:, :Z], h[:, Z:]
        sigma = np.exp(0.5 * logvar)
        logits = model.decoder.forward(mu + sigma * eps)
        loss = -np.mean(good_log_prob(x, logits) - kl_right(mu, logvar))
        s = 1.0 / B if scale else 1.0
        dz = model.decoder.backward(-sign * s * good_grad(x, logits))
        dmu = dz + (s * mu if kl and kl_mu else 0)
        dlogvar = dz * 0.5 * sigma * eps + (s * 0.5 * (np.exp(logvar) - 1) if kl and kl_logvar else 0)
        if encoder:
            model.encoder.backward(np.concatenate([dmu, dlogvar], axis=1))
        return loss, model.grads()
    return vae_loss_and_grads


def test_vae_right_chain_passes():
    check_vae_backward(make_vae_backward())


@pytest.mark.parametrize("slip, parts, hint", [
    (dict(scale=False), ["decoder.1.b", "encoder.0.W"], "a factor 1/B is missing"),
    (dict(kl=False), ["encoder.1.b", "encoder.0.W"], "is never added to dmu, dlogvar"),
    (dict(encoder=False), ["encoder.0.W", "encoder.1.b"], "this gradient is never written"),
    (dict(sign=-1.0), ["decoder.1.W", "decoder.0.b"], "this is the gradient of the ELBO"),
    (dict(kl_mu=False), ["encoder.1.W", "encoder.1.b"], "only the entries in the mu columns (:Z) are wrong"),
    (dict(kl_logvar=False), ["encoder.1.W", "encoder.1.b"], "only the entries in the logvar columns (Z:) are wrong"),
])
def test_vae_slips(slip, parts, hint):
    msg = failure(check_vae_backward, make_vae_backward(**slip))
    for part in parts:
        assert_caught(msg, part, hint)


def test_vae_missing_gradient_entry_and_exception():
    def partial(model, x, eps):
        loss, grads = make_vae_backward()(model, x, eps)
        return loss, {k: v for k, v in grads.items() if k != "decoder.0.b"}
    assert_caught(failure(check_vae_backward, partial), "decoder.0.b", "return a gradient for every name")

    def broken(model, x, eps):
        return model.decoder.backward(np.ones((3, 3)))
    msg = failure(check_vae_backward, broken)
    assert "vae_loss_and_grads(model, x, eps) raised" in part_of(msg, "loss"), msg


# ---- the extra exercises and the student's own check -------------------------------------

def test_fixed_gaussian_and_kl_diag_slips():
    lp = lambda x, m, s: -0.5 * np.sum(np.log(2 * np.pi * s ** 2) + (x - m) ** 2 / s ** 2, axis=-1)
    assert_caught(failure(check_fixed_gaussian, lp, lambda x, m, s: (x - m) / s), "gradient", "divided by s")
    kl = lambda mu, lv, m0, lv0: 0.5 * np.sum(lv0 - lv + (np.exp(lv) + (mu - m0) ** 2) * np.exp(-lv0) - 1, axis=-1)
    msg = failure(check_kl_diag, kl, lambda mu, lv, m0, lv0: (mu - m0, 0.5 * (np.exp(lv) - 1)))
    assert_caught(msg, "dmu", "precision exp(-logvar0) is missing")
    assert_caught(msg, "dlogvar", "the gradient for a standard prior")


def test_check_gradient_f_does_not_read_x():
    x = np.random.default_rng(0).normal(size=(3, 4))
    copy = x.copy()
    assert_caught(failure(check_gradient, lambda: float(np.sum(copy ** 2)), 2 * x, x), "x", "f does not read x")
    check_gradient(lambda: float(np.sum(x ** 2)), 2 * x, x)


def test_check_gradient_transpose_with_square_shapes():
    rng = np.random.default_rng(1)
    x, C = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    f = lambda: float(np.sum(C * x))              # gradient C; C.T has the same shape
    assert_caught(failure(check_gradient, f, C.T, x), "x", "ours is the transpose of the expected: a missing .T",
                  worst_index(C.T, C))


def test_not_written_raises_not_implemented_error():
    def todo(*args):
        raise NotImplementedError
    with pytest.raises(NotImplementedError, match="KL to N.0, I.: not written yet: kl.mu, logvar. raises"):
        check_kl(todo, todo)


# ---- the student version and grading a submission ------------------------------------------

def without_master_only(nb):
    """The master's cells as the student version has them (the cells tagged master-only left out)."""
    return [c for c in nb["cells"] if "master-only" not in c.get("metadata", {}).get("tags", [])]


def solution_cells(cells):
    return [i for i, c in enumerate(cells) if BEGIN in source_of(c)]


def test_make_student_removes_every_solution(tmp_path):
    for master in MASTERS:
        out = tmp_path / os.path.basename(master)
        n = make_student(master, str(out))
        nb, student = read_notebook(master), read_notebook(str(out))
        assert n == sum(source_of(c).count(BEGIN) for c in nb["cells"]) > 0, f"ours {n} regions"
        text = "".join(source_of(c) for c in student["cells"])
        assert BEGIN not in text and END not in text, "a marker survived"
        cells = without_master_only(nb)
        assert len(cells) == len(student["cells"]), f"ours {len(student['cells'])} cells vs expected {len(cells)}"
        for i in solution_cells(cells):
            lines = source_of(cells[i]).splitlines()
            inside = lines[lines.index(next(l for l in lines if BEGIN in l)) + 1]
            assert inside.strip() not in source_of(student["cells"][i]), f"cell {i}: solution line {inside!r} survived"
        assert all(not c.get("outputs") for c in student["cells"] if c["cell_type"] == "code")
        assert "Lecturer's master" in source_of(nb["cells"][0]) and "Lecturer's master" not in text, \
            "the master-only note must be in the master and not in the student version"


def test_make_student_refuses_bad_masters(tmp_path):
    nb = read_notebook(MASTERS[0])
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and BEGIN in source_of(c))
    cell["source"] = source_of(cell).replace(END, "# end")
    bad = tmp_path / "bad.ipynb"
    bad.write_text(json.dumps(nb))
    with pytest.raises(InputError, match=r"cell \d+: line \d+: '### BEGIN SOLUTION' has no '### END SOLUTION'"):
        make_student(str(bad), str(tmp_path / "out.ipynb"))
    with pytest.raises(InputError, match="is the master notebook itself"):
        make_student(MASTERS[0], MASTERS[0])
    (tmp_path / "junk.ipynb").write_text("{not json")
    with pytest.raises(InputError, match="not a readable .ipynb"):
        make_student(str(tmp_path / "junk.ipynb"), str(tmp_path / "o.ipynb"))


def test_student_notebooks_raise_not_implemented_error_in_exercise_cells_only(tmp_path):
    """Executed in a real kernel: a cell may fail only with NotImplementedError, and only if it holds
    a solution region or uses a name one defines; every grader test cell fails so."""
    import nbformat
    from nbclient import NotebookClient                # the `test` extra needs nbclient for this test

    assert main(["make-student", HOMEWORK, "--out", str(tmp_path)]) == 0
    for master in MASTERS:
        student_path = tmp_path / os.path.basename(master)
        nb = nbformat.read(str(student_path), as_version=4)
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
        master_cells = without_master_only(read_notebook(master))
        regions = solution_cells(master_cells)
        defined = set()
        for i in regions:
            defined |= set(re.findall(r"^(?:def|class)\s+(\w+)", source_of(master_cells[i]), re.M))
        assert defined, "no function or class found in the solution cells"
        raised = 0
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            errors = [o for o in cell.outputs if o.output_type == "error"]
            raised += bool(errors)
            src = cell.source
            in_exercise = i in regions or any(re.search(rf"\b{name}\b", src) for name in defined)
            if errors:
                assert errors[0].ename == "NotImplementedError", \
                    f"{student_path.name} cell {i}: ours {errors[0].ename}: {errors[0].evalue} vs expected NotImplementedError"
                assert in_exercise, f"{student_path.name} cell {i} raised but is no exercise cell:\n{src}"
            if re.search(r"^check_\w+\((?!.*\bf\b)", src, re.M) and "check_gradient" not in src:
                assert errors, f"{student_path.name} cell {i}: a grader test cell ran without NotImplementedError:\n{src}"
        listed = nb.metadata["numpyvae"]["exercises"]
        assert raised >= len(listed), f"{student_path.name}: ours {raised} cells raised vs expected >= {len(listed)}"


def test_grade_command_reports_each_part(tmp_path, capsys):
    nb = read_notebook(MASTERS[0])
    for cell in nb["cells"]:
        src = source_of(cell)
        if "self.db = dout.sum(axis=0)" in src:
            cell["source"] = src.replace("self.db = dout.sum(axis=0)", "self.db = dout.mean(axis=0)")
    nb["cells"].insert(1, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                           "source": "%matplotlib inline\nimport sys\nprint('noise'); print('x', file=sys.stderr)"})
    path = tmp_path / "submission.ipynb"
    path.write_text(json.dumps(nb))
    table = tmp_path / "verdicts.csv"
    assert main(["grade", "--master", MASTERS[0], str(path), "--csv", str(table)]) == 1
    out = capsys.readouterr().out
    print(out)
    assert "FAIL  db:" in out and "averaged over the batch instead of summed" in out, out
    assert "PASS  dW:" in out and "activation tanh (seed 0): 2 of 2 parts passed" in out, out
    assert "total: 9 of 10 points" in out, out
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["linear: db"] == "0" and rows[0]["linear: dW"] == "1" \
        and rows[0]["total"] == "9" and rows[0]["max"] == "10", f"ours {rows} vs expected one row, db 0, total 9 of 10"
    assert main(["grade", "--master", MASTERS[1], MASTERS[1]]) == 0, capsys.readouterr().out


def test_grade_command_survives_a_hanging_or_broken_submission(tmp_path, capsys):
    nb = read_notebook(MASTERS[0])
    nb["cells"].insert(2, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                           "source": "def broken(:\n    pass"})
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(nb))
    assert main(["grade", "--master", MASTERS[0], str(path)]) == 0
    assert "SyntaxError" in capsys.readouterr().out
    nb["cells"][2]["source"] = "while True:\n    pass"           # a top-level loop is not a definition: not run
    path.write_text(json.dumps(nb))
    assert main(["grade", "--master", MASTERS[0], str(path), "--timeout", "2"]) == 0
    assert main(["grade", "--master", MASTERS[0], str(tmp_path / "missing.ipynb")]) == 1
    assert "cannot read it" in capsys.readouterr().out


# ---- small errors, in this process (the grader's tolerance: issue 16) ------------------------------

def test_a_forward_difference_fails_and_the_float32_note_is_honest():
    class Tanh:
        def forward(self, x):
            self.x = x
            return np.tanh(x)

        def backward(self, dout):
            h = 1e-6
            return dout * (np.tanh(self.x + h) - np.tanh(self.x)) / h
    msg = failure(check_activation, Tanh, "tanh")
    assert "FAIL  dx:" in msg and "relative error 2.48e-07" in msg, f"ours {msg!r} vs a FAIL at 2.48e-07"

    class Tanh32(Tanh):
        def backward(self, dout):
            return (dout * (1 - np.tanh(self.x) ** 2)).astype(np.float32)
    from numpyvae.exercises import grade_activation
    report = grade_activation(Tanh32, "tanh")
    assert report.passed and "ours is float32, the inputs float64: judged at float32 precision" in str(report), \
        str(report)


def test_one_wrong_entry_of_a_large_w_fails_in_a_hidden_case():
    from numpyvae.exercises import grade_linear

    class Linear:
        def __init__(self, n_in, n_out, rng):
            self.W, self.b = rng.normal(size=(n_in, n_out)), np.zeros(n_out)

        def forward(self, x):
            self.x = x
            return x @ self.W + self.b

        def backward(self, dout):
            self.dW = self.x.T @ dout
            if self.dW.size > 100:
                self.dW[3, 5] *= 1.001
            self.db = dout.sum(axis=0)
            return dout @ self.W.T
    assert grade_linear(Linear).passed, "the public case has no large W"
    report = grade_linear(Linear, hidden=3)
    dW = next(p for p in report.parts if p.name == "dW")
    assert not dW.passed and "index (3, 5)" in dW.detail and "D_in=40" in dW.detail, f"ours {dW} vs FAIL at (3, 5)"
    assert [p.passed for p in report.parts] == [True, True, False, True], str(report)


def test_a_check_never_compares_an_answer_with_itself():
    """Every part of every exercise fails for an answer that is wrong by 1e-4 everywhere."""
    from numpyvae.exercises import checks

    def off(out):
        return {k: (v * (1 + 1e-4) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
                for k, v in out.items()}
    for key, ex in checks.EXERCISES.items():
        if key in PENDING:
            continue
        cases = ex.cases(0, 1)
        ns = {}
        for master in MASTERS:
            ns.update(run_cells(read_notebook(master))[0])
        outs = [ex.run(tuple(ns[n] for n in ex.names), c) for c in cases]
        right = checks.judge(ex, cases, outs)
        assert right.passed, f"{key}: the master's answers: ours\n{right}\nvs every part PASS"
        wrong = checks.judge(ex, cases, [off(o) for o in outs])
        passed = [p.name for p in wrong.parts if p.passed and p.name in ex.graded_parts]
        assert not passed, f"{key}: parts {passed} passed an answer 1e-4 off\n{wrong}"


# ---- the hints name the right cause, and only then (mutation survivors of diagnose.py) -----------

def test_ratio_hints_name_the_factor_and_the_sign():
    from numpyvae.exercises.diagnose import _ratio_hint
    B = {"B": (4, "the batch")}
    cases = [(-4.0, B, "the sign is flipped and summed over the batch"), (-0.25, B, "= -expected / B (B = 4)"),
             (0.25, B, "= expected / B (B = 4): averaged over the batch"), (0.5 + 1e-9, {}, "an extra factor 1/2"),
             (-1.0, {}, "the sign is flipped"), (2.0 + 1e-9, {}, "a factor 1/2 is missing"),
             (-4.0 - 1e-9, B, "summed over the batch"), (3.0, {}, "one constant factor")]
    for c, factors, sentence in cases:
        ours = _ratio_hint(c, factors)
        assert sentence in ours, f"c = {c}: ours {ours!r} vs expected a sentence with {sentence!r}"
    for c, factors in ((1 + 5e-7, {"B": (1, "the batch")}), (0.5, {"B": (1, "the batch")}), (-0.5, {})):
        ours = _ratio_hint(c, factors)
        assert "batch" not in ours and (c != -0.5 or "the sign is flipped and an extra factor 1/2" in ours), \
            f"c = {c}, {factors}: ours {ours!r}"


def test_hints_stay_silent_where_they_would_be_wrong():
    from numpyvae.exercises.diagnose import _close, compare, hint, shape_hint
    assert _close(np.zeros(3), np.zeros(3)), "two zero arrays are close"
    assert "does not read x" not in hint(np.full(3, 1e-12), np.zeros(3)), "a tiny ours is no sign f ignores x"
    rng = np.random.default_rng(0)
    expected = rng.normal(size=(4, 5))
    mask = np.zeros((4, 5), dtype=bool)
    mask[:2] = True
    tiny = expected * (1 + 5e-7)                                    # fails 1e-7, but under CLOSE everywhere
    assert "only the entries" not in hint(tiny, expected, where={"where m": mask}), hint(tiny, expected)
    everywhere = expected + rng.normal(size=(4, 5))
    assert "only the entries" not in hint(everywhere, expected, where={"where m": mask})
    inside = expected.copy()
    inside[0] += 1.0
    assert "only the entries where m are wrong (5 of 20)" in hint(inside, expected, where={"where m": mask})
    assert "extra leading axis" in shape_hint(np.zeros((3, 4, 5)), np.zeros((4, 5)))
    assert "extra last axis" in shape_hint(np.zeros((4, 5, 2)), np.zeros((4, 5)))
    for ours, exp in ((np.zeros((4, 5)), np.zeros((3, 4, 5))), (np.zeros((2, 5)), np.zeros(3)),
                      (np.zeros(()), np.zeros(1)), (np.zeros((4, 6, 5)), np.zeros((4, 5)))):
        assert shape_hint(ours, exp) == "", f"ours shape {ours.shape} vs {exp.shape}: {shape_hint(ours, exp)!r}"
    assert "single number" in shape_hint(np.zeros(()), np.zeros(3))
    part = compare("gradient", expected * 1.5, expected, own=expected * 2)
    assert part.detail.startswith("relative error") and "your own forward" not in part.hint, part
    part = compare("gradient", expected * 1.5, expected, own=expected * 1.5)
    assert "your own forward" in part.hint, part


def test_tolerances_and_messages_of_compare():
    from numpyvae.exercises.diagnose import TOL32, _ratio_hint, compare, hint, inputs_float32, shape_hint
    rng = np.random.default_rng(1)
    expected = rng.normal(size=(4, 5))
    off = (expected * (1 + 1e-3)).astype(np.float32)                 # float32, but 1e-3 off: a wrong answer
    assert not compare("dx", off, expected).passed, "a float32 answer 1e-3 off passed"
    assert TOL32 == 1e-5
    near = expected.astype(np.float32)                                 # float32 rounding only: right
    assert compare("dx", near, expected).passed
    x32 = rng.normal(size=(4, 5)).astype(np.float32)
    w32 = rng.normal(size=(4, 5)).astype(np.float32)
    exact = x32.astype(np.float64) * w32.astype(np.float64) + np.float64(1e-3) * x32.astype(np.float64) ** 2
    in32 = (x32 * w32 + np.float32(1e-3) * x32 ** 2).astype(np.float64)   # computed in float32, then upcast
    with inputs_float32(True):
        assert compare("dx", in32, exact).passed, "float32 inputs: a float32 computation returned as float64 failed"
    bad = expected.copy()
    bad[1, 2] = np.nan
    bad[3, 4] = np.inf
    assert "not finite at index (1, 2)" in compare("dx", bad, expected).detail
    assert "averaged" not in _ratio_hint(0.3, {"B": (4, "the batch")})
    assert "summed over the batch" not in _ratio_hint(5.0, {"B": (4, "the batch")})
    assert _ratio_hint(1 + 5e-7, {}) == "", _ratio_hint(1 + 5e-7, {})
    assert "does not read x" in hint(np.full(3, 100.0), np.full(3, 1e-10))
    small = 0.1 * rng.normal(size=(4, 5))
    wrong = small + 1e-3
    wrong[0] += 0.5
    mask = np.zeros((4, 5), dtype=bool)
    mask[0] = True
    assert "only the entries" not in hint(wrong, small, where={"in row 0": mask}), hint(wrong, small, where={"in row 0": mask})
    inside = small.copy()
    inside[0] += 0.5
    assert hint(inside, small, where={"in row 0": (mask, "check row 0")}).endswith(": check row 0."), \
        hint(inside, small, where={"in row 0": (mask, "check row 0")})
    assert shape_hint(np.zeros((2, 3, 4)), np.zeros((4, 3, 2))) == ""
    assert shape_hint(np.zeros(()), np.zeros((0,))) == ""
    assert compare("db", np.zeros(3), np.zeros(3)).passed, "a right answer of all zeros failed"
    sym = expected[:4, :4] + expected[:4, :4].T
    assert ".T" not in hint(sym * (1 + 5e-7), sym), "a symmetric answer off by 5e-7 is no missing .T"


# ---- the cases: public as the handouts state, hidden ones of every kind (checks.py survivors) ------

def test_public_and_hidden_cases_are_what_the_guide_says():
    from numpyvae.exercises import checks
    public = {"conv2d": {"x": (4, 2, 7, 6), "W": (3, 2, 3, 3)},
              "linear": {"x": (4, 5), "W": (5, 3)}, "tanh": {"x": (4, 5)}, "relu": {"x": (4, 5)},
              "bernoulli": {"x": (4, 6)}, "reparameterize": {"mu": (4, 3)}, "kl": {"mu": (4, 3)},
              "vae": {"x": (4, 6)}, "fixed_gaussian": {"x": (4, 6)}, "kl_diag": {"mu": (4, 3)}}
    public["conv2d"] = {"x": (4, 2, 7, 6), "W": (3, 2, 3, 3)}                   # homework 3
    public["planar"] = {"z": (5, 3), "u_hat": (3,)}                            # homework 4
    public["gumbel_softmax"] = {"logits": (4, 5), "g": (4, 5), "dy": (4, 5)}     # homework 5
    for key, ex in checks.EXERCISES.items():
        cases = ex.cases(0, 7)
        only = ex.cases(0)
        assert len(only) == 1 and all(np.array_equal(only[0][k], cases[0][k]) for k in public[key]), \
            f"{key}: the public case depends on the hidden seed"
        for name, shape in public[key].items():
            assert cases[0][name].shape == shape, f"{key}: public {name} ours {cases[0][name].shape} vs {shape}"
        assert cases[0]["label"] == "the public case" and cases[0].get("dtype", "float64") == "float64"
        hidden = cases[1:]
        assert len(hidden) >= 3, f"{key}: {len(hidden)} hidden cases"
        first = public[key].__iter__().__next__()
        batch = [c[first].shape[0] for c in hidden]
        assert 1 in batch, f"{key}: no hidden case of batch size 1 ({batch})"
        assert all(c[first].shape != cases[0][first].shape for c in hidden), f"{key}: a hidden case has the public shape"
        for k, c in enumerate(hidden, 1):
            assert c["label"].startswith(f"hidden case {k} (") and ("float32" in c["label"]) == \
                (c.get("dtype") == "float32"), f"{key}: label {c['label']!r} of dtype {c.get('dtype')}"
        if key != "vae":
            assert any(c.get("dtype") == "float32" for c in hidden), f"{key}: no float32 hidden case"
    W = [c["W"].shape for c in checks.linear_cases(0, 7)]
    assert any(a < b for a, b in W) and any(a * b >= 1000 for a, b in W), f"Linear hidden W shapes {W}"
    assert sorted(c["x"].shape[0] for c in checks.vae_cases(0, 7))[-1] == 1000
    seeds = {c["model_seed"] for c in checks.vae_cases(0, 7)}
    assert len(seeds) == 4 and 0 in seeds and max(seeds) >= 2 ** 20, f"VAE weights: seeds {seeds}"
    assert np.isfinite(checks.BIG_LOGITS).all() and np.abs(checks.BIG_LOGITS).max() >= 800


def test_known_wrong_answers_get_their_hints():
    from numpyvae.exercises import grade_activation, grade_fixed_gaussian, grade_kl

    class Tanh:
        def forward(self, x):
            self.out = np.tanh(x)
            return self.out

        def backward(self, dout):
            return dout * (1 - self.out)
    assert "1 - out is not the derivative of tanh" in str(grade_activation(Tanh, "tanh"))

    class ReLU:
        def forward(self, x):
            self.x = x
            return np.maximum(x, 0)

        def backward(self, dout):
            return dout * (self.x < 0)
    assert "the mask is x > 0" in str(grade_activation(ReLU, "relu"))

    class ReLUdout(ReLU):
        def backward(self, dout):
            return dout
    assert "relu's derivative is 0 where x < 0" in str(grade_activation(ReLUdout, "relu"))
    grads = lambda mu, logvar: (mu, 0.5 * (np.exp(logvar) - 1))
    for kl, sentence in ((lambda mu, lv: 0.5 * np.sum(mu ** 2 + np.exp(lv / 2) - 1 - lv, axis=-1),
                          "exp(logvar / 2) is the standard deviation"),
                         (lambda mu, lv: 0.5 * np.sum(mu ** 2 + np.exp(2 * lv) - 1 - lv, axis=-1),
                          "(squared again)")):
        assert sentence in str(grade_kl(kl, grads)), str(grade_kl(kl, grads))
    lp = lambda x, m, s: -0.5 * np.sum(np.log(2 * np.pi * s) + (x - m) ** 2 / s ** 2, axis=-1)
    report = grade_fixed_gaussian(lp, lambda x, m, s: (x - m) / s ** 2)
    assert "s^2, not s" in str(report), str(report)


def test_a_log_prob_raising_on_large_logits_is_a_sentence():
    def log_prob(x, logits):
        if np.abs(logits).max() > 100:
            raise ValueError("too large")
        return np.sum(x * logits - np.logaddexp(0, logits), axis=-1)
    from numpyvae.exercises import grade_bernoulli
    report = grade_bernoulli(log_prob, lambda x, l: x - 1 / (1 + np.exp(-l)))
    verdicts = [(p.name, p.verdict) for p in report.parts]
    assert verdicts == [("log_prob", "PASS"), ("log_prob, large |logits|", "FAIL"), ("gradient", "PASS")], verdicts
    assert "raised ValueError: too large" in report.parts[1].detail, report.parts[1]


def test_where_hints_name_the_positive_side_too():
    from numpyvae.exercises import grade_activation, grade_bernoulli
    from numpyvae import distributions as dist

    class LeakyWrong:
        def forward(self, x):
            self.x = x
            return np.tanh(x)

        def backward(self, dout):
            right = dout * (1 - np.tanh(self.x) ** 2)
            return np.where(self.x > 0, 2 * right, right)
    assert "only the entries where x > 0 are wrong" in str(grade_activation(LeakyWrong, "tanh"))

    def grad(x, logits):
        right = x - 1 / (1 + np.exp(-logits))
        return np.where(logits > 0, right + 0.1, right)
    report = str(grade_bernoulli(dist.bernoulli_log_prob, grad))
    assert "only the entries where logits > 0 are wrong" in report, report


def test_a_raising_gradient_and_the_kl_sign_hint():
    from numpyvae import distributions as dist
    from numpyvae.exercises import grade_bernoulli, grade_kl

    def grad(x, logits):
        raise KeyError("oops")
    report = grade_bernoulli(dist.bernoulli_log_prob, grad)
    assert [p.verdict for p in report.parts] == ["PASS", "PASS", "FAIL"] and "raised KeyError" in report.parts[2].detail, \
        str(report)
    kl = lambda mu, lv: 0.5 * np.sum(mu ** 2 + np.exp(lv) - 1 + lv, axis=-1)
    report = grade_kl(kl, lambda mu, lv: (mu, 0.5 * (np.exp(lv) - 1)))
    assert "the -logvar term has the wrong sign" in report.parts[0].hint, str(report)


def test_reparameterization_hints_for_the_exponent_and_the_variance():
    from numpyvae.exercises import grade_reparameterize
    z = lambda mu, lv, eps: mu + np.exp(-lv / 2) * eps
    back = lambda dz, mu, lv, eps: (dz, dz * 0.5 * np.exp(lv / 2) * eps)
    assert "wrong sign in the exponent" in grade_reparameterize(z, back).parts[0].hint
    right = lambda mu, lv, eps: mu + np.exp(lv / 2) * eps
    var = lambda dz, mu, lv, eps: (dz, dz * np.exp(lv) * eps)
    report = grade_reparameterize(right, var)
    assert "d exp(logvar) eps / dlogvar" in report.parts[2].hint, str(report)
