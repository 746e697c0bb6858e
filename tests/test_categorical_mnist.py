"""reproduce/categorical_mnist.py and reproduce/vqvae_mnist.py: their --quick modes (embedded digits, seconds)."""
import json

import numpy as np

from datasets_helpers import REPO


def test_quick_mode_trains_each_estimator_and_reports_bounds(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "reproduce"))
    import categorical_mnist
    result = categorical_mnist.main(["--quick", "--out", str(tmp_path)])
    stored = json.loads((tmp_path / "result.json").read_text())
    assert stored["results"].keys() == {"score_ma", "score_loo", "gumbel_softmax", "straight_through"}
    for est, (run,) in result["results"].items():
        curve = run["train_curve"]
        assert curve[-1] > curve[0], f"{est}: training objective ours {curve} did not rise"
        # the importance-sampled log p(x) is a (stochastic) bound at least as tight as the ELBO
        assert run["test_log_px"] >= run["test_elbo"] - 0.5, (est, run["test_log_px"], run["test_elbo"])
        assert np.isfinite(run["elbo_minus_ref"]).all()
    assert "QUICK MODE" in (tmp_path / "table.md").read_text()


def test_vqvae_quick_mode_trains_and_reports_usage_and_step_times(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "reproduce"))
    import vqvae_mnist
    result = vqvae_mnist.main(["--quick", "--out", str(tmp_path)])
    curve = result["train_curve"]
    assert curve[-1] < curve[0], f"train -log p(x|z_q) ours {curve} did not fall"
    assert 1 <= result["perplexity"] <= 16 and 0 <= result["dead_codes"] < 16
    assert sum(result["code_counts"]) == 100 * 4, "every position of every test image chose one code"
    assert result["vq_step_seconds"] > 0 and result["gaussian_step_seconds"] > 0
    assert result["prior_nll"] < result["uniform_prior_nll"], "the fitted prior explains the codes better than uniform"
    assert (tmp_path / "samples.png").stat().st_size > 1000 and (tmp_path / "usage.png").stat().st_size > 1000
    assert "QUICK MODE" in (tmp_path / "table.md").read_text()
