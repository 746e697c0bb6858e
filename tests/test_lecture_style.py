"""Static, fast guard for the lectures' figure fonts (issue 22).

The truth is measured in the book step (tests/test_book.py re-runs every lecture and
records the size of every text its figures draw: at least 10 pt). This guard runs in
the README's `pytest` and catches the usual slips early, without running anything: a
lecture that does not apply numpyvae.plots.LECTURE_RC, a size below 10 pt written
into a lecture, or a LECTURE_RC whose "small" falls below 10 pt.
"""
import json
import re
from pathlib import Path

import pytest
from matplotlib.font_manager import font_scalings

from numpyvae.plots import LECTURE_RC

ROOT = Path(__file__).resolve().parent.parent
LECTURES = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
TOO_SMALL_NAMES = [name for name, scale in font_scalings.items()
                   if name and scale * LECTURE_RC["font.size"] < 10]


def code_of(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def test_lecture_rc_puts_the_named_sizes_the_lectures_use_at_10_pt_or_more():
    small = font_scalings["small"] * LECTURE_RC["font.size"]
    assert small >= 10, f"LECTURE_RC: 'small' is {small:.2f} pt vs expected at least 10"


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_lecture_applies_lecture_rc_and_writes_no_small_size(lecture):
    code = code_of(lecture)
    assert re.search(r"plt\.rcParams\.update\((plots\.)?LECTURE_RC\)", code), (
        f"{lecture.name}: its first cell should apply plt.rcParams.update(LECTURE_RC) (numpyvae.plots), "
        "so every text in its figures is at least 10 pt")
    sizes = [float(m.group(1)) for m in re.finditer(r"\b(?:fontsize|labelsize|titlesize)\s*=\s*(\d+(?:\.\d+)?)\b", code)]
    assert all(s >= 10 for s in sizes), f"{lecture.name}: sizes below 10 pt written into the lecture: {sizes}"
    named = re.findall(r"""\b(?:fontsize|labelsize|titlesize)\s*=\s*["']([a-z-]+)["']""", code)
    bad = [n for n in named if n in TOO_SMALL_NAMES]
    assert not bad, f"{lecture.name}: {bad} is below 10 pt at LECTURE_RC's font.size {LECTURE_RC['font.size']}"
