"""Weight decay: a N(0, I / lambda) prior on the parameters, shared by the N training examples.

The objective per example is the negative ELBO plus lambda |theta|^2 / (2N); its
gradient adds lambda theta / N.  Checked against that closed form (one SGD step
with and without the prior, on the same batch and eps), by centred
differences, and through checkpoints and the command line.
"""
import json

import numpy as np
import pytest

from numpyvae import VAE
from numpyvae import checkpoint as ckpt
from numpyvae.cli import main
from numpyvae.errors import CheckpointError, InputError
from numpyvae.train import Trainer


def _data(n=60, d=12, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.4).astype(np.float64)


def _trainer(lam, x, lr=0.05, optimizer="sgd"):
    model = VAE(x.shape[1], [7], 3, activation="tanh", dtype=np.float64, seed=4)
    return Trainer(model, x, None, optimizer=optimizer, lr=lr, batch_size=20, weight_decay=lam, seed=9,
                   progress=False, verbose=False)


@pytest.mark.parametrize("lam", [0.5, 3.0])
def test_one_sgd_step_moves_by_the_closed_form(lam):
    x = _data()
    plain, decayed = _trainer(0.0, x), _trainer(lam, x)
    theta0 = {name: p.copy() for name, p in decayed.model.params.items()}
    xb = x[:20]
    loss_plain, loss_decayed = plain.train_step(xb), decayed.train_step(xb)
    n, lr = len(x), 0.05
    # the same batch and eps: the updates differ by exactly -lr * lambda * theta0 / N
    for name, p in decayed.model.params.items():
        expected = plain.model.params[name] - lr * lam * theta0[name] / n
        worst = int(np.argmax(np.abs(p - expected)))
        assert np.allclose(p, expected, rtol=1e-12, atol=1e-14), (
            f"{name}: ours {p.ravel()[worst]} vs expected {expected.ravel()[worst]} at flat index {worst}")
    penalty = lam * sum(float(np.sum(t ** 2)) for t in theta0.values()) / (2 * n)
    assert loss_decayed - loss_plain == pytest.approx(penalty, rel=1e-10), (
        f"objective gap ours {loss_decayed - loss_plain} vs expected lambda |theta|^2 / 2N = {penalty}")
    # the -ELBO the history reports is the same in both: the prior is not part of the bound
    assert decayed.model.last_estimate.recon.sum() == pytest.approx(plain.model.last_estimate.recon.sum(), rel=1e-12)


def test_gradient_of_the_map_objective_by_centred_differences():
    x = _data()
    trainer = _trainer(2.0, x)
    model, xb = trainer.model, x[:20]
    eps = np.random.default_rng(1).standard_normal((20, 3))
    n, lam = len(x), 2.0

    def objective():
        loss, _ = model.loss_and_grads(xb, eps=eps)
        return loss + lam * sum(float(np.sum(p ** 2)) for p in model.params.values()) / (2 * n)

    loss, grads = model.loss_and_grads(xb, eps=eps)
    grads = {name: g.copy() for name, g in grads.items()}
    extra = trainer.add_weight_decay(grads)
    assert loss + extra == pytest.approx(objective(), rel=1e-13)
    h = 1e-5
    for name, p in model.params.items():
        for i in range(0, p.size, max(1, p.size // 6)):
            flat = p.reshape(-1)
            old = flat[i]
            flat[i] = old + h
            up = objective()
            flat[i] = old - h
            down = objective()
            flat[i] = old
            numeric, ours = (up - down) / (2 * h), grads[name].reshape(-1)[i]
            rel = abs(numeric - ours) / max(1e-8, abs(numeric) + abs(ours))
            assert rel < 1e-7, f"{name}[{i}]: ours {ours} vs centred difference {numeric} (relative error {rel:.1e})"


def test_the_prior_keeps_the_weights_smaller_and_is_labelled_in_history():
    x = _data(200, 12)
    plain, decayed = _trainer(0.0, x, lr=0.01, optimizer="adam"), _trainer(400.0, x, lr=0.01, optimizer="adam")
    plain.run(15), decayed.run(15)
    norm = {t: sum(float(np.sum(p ** 2)) for p in t.model.params.values()) for t in (plain, decayed)}
    assert norm[decayed] < 0.8 * norm[plain], f"|theta|^2 with the prior {norm[decayed]:.3f} vs without {norm[plain]:.3f}"
    row = decayed.history[-1]
    assert row["train_objective"] > row["train_neg_elbo"], row      # the prior's term is in the objective only
    assert abs(plain.history[-1]["train_objective"] - plain.history[-1]["train_neg_elbo"]) < 1e-9


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True, "0.1", None])
def test_bad_weight_decay_is_refused_by_name(bad):
    with pytest.raises(InputError, match="weight_decay"):
        _trainer(bad, _data())


def test_checkpoint_keeps_the_weight_decay_and_checks_it(tmp_path):
    trainer = _trainer(0.25, _data())
    trainer.run(1)
    path = tmp_path / "c.npz"
    ckpt.save_trainer(path, trainer, {"dataset": "digits"})
    _, config, _ = ckpt.trainer_config(path)
    assert config["weight_decay"] == 0.25, config
    arrays = dict(np.load(path))
    for bad in (-1, "x", 1e300):
        stored = json.loads(str(arrays["trainer_config"]))
        stored["weight_decay"] = bad
        forged = dict(arrays, trainer_config=np.array(json.dumps(stored)))
        np.savez(tmp_path / "bad.npz", **forged)
        with pytest.raises(CheckpointError, match="weight_decay"):
            ckpt.trainer_config(tmp_path / "bad.npz")
    # a checkpoint written before the option existed has none: it resumes with no prior
    stored = json.loads(str(arrays["trainer_config"]))
    del stored["weight_decay"]
    np.savez(tmp_path / "old.npz", **dict(arrays, trainer_config=np.array(json.dumps(stored))))
    _, config, _ = ckpt.trainer_config(tmp_path / "old.npz")
    assert Trainer(trainer.model, _data(), **{k: v for k, v in config.items()}, progress=False).weight_decay == 0.0


def test_command_line_prints_the_objective_and_keeps_the_prior_on_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--hidden", "16", "--no-plots", "--no-progress", "--out", str(out),
                 "--weight-decay", "50"]) == 0
    captured = capsys.readouterr()
    assert "objective" in captured.out, captured.out
    epoch_line = [line for line in captured.err.splitlines() if line.startswith("epoch 1:")][0]
    assert "objective minimised" in epoch_line and "weight decay 50" in epoch_line, epoch_line
    last = json.loads((out / "history.json").read_text())[-1]
    assert last["train_objective"] > last["train_neg_elbo"], last
    code = main(["train", "--resume", str(out / "checkpoint.npz"), "--epochs", "2", "--weight-decay", "3",
                 "--no-plots", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "--weight-decay 3" in err and "the run has 50" in err, err
    assert main(["train", "--resume", str(out / "checkpoint.npz"), "--epochs", "2", "--no-plots", "--no-progress"]) == 0
    assert ckpt.trainer_config(out / "checkpoint.npz")[1]["weight_decay"] == 50.0
    with pytest.raises(SystemExit) as exc:
        main(["train", "--weight-decay", "-1", "--out", str(tmp_path / "r2")])
    assert exc.value.code == 2
