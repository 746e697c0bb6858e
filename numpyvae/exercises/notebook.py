"""Homework notebooks: the student version made from the master, and grading a submission.

Master notebooks mark each solution with the lines (nbgrader / otter-grader convention)

    ### BEGIN SOLUTION
    ...the lecturer's code or answer...
    ### END SOLUTION

``make_student`` replaces every such region by ``raise NotImplementedError``
(at the region's indentation) in code cells, and by "YOUR ANSWER HERE" in
markdown cells, drops the cells tagged ``master-only`` (a note to the
lecturer), and clears all outputs.  Notebooks are read and written as
plain JSON (nbformat 4), so nothing beyond the standard library is needed.

``grade_notebook`` executes a submission's code cells in order in a fresh
Python process (IPython magics and shell lines are skipped; a cell that
raises is recorded and the next cell still runs), then grades each
exercise the notebook lists in its metadata ``numpyvae.exercises`` on the
objects the cells defined.
"""
import contextlib
import io
import json
import linecache
import os
import subprocess
import sys

from ..errors import InputError
from .checks import EXERCISES, grade_names
from .report import Part, Report

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUDENT_CODE = ("# YOUR CODE HERE",
                'raise NotImplementedError("exercise not done yet: replace this line with your code")')
STUDENT_ANSWER = "*YOUR ANSWER HERE*"
MASTER_ONLY = "master-only"          # a cell tag: the cell is left out of the student version


