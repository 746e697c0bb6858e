import json

import numpy as np
import pytest

from numpyvae import VAE, InputError, TrainingError
from numpyvae import checkpoint as ckpt
from numpyvae.data import binarize
from numpyvae.train import Trainer, write_history


def toy_data(n=120, d=16, seed=0):
    """Two prototype patterns with noise: a VAE should learn them quickly."""
    rng = np.random.default_rng(seed)
    protos = (rng.uniform(size=(2, d)) > 0.5).astype(np.float32)
    x = protos[rng.integers(0, 2, n)] * 0.9 + 0.05
    return np.clip(x + 0.05 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)


def make(seed=0, **kw):
    x = toy_data()
    model = VAE(16, [12], 2, seed=seed)
    return Trainer(model, x[:100], x[100:], batch_size=16, seed=seed, progress=False, **kw)


def test_training_lowers_the_loss_and_keeps_a_history(tmp_path):
    t = make()
    hist = t.run(15)
    assert [r["epoch"] for r in hist] == list(range(1, 16))
    assert hist[-1]["train_neg_elbo"] < hist[0]["train_neg_elbo"] - 1, \
        f"ours {hist[-1]['train_neg_elbo']} vs first {hist[0]['train_neg_elbo']}"
    assert hist[-1]["test_neg_elbo"] < hist[0]["test_neg_elbo"]
    write_history(hist, tmp_path / "h.json")
    write_history(hist, tmp_path / "h.csv")
    assert json.loads((tmp_path / "h.json").read_text())[-1]["epoch"] == 15
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,step,beta,train_objective,train_neg_elbo,train_recon,train_kl,"
                               "test_neg_elbo,test_recon,test_kl") and len(lines) == 16, lines[0]


def test_same_seed_same_parameters():
    a, b = make(seed=3), make(seed=3)
    a.run(2)
    b.run(2)
    for name in a.model.params:
        np.testing.assert_array_equal(a.model.params[name], b.model.params[name])


def test_test_elbo_samples_z():
    t = make()
    t.run(1)
    assert t.evaluate()["neg_elbo"] != t.evaluate()["neg_elbo"]          # two draws of z differ


def test_kl_warmup_rises_linearly_to_beta():
    t = make(warmup_epochs=2, beta=0.5)
    hist = t.run(3)
    # the logged beta is the mean the epoch's 7 steps (ceil(100 / 16)) used, weighted by batch size
    sizes = [16] * 6 + [4]
    for epoch in range(3):
        steps = range(7 * epoch, 7 * epoch + 7)
        expected = sum(size * 0.5 * min(1.0, s / 14) for size, s in zip(sizes, steps)) / 100
        assert hist[epoch]["beta"] == pytest.approx(expected), f"epoch {epoch + 1}: ours {hist[epoch]['beta']} vs expected {expected}"
    assert hist[2]["beta"] == 0.5


def test_warmup_history_gap_is_the_steps_beta_weighted_kl(monkeypatch):
    """Issue 17, item 3: neg_elbo - objective is the per-step (1 - beta) KL summed over the epoch."""
    t = make(warmup_epochs=3)
    seen = []
    original = t.model.loss_and_grads

    def recording(xb, **kw):
        out = original(xb, **kw)
        seen.append((len(xb), kw["beta"], float(np.mean(t.model.last_estimate.kl))))
        return out
    monkeypatch.setattr(t.model, "loss_and_grads", recording)
    row = t.run(1)[0]
    n = sum(size for size, _, _ in seen)
    gap = sum(size * (1 - beta) * kl for size, beta, kl in seen) / n
    assert row["train_neg_elbo"] - row["train_objective"] == pytest.approx(gap, rel=1e-6), (
        f"ours {row['train_neg_elbo'] - row['train_objective']} vs expected {gap}")
    assert row["beta"] == pytest.approx(sum(size * beta for size, beta, _ in seen) / n)


def test_nan_stops_with_the_step_named():
    t = make(lr=1e-3)
    t.model.params["encoder.0.W"][0, 0] = np.nan
    # the loss is NaN (or the model's own check says so): either way the step is named
    with pytest.raises(TrainingError, match=r"(loss became nan|diverged) at step 1 \(epoch 1, batch 1\).*nan"):
        t.run(1)


def test_infinite_loss_stops_with_the_step_named():
    t = make(lr=1e-3)
    t.run(1)
    t.model.params["decoder.1.b"][...] = -np.float32(3e38)     # logits overflow to -inf in float32
    with pytest.raises(TrainingError, match=r"at step 8 \(epoch 2, batch 1\)"):
        t.run(2)


def test_bad_trainer_arguments():
    x = toy_data()
    model = VAE(16, [4], 2)
    with pytest.raises(InputError, match="batch_size: expected at most the 120"):
        Trainer(model, x, batch_size=500)
    with pytest.raises(InputError, match="optimizer"):
        Trainer(model, x, batch_size=16, optimizer="rmsprop")
    with pytest.raises(InputError, match="binarize"):
        Trainer(VAE(16, [4], 2, likelihood="gaussian"), x, batch_size=16, binarize="dynamic")
    with pytest.raises(InputError, match="x_train"):
        Trainer(model, x * 3, batch_size=16)


def test_binarization_modes():
    rng = np.random.default_rng(0)
    x = np.full((2000, 3), 0.3, dtype=np.float32)
    assert binarize(x, "none", rng) is x
    assert binarize(x, "threshold", rng).sum() == 0
    d = binarize(x, "dynamic", rng)
    assert set(np.unique(d)) == {0.0, 1.0} and abs(d.mean() - 0.3) < 0.02


def _interrupt_after(trainer, n_steps):
    original = trainer.train_step

    def step(xb):
        loss = original(xb)
        if trainer.step == n_steps:
            trainer.stop_requested = True      # what Ctrl-C does: finish the step, then stop
        return loss
    trainer.train_step = step


