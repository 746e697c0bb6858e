"""reproduce/kw_running_mean.py: Kingma & Welling's runs re-reported as a running mean of minibatch bounds.

The running mean is checked against a hand computation; the quick mode (real Frey Face files, so it
skips in a fresh clone, saying why) checks the number of minibatches trained and that the table's
shares follow from the numbers beside them.
"""
import importlib
import math

import numpy as np
import pytest

from datasets_helpers import REPO, SKIP_REAL, real_data_dir


@pytest.fixture
def script(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "reproduce"))
    return importlib.import_module("kw_running_mean")


def test_running_mean_takes_the_last_whole_minibatches(script):
    bounds = np.arange(10.0)                        # ten minibatches of 100 samples
    ours = script.running_means(bounds, 100, [100, 250, 1000, 5000])
    expected = {100: 9.0, 250: 8.5, 1000: 4.5, 5000: None}   # 250 samples -> the last 2 minibatches
    print(f"ours {ours} vs expected {expected}")
    assert ours == expected


def test_quick_mode_reports_shares_that_follow_from_its_numbers(script, monkeypatch, tmp_path):
    data = real_data_dir()
    if data is None:
        pytest.skip(SKIP_REAL)
    monkeypatch.setenv("NUMPYVAE_DATA", str(data))
    result = script.main(["--quick", "--out", str(tmp_path)])
    (run,) = result["runs"].values()
    assert run["steps"] == math.ceil(2e4 / 1565) * math.ceil(1565 / 100)
    for w, m in run["running_means"].items():
        share = (run["final_train_bound"] - m) / (run["final_train_bound"] - run["paper"])
        print(f"window {w}: share ours {run['share_removed'][str(w)]} vs expected {share}")
        assert abs(run["share_removed"][str(w)] - share) < 1e-12
    assert abs(result["scaling_shift_nats"] - 560 * math.log(256 / 255)) < 1e-12
    assert "QUICK MODE" in (tmp_path / "table.md").read_text()


def test_anglepy_mode_draws_minibatches_with_replacement_from_1600_faces(script, monkeypatch, tmp_path):
    data = real_data_dir()
    if data is None:
        pytest.skip(SKIP_REAL)
    monkeypatch.setenv("NUMPYVAE_DATA", str(data))
    result = script.main(["--quick", "--anglepy", "--out", str(tmp_path)])
    (run,) = result["runs"].values()
    print(f"steps: ours {run['steps']} vs expected {math.ceil(2e4 / 100)}")
    assert run["steps"] == math.ceil(2e4 / 100), "one minibatch of 100 per 100 samples, not whole epochs"
    assert run["committed_final_train_bound"] is None and result["scaling_shift_nats"] == 0.0
    assert "first 1,600 faces" in (tmp_path / "table.md").read_text()
