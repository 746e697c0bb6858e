"""reproduce/flows_mnist.py --quick: the plain VAE, the planar-flow VAE and the VampPrior trained, judged and paired.

The quick mode trains tiny models for seconds on real MNIST, so it skips (saying why) where the data
are not present (a fresh clone); .ci/run makes them present.  Its numbers mean nothing; this checks
that both variants train and are judged on the same images, and that the paired differences are the
per-image differences.
"""
import importlib
import json

import numpy as np
import pytest

from numpyvae.errors import DataError

from datasets_helpers import REPO, SKIP_REAL, real_data_dir


def test_flows_mnist_quick_pairs_the_variants_and_reuses_stored_runs(monkeypatch, tmp_path):
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
    assert sorted(runs) == [(v, s) for v in ("flow", "plain", "vampprior") for s in (0, 1)]
    assert runs["flow", 0]["flow_steps"] == 2 and runs["plain", 0]["flow_steps"] == 0
    for (variant, seed), r in runs.items():
        lp = np.array(r["per_image_log_px"])
        print(f"{variant}, seed {seed}: log p(x) {r['log_px']:.2f} vs ELBO {r['elbo']:.2f}")
        assert len(lp) == 50 and np.all(np.isfinite(lp)) and abs(lp.mean() - r["log_px"]) < 1e-9
        assert r["log_px"] > r["elbo"], "the k = 50 importance-sampled log p(x) should lie above the one-sample ELBO"
    for variant in ("flow", "vampprior"):
        for seed in (0, 1):
            d = np.subtract(runs[variant, seed]["per_image_log_px"], runs["plain", seed]["per_image_log_px"])
            ours = result["paired_minus_plain"][variant][str(seed)]
            print(f"{variant} - plain, seed {seed}: ours {ours} vs expected {d.mean()}, {d.std(ddof=1) / np.sqrt(len(d))}")
            assert abs(ours["mean"] - d.mean()) < 1e-9 and abs(ours["se"] - d.std(ddof=1) / np.sqrt(len(d))) < 1e-9
    table = (tmp_path / "table.md").read_text()
    assert "QUICK MODE" in table and "quoted, not checked here" in table
    # a second invocation reuses every stored run (same numbers, no training) ...
    again = importlib.import_module("flows_mnist").main(["--quick", "--out", str(tmp_path)])
    assert [r["per_image_log_px"] for r in again["runs"]] == [r["per_image_log_px"] for r in result["runs"]]
    # ... unless a run was made on another schedule: then that one is made again
    stored = tmp_path / "runs" / "plain-seed0.json"
    run = json.loads(stored.read_text())
    run["schedule"]["epochs"] = 99
    run["per_image_log_px"] = [0.0] * 50
    stored.write_text(json.dumps(run))
    third = importlib.import_module("flows_mnist").main(["--quick", "--out", str(tmp_path), "--seeds", "0"])
    remade = {(r["variant"], r["seed"]): r for r in third["runs"]}["plain", 0]
    assert remade["per_image_log_px"] == runs["plain", 0]["per_image_log_px"], "the stale run was not made again"
