"""Submissions a hostile student or a careless one would hand in, built from the masters.

Each builder takes the master notebook (a dict) and returns a submission (a dict) made from the
student version with some cells filled in.  ``right`` fills every solution from the master; the
others change one thing.  Used by tests/test_grading.py and scripts/grading_adversary.py (which
also ran them against the grader before issue 16, for the old-vs-new grades in its note).
"""
import copy
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOMEWORK = os.path.join(ROOT, "notebooks", "homework")
HW1 = os.path.join(HOMEWORK, "01-backward-passes.ipynb")
HW2 = os.path.join(HOMEWORK, "02-vae-backward.ipynb")


def load(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def src(cell):
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def code(source):
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}


def right(master):
    """The master's code as a student who solved everything hands it in (markers are comments)."""
    nb = copy.deepcopy(master)
    nb["cells"] = [c for c in nb["cells"] if "master-only" not in c.get("metadata", {}).get("tags", [])]
    for c in nb["cells"]:
        c["source"] = "".join(line for line in src(c).splitlines(keepends=True)
                              if "### BEGIN" not in line and "### END" not in line)
    return nb


def untouched(master):
    """The student version as handed out: every solution region is raise NotImplementedError."""
    nb = right(master)
    out = []
    for c_master, c in zip([c for c in master["cells"] if "master-only" not in c.get("metadata", {}).get("tags", [])],
                           nb["cells"]):
        s = src(c_master)
        if c["cell_type"] == "code" and "### BEGIN SOLUTION" in s:
            lines, keep, inside = s.splitlines(keepends=True), [], False
            for line in lines:
                if "### BEGIN SOLUTION" in line:
                    inside = True
                    keep.append(line[:len(line) - len(line.lstrip())] + "raise NotImplementedError\n")
                elif "### END SOLUTION" in line:
                    inside = False
                elif not inside:
                    keep.append(line)
            c["source"] = "".join(keep)
        out.append(c)
    nb["cells"] = out
    return nb


def replace_cell(nb, startswith, source):
    """The notebook with the code cell whose source starts with ``startswith`` replaced by ``source``."""
    nb = copy.deepcopy(nb)
    hits = [c for c in nb["cells"] if c["cell_type"] == "code" and src(c).lstrip().startswith(startswith)]
    assert hits, f"no cell starts with {startswith!r}"
    hits[0]["source"] = source
    return nb


def edit(nb, old, new):
    """The notebook with ``old`` replaced by ``new`` in the one code cell holding it."""
    nb = copy.deepcopy(nb)
    hits = [c for c in nb["cells"] if c["cell_type"] == "code" and old in src(c)]
    assert len(hits) == 1, f"{len(hits)} cells hold {old!r}"
    hits[0]["source"] = src(hits[0]).replace(old, new)
    return nb


def append(nb, source, at=None):
    nb = copy.deepcopy(nb)
    nb["cells"].insert(len(nb["cells"]) if at is None else at, code(source))
    return nb


# ---- cheats: the package's own implementation, reached in ways a text search would miss --------

TANH_IMPORTLIB = '''import importlib
Tanh = getattr(importlib.import_module("numpy" + "vae.layers"), "Ta" + "nh")
'''
TANH_IMPORT = "from numpyvae.layers import Tanh\n"
RELU_EXEC = '''import os, numpyvae


def _load():
    path = os.path.join(os.path.dirname(numpyvae.__file__), "layers.py")
    ns = {}
    exec(compile(open(path).read().replace("from .", "from numpyvae."), "<my own layers>", "exec"), ns)
    return ns["ReLU"]


ReLU = _load()
'''
LINEAR_CALLS_REFERENCE = '''import numpyvae.layers as _L


class Linear:
    def __init__(self, n_in, n_out, rng):
        self.W, self.b = rng.normal(size=(n_in, n_out)), np.zeros(n_out)

    def forward(self, x):
        self._ref = _L.Linear(self.W.shape[0], self.W.shape[1], dtype=np.float64)
        self._ref.W[...], self._ref.b[...] = self.W, self.b
        return self._ref.forward(x)

    def backward(self, dout):
        dx = self._ref.backward(dout)
        self.dW, self.db = self._ref.dW.copy(), self._ref.db.copy()
        return dx
'''
BERNOULLI_REFERENCE = '''def bernoulli_log_prob(x, logits):
    return __import__("numpyvae.distributions", fromlist=["x"]).bernoulli_log_prob(x, logits)


def bernoulli_log_prob_grad(x, logits):
    import numpyvae.distributions as d
    return d.bernoulli_log_prob_grad(x, logits)
'''
VAE_REFERENCE = '''def vae_loss_and_grads(model, x, eps):
    loss, grads = model.loss_and_grads(x, eps=eps)
    return loss, {k: v.copy() for k, v in grads.items()}
'''
KL_REFERENCE = '''import numpyvae.distributions as _d
kl_std_normal = _d.kl_std_normal
kl_std_normal_grads = _d.kl_std_normal_grads
'''

# ---- attacks on the verdict ------------------------------------------------------------------

