"""The runner: the only process where a submission's code runs when a notebook is graded.

``python -m numpyvae.exercises.runner JOBDIR`` (started by ``grader``, one
process per exercise, in an empty working directory, stdin closed, with a
memory, CPU-time and file-size limit) reads ``JOBDIR/job.json`` (the
exercise, the submission's code cells) and ``JOBDIR/cases.npz`` (the
inputs the judge drew), then

1. executes the *definitions* of the submission, cell by cell in order:
   the top-level ``import``, ``def``, ``class`` and assignment statements.
   Everything else at the top level of a cell (calls such as check cells,
   prints, plots, loops, ``os._exit``) is not run when graded;
2. calls the exercise's ``run`` (checks.py) on each case, while a profile
   hook records every call of a code object that is one of the package's
   reference implementations of this exercise (``Exercise.forbidden``):
   found by the file it comes from, or by its bytecode, which catches the
   package's source compiled again with ``exec``; and an import hook
   records the modules the submission imports, however it asks
   (``import``, ``__import__``, ``importlib.import_module``);
3. writes the outputs (arrays only) to ``JOBDIR/out.npz`` and
   ``JOBDIR/out.json``.

The judge reads those files without pickle and computes every verdict
itself: nothing here decides a grade.  A submission that ends this process
early, hangs or exceeds a limit loses this exercise only.
"""
import ast
import builtins
import contextlib
import importlib
import io
import json
import linecache
import os
import sys
import threading
import warnings

import numpy as np

from .checks import EXERCISES, Failed

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
               ast.AnnAssign, ast.AugAssign)


def definitions(source, filename):
    """The code objects of the top-level definition statements of ``source`` (a cell), and the
    error of a cell that does not parse (or None)."""
    lines = "".join("# (skipped) " + line if line.lstrip().startswith(("%", "!")) else line
                    for line in source.splitlines(keepends=True))
    linecache.cache[filename] = (len(lines), None, lines.splitlines(keepends=True), filename)
    try:
        tree = ast.parse(lines, filename)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return [], f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return [(stmt.lineno, ast.Module([stmt], type_ignores=[])) for stmt in tree.body
            if isinstance(stmt, DEFINITIONS)], None


def execute(cells):
    """Run the definitions of every cell in one namespace; (namespace, errors)."""
    namespace = {"__name__": "__main__", "display": print}
    errors = []
    for i, source in cells:
        filename = f"<cell {i}>"
        stmts, error = definitions(source, filename)
        if error:
            errors.append({"cell": i, "error": error})
        for lineno, module in stmts:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    exec(compile(module, filename, "exec"), namespace)
                except BaseException as exc:              # SystemExit too: the next statement still runs
                    errors.append({"cell": i, "error": f"line {lineno}: {type(exc).__name__}: "
                                                       f"{str(exc).splitlines()[0] if str(exc) else ''}"})
    return namespace, errors


# ---- what the submission may not call --------------------------------------------------------

def _fingerprint(code):
    """What a code object computes, whatever file it was compiled from."""
    consts = tuple(c if not hasattr(c, "co_code") else c.co_name for c in code.co_consts)
    return code.co_name, code.co_code, code.co_names, code.co_varnames, repr(consts)


def _code_objects(code):
    yield code
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            yield from _code_objects(c)


def forbidden_code(forbidden):
    """{fingerprint: "file: qualname"} of the package's functions ``forbidden`` lists."""
    found = {}
    for filename, qualname in forbidden:
        path = os.path.join(PACKAGE, filename)
        with open(path, encoding="utf-8") as fh:
            module = compile(fh.read(), path, "exec")
        for code in _code_objects(module):
            name = getattr(code, "co_qualname", code.co_name)
            if code is not module and (qualname == "*" or name == qualname
                                       or (qualname.endswith(".*") and name.startswith(qualname[:-1]))):
                found[_fingerprint(code)] = f"numpyvae/{filename}: {name}"
    return found


