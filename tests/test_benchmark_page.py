"""The book's benchmark page quotes the committed side-by-side run (benchmarks/results/), not numbers typed by hand."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "benchmarks" / "results" / "side_by_side_threads_2cores.txt"
PAGE = ROOT / "docs" / "benchmarks.md"


def summary_rows():
    """(batch, threads, numpyvae ms, pytorch ms, ratio with spread, bound fraction) from the run's summary table."""
    rows = re.findall(r"^\| (\d+) \| (\d+) \| ([\d.]+) ms \| ([\d.]+) ms \| ([\d.]+)x \[([\d.]+)x-([\d.]+)x\] \| "
                      r"([\d.]+) \[([\d.]+)-([\d.]+)\] \|$", RESULT.read_text(), re.M)
    assert len(rows) == 4, f"summary rows in {RESULT.name}: ours {len(rows)} vs expected 4"
    return rows


def test_the_page_quotes_every_summary_row_of_the_committed_run():
    page = PAGE.read_text()
    for i, (batch, threads, ours, torch, r, lo, hi, f, flo, fhi) in enumerate(summary_rows()):
        workers = " (2 workers)" if threads == "2" else ""
        want = (f"| {batch} | {threads} | {ours} ms{workers} |", f"| {torch} ms | {r}× [{lo}×–{hi}×] | {f} [{flo}–{fhi}] |")
        for piece in want:
            assert piece in page, f"row {i}: the page lacks {piece!r} (from {RESULT.name})"


def test_the_page_says_which_way_the_two_thread_comparison_goes():
    ratios = {(b, t): float(r) for b, t, _, _, r, *_ in summary_rows()}
    page = PAGE.read_text()
    if all(ratios[(b, "2")] < 1 for b in ("128", "100")):
        assert "On two cores PyTorch's step is faster" in page
    if all(ratios[(b, "1")] >= 0.95 for b in ("128", "100")):
        assert "On one core numpyvae's step is as fast as PyTorch's or faster" in page


def test_the_epoch_times_are_the_runs():
    text = RESULT.read_text()
    page = PAGE.read_text()
    for threads, ours, torch, r, lo, hi in re.findall(
            r"(\d) threads?: numpyvae epoch ([\d.]+) \[[^\]]*\] s  pytorch epoch ([\d.]+) \[[^\]]*\] s  numpyvae vs pytorch "
            r"([\d.]+)x \[([\d.]+)x-([\d.]+)x\]", text):
        label = "1 thread" if threads == "1" else f"{threads} threads"
        row = f"| {label} | {ours} s | {torch} s | {r}× [{lo}×–{hi}×] |"
        assert row in page, f"epoch row for {label}: ours missing vs expected {row!r}"
