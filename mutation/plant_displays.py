"""Plant wrong displayed formulas in one derivation note, one at a time, and report which tests fail.

The runner behind mutation/planted_formulas_conv.py, _flows.py and _discrete.py: each plant
replaces an exact piece of the note's LaTeX (it must occur once), runs pytest on ``tests``,
restores the note (also when killed: SIGTERM exits through the ``finally``), and prints which
tests failed. A plant that fails nothing is reported as SURVIVED; ``run`` returns 1 if any did.
"""
import os
import pathlib
import signal
import subprocess
import sys


def run(note, plants, tests, pytest_args=()):
    """note: path from the repository root; plants: (old, new, what) triples; tests: pytest targets."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    survived = 0
    p = pathlib.Path(note)
    text = p.read_text()
    for old, new, what in plants:
        assert text.count(old) == 1, (what, text.count(old))
        p.write_text(text.replace(old, new))
        try:
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, *pytest_args],
                               capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(pathlib.Path.cwd())})
        finally:
            p.write_text(text)
        lines = r.stdout.splitlines()
        failed = [line.split(" - ")[0].replace("FAILED ", "") for line in lines if line.startswith("FAILED")]
        why = next((line[1:].strip() for line in lines if line.startswith("E ")), "")   # the first error line
        survived += r.returncode == 0
        print(f"{what}\n   {'SURVIVED' if r.returncode == 0 else 'killed'}; rc={r.returncode}; failed: "
              f"{failed[:4]}{' ...' if len(failed) > 4 else ''} ({len(failed)}) | {lines[-1] if lines else ''}\n"
              f"   first: {why[:160]}", flush=True)
    return 1 if survived else 0
