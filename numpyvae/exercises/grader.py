"""The judge: grades submissions against an instructor's assignment, never running their code here.

For each submission and each exercise of the assignment (``manifest``),
the judge draws the inputs (the public case and the hidden ones, from the
manifest's hidden seed), starts one runner process
(``numpyvae.exercises.runner``) in a fresh empty temporary folder with
stdin closed and limits on time, memory and file size, waits for it, reads
back the student's outputs (``.npz`` without pickle, and JSON), and
computes expected values, verdicts and points here.  A hang, a crash, an
``os._exit`` or a memory blow-up costs that exercise only.  The
denominator is the manifest's, the same for every student.
"""
import json
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import InputError
from .checks import EXERCISES, Failed, judge
from .report import FAIL, Part, Report

MAX_NOTEBOOK_BYTES = 20_000_000
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_submission(path):
    """The bytes of the submission at ``path``; InputError (a sentence) for anything that is not a
    regular file of sensible size.  Never blocks on a FIFO or a device."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: not a regular file (a folder, FIFO or device)")
    if st.st_size > MAX_NOTEBOOK_BYTES:
        raise InputError(f"{path}: {st.st_size} bytes, more than the {MAX_NOTEBOOK_BYTES} a notebook may have")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            return fh.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None


def code_cells(data, where):
    """[(index, source)] of the code cells of the notebook whose bytes are ``data``; InputError if it
    is not an nbformat-4 notebook."""
    from .notebook import parse_notebook, source_of
    nb = parse_notebook(data, where)
    return [(i, source_of(c)) for i, c in enumerate(nb["cells"])
            if isinstance(c, dict) and c.get("cell_type") == "code"]


def limits(memory_mb, cpu_s):
    """The runner's resource limits: memory (address space), CPU time, size of a written file, no core dump."""
    import resource
    return [(resource.RLIMIT_AS, int(memory_mb) * 1024 * 1024), (resource.RLIMIT_CPU, int(math.ceil(cpu_s)) + 1),
            (resource.RLIMIT_FSIZE, 256 * 1024 * 1024), (resource.RLIMIT_CORE, 0)]


def _apply_limits(pid, memory_mb, cpu_s):
    """Set the limits on the started runner from here (resource.prlimit: no preexec_fn, safe with threads);
    the runner sets them on itself as well, before any student code runs."""
    import resource
    for what, value in limits(memory_mb, cpu_s):
        try:
            resource.prlimit(pid, what, (value, value))
        except (ValueError, OSError, AttributeError):
            pass


def run_exercise(exercise, cells, cases, timeout=60.0, memory_mb=2048):
    """Run ``exercise`` of a submission (its code ``cells``) on ``cases`` in a runner process.

    Returns (outputs, info): outputs a list (one per case: a dict, or a Failed for the whole
    exercise); info {"cells": errors while defining, "reference_calls": [...], "imports": [...]}.
    """
    ex = EXERCISES[exercise]
    jobdir = tempfile.mkdtemp(prefix="numpyvae-grade-")
    try:
        work = os.path.join(jobdir, "work")
        os.mkdir(work)
        arrays, metas = {}, []
        for i, case in enumerate(cases):
            meta = {}
            for k, v in case.items():
                if isinstance(v, np.ndarray):
                    arrays[f"{i}/{k}"] = v
                else:
                    meta[k] = v
            metas.append(meta)
        np.savez(os.path.join(jobdir, "cases.npz"), **arrays)
        with open(os.path.join(jobdir, "job.json"), "w", encoding="utf-8") as fh:
            json.dump({"exercise": exercise, "cells": cells, "cases": metas,
                       "limits": [memory_mb, timeout]}, fh)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMPYVAE", "PYTEST", "COV_"))}
        env.update(PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
                   OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg",
                   HOME=work, TMPDIR=work)
        with open(os.path.join(jobdir, "stderr.txt"), "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "numpyvae.exercises.runner", jobdir], cwd=work,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env,
                                    start_new_session=True)
            _apply_limits(proc.pid, memory_mb, timeout)
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)      # the runner and anything it started
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
        if code is None:
            return _whole(ex, cases, f"did not finish within {timeout:g} s",
                          "an endless loop, or a much too large computation?"), {}
        return _read_outputs(ex, cases, jobdir, code)
    finally:
        shutil.rmtree(jobdir, ignore_errors=True)


def _whole(ex, cases, detail, hint=""):
    return [Failed(ex.parts, FAIL, detail, hint)] * len(cases)


