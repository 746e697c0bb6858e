"""The issue-16 attacks on the homework grader, run as a student and a TA would: grade per attack.

    python scripts/grading_adversary.py                 # this checkout's grader
    python scripts/grading_adversary.py --old /tmp/old  # a checkout of the grader before issue 16

Each attack is a submission built by tests/homework_submissions.py, graded in a fresh temporary
folder with the command line the grader of that checkout takes (before issue 16:
``grade FILE``; now: ``grade --master MASTER FILE``); prints the total line and exit code.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import homework_submissions as hs  # noqa: E402


def attacks(root):
    """(name, master path, builder) for each attack, from the masters of the checkout at ``root``."""
    HW1, HW2 = (os.path.join(root, "notebooks", "homework", n) for n in ("01-backward-passes.ipynb",
                                                                        "02-vae-backward.ipynb"))
    hw1, hw2 = hs.load(HW1), hs.load(HW2)
    r1, r2, u1 = hs.right(hw1), hs.right(hw2), hs.untouched(hw1)
    meta_one = hs.right(hw1)
    meta_one["metadata"]["numpyvae"] = {"exercises": ["linear"]}
    no_tanh = hs.right(hw1)
    no_tanh["metadata"].pop("numpyvae", None)
    no_tanh["cells"] = [c for c in no_tanh["cells"] if "Tanh" not in hs.src(c)]
    return [
        ("hw1 right answers", HW1, lambda: r1),
        ("hw1 untouched handout", HW1, lambda: u1),
        ("hw1 reference imported (Tanh: import; Linear: calls numpyvae.layers; Bernoulli: __import__)", HW1, lambda:
         hs.replace_cell(hs.replace_cell(hs.replace_cell(u1, "class Tanh", hs.TANH_IMPORT), "class Linear",
                                         hs.LINEAR_CALLS_REFERENCE), "def bernoulli_log_prob", hs.BERNOULLI_REFERENCE)),
        ("hw1 Tanh via importlib from strings", HW1, lambda: hs.replace_cell(u1, "class Tanh", hs.TANH_IMPORTLIB)),
        ("hw1 ReLU by exec of the package's layers.py", HW1, lambda: hs.replace_cell(r1, "class ReLU", hs.RELU_EXEC)),
        ("hw2 reference called (model.loss_and_grads, distributions.kl_*)", HW2, lambda:
         hs.replace_cell(hs.replace_cell(hs.untouched(hw2), "def sigmoid", hs.VAE_REFERENCE), "def kl_std_normal",
                         hs.KL_REFERENCE)),
        ("hw1 untouched + a cell patching the grader", HW1, lambda: hs.append(u1, hs.PATCH_GRADER, at=3)),
        ("hw1 metadata edited to one exercise", HW1, lambda: meta_one),
        ("hw1 metadata and Tanh cells deleted", HW1, lambda: no_tanh),
        ("hw1 syntax error in one exercise", HW1, lambda: hs.edit(r1, *hs.SYNTAX_ERROR)),
        ("hw1 endless loop in Tanh.backward", HW1, lambda: hs.edit(r1, *hs.TANH_ENDLESS)),
        ("hw1 os._exit(0) in a cell", HW1, lambda: hs.append(r1, hs.EXIT_CELL, at=4)),
        ("hw1 untouched + forged result line and os._exit(0)", HW1, lambda: hs.append(u1, hs.FORGE_RESULT)),
        ("hw1 stdout written without a newline", HW1, lambda: hs.append(r1, hs.STDOUT_NO_NEWLINE)),
        ("hw1 4 GB allocated in a cell", HW1, lambda: hs.append(r1, hs.ALLOCATE_4GB)),
        ("hw1 Tanh by forward difference (h = 1e-5)", HW1, lambda: hs.replace_cell(r1, "class Tanh",
                                                                             hs.TANH_FORWARD_DIFFERENCE)),
        ("hw1 Linear: one wrong entry of a large dW", HW1, lambda: hs.replace_cell(r1, "class Linear",
                                                                             hs.LINEAR_ONE_WRONG_ENTRY)),
        ("hw2 VAE: 1/(B-1) instead of 1/B", HW2, lambda: hs.edit(r2, *hs.VAE_B_MINUS_ONE)),
        ("hw2 VAE: float32 answers", HW2, lambda: hs.edit(r2, *hs.VAE_FLOAT32)),
    ]


def grade(python_path, master, nb, old, timeout):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "submission.ipynb")
        with open(path, "w") as fh:
            json.dump(nb, fh)
        cmd = [sys.executable, "-m", "numpyvae.exercises", "grade", path, "--timeout", str(timeout)]
        if not old:
            cmd += ["--master", master]
        env = dict(os.environ, PYTHONPATH=python_path)
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp, timeout=120)
        except subprocess.TimeoutExpired:
            return "grader hung (killed after 120 s)", None
        totals = re.findall(r"total: (\d+(?:\.\d+)?) of (\d+(?:\.\d+)?)", run.stdout)
        text = f"{totals[-1][0]} of {totals[-1][1]}" if totals else (run.stderr.strip().splitlines() or ["?"])[-1][:90]
        return text, run.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", help="a checkout of the grader before issue 16")
    parser.add_argument("--timeout", type=float, default=5)
    args = parser.parse_args()
    root = args.old or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name, master, build in attacks(root):
        try:
            nb = build()
        except AssertionError as exc:
            print(f"{name:90s} {'n/a (' + str(exc)[:40] + ')':>20s}")
            continue
        text, code = grade(root, master, nb, bool(args.old), args.timeout)
        print(f"{name:90s} {text:>20s}  exit {code}", flush=True)


if __name__ == "__main__":
    main()
