"""reproduce/categorical_mnist.py: its --quick mode trains every estimator on the embedded digits and evaluates."""
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
