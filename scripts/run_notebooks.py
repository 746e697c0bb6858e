"""Execute the lecture notebooks from a clean kernel and store them with their outputs.

    python scripts/run_notebooks.py                 # every notebooks/*.ipynb
    python scripts/run_notebooks.py notebooks/05-training-a-vae.ipynb

Each notebook is cleared, run top to bottom in a fresh ``python3`` kernel
(working directory notebooks/, MPLBACKEND removed from the environment so
``%matplotlib inline`` draws PNGs), and written back with its outputs and a
stamp in its metadata:

    metadata["numpyvae"] = {"code_hash": ..., "package_hash": ..., "seconds": ...}

``code_hash`` is the SHA-256 of the notebook's code cells, ``package_hash``
that of every file of the numpyvae package (sources and embedded data).
tests/test_notebooks.py recomputes both: if either differs, the stored
outputs are stale (the code that made them is not the code in the
repository) and the test fails until this script is run again.
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


def package_files():
    """The files whose content the notebooks' outputs depend on: numpyvae's sources and data."""
    files = [p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts
             and p.suffix in (".py", ".gz", ".txt", ".csv")]
    return sorted(files, key=lambda p: p.relative_to(ROOT).as_posix())


def package_hash():
    """SHA-256 over (relative path, content) of every package file; line endings normalised to \\n."""
    h = hashlib.sha256()
    for path in package_files():
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        data = path.read_bytes()
        if path.suffix != ".gz":
            data = data.replace(b"\r\n", b"\n")
        h.update(data + b"\0")
    return h.hexdigest()


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
    saved = os.environ.pop("MPLBACKEND", None)        # an inherited Agg would hide the inline figures
    try:
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - start
    finally:
        if saved is not None:
            os.environ["MPLBACKEND"] = saved
    nb.metadata["numpyvae"] = {"code_hash": code_hash(nb), "package_hash": package_hash(),
                               "seconds": round(seconds, 1)}
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
