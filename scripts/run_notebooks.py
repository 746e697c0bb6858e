"""Execute the lecture notebooks from a clean kernel and store them with their outputs.

    python scripts/run_notebooks.py                 # every notebooks/*.ipynb
    python scripts/run_notebooks.py notebooks/05-training-a-vae.ipynb

Each notebook is cleared, run top to bottom in a fresh ``python3`` kernel
(working directory notebooks/, MPLBACKEND removed from the environment so
``%matplotlib inline`` draws PNGs), and written back with its outputs and a
stamp in its metadata:

    metadata["numpyvae"] = {"code_hash": ..., "package_files": {path: sha256}, "package_hash": ..., "seconds": ...}

``code_hash`` is the SHA-256 of the notebook's code cells; ``package_files``
lists the numpyvae files the run used (every numpyvae module the kernel had
imported at the end, plus the package's embedded data files) with the
SHA-256 of each, and ``package_hash`` is one SHA-256 over all of them.  tests/test_notebooks.py
recomputes both hashes: if either differs, the stored outputs are stale (the
code that made them is not the code in the repository) and the test fails
until this script is run again.
Needs nbclient and ipykernel (``pip install "numpyvae[notebooks]"``).
"""
import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
PACKAGE = ROOT / "numpyvae"


def data_files():
    """The package's embedded data (the digits and their licence): read by the notebooks, never imported."""
    return sorted(p.relative_to(ROOT).as_posix() for p in (PACKAGE / "data").glob("*")
                  if p.is_file() and p.suffix in (".gz", ".txt", ".csv"))


def file_hash(name):
    """SHA-256 of one package file (path relative to the repository); "missing" if it is gone.

    Line endings of text files are normalised to \\n, so a checkout with CRLF hashes the same.
    """
    path = ROOT / name
    if not path.is_file():
        return "missing"
    data = path.read_bytes()
    if path.suffix != ".gz":
        data = data.replace(b"\r\n", b"\n")
    return hashlib.sha256(data).hexdigest()


def package_hash(files):
    """SHA-256 over (path, file hash) of the given package files: one number for the stamp."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\0{file_hash(name)}\0".encode())
    return h.hexdigest()


# run in the kernel after the notebook: which numpyvae source files did it import?
_LIST_MODULES = """
import json as _json, sys as _sys
print(_json.dumps(sorted({m.__file__ for n, m in list(_sys.modules.items())
                          if (n == "numpyvae" or n.startswith("numpyvae.")) and getattr(m, "__file__", None)})))
"""


def code_hash(nb):
    """SHA-256 of the notebook's code cells, in order (markdown does not change outputs)."""
    cells = [c["source"] if isinstance(c["source"], str) else "".join(c["source"])
             for c in nb["cells"] if c["cell_type"] == "code"]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def lecture_notebooks():
    """The top-level notebooks (notebooks/homework/ has its own workflow)."""
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def execute(path, timeout=600):
    """Run the notebook at ``path`` from a clean kernel and store it with outputs and the stamp."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    probe = nbformat.v4.new_code_cell(_LIST_MODULES)
    nb.cells.append(probe)
    saved = os.environ.pop("MPLBACKEND", None)        # an inherited Agg would hide the inline figures
    try:
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - start
    finally:
        if saved is not None:
            os.environ["MPLBACKEND"] = saved
    nb.cells.pop()                                    # the probe is not part of the notebook
    imported = json.loads("".join(o["text"] for o in probe.outputs if o.get("name") == "stdout"))
    outside = [f for f in imported if not Path(f).resolve().is_relative_to(ROOT)]
    if outside:
        raise SystemExit(f"{path.name}: the kernel imported numpyvae from {outside[0]}, not from this "
                         f"repository; install it with `pip install -e .` first")
    files = sorted({Path(f).resolve().relative_to(ROOT).as_posix() for f in imported} | set(data_files()))
    nb.metadata["numpyvae"] = {"code_hash": code_hash(nb), "package_files": {f: file_hash(f) for f in files},
                               "package_hash": package_hash(files), "seconds": round(seconds, 1)}
    nbformat.write(nb, path)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or lecture_notebooks()
    total = 0.0
    for path in paths:
        seconds = execute(path)
        total += seconds
        print(f"{path.relative_to(ROOT)}: {seconds:.1f} s", flush=True)
    print(f"total {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
