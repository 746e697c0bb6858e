"""reproduce/conv_vs_mlp.py: its quick mode runs (embedded digits, seconds), and the README quotes the
stored MNIST table exactly as the script wrote it."""
import json
import os
import re
import sys

from datasets_helpers import REPO

RESULTS = os.path.join(REPO, "reproduce", "results", "conv_vs_mlp_mnist")


def _table(text):
    """The first Markdown table in text, as a list of lines."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_quick_mode_trains_both_from_the_command_line_and_evaluates(tmp_path):
    sys.path.insert(0, os.path.join(REPO, "reproduce"))
    try:
        import conv_vs_mlp
    finally:
        sys.path.pop(0)
    result = conv_vs_mlp.main(["--quick", "--out", str(tmp_path)])
    models = result["models"]
    assert set(models) == {"conv", "mlp", "mlp_same_time"}
    assert models["mlp_same_time"]["epochs"] >= models["mlp"]["epochs"] == models["conv"]["epochs"] == 1
    for name, r in models.items():
        # the importance-sampled estimate is a tighter bound than the ELBO, up to its noise
        assert -r["log_px"] <= r["neg_elbo"] + 3 * (r["neg_elbo_se"] + r["log_px_se"]), (name, r)
        assert "--arch" in r["command"], r["command"]
    assert (tmp_path / "table.md").exists()


def test_readme_quotes_the_stored_mnist_table():
    with open(os.path.join(RESULTS, "table.md"), encoding="utf-8") as f:
        stored = _table(f.read())
    with open(os.path.join(RESULTS, "result.json"), encoding="utf-8") as f:
        result = json.load(f)
    # the table and its reading moved from the README to the book's reproductions page (issue 22)
    with open(os.path.join(REPO, "docs", "reproductions.md"), encoding="utf-8") as f:
        readme = f.read()
    assert "\n".join(stored) in readme, f"docs/reproductions.md's conv table differs from {RESULTS}/table.md:\n" + "\n".join(stored)
    # the sentence beside the table names the subset and K the numbers came from
    assert re.search(rf"first {result['n_test']} test images", readme), "docs/reproductions.md should say which test images"
    assert f"K = {result['eval_k']}" in readme
    # the paired differences the README's reading rests on are the stored ones
    for name, d in result["paired_log_px_differences"].items():
        quoted = f"{d['mean']:+.2f} ± {d['se']:.2f}".replace("-", "−")
        assert quoted in readme, f"docs/reproductions.md should quote {name} = {quoted} (result.json)"