def _tail(path):
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 4000))
            lines = fh.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _read_outputs(ex, cases, jobdir, code):
    """The runner's outputs, read without pickle and checked; a Failed for everything unreadable."""
    out_json, out_npz = os.path.join(jobdir, "out.json"), os.path.join(jobdir, "out.npz")
    if code != 0 or not (os.path.isfile(out_json) and os.path.isfile(out_npz)):
        why = {-signal.SIGKILL: "was killed (over the CPU-time limit?)", -signal.SIGXCPU: "ran over its CPU time",
               -signal.SIGSEGV: "crashed (segmentation fault)"}.get(code, f"stopped with exit code {code}")
        last = _tail(os.path.join(jobdir, "stderr.txt"))
        if "MemoryError" in last:
            why = "ran out of the memory the grader allows"
        detail = (f"the exercise's process {why} before returning its results" +
                  (f": {last[:200]}" if last and "MemoryError" not in last else ""))
        if code == 0:
            detail = ("the exercise's process ended before returning its results "
                      "(os._exit or exit() in the submission's code?)")
        return _whole(ex, cases, detail), {}
    try:
        with open(out_json, encoding="utf-8") as fh:
            result = json.load(fh)
        with np.load(out_npz, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        outputs = [_decode(item, arrays) for item in result["outputs"]]
        if len(outputs) != len(cases):
            raise ValueError(f"{len(outputs)} results for {len(cases)} cases")
        info = {"cells": [c for c in result.get("cells", []) if isinstance(c, dict)][:50],
                "reference_calls": [str(s) for s in result.get("reference_calls", [])][:20],
                "imports": [str(s) for s in result.get("imports", [])][:20]}
    except Exception as exc:                          # anything the student's process left: its own fault
        return _whole(ex, cases, f"the exercise's results could not be read ({type(exc).__name__}: "
                                 f"{str(exc)[:100]})"), {}
    return outputs, info


def _failed(d):
    return Failed(tuple(str(p) for p in d["parts"]), "TODO" if d["verdict"] == "TODO" else FAIL,
                  str(d["detail"])[:2000], str(d.get("hint", ""))[:1000])


def _decode(item, arrays):
    if "failed_all" in item:
        return _failed(item["failed_all"])
    out = {"failed": [_failed(f) for f in item.get("failed", [])]}
    for name, value in item["values"].items():
        if "failed" in value:
            out[name] = _failed(value["failed"])
        elif "array" in value:
            arr = arrays[value["array"]]
            out[name] = arr if arr.dtype.kind in "biuf" else f"an array of dtype {arr.dtype}"
        elif "none" in value:
            out[name] = None
        else:
            out[name] = str(value.get("text", ""))
    return out


# ---- one submission ---------------------------------------------------------------------------

class Graded:
    """A graded submission: Reports per exercise, points per part, and what happened."""

    def __init__(self, path, assignment):
        self.path, self.assignment = path, assignment
        self.reports, self.points, self.notes, self.error = [], {}, [], None

    @property
    def score(self):
        return sum(self.points.values())

    @property
    def max_score(self):
        return self.assignment.max_score


def grade_submission(path, assignment, timeout=60.0, memory_mb=2048, data=None, jobs=1):
    """Grade one submission (file at ``path``, or its bytes ``data``) against ``assignment``.

    Never raises for a bad submission: a file that cannot be read or is not a notebook gets every
    part 0 and the reason in ``error``.  ``jobs``: exercises run at once (each in its own process).
    """
    graded = Graded(path, assignment)
    for key, pts in assignment.points.items():
        for part in pts:
            graded.points[(key, part)] = 0.0
    try:
        cells = code_cells(read_submission(path) if data is None else data, path)
    except InputError as exc:
        graded.error = str(exc)
        for key in assignment.exercises:
            report = Report(EXERCISES[key].title, assignment.seed)
            for part in EXERCISES[key].parts:
                report.add(Part(part, FAIL, f"not graded: {exc}"))
            graded.reports.append(report)
        return graded
    cases = {key: EXERCISES[key].cases(assignment.seed, assignment.hidden_seed) for key in assignment.exercises}
    with ThreadPoolExecutor(max(1, int(jobs))) as pool:
        runs = {key: pool.submit(run_exercise, key, cells, cases[key], timeout, memory_mb)
                for key in assignment.exercises}
    for key in assignment.exercises:
        ex = EXERCISES[key]
        outputs, info = runs[key].result()
        report = judge(ex, cases[key], outputs, assignment.seed)
        report.note = "public and hidden checks ran"
        calls = info.get("reference_calls", [])
        if calls:
            modules = {"numpyvae." + f[:-3] for f, _ in ex.forbidden}
            imports = [m for m in info.get("imports", []) if m in modules]
            why = (f"the submission called the package's own implementation ({'; '.join(calls)})"
                   + (f" (imported: {', '.join(imports)})" if imports else "")
                   + ": this exercise is to write it; 0 points for its parts")
            for p in report.parts:
                if p.name in assignment.points[key]:
                    p.verdict, p.detail, p.hint = FAIL, why, "write the code yourself; the package's is the answer key."
        for c in info.get("cells", []):
            graded.notes.append(f"cell {c.get('cell')}: {c.get('error')}")
        for p in report.parts:
            if p.name not in assignment.points[key]:
                p.detail += " (provided code: checked, no points)" if p.name in ex.provided else " (no points)"
            elif p.passed:
                graded.points[(key, p.name)] = assignment.points[key][p.name]
        graded.reports.append(report)
    graded.notes = list(dict.fromkeys(graded.notes))
    return graded