class Watch:
    """A profile hook recording calls of the forbidden code, and an import hook recording imports."""

    def __init__(self, forbidden):
        self.forbidden = forbidden_code(forbidden)
        self.seen, self.imports, self._known = [], [], {}

    def _profile(self, frame, event, arg):
        if event == "call":
            code = frame.f_code
            hit = self._known.get(code)
            if hit is None:
                hit = self._known[code] = self.forbidden.get(_fingerprint(code), "")
            if hit and hit not in self.seen:
                self.seen.append(hit)

    def _record(self, name):
        if isinstance(name, str) and name.startswith("numpyvae") and name not in self.imports:
            self.imports.append(name)

    @contextlib.contextmanager
    def watching(self, calls=True):
        real_import, real_import_module = builtins.__import__, importlib.import_module

        def logged_import(name, *args, **kwargs):
            self._record(name)
            return real_import(name, *args, **kwargs)

        def logged_import_module(name, package=None):
            self._record(importlib.util.resolve_name(name, package) if name.startswith(".") else name)
            return real_import_module(name, package)
        builtins.__import__, importlib.import_module = logged_import, logged_import_module
        if calls:
            threading.setprofile(self._profile)
            sys.setprofile(self._profile)
        try:
            yield
        finally:
            intact = not calls or getattr(sys.getprofile(), "__self__", None) is self
            if calls:
                sys.setprofile(None)
                threading.setprofile(None)
            builtins.__import__, importlib.import_module = real_import, real_import_module
            if not intact:
                self.seen.append("the grader's call trace was switched off by the submission")


# ---- the outputs, as files without pickle -----------------------------------------------------

def _encode(outputs, arrays):
    """JSON-able form of the outputs of each case; arrays go to ``arrays`` by key."""
    encoded = []
    for k, out in enumerate(outputs):
        if isinstance(out, Failed):
            encoded.append({"failed_all": vars(out) | {"parts": list(out.parts)}})
            continue
        item = {"failed": [vars(f) | {"parts": list(f.parts)} for f in out.get("failed", [])], "values": {}}
        for name, value in out.items():
            if name == "failed":
                continue
            if isinstance(value, Failed):
                item["values"][name] = {"failed": vars(value) | {"parts": list(value.parts)}}
            elif isinstance(value, np.ndarray):
                key = f"{k}/{len(arrays)}"
                arrays[key] = value
                item["values"][name] = {"array": key}
            elif value is None:
                item["values"][name] = {"none": True}
            else:
                item["values"][name] = {"text": str(value)[:200]}
        encoded.append(item)
    return encoded


def main(jobdir):
    with open(os.path.join(jobdir, "job.json"), encoding="utf-8") as fh:
        job = json.load(fh)
    import resource
    from .grader import limits
    for what, value in limits(*job["limits"]):
        try:
            resource.setrlimit(what, (value, value))
        except (ValueError, OSError):
            pass
    ex = EXERCISES[job["exercise"]]
    with np.load(os.path.join(jobdir, "cases.npz"), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    cases = [dict(meta, **{k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{i}/")})
             for i, meta in enumerate(job["cases"])]
    watch = Watch(ex.forbidden)
    with watch.watching(calls=False):             # definitions may use the package (a demo cell, say)
        namespace, cell_errors = execute(job["cells"])
    missing = [n for n in ex.names if n not in namespace]
    outputs = []
    with watch.watching():
        for case in cases:
            if missing:
                outputs.append(Failed(ex.parts, FAIL_, f"the notebook defines no {', '.join(missing)}",
                                      "keep the names the exercise gives (the grader looks them up by name)."))
                continue
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    outputs.append(ex.run(tuple(namespace[n] for n in ex.names), case))
                except BaseException as exc:           # a SystemExit from the student's code, say
                    outputs.append(Failed(ex.parts, FAIL_, f"the exercise's code raised {type(exc).__name__}: "
                                                         f"{str(exc)[:200]}"))
    out_arrays = {}
    result = {"cells": cell_errors, "outputs": _encode(outputs, out_arrays), "reference_calls": watch.seen,
              "imports": watch.imports}
    np.savez(os.path.join(jobdir, "out.npz"), **out_arrays)
    with open(os.path.join(jobdir, "out.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


FAIL_ = "FAIL"

if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
