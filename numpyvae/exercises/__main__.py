"""python -m numpyvae.exercises: make the student version of the homework; grade a submission.

    python -m numpyvae.exercises make-student notebooks/homework --out handout/
    python -m numpyvae.exercises grade submission.ipynb [more.ipynb ...] [--seed 0] [--csv verdicts.csv]

``grade`` prints each exercise's parts with PASS / FAIL / TODO and hints,
and exits 0 if every part passed, 1 otherwise (2 for a usage error).
"""
import argparse
import csv
import json
import os
import sys

from ..errors import InputError
from .notebook import _grade_here, grade_notebook, make_student, masters_in


def _make_student(args):
    masters = masters_in(args.masters)
    for master in masters:
        out = os.path.join(args.out, os.path.basename(master))
        n = make_student(master, out)
        print(f"{out}: {n} solution region{'s' * (n != 1)} replaced by NotImplementedError")
    return 0


def _grade(args):
    all_passed, rows = True, []
    for path in args.notebooks:
        reports, cells = grade_notebook(path, args.seed, args.timeout)
        rows += [(path, r.exercise, p.name, p.verdict, p.detail, p.hint) for r in reports for p in r.parts]
        print(f"== {path}")
        errors = [c for c in cells if c["error"]]
        print(f"   {len(cells)} code cells ran, {len(errors)} raised"
              + "".join(f"\n     cell {c['cell']}: {c['error']}" for c in errors))
        got = total = 0
        for report in reports:
            print("\n".join("   " + line for line in str(report).splitlines()))
            g, t = report.score
            got, total = got + g, total + t
            all_passed &= report.passed
        print(f"   total: {got} of {total} parts passed")
        all_passed &= bool(reports)
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([("notebook", "exercise", "part", "verdict", "detail", "hint"), *rows])
        print(f"verdicts of {len(args.notebooks)} notebook(s) written to {args.csv}")
    return 0 if all_passed else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m numpyvae.exercises", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{make-student,grade}")
    p = sub.add_parser("make-student", help="write the student version of master notebooks (solutions removed)")
    p.add_argument("masters", nargs="+", help="master .ipynb files or folders of them")
    p.add_argument("--out", required=True, help="folder for the student notebooks (created if missing)")
    p = sub.add_parser("grade", help="execute submitted notebooks and print per-part verdicts")
    p.add_argument("notebooks", nargs="+", help="the submitted .ipynb files")
    p.add_argument("--seed", type=int, default=0, help="seed of the graders' random arrays (default 0)")
    p.add_argument("--timeout", type=float, default=300, help="seconds one notebook may run (default 300)")
    p.add_argument("--csv", help="also write every part's verdict, one row each, to this CSV file")
    p = sub.add_parser("_grade-here")                        # internal: the child process of grade
    p.add_argument("notebook")
    p.add_argument("seed", type=int)
    args = parser.parse_args(argv)
    try:
        if args.command == "_grade-here":
            print(json.dumps(_grade_here(args.notebook, args.seed)))
            return 0
        return _make_student(args) if args.command == "make-student" else _grade(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
