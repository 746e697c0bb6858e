"""Trainer behaviours the first mutation run over train.py found untested (issue 17)."""
import signal

import numpy as np
import pytest

from numpyvae import VAE, InputError
from numpyvae.train import Trainer


def make(**kw):
    x = np.random.default_rng(0).uniform(size=(40, 8)).astype(np.float32)
    return Trainer(VAE(8, [6], 2, seed=0), x, None, batch_size=16, seed=0, progress=False, verbose=False, **kw)


def test_no_warmup_by_default():
    row = make().run(1)[0]
    assert row["beta"] == 1.0, f"default beta of the first epoch: ours {row['beta']} vs expected 1.0 (no warm-up)"


@pytest.mark.parametrize("bad", [-0.5, -1e-9, float("nan")])
def test_a_negative_warmup_is_refused(bad):
    with pytest.raises(InputError, match="warmup_epochs"):
        make(warmup_epochs=bad)


def test_run_restores_the_signal_handlers():
    marker = lambda signum, frame: None
    old = signal.signal(signal.SIGTERM, marker)
    try:
        make().run(1)
        assert signal.getsignal(signal.SIGTERM) is marker, "run() left its own SIGTERM handler installed"
    finally:
        signal.signal(signal.SIGTERM, old)


def test_the_progress_bar_shows_the_mean_objective(monkeypatch, capsys):
    import numpyvae.progress as progress
    shown = []
    real = progress.ProgressBar.update

    def record(self, done, info=""):
        shown.append(info)
        return real(self, done, info)
    monkeypatch.setattr(progress.ProgressBar, "update", record)
    t = make()
    row = t.run(1)[0]
    assert shown and shown[-1] == f"objective {row['train_objective']:.2f}", (
        f"the bar's last text: ours {shown[-1] if shown else None!r} vs expected 'objective {row['train_objective']:.2f}'")


def test_load_state_refuses_sums_with_a_key_missing():
    t = make()
    t.run(1)
    state = t.state()
    del state["counters"]["sums"]["kl"]
    with pytest.raises(InputError, match="counters.sums"):
        make().load_state(state)


def test_load_state_names_the_permutation_range():
    t = make()
    state = t.state()
    state["perm"] = np.arange(41, dtype=np.int64)
    with pytest.raises(InputError, match=r"permutation of 0\.\.39 "):
        make().load_state(state)
