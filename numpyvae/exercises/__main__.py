"""python -m numpyvae.exercises: make the handout, the manifest, and grade a folder of submissions.

    python -m numpyvae.exercises make-student notebooks/homework --out handout/
    python -m numpyvae.exercises make-manifest notebooks/homework/01-backward-passes.ipynb --out hw1.json
    python -m numpyvae.exercises grade --manifest hw1.json submissions/ --csv grades.csv --json-dir results/

``grade`` takes the assignment (exercises, parts, points, the hidden cases'
seed) from the manifest, or from a master with ``--master``, never from a
submission; runs each exercise of each submission in its own process
(see ``grader``); prints every part's verdict with hints (a summary line
per submission when grading several, ``--details`` for all); writes a CSV
(one row per submission, one column per part, points and total) and a
Gradescope ``results.json`` per submission.  A file that is not a notebook
gets its row with 0 and the reason; the batch never stops early.  Exit 0
if every submission got every point, 1 otherwise, 2 for a usage error.
"""
import argparse
import csv
import io
import json
import math
import os
import sys
import tempfile

from ..errors import InputError
from . import manifest as manifest_mod
from .grader import grade_submission, read_submission
from .notebook import make_student, masters_in


def _make_student(args):
    if os.path.isfile(args.out):
        raise InputError(f"out: {args.out} is a file; expected a folder for the student notebooks")
    for master in masters_in(args.masters):
        out = os.path.join(args.out, os.path.basename(master))
        n = make_student(master, out)
        print(f"{out}: {n} solution region{'s' * (n != 1)} replaced by NotImplementedError")
    return 0


def _atomic_write(path, text, what):
    """Write ``text`` to ``path`` atomically; InputError naming ``what`` if it cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    except OSError as exc:
        raise InputError(f"{what}: cannot write {path} ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise InputError(f"{what}: cannot write {path} ({exc.strerror or exc})") from None


def _check_target(path, what):
    """Refuse, before grading anything, an output file whose folder is missing or that is a folder."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise InputError(f"{what}: {path} is a folder; expected a file name")
    if not os.path.isdir(folder):
        raise InputError(f"{what}: the folder {folder} does not exist")
    if os.path.exists(path) and not os.path.isfile(path):
        raise InputError(f"{what}: {path} is not a regular file (a device or FIFO?)")


def _make_manifest(args):
    _check_target(args.out, "out")
    if os.path.exists(args.out):
        raise InputError(f"out: {args.out} exists; not overwritten (the hidden seed in it may be in use)")
    assignment = manifest_mod.from_master(args.master, args.hidden_seed)
    _atomic_write(args.out, json.dumps(assignment.to_json(), indent=1) + "\n", "out")
    print(f"{args.out}: {len(assignment.exercises)} exercises, {assignment.max_score:g} points; "
          "keep it from students (it holds the hidden cases' seed)")
    return 0


def submissions_in(paths):
    """Every submission named: files as given, folders' entries (not dot-files), sorted; in order."""
    found = []
    for p in paths:
        if os.path.isdir(p):
            found += sorted(os.path.join(p, f) for f in os.listdir(p) if not f.startswith("."))
        else:
            found.append(p)
    if not found:
        raise InputError(f"submissions: nothing to grade in {', '.join(paths)}")
    return found


def _column(key, part):
    return f"{key}: {part}"


def gradescope(graded):
    """The Gradescope results.json of one graded submission (a dict)."""
    tests = []
    reports = {r.exercise: r for r in graded.reports}
    from .checks import EXERCISES
    for key, pts in graded.assignment.points.items():
        report = reports.get(EXERCISES[key].title)
        parts = {p.name: p for p in report.parts} if report else {}
        for part, max_score in pts.items():
            p = parts.get(part)
            tests.append({"name": _column(key, part), "score": graded.points[(key, part)], "max_score": max_score,
                          "output": (f"{p.verdict}: {p.detail}" + (f"\nHINT: {p.hint}" if p.hint else ""))
                          if p else "not graded"})
    out = {"score": graded.score, "max_score": graded.max_score, "tests": tests}
    notes = ([graded.error] if graded.error else []) + graded.notes
    if notes:
        out["output"] = "\n".join(notes)
    return out