def read_notebook(path):
    """The notebook at ``path`` as a dict; InputError unless it is an nbformat-4 notebook."""
    try:
        with open(path, encoding="utf-8") as fh:
            nb = json.load(fh)
    except FileNotFoundError:
        raise InputError(f"notebook: no file {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"notebook: {path} is not a readable .ipynb (JSON) file: {exc}") from None
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        raise InputError(f"notebook: {path} is not an nbformat-4 notebook (expected a 'cells' list and nbformat 4)")
    return nb


def source_of(cell):
    """A cell's source as one string (nbformat allows a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _strip(source, where, code):
    """(source with every solution region replaced, number of regions).

    code=True: by NotImplementedError at the region's indentation; False: by YOUR ANSWER HERE.
    InputError names ``where`` and the line if a BEGIN has no END or an END no BEGIN.
    """
    out, inside, regions = [], None, 0
    for n, line in enumerate(source.splitlines(keepends=True), 1):
        text = line.strip()
        if text.startswith(BEGIN):
            if inside is not None:
                raise InputError(f"{where}: line {n}: {BEGIN!r} inside the region opened at line {inside}")
            inside, regions = n, regions + 1
            indent = line[:len(line) - len(line.lstrip())]
            out += [indent + s + "\n" for s in (STUDENT_CODE if code else (STUDENT_ANSWER,))]
        elif text.startswith(END):
            if inside is None:
                raise InputError(f"{where}: line {n}: {END!r} without a {BEGIN!r} before it")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise InputError(f"{where}: line {inside}: {BEGIN!r} has no {END!r}")
    return "".join(out), regions


def make_student(master, out):
    """Write the student version of the notebook ``master`` to the file ``out``.

    Cells tagged "master-only" are left out.
    Returns the number of solution regions replaced; InputError if there is none
    (then the notebook is not a master) or if ``out`` is the master itself.
    """
    if os.path.abspath(master) == os.path.abspath(out):
        raise InputError(f"out: {out} is the master notebook itself; write the student version elsewhere")
    nb = read_notebook(master)
    nb["cells"] = [c for c in nb["cells"] if MASTER_ONLY not in c.get("metadata", {}).get("tags", [])]
    total = 0
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") not in ("code", "markdown"):
            continue
        src, n = _strip(source_of(cell), f"{master}: cell {i}", code=cell["cell_type"] == "code")
        cell["source"] = src.splitlines(keepends=True)
        total += n
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    if total == 0:
        raise InputError(f"master: {master} has no {BEGIN!r} region: is it a master notebook?")
    nb.setdefault("metadata", {}).setdefault("numpyvae", {})["generated_from"] = os.path.basename(master)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(nb, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    return total


def masters_in(paths):
    """The .ipynb files named by ``paths`` (files, or folders searched at their top level), sorted."""
    found = []
    for p in paths:
        if os.path.isdir(p):
            found += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".ipynb"))
        elif p.endswith(".ipynb") and os.path.isfile(p):
            found.append(p)
        else:
            raise InputError(f"masters: {p} is neither a folder nor an .ipynb file")
    if not found:
        raise InputError(f"masters: no .ipynb file in {', '.join(paths)}")
    return found


# ---- running a submission -------------------------------------------------------------------

def _python_lines(source):
    """The cell's source with IPython magics (%...) and shell lines (!...) commented out."""
    return "".join("# (skipped) " + line if line.lstrip().startswith(("%", "!")) else line
                   for line in source.splitlines(keepends=True))


def run_cells(nb, name="notebook"):
    """Execute the code cells of ``nb`` in one fresh namespace, in order, printing nothing.

    Returns (namespace, cells): cells is a list of dicts {"cell", "error"}
    with error None or "ExceptionName: message".
    """
    namespace = {"__name__": "__main__", "display": print}      # IPython's display(), as far as grading needs
    cells = []
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        filename = f"<{name} cell {i}>"
        source = _python_lines(source_of(cell))
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        error = None
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                exec(compile(source, filename, "exec"), namespace)
            except BaseException as exc:                       # SystemExit too: a cell must not end the grading
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        cells.append({"cell": i, "error": error})
    return namespace, cells


def exercises_of(nb, namespace):
    """The exercises a notebook lists in metadata numpyvae.exercises, else those whose names it defines."""
    listed = nb.get("metadata", {}).get("numpyvae", {}).get("exercises")
    if listed:
        unknown = [e for e in listed if e not in EXERCISES]
        if unknown:
            raise InputError(f"notebook metadata numpyvae.exercises: unknown {unknown}; known: {sorted(EXERCISES)}")
        return list(listed)
    return [e for e, ex in EXERCISES.items() if all(n in namespace for n in ex.names)]


def _grade_here(path, seed):
    """Run and grade in this process; a JSON-able dict."""
    nb = read_notebook(path)
    namespace, cells = run_cells(nb, os.path.basename(path))
    with contextlib.redirect_stdout(io.StringIO()):
        reports = [grade_names(e, namespace, seed) for e in exercises_of(nb, namespace)]
    return {"cells": cells, "reports": [{"exercise": r.exercise, "seed": r.seed,
                                         "parts": [vars(p) for p in r.parts]} for r in reports]}


def grade_notebook(path, seed=0, timeout=300):
    """Execute the notebook at ``path`` in a fresh Python process and grade it.

    Returns (reports, cells): a list of Reports, and the executed cells as
    dicts {"cell": index, "error": None or "Name: message"}.  A notebook that
    does not finish within ``timeout`` seconds gets one failed Report saying so.
    """
    read_notebook(path)                                       # refuse a bad file here, with InputError
    cmd = [sys.executable, "-m", "numpyvae.exercises", "_grade-here", os.path.abspath(path), str(int(seed))]
    # the child runs in the notebook's folder; it must import this very numpyvae, installed or not
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                             cwd=os.path.dirname(os.path.abspath(path)))
    except subprocess.TimeoutExpired:
        report = Report(os.path.basename(path), seed)
        report.add(Part("execution", "FAIL", f"the notebook did not finish within {timeout} s",
                        "an endless loop, or a much too large computation?"))
        return [report], []
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines:
        report = Report(os.path.basename(path), seed)
        last = run.stderr.strip().splitlines()[-1:] or ["no output"]
        report.add(Part("execution", "FAIL", f"the grading process stopped: {last[0]}"))
        return [report], []
    result = json.loads(lines[-1])
    reports = [Report(r["exercise"], r["seed"], [Part(**p) for p in r["parts"]]) for r in result["reports"]]
    return reports, result["cells"]