PATCH_GRADER = '''import numpyvae.exercises.notebook as _nb, numpyvae.exercises.checks as _c, numpyvae.exercises.diagnose as _d
from numpyvae.exercises.report import Part, Report
def _all_pass(exercise, namespace, seed=0, hidden=None):
    ex = _c.EXERCISES[exercise]
    return Report(ex.title, seed, [Part(p, "PASS", "forged") for p in getattr(ex, "parts", ("forward", "dx", "dW"))])
_nb.grade_names = _c.grade_names = _all_pass
_d.compare = lambda name, *a, **k: Part(name, "PASS", "forged")
_c.compare = _d.compare
'''
FORGE_RESULT = '''import os, json
_forged = {"cells": [], "reports": [{"exercise": e, "seed": 0, "parts": [{"name": p, "verdict": "PASS", "detail": "", "hint": ""}]}
                                    for e, p in [("Linear", "dx"), ("Linear", "dW"), ("Linear", "db")]]}
os.write(1, (json.dumps(_forged) + "\\n").encode())
os._exit(0)
'''
EXIT_CELL = "import os\nos._exit(0)\n"
DELETE_OTHERS = '''import glob, os
for _f in glob.glob("*.ipynb") + glob.glob("*"):
    try:
        os.remove(_f)
    except OSError:
        pass
'''
STDOUT_NO_NEWLINE = "import sys\nsys.__stdout__.write('progress: 100%')\nsys.__stdout__.flush()\n"
ALLOCATE_4GB = "import numpy as _np\n_big = _np.ones(4 * 1024 ** 3 // 8)\n"
SYNTAX_ERROR = ("self.out = np.tanh(x) ", "self.out = np.tanh(x( ")

# ---- small wrong answers ---------------------------------------------------------------------

TANH_FORWARD_DIFFERENCE = '''class Tanh:
    """dx by a forward difference of tanh (h = 1e-5): off by about h/2 times tanh''."""

    def forward(self, x):
        self.x = x
        return np.tanh(x)

    def backward(self, dout):
        h = 1e-5
        return dout * (np.tanh(self.x + h) - np.tanh(self.x)) / h
'''
LINEAR_ONE_WRONG_ENTRY = '''class Linear:
    """dW right except one entry of a large W, by 0.1 %."""

    def __init__(self, n_in, n_out, rng):
        self.W = rng.normal(size=(n_in, n_out))
        self.b = np.zeros(n_out)

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW = self.x.T @ dout
        if self.dW.size > 100:
            self.dW[3, 5] *= 1.001
        self.db = dout.sum(axis=0)
        return dout @ self.W.T
'''
VAE_B_MINUS_ONE = ("dlogits = -(x - sigmoid(logits)) / B",
                   "dlogits = -(x - sigmoid(logits)) / (B - 1 if B > 1 else B)")
VAE_FLOAT32 = ("    return loss, model.grads()",
               "    return np.float32(loss), {k: v.astype(np.float32) for k, v in model.grads().items()}")
TANH_ENDLESS = ("        return dout * (1 - self.out ** 2)         # chain rule: upstream times the local derivative",
                "        while True:\n            pass")
RELU_OUTPUT_MASK = '''class ReLU:
    def forward(self, x):
        self.out = np.maximum(x, 0)
        return self.out

    def backward(self, dout):
        return dout * (self.out > 0)
'''
RELU_WRONG_MASK = '''class ReLU:
    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, dout):
        return dout * (self.x >= 0) * (self.x < 1.5)
'''

# ---- homework 3 (Conv2d): its master is still to be written; the exercise is registered --------

CONV2D_RIGHT = '''import itertools
import numpy as np


class Conv2d:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        self.s, self.p, self.k = stride, padding, kernel_size
        self.W = np.zeros((out_channels, in_channels, kernel_size, kernel_size))
        self.b = np.zeros(out_channels)

    def forward(self, x):
        self.x = x
        s, p, k = self.s, self.p, self.k
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        Ho, Wo = (x.shape[2] + 2 * p - k) // s + 1, (x.shape[3] + 2 * p - k) // s + 1
        out = np.empty((x.shape[0], self.W.shape[0], Ho, Wo), dtype=np.result_type(x, self.W))
        for i, j in itertools.product(range(Ho), range(Wo)):
            out[:, :, i, j] = np.einsum("ncuv,fcuv->nf", xp[:, :, s * i:s * i + k, s * j:s * j + k], self.W) + self.b
        return out

    def backward(self, dout):
        x, s, p, k = self.x, self.s, self.p, self.k
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        dxp, dW = np.zeros_like(xp), np.zeros_like(self.W)
        for i, j in itertools.product(range(dout.shape[2]), range(dout.shape[3])):
            rows, cols = slice(s * i, s * i + k), slice(s * j, s * j + k)
            dW += np.einsum("nf,ncuv->fcuv", dout[:, :, i, j], xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += np.einsum("nf,fcuv->ncuv", dout[:, :, i, j], self.W)
        self.dW, self.db = dW, dout.sum(axis=(0, 2, 3))
        return dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]]
'''
CONV2D_PACKAGE = '''import numpy as np
from numpyvae.conv import Conv2d as _C


class Conv2d(_C):
    def __init__(self, c, f, k, s, p):
        super().__init__(c, f, k, s, p, dtype=np.float64)
'''
CONV2D_GRADER_LOOPS = '''import numpy as np
from numpyvae.exercises.conv_checks import conv_backward_loops, conv_forward_loops


class Conv2d:
    def __init__(self, c, f, k, s, p):
        self.s, self.p = s, p

    def forward(self, x):
        self.x = x
        return conv_forward_loops(x, self.W, self.b, self.s, self.p)

    def backward(self, dout):
        dx, self.dW, self.db = conv_backward_loops(self.x, self.W, dout, self.s, self.p)
        return dx
'''
