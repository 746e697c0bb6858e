"""The training step shared by worker threads (numpyvae/parallel.py), checked for truth.

- One step's loss, estimate and gradients agree with the serial step's to float rounding for 1 to 8
  workers (every estimator, an MLP and a convolutional VAE, shares of unequal size), and the float64
  gradient agrees with centred differences of the loss (an independent check, not the serial code).
- At a fixed worker count every number is bit-reproducible; one worker is the serial step bit for bit.
- The optimizer's update split over the elements gives the serial update bit for bit.
- A Trainer with workers trains like the serial one; checkpoints record the workers and the BLAS threads.
- Without threadpoolctl the ctypes path steers OpenBLAS; without either, one worker (the serial path).
"""
import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from numpyvae import VAE
from numpyvae import checkpoint as ckpt
from numpyvae.errors import CheckpointError, InputError, TrainingError
from numpyvae.optim import OPTIMIZERS
from numpyvae.parallel import ParallelStep, Workers, share_rows, split_elements
from numpyvae.train import Trainer

RTOL = 1e-5


def mlp(dtype=np.float32, likelihood="bernoulli"):
    return VAE(30, [16, 12], 4, activation="tanh", dtype=dtype, seed=3, likelihood=likelihood)


def conv(dtype=np.float32):
    spec_enc = [{"layer": "reshape", "shape": [1, 6, 6]},
                {"layer": "conv2d", "out_channels": 3, "kernel_size": 3, "stride": 1, "padding": 1},
                {"layer": "relu"}, {"layer": "flatten"}, {"layer": "linear", "units": 8}]
    spec_dec = [{"layer": "linear", "units": 16}, {"layer": "relu"}, {"layer": "linear", "units": 36}]
    return VAE(36, z_dim=4, encoder=spec_enc, decoder=spec_dec, dtype=dtype, seed=1)


def data(model, n=13, seed=0):
    x = np.random.default_rng(seed).uniform(size=(n, model.x_dim))
    return (x < 0.4).astype(model.dtype) if model.likelihood == "bernoulli" else x.astype(model.dtype)


def serial(model, x, eps, estimator="analytic", beta=1.0):
    loss, grads = model.loss_and_grads(x, eps=eps, estimator=estimator, beta=beta)
    return loss, {k: g.copy() for k, g in grads.items()}, model.last_estimate


def worst(ours, expected):
    """The parameter and index where ours is furthest from expected, relative to that parameter's scale."""
    rel = {k: np.abs(ours[k] - expected[k]).max() / max(np.abs(expected[k]).max(), 1e-30) for k in expected}
    name = max(rel, key=rel.get)
    i = np.unravel_index(np.argmax(np.abs(ours[name] - expected[name])), expected[name].shape)
    return rel[name], f"{name}{list(i)}: ours {ours[name][i]!r} vs expected {expected[name][i]!r}"