def _grade(args):
    if args.manifest:
        assignment = manifest_mod.load(args.manifest)
    else:
        assignment = manifest_mod.from_master(args.master, args.hidden_seed if args.hidden_seed is not None else 0)
    _check_target(args.csv, "csv")
    if args.json_dir and not os.path.isdir(args.json_dir):
        raise InputError(f"json-dir: {args.json_dir} is not an existing folder")
    paths = submissions_in(args.submissions)
    # every submission read before any runs: one that deletes files cannot take the others' away
    data = {}
    for p in paths:
        try:
            data[p] = read_submission(p)
        except InputError as exc:
            data[p] = exc
    details = args.details or len(paths) == 1
    progress = sys.stderr.isatty()
    rows, everything = [], True
    stems = {}
    for n, path in enumerate(paths, 1):
        if isinstance(data[path], InputError):
            graded = grade_submission(path, assignment, args.timeout, args.memory, data=b"", jobs=args.jobs)
            graded.error = str(data[path])
        else:
            graded = grade_submission(path, assignment, args.timeout, args.memory, data=data[path], jobs=args.jobs)
        everything &= graded.score == graded.max_score and graded.error is None
        line = f"{path}: {graded.score:g} of {graded.max_score:g} points" + \
            (f" ({graded.error})" if graded.error else "")
        if details:
            print(f"== {path}")
            if graded.error:
                print(f"   not graded: {graded.error}")
            for note in graded.notes:
                print(f"   {note}")
            for report in graded.reports:
                print("\n".join("   " + s for s in str(report).splitlines()))
            print(f"   total: {graded.score:g} of {graded.max_score:g} points")
        else:
            print(line)
        if progress:
            print(f"[{n}/{len(paths)}] {line}", file=sys.stderr, flush=True)
        rows.append([path] + [f"{graded.points[c]:g}" for c in assignment.columns]
                    + [f"{graded.score:g}", f"{graded.max_score:g}", graded.error or ""])
        if args.json_dir:
            stem = os.path.splitext(os.path.basename(path))[0] or "submission"
            stems[stem] = stems.get(stem, 0) + 1
            name = stem if stems[stem] == 1 else f"{stem}-{stems[stem]}"
            target = os.path.join(args.json_dir, f"{name}.results.json")
            try:
                _atomic_write(target, json.dumps(gradescope(graded), indent=1) + "\n", "json-dir")
            except InputError as exc:
                print(f"error: {exc}", file=sys.stderr)
                everything = False
    if args.csv:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["submission"] + [_column(*c) for c in assignment.columns] + ["total", "max", "error"])
        writer.writerows(rows)
        _atomic_write(args.csv, buf.getvalue(), "csv")
        print(f"{len(rows)} submission(s) written to {args.csv}")
    return 0 if everything else 1


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0 or value > 86400:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0 and at most 86400, got {text!r}")
    return value


def _megabytes(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of megabytes, got {text!r}") from None
    if value < 256:
        raise argparse.ArgumentTypeError(f"expected at least 256 MB (numpy needs it), got {value}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m numpyvae.exercises", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{make-student,make-manifest,grade}")
    p = sub.add_parser("make-student", help="write the student version of master notebooks (solutions removed)")
    p.add_argument("masters", nargs="+", help="master .ipynb files or folders of them")
    p.add_argument("--out", required=True, help="folder for the student notebooks (created if missing)")
    p = sub.add_parser("make-manifest", help="write the assignment of a master, with a hidden seed, to a JSON file")
    p.add_argument("master", help="the master .ipynb")
    p.add_argument("--out", required=True, help="the manifest file to write (keep it from students)")
    p.add_argument("--hidden-seed", type=_seed, help="seed of the hidden cases (default: a random one)")
    p = sub.add_parser("grade", help="grade submissions (files or folders) against an assignment")
    p.add_argument("submissions", nargs="+", help="submitted .ipynb files, or folders of them")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--manifest", help="the assignment: a manifest from make-manifest")
    which.add_argument("--master", help="the assignment: a master notebook (hidden seed from --hidden-seed)")
    p.add_argument("--hidden-seed", type=_seed, help="with --master: seed of the hidden cases (default 0)")
    p.add_argument("--timeout", type=_seconds, default=60.0, help="seconds one exercise may run (default 60)")
    p.add_argument("--memory", type=_megabytes, default=2048, help="MB of memory one exercise may use (default 2048)")
    p.add_argument("--jobs", type=int, choices=range(1, 65), default=1, metavar="N",
                   help="exercises of a submission graded at once, each in its own process (default 1)")
    p.add_argument("--csv", help="write one row per submission (points per part, total) to this CSV file")
    p.add_argument("--json-dir", help="write a Gradescope results.json per submission into this folder")
    p.add_argument("--details", action="store_true", help="print every part's verdict for every submission")
    args = parser.parse_args(argv)
    try:
        if args.command == "make-student":
            return _make_student(args)
        if args.command == "make-manifest":
            return _make_manifest(args)
        return _grade(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