@pytest.mark.parametrize("stop_step", [7, 10])   # 7: between epochs; 10: in the middle of one
def test_resume_is_bit_identical(tmp_path, stop_step):
    full = make(seed=1, binarize="dynamic", estimator="iwae", k=2)
    full.run(3)

    path = tmp_path / "ckpt.npz"
    first = make(seed=1, binarize="dynamic", estimator="iwae", k=2)
    _interrupt_after(first, stop_step)
    with pytest.raises(KeyboardInterrupt):
        first.run(3, checkpoint=path)
    resumed = make(seed=99, binarize="dynamic", estimator="iwae", k=2)   # wrong seed on purpose: the checkpoint wins
    resumed.rng = np.random.default_rng(99)
    ckpt.load_trainer_state(path, resumed)
    resumed.run(3)
    for name in full.model.params:
        np.testing.assert_array_equal(resumed.model.params[name], full.model.params[name], err_msg=name)
    assert [r["train_neg_elbo"] for r in resumed.history] == [r["train_neg_elbo"] for r in full.history]


@pytest.mark.parametrize("estimator", ["analytic", "mc", "iwae"])
def test_history_reports_the_true_elbo_beside_the_beta_weighted_objective(estimator):
    """With beta = 0.2 the objective is smaller than -ELBO; -ELBO = recon + KL, for train and test."""
    t = make(beta=0.2, estimator=estimator, k=2)
    row = t.run(2)[-1]
    assert row["train_neg_elbo"] == pytest.approx(row["train_recon"] + row["train_kl"], rel=1e-6), row
    assert row["test_neg_elbo"] == pytest.approx(row["test_recon"] + row["test_kl"], rel=1e-6), row
    if estimator != "iwae":     # objective = recon + beta KL exactly
        expected = row["train_recon"] + 0.2 * row["train_kl"]
        assert row["train_objective"] == pytest.approx(expected, rel=1e-5), \
            f"ours {row['train_objective']} vs expected recon + 0.2 KL = {expected}"
    assert row["train_objective"] < row["train_neg_elbo"] - 0.5 * row["train_kl"], row


def test_history_during_warmup_logs_the_true_elbo():
    t = make(warmup_epochs=3)
    row = t.run(1)[0]
    assert row["beta"] < 0.5
    assert row["train_objective"] < row["train_neg_elbo"], f"objective {row['train_objective']} vs -ELBO {row['train_neg_elbo']}"
    # the test figure is the true -ELBO, whatever beta the training used
    est = t.model.estimate(t.x_test_used, np.random.default_rng(0))
    assert row["test_neg_elbo"] == pytest.approx(-float(np.mean(est.recon - est.kl)), abs=1.0)


def test_state_round_trip_and_refusals():
    a, b = make(seed=1), make(seed=1)
    a.run(1)
    state = a.state()
    b.load_state(state)
    assert b.step == a.step and b.history == a.history
    bad = dict(state, perm=np.zeros(100, dtype=np.int64))
    bad["counters"] = dict(state["counters"], batch_index=1, epoch_count=16)
    with pytest.raises(InputError, match="perm: expected a permutation"):
        make().load_state(bad)
    with pytest.raises(InputError, match=r"counters.step"):
        make().load_state(dict(state, counters=dict(state["counters"], step=-1)))


def test_trainer_refuses_inconsistent_state_and_bad_inputs():
    a = make(seed=2)
    a.run(1)
    state = a.state()
    mid = dict(state, perm=np.arange(100, dtype=np.int64))
    mid["counters"] = dict(state["counters"], batch_index=3, epoch_count=0)
    with pytest.raises(InputError, match=r"counters.epoch_count: 3 batches of 16 hold 48 examples, got 0"):
        make().load_state(mid)
    rows = dict(state, history=[dict(state["history"][0], train_neg_elbo=float("nan"))])
    with pytest.raises(InputError, match=r"history\[0\]: expected finite numbers"):
        make().load_state(rows)
    big = dict(state, counters=dict(state["counters"], rng={"bit_generator": "PCG64",
                                                           "state": {"state": 2**200, "inc": 3}, "has_uint32": 0, "uinteger": 0}))
    with pytest.raises(InputError, match="counters.rng"):
        make().load_state(big)
    with pytest.raises(InputError, match="model: expected a numpyvae.VAE"):
        Trainer("x", toy_data())
    with pytest.raises(InputError, match="run_info: expected a JSON-able dict"):
        make().run(1, run_info={"epochs": float("nan")})


def test_overflowing_test_figures_are_a_training_error_naming_the_epoch(monkeypatch):
    t = make()
    t.run(1)
    def overflowed(*args, **kw):
        raise InputError("log_px: the loss overflowed")
    monkeypatch.setattr(t, "evaluate", overflowed)
    with pytest.raises(TrainingError, match=r"the test figures of epoch 2 overflowed"):
        t.run(2)


def test_printed_line_names_the_objective_only_where_it_differs_from_the_elbo():
    from numpyvae.train import format_row
    row = {"epoch": 3, "step": 9, "beta": 1.0, "train_objective": 20.0, "train_neg_elbo": 20.0, "train_recon": 18.0,
           "train_kl": 2.0, "test_neg_elbo": 21.0, "test_recon": 19.0, "test_kl": 2.0, "seconds": 0.1}
    line = format_row(row)
    assert line.startswith("epoch 3: train -ELBO 20.00 = recon 18.00 + KL 2.00 | test -ELBO 21.00") and "objective" not in line, line
    warm = dict(row, beta=0.2, train_objective=18.4)
    assert "(objective minimised 18.40, beta 0.2)" in format_row(warm), format_row(warm)