@pytest.mark.parametrize("make, estimator, k", [(mlp, "analytic", 1), (mlp, "iwae", 3), (mlp, "score", 2),
                                                (mlp, "stl", 2), (conv, "mc", 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_steps_gradients_agree_with_the_serial_step_for_1_to_8_workers(make, estimator, k, dtype):
    model = make(dtype)
    x = data(model)                                     # 13 rows: shares of unequal size for 2..8 workers
    eps = model.draw_eps(np.random.default_rng(5), k, len(x))
    loss0, grads0, est0 = serial(model, x, eps, estimator, beta=0.7)
    tol = RTOL if dtype == np.float32 else 1e-12
    for workers in range(1, 9):
        step = ParallelStep(model, workers)
        loss, grads = step.loss_and_grads(x, eps=eps, estimator=estimator, beta=0.7)
        rel, where = worst(grads, grads0)
        print(f"{workers} workers: loss {loss!r} vs {loss0!r}; worst gradient entry (relative to its parameter's "
              f"largest) {rel:.1e} at {where}")
        assert rel <= tol, f"{workers} workers: {where} (relative {rel:.1e} > {tol})"
        assert abs(loss - loss0) <= tol * abs(loss0), f"{workers} workers: loss ours {loss!r} vs expected {loss0!r}"
        for term in ("elbo", "recon", "kl"):
            ours, expected = getattr(model.last_estimate, term), getattr(est0, term)
            assert ours.shape == expected.shape and np.allclose(ours, expected, rtol=tol, atol=0), \
                f"{workers} workers: last_estimate.{term} ours {ours} vs expected {expected}"
        step.close()


def test_the_float64_gradient_agrees_with_centred_differences_of_the_loss():
    """Independent of the serial code path: d loss / d theta by finite differences, for a few entries of each."""
    model = mlp(np.float64, likelihood="gaussian")
    x = data(model, n=7)
    eps = model.draw_eps(np.random.default_rng(2), 2, len(x))
    step = ParallelStep(model, 3)
    grads = {k: g.copy() for k, g in step.loss_and_grads(x, eps=eps, estimator="iwae")[1].items()}
    rng, h = np.random.default_rng(0), 1e-5
    for name, p in model.params.items():
        for i in map(tuple, rng.integers(0, p.shape, size=(3, p.ndim))):
            old = p[i]
            p[i] = old + h
            up = step.loss_and_grads(x, eps=eps, estimator="iwae")[0]
            p[i] = old - h
            down = step.loss_and_grads(x, eps=eps, estimator="iwae")[0]
            p[i] = old
            numeric = (up - down) / (2 * h)
            err = abs(numeric - grads[name][i]) / max(abs(numeric), abs(grads[name][i]), 1e-8)
            assert err < 1e-7, f"{name}{list(i)}: ours {grads[name][i]!r} vs centred difference {numeric!r} ({err:.1e})"


def test_a_fixed_worker_count_is_bit_reproducible_and_one_worker_is_the_serial_step():
    model = mlp()
    x = data(model, n=29)
    eps = model.draw_eps(np.random.default_rng(1), 1, len(x))
    first = {k: g.copy() for k, g in ParallelStep(model, 3).loss_and_grads(x, eps=eps)[1].items()}
    step = ParallelStep(model, 3)
    for call in range(3):                  # a fresh object, and the same object again (its buffers re-zeroed)
        again = step.loss_and_grads(x, eps=eps)[1]
        bad = [k for k in first if not np.array_equal(again[k], first[k])]
        assert not bad, f"call {call}: 3 workers gave different bits for {bad}"
    loss0, grads0, _ = serial(model, x, eps)
    loss1, grads1 = ParallelStep(model, 1).loss_and_grads(x, eps=eps)
    bad = [k for k in grads0 if not np.array_equal(grads1[k], grads0[k])]
    assert loss1 == loss0 and not bad, f"one worker vs the serial step: loss {loss1!r} vs {loss0!r}, differ: {bad}"


def test_shares_and_element_runs_cover_everything_once():
    for batch in (1, 2, 7, 128):
        for n in (1, 2, 3, 8):
            rows = share_rows(batch, min(n, batch))
            covered = np.concatenate([np.arange(batch)[r] for r in rows])
            assert np.array_equal(covered, np.arange(batch)), f"batch {batch}, {n} workers: rows {rows}"
            assert all(r.stop > r.start for r in rows), f"batch {batch}, {n} workers: an empty share {rows}"
    sizes = [("a", 5), ("b", 1), ("c", 17), ("d", 3)]
    for n in (1, 2, 3, 7, 30):
        seen = {name: np.zeros(size, int) for name, size in sizes}
        runs = split_elements(sizes, n)
        for pieces in runs:
            for name, start, stop in pieces:
                seen[name][start:stop] += 1
        lengths = [sum(stop - start for _, start, stop in pieces) for pieces in runs]
        assert all((s == 1).all() for s in seen.values()), f"{n} runs: counts {seen}"
        assert max(lengths) - min(lengths) <= 1, f"{n} runs of lengths {lengths}: expected nearly equal"


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_the_optimizers_update_split_over_workers_is_the_serial_update_bit_for_bit(name):
    model = mlp()
    twin = copy.deepcopy(model)
    serial_opt, split_opt = OPTIMIZERS[name](model.params), OPTIMIZERS[name](twin.params)
    rng = np.random.default_rng(4)
    workers = Workers(3)
    for t in range(3):
        grads = {k: rng.standard_normal(p.shape).astype(p.dtype) for k, p in model.params.items()}
        serial_opt.step(grads)
        split_opt.step(grads, workers=workers)
        bad = [k for k in model.params if not np.array_equal(model.params[k], twin.params[k])]
        assert not bad, f"{name}, step {t + 1}: split over 3 workers, parameters {bad} differ from the serial update"
    state0, state1 = serial_opt.state(), split_opt.state()
    assert all(np.array_equal(state0[k], state1[k]) for k in state0), f"{name}: the slots differ"
    workers.close()


def test_a_trainer_with_workers_trains_like_the_serial_one_and_repeats_itself():
    x = data(mlp(), n=150, seed=1)

    def run(workers):
        trainer = Trainer(mlp(), x, x[:40], batch_size=32, weight_decay=0.5, workers=workers,
                          progress=False, verbose=False)
        return trainer, trainer.run(2)

    (t1, h1), (t3, h3), (t3b, _) = run(1), run(3), run(3)
    for key in ("train_objective", "train_recon", "train_kl", "test_neg_elbo"):
        assert abs(h3[-1][key] - h1[-1][key]) <= 1e-4 * abs(h1[-1][key]), \
            f"{key}: 3 workers {h3[-1][key]!r} vs serial {h1[-1][key]!r}"
    rel, where = worst(t3.model.params, t1.model.params)
    assert rel < 1e-4, f"after 2 epochs, 3 workers vs serial: {where} ({rel:.1e})"
    bad = [k for k in t3.model.params if not np.array_equal(t3.model.params[k], t3b.model.params[k])]
    assert not bad, f"two runs with 3 workers differ in {bad}"


def test_a_failing_worker_stops_the_step_and_the_next_step_is_clean():
    model = mlp()
    x = data(model, n=20)
    trainer = Trainer(model, x, batch_size=20, workers=2, progress=False, verbose=False)
    eps = model.draw_eps(np.random.default_rng(0), 1, 20)
    expected = {k: g.copy() for k, g in ParallelStep(copy.deepcopy(model), 2).loss_and_grads(x, eps=eps)[1].items()}
    saved = model.params["decoder.2.b"][0]
    model.params["decoder.2.b"][0] = np.inf                 # every row's likelihood overflows
    with pytest.raises(TrainingError, match="diverged|loss became"):
        trainer.train_step(x)
    model.params["decoder.2.b"][0] = saved
    grads = trainer.parallel_step().loss_and_grads(x, eps=eps)[1]
    rel, where = worst(grads, expected)
    assert rel == 0, f"after a failed step the buffers were not cleared: {where}"


def test_workers_must_be_a_positive_integer():
    model = mlp()
    x = data(model, n=10)
    for bad in (0, -1, 1.5, "2", True, 257):
        with pytest.raises(InputError, match="workers"):
            Trainer(model, x, batch_size=5, workers=bad, progress=False)
        with pytest.raises(InputError, match="workers"):
            ParallelStep(model, bad)
    with pytest.raises(InputError, match="model: expected a numpyvae.VAE"):
        ParallelStep("a model", 2)
    step = ParallelStep(model, 2)
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    for kwargs, name in (({"estimator": "nope"}, "estimator"), ({"beta": -1.0}, "beta"),
                         ({"eps": np.zeros((3, 4))}, "eps"), ({"rng": 3}, "rng")):
        with pytest.raises(InputError, match=name):
            step.loss_and_grads(x, **{"rng": rng, **kwargs})
    assert rng.bit_generator.state == before, "a refused call drew from the generator"
    with pytest.raises(InputError, match="x"):
        step.loss_and_grads(np.full((4, 30), np.nan), rng=np.random.default_rng(0))


def test_checkpoints_record_the_workers_and_blas_threads_and_a_resume_keeps_the_count(tmp_path):
    model = mlp()
    x = data(model, n=40)
    trainer = Trainer(model, x, batch_size=16, workers=3, progress=False, verbose=False)
    trainer.run(1)
    path = tmp_path / "c.npz"
    trainer.save(path)
    threads = ckpt.threads(path)
    from numpyvae.blas_threads import blas_threads, controller
    print(f"threads entry: {threads}")
    assert threads["workers"] == 3 and threads["blas_threads"] == blas_threads()
    assert threads["blas_controller"] == controller()
    config = ckpt.trainer_config(path)[1]
    assert config["workers"] == 3, f"trainer_config: ours {config} vs workers 3"
    resumed = Trainer(mlp(), x, progress=False, verbose=False, **config)
    ckpt.load_trainer_state(path, resumed)
    assert resumed.workers == 3
    # a damaged entry is refused, naming it
    arrays = dict(np.load(path))
    for bad in ({"workers": 0, "blas_threads": 2, "blas_controller": None, "blas_libraries": []},
                {"workers": 2, "blas_threads": "2", "blas_controller": None, "blas_libraries": []},
                {"workers": 2, "blas_threads": None, "blas_controller": 3, "blas_libraries": []}):
        np.savez(tmp_path / "bad.npz", **{**arrays, "threads": np.array(json.dumps(bad))})
        with pytest.raises(CheckpointError, match="threads"):
            ckpt.threads(tmp_path / "bad.npz")
    arrays["trainer_config"] = np.array(json.dumps({**config, "workers": 0}))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(CheckpointError, match="workers"):
        ckpt.trainer_config(tmp_path / "bad.npz")
    del arrays["threads"]
    np.savez(tmp_path / "old.npz", **{**arrays, "trainer_config": np.array(json.dumps(config))})
    assert ckpt.threads(tmp_path / "old.npz") is None          # written before the entry existed


FALLBACK = """
import sys
{block}
from numpyvae import blas_threads as b
from numpyvae.parallel import default_workers
from numpyvae import VAE
from numpyvae.train import Trainer
import numpy as np
print(b.controller(), b.blas_threads(), default_workers())
with b.one_blas_thread():
    print(b.blas_threads())
x = (np.random.default_rng(0).uniform(size=(40, 12)) < 0.5).astype(np.float32)
t = Trainer(VAE(12, [8], 2), x, batch_size=20, workers=None, progress=False, verbose=False)
t.run(1)
print(t.workers, t.history[-1]["train_neg_elbo"])
"""


def _run(block):
    proc = subprocess.run([sys.executable, "-c", FALLBACK.format(block=block)], capture_output=True, text=True,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "2",
                               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split("\n")


def test_without_threadpoolctl_openblas_is_steered_by_ctypes_and_without_either_the_step_is_serial():
    from numpyvae.blas_threads import _openblas_functions
    if not _openblas_functions():
        pytest.skip("NumPy here does not run on an OpenBLAS found in /proc/self/maps (the ctypes path is Linux "
                    "with OpenBLAS only)")
    no_tpc = _run("sys.modules['threadpoolctl'] = None   # import threadpoolctl now fails")
    print(f"without threadpoolctl: {no_tpc}")
    name, threads, default = no_tpc[0].split()        # OpenBLAS asked for 2 threads (it may start with fewer)
    assert name == "ctypes-openblas" and threads == default and int(threads) >= 1 and no_tpc[1] == "1", no_tpc
    assert no_tpc[2].split()[0] == default, f"Trainer(workers=None): ours {no_tpc[2]} vs {default} workers"
    neither = _run("sys.modules['threadpoolctl'] = None\nimport builtins\n_open = builtins.open\n"
                   "builtins.open = lambda f, *a, **k: (_ for _ in ()).throw(OSError('no maps')) "
                   "if f == '/proc/self/maps' else _open(f, *a, **k)")
    print(f"without either: {neither}")
    assert neither[0] == "None None 1" and neither[1] == "None" and neither[2].startswith("1 "), neither
    assert neither[2].split()[1] == no_tpc[2].split()[1] or abs(
        float(neither[2].split()[1]) - float(no_tpc[2].split()[1])) < 1e-4, "the serial fallback trains differently"


def test_the_command_line_trains_with_workers_records_them_and_keeps_them_on_resume(tmp_path, capsys):
    from numpyvae.cli import main
    out = tmp_path / "run"
    tiny = ["--hidden", "8", "--batch-size", "64", "--no-plots", "-q"]
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "serial"), *tiny]) == 0
    assert ckpt.threads(tmp_path / "serial" / "checkpoint.npz")["workers"] == 1      # the default: serial
    assert main(["train", "--epochs", "1", "--out", str(out), "--workers", "2", *tiny]) == 0
    path = out / "checkpoint.npz"
    assert ckpt.threads(path)["workers"] == 2 and ckpt.trainer_config(path)[1]["workers"] == 2
    capsys.readouterr()
    assert main(["train", "--resume", str(path), "--epochs", "2", "--no-plots", "-q"]) == 0
    kept = capsys.readouterr().err
    assert ckpt.trainer_config(path)[1]["workers"] == 2 and "worker" not in kept, kept
    assert main(["train", "--resume", str(path), "--epochs", "3", "--workers", "1", "--no-plots", "-q"]) == 0
    told = capsys.readouterr().err
    print(f"resumed with another count: {told!r}")
    assert "trained with 2 worker(s), this run uses 1" in told and "not bit-identical" in told
    assert ckpt.trainer_config(path)[1]["workers"] == 1 and ckpt.threads(path)["workers"] == 1
    from numpyvae.parallel import default_workers
    assert main(["train", "--resume", str(path), "--epochs", "4", "--workers", "auto", "--no-plots", "-q"]) == 0
    assert ckpt.threads(path)["workers"] == default_workers(), f"--workers auto: ours {ckpt.threads(path)}"
    with pytest.raises(SystemExit) as refused:
        main(["train", "--epochs", "1", "--out", str(tmp_path / "r2"), "--workers", "0", *tiny])
    assert refused.value.code == 2 and "--workers" in capsys.readouterr().err


def test_a_copied_trainer_gets_workers_of_its_own_and_continues_bit_identically():
    x = data(mlp(), n=64, seed=2)
    trainer = Trainer(mlp(), x, batch_size=16, workers=2, progress=False, verbose=False)
    trainer.run(1)
    twin = copy.deepcopy(trainer)
    trainer.run(2)
    twin.run(2)
    assert twin.parallel_step() is not trainer.parallel_step() and twin.parallel_step().model is twin.model
    bad = [k for k in trainer.model.params if not np.array_equal(trainer.model.params[k], twin.model.params[k])]
    assert not bad, f"the copy's second epoch differs in {bad}"
