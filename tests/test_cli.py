import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from datasets_helpers import SKIP_REAL, real_data_dir
from numpyvae import checkpoint as ckpt
from numpyvae.cli import main

FILES = {"checkpoint.npz", "history.csv", "history.json", "learning_curves.png", "reconstructions.png",
         "samples.png", "latent.png"}


def test_train_writes_history_checkpoint_and_plots(tmp_path, capsys):
    assert main(["train", "--epochs", "3", "--out", str(tmp_path), "--no-progress"]) == 0
    assert FILES <= set(os.listdir(tmp_path))
    out = capsys.readouterr().out
    assert "trained 3 epochs" in out and "test -ELBO" in out
    for png in FILES - {"checkpoint.npz", "history.csv", "history.json"}:
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]

    assert main(["evaluate", str(tmp_path / "checkpoint.npz"), "-k", "5"]) == 0
    out = capsys.readouterr().out
    assert "digits test set" in out and "IWAE bound, k=5" in out and "active units" in out

    assert main(["sample", str(tmp_path / "checkpoint.npz"), "--out", str(tmp_path / "s.png"), "--n", "16"]) == 0
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_continues_to_the_same_parameters(tmp_path):
    common = ["--no-progress", "--no-plots", "--z-dim", "3", "--estimator", "mc", "--binarize", "dynamic"]
    assert main(["train", "--epochs", "4", "--out", str(tmp_path / "once"), *common]) == 0
    assert main(["train", "--epochs", "2", "--out", str(tmp_path / "twice"), *common]) == 0
    assert main(["train", "--resume", str(tmp_path / "twice" / "checkpoint.npz"), "--epochs", "4", "--no-progress",
                 "--no-plots"]) == 0
    a = ckpt.load_model(tmp_path / "once" / "checkpoint.npz")
    b = ckpt.load_model(tmp_path / "twice" / "checkpoint.npz")
    for name in a.params:
        np.testing.assert_array_equal(b.params[name], a.params[name], err_msg=name)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_ctrl_c_saves_a_checkpoint_and_resume_is_bit_identical(tmp_path):
    args = ["--no-plots", "--epochs", "40", "--batch-size", "16"]
    cmd = [sys.executable, "-m", "numpyvae", "train", *args]
    proc = subprocess.Popen([*cmd, "--out", str(tmp_path / "cut")], stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    path = tmp_path / "cut" / "checkpoint.npz"
    deadline = time.time() + 60
    while not path.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)                                   # somewhere in the middle of a later epoch
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("training finished before the interrupt arrived")
    assert proc.returncode == 130, err.decode()
    assert b"stopped by SIGINT: saved" in err, err[-300:]
    subprocess.run([sys.executable, "-m", "numpyvae", "train", "--resume", str(path), "--no-plots", "--no-progress"],
                   check=True, capture_output=True, timeout=300)
    subprocess.run([*cmd, "--out", str(tmp_path / "whole"), "--no-progress"], check=True, capture_output=True, timeout=300)
    a = ckpt.load_model(tmp_path / "whole" / "checkpoint.npz")
    b = ckpt.load_model(path)
    for name in a.params:
        np.testing.assert_array_equal(b.params[name], a.params[name], err_msg=name)


def test_bad_command_line_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "cifar"])
    assert exc.value.code == 2
    assert main(["evaluate", str(tmp_path / "missing.npz")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["train", "--batch-size", "100000", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "batch_size: expected at most" in capsys.readouterr().err


def test_frey_face_trains_with_a_sigmoid_gaussian_mean(tmp_path, capsys):
    pytest.importorskip("scipy", reason="frey-face needs scipy: pip install 'numpyvae[frey]'")
    data_dir = real_data_dir()
    if data_dir is None:
        pytest.skip(SKIP_REAL)
    args = ["train", "--dataset", "frey-face", "--data-dir", str(data_dir), "--epochs", "2",
            "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    model = ckpt.load_model(tmp_path / "checkpoint.npz")
    assert (model.likelihood, model.gaussian_mean) == ("gaussian", "sigmoid"), model.config
    samples = model.sample(8, np.random.default_rng(0))
    assert np.all((samples > 0) & (samples < 1)), f"ours {samples.min()}..{samples.max()} vs expected within (0, 1)"


def test_gaussian_mean_option_reaches_the_model(tmp_path):
    args = ["train", "--likelihood", "gaussian", "--gaussian-mean", "sigmoid", "--epochs", "1",
            "--out", str(tmp_path), "--no-progress", "--no-plots"]
    assert main(args) == 0
    assert ckpt.load_model(tmp_path / "checkpoint.npz").config["gaussian_mean"] == "sigmoid"
    bad = ["train", "--gaussian-mean", "sigmoid", "--epochs", "1", "--out", str(tmp_path), "--no-progress"]
    assert main(bad) == 2                                   # digits default to Bernoulli: refused, named
