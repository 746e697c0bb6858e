"""The size of every text a lecture's figures draw, measured by re-running the lecture from its source.

The stored figures are PNGs, which keep no font sizes, so the lecture is
executed again (from a clean kernel, in memory: the stored notebook is not
touched) with one hidden first cell that wraps matplotlib's ``Text.draw``.
Every text that is actually drawn (titles, axis labels, tick labels, legends,
annotations, colour-bar labels, in figures shown inline or returned by
numpyvae.plots) is recorded with its size in points and the cell that drew
it. Texts that are set invisible or empty are not drawn, so they are not
counted.

Run directly to print the smallest texts of each lecture:
``python tests/lecture_font_sizes.py [--save FOLDER] [notebooks/NN-*.ipynb ...]``
(--save writes the re-rendered figures there as PNGs).
"""
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MINIMUM_PT = 10.0

PROBE = r'''
import json as _nv_json
import matplotlib.text as _nv_text
_nv_drawn = {}
_nv_original_draw = _nv_text.Text.draw

def _nv_draw(self, renderer, *args, **kwargs):
    text = self.get_text()
    if self.get_visible() and text and text.strip():
        n = get_ipython().execution_count
        _nv_drawn.setdefault((n, text, round(float(self.get_fontsize()), 2)), None)
    return _nv_original_draw(self, renderer, *args, **kwargs)

_nv_text.Text.draw = _nv_draw
'''

REPORT = r'''
print("NUMPYVAE-FONT-SIZES " + _nv_json.dumps([[n, t, s] for (n, t, s) in _nv_drawn]))
'''


def drawn_texts(path, timeout=600, save_figures=None):
    """[(code cell number counted from 1, first line of that cell, text, size in pt)] for the lecture at path.

    save_figures: a folder to write the re-rendered figures to, as PNGs (to look at them)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        cell.outputs = []
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE))
    nb.cells.append(nbformat.v4.new_code_cell(REPORT))
    saved = os.environ.pop("MPLBACKEND", None)        # an inherited Agg would hide the inline figures
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    finally:
        if saved is not None:
            os.environ["MPLBACKEND"] = saved
    if save_figures is not None:
        import base64
        Path(save_figures).mkdir(parents=True, exist_ok=True)
        shown = [o["data"]["image/png"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
                 if "image/png" in o.get("data", {})]
        for i, png in enumerate(shown, 1):
            (Path(save_figures) / f"{Path(path).stem}-{i}.png").write_bytes(base64.b64decode(png))
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    line = next(l for l in out.splitlines() if l.startswith("NUMPYVAE-FONT-SIZES "))
    rows = []
    for n, text, size in json.loads(line.split(" ", 1)[1]):
        k = n - 1                                      # execution count 1 was the probe
        first = "".join(code[k - 1].source).strip().splitlines()[0] if 1 <= k <= len(code) else "?"
        rows.append((k, first, text, size))
    return rows


def lectures():
    return sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


if __name__ == "__main__":
    import time

    args = sys.argv[1:]
    save = None
    if "--save" in args:
        i = args.index("--save")
        save, args = args[i + 1], args[:i] + args[i + 2:]
    for path in [Path(p) for p in args] or lectures():
        start = time.perf_counter()
        rows = drawn_texts(path, save_figures=save)
        small = [r for r in rows if r[3] < MINIMUM_PT]
        print(f"{path.name}: {len(rows)} texts drawn, smallest {min((r[3] for r in rows), default=None)} pt, "
              f"{len(small)} below {MINIMUM_PT:g} pt ({time.perf_counter() - start:.1f} s)")
        for k, first, text, size in sorted(small, key=lambda r: r[3])[:15]:
            print(f"   {size:5.2f} pt  code cell {k} ({first[:50]}): {text[:60]!r}")
