"""Execute the lecture notebooks from a clean kernel and store them with their outputs.

    python scripts/run_notebooks.py                 # every notebooks/*.ipynb
    python scripts/run_notebooks.py notebooks/05-training-a-vae.ipynb

Each notebook is cleared, run top to bottom in a fresh ``python3`` kernel
(working directory notebooks/, MPLBACKEND removed from the environment so
``%matplotlib inline`` draws PNGs), and written back with its outputs and a
stamp in its metadata:

    metadata["numpyvae"] = {"cells_hash": ..., "package_files": {path: sha256}, "package_hash": ...,
                            "versions": {"python": ..., "numpy": ..., "matplotlib": ...}}

``cells_hash`` is the SHA-256 of every cell's type and source, markdown
included (a changed sentence makes the stored notebook stale too); ``package_files``
lists the numpyvae files the run used (every numpyvae module the kernel had
imported at the end, plus the package's embedded data files) with the
SHA-256 of each, and ``package_hash`` is one SHA-256 over all of them.  tests/test_notebooks.py
recomputes both hashes: if either differs, the stored outputs are stale (the
code that made them is not the code in the repository) and the test fails
until this script is run again.  ``versions`` records the Python, NumPy and
matplotlib that drew the outputs: recorded for the reader, never checked (a new
NumPy release does not make a notebook stale).

A notebook whose stamp is current (same cells, same package files) is not
re-run and its file is not touched, so regenerating unchanged notebooks changes
no byte; ``--force`` re-runs it anyway.  Stream outputs are stored merged (one
stdout and one stderr text per run of consecutive writes) and without timing,
so a re-run stores the same bytes unless the cells print different things.
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
import platform as _platform, numpy as _np, matplotlib as _mpl
print(_json.dumps({"files": sorted({m.__file__ for n, m in list(_sys.modules.items())
                                    if (n == "numpyvae" or n.startswith("numpyvae.")) and getattr(m, "__file__", None)}),
                   "versions": {"python": _platform.python_version(), "numpy": _np.__version__,
                                "matplotlib": _mpl.__version__}}))
"""


def cells_hash(nb):
    """SHA-256 of every cell's type and source, in order: code and markdown (a sentence is content too)."""
    cells = [[c["cell_type"], c["source"] if isinstance(c["source"], str) else "".join(c["source"])]
             for c in nb["cells"]]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def is_current(nb):
    """True when the notebook's stamp matches its cells and the package files it lists."""
    stamp = nb.get("metadata", {}).get("numpyvae") or {}
    files = stamp.get("package_files")
    return (stamp.get("cells_hash") == cells_hash(nb) and isinstance(files, dict) and bool(files)
            and all(file_hash(f) == h for f, h in files.items())
            and stamp.get("package_hash") == package_hash(files))


def merge_streams(outputs):
    """Consecutive stream outputs of the same name joined into one, text as one string (stable bytes)."""
    merged = []
    for out in outputs:
        if out.get("output_type") == "stream":
            text = out["text"] if isinstance(out["text"], str) else "".join(out["text"])
            if merged and merged[-1].get("output_type") == "stream" and merged[-1]["name"] == out["name"]:
                merged[-1]["text"] += text
                continue
            out["text"] = text
        merged.append(out)
    return merged


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
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
            cell.metadata.pop("execution", None)
    report = json.loads("".join(o["text"] for o in probe.outputs if o.get("name") == "stdout"))
    imported = report["files"]
    outside = [f for f in imported if not Path(f).resolve().is_relative_to(ROOT)]
    if outside:
        raise SystemExit(f"{path.name}: the kernel imported numpyvae from {outside[0]}, not from this "
                         f"repository; install it with `pip install -e .` first")
    files = sorted({Path(f).resolve().relative_to(ROOT).as_posix() for f in imported} | set(data_files()))
    nb.metadata["numpyvae"] = {"cells_hash": cells_hash(nb), "package_files": {f: file_hash(f) for f in files},
                               "package_hash": package_hash(files), "versions": report["versions"]}
    nbformat.write(nb, path)
    return seconds


def shown(path):
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--force", action="store_true", help="re-run notebooks whose stamp is current too")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or lecture_notebooks()
    total = 0.0
    for path in paths:
        if not args.force and is_current(json.loads(path.read_text(encoding="utf-8"))):
            print(f"{shown(path)}: current (same cells, same package files): not re-run", flush=True)
            continue
        seconds = execute(path)
        total += seconds
        print(f"{shown(path)}: {seconds:.1f} s", flush=True)
    print(f"total {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
