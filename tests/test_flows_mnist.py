"""reproduce/flows_mnist.py --quick: the plain VAE and the planar-flow VAE trained, judged and paired on MNIST.

The quick mode trains tiny models for seconds on real MNIST, so it skips (saying why) where the data
are not present (a fresh clone); .ci/run makes them present.  Its numbers mean nothing; this checks
that both variants train and are judged on the same images, and that the paired differences are the
per-image differences.
"""
import importlib

import numpy as np
import pytest

from numpyvae.errors import DataError

from datasets_helpers import REPO, SKIP_REAL, real_data_dir


def test_flows_mnist_quick_pairs_the_two_variants(monkeypatch, tmp_path):
    data = real_data_dir()
    if data is None:
        pytest.skip(SKIP_REAL)
    monkeypatch.setenv("NUMPYVAE_DATA", str(data))
    monkeypatch.syspath_prepend(str(REPO / "reproduce"))
    try:
        result = importlib.import_module("flows_mnist").main(["--quick", "--out", str(tmp_path)])
    except DataError as exc:
        pytest.skip(f"flows_mnist: {exc}")
    runs = {(r["variant"], r["seed"]): r for r in result["runs"]}
    assert sorted(runs) == [("flow", 0), ("flow", 1), ("plain", 0), ("plain", 1)]
    assert runs["flow", 0]["flow_steps"] == 2 and runs["plain", 0]["flow_steps"] == 0
    for (variant, seed), r in runs.items():
        lp = np.array(r["per_image_log_px"])
        print(f"{variant}, seed {seed}: log p(x) {r['log_px']:.2f} vs ELBO {r['elbo']:.2f}")
        assert len(lp) == 50 and np.all(np.isfinite(lp)) and abs(lp.mean() - r["log_px"]) < 1e-9
        assert r["log_px"] > r["elbo"], "the k = 50 importance-sampled log p(x) should lie above the one-sample ELBO"
    for seed in (0, 1):
        d = np.subtract(runs["flow", seed]["per_image_log_px"], runs["plain", seed]["per_image_log_px"])
        ours = result["paired_flow_minus_plain"][str(seed)]
        assert abs(ours["mean"] - d.mean()) < 1e-9 and abs(ours["se"] - d.std(ddof=1) / np.sqrt(len(d))) < 1e-9
    table = (tmp_path / "table.md").read_text()
    assert "QUICK MODE" in table and "quoted, not checked here" in table
