import os
import sys

import numpy as np
import pytest

from datasets_helpers import SKIP_REAL, real_data_dir
from numpyvae import checkpoint as ckpt
from numpyvae.cli import _interpolation_pairs, main

FILES = {"checkpoint.npz", "history.csv", "history.json", "learning_curves.png", "reconstructions.png",
         "samples.png", "latent.png", "interpolation.png", "manifold.png"}       # manifold: the digits' Z = 2


def test_train_writes_history_checkpoint_and_plots(tmp_path, capsys):
    assert main(["train", "--epochs", "3", "--out", str(tmp_path), "--no-progress"]) == 0
    assert set(os.listdir(tmp_path)) == FILES, f"ours {sorted(os.listdir(tmp_path))} vs expected {sorted(FILES)}"
    out = capsys.readouterr().out
    assert "trained 3 epochs" in out and "test -ELBO" in out
    wrote = out.splitlines()[-1]
    assert set(wrote.split(" to ")[0].removeprefix("wrote ").split(", ")) == FILES, f"ours {wrote!r}"
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


def test_bad_command_line_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "cifar"])
    assert exc.value.code == 2
    assert main(["evaluate", str(tmp_path / "missing.npz")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["train", "--batch-size", "100000", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "--batch-size: expected at most" in capsys.readouterr().err


def test_frey_face_trains_with_a_sigmoid_gaussian_mean(tmp_path, capsys):
    pytest.importorskip("scipy", reason="frey-face needs scipy: pip install 'numpyvae[frey]'")
    data_dir = real_data_dir()
    if data_dir is None:
        pytest.skip(SKIP_REAL)
    args = ["train", "--dataset", "frey-face", "--data-dir", str(data_dir), "--epochs", "2",
            "--out", str(tmp_path), "--no-progress", "--no-plots"]
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
    bad = ["train", "--gaussian-mean", "sigmoid", "--epochs", "1", "--out", str(tmp_path / "b"), "--no-progress"]
    assert main(bad) == 2                                   # digits default to Bernoulli: refused, named


def test_evaluate_binarizes_as_in_training_unless_told(tmp_path, capsys):
    args = ["train", "--binarize", "dynamic", "--epochs", "1", "--hidden", "16", "--out", str(tmp_path), "--no-plots",
            "-q"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "checkpoint.npz")]) == 0
    assert "binarized 'dynamic' (as in training)" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "checkpoint.npz"), "--binarize", "none"]) == 0
    out = capsys.readouterr().out
    assert "binarized" not in out and "400 images:" in out, out


def test_interpolation_pairs_join_different_classes():
    x = np.arange(20, dtype=float)[:, None] * np.ones((1, 3))
    labels = np.array([3, 3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8])
    start, end = _interpolation_pairs(x, labels)
    first_of = {3: 0, 1: 2, 4: 3, 5: 5, 9: 6, 2: 7, 6: 8, 8: 12}           # the first 8 classes, in order
    assert start[:, 0].tolist() == [0, 2, 3, 5] and end[:, 0].tolist() == [6, 7, 8, 12], \
        f"ours {start[:, 0]} -> {end[:, 0]} vs expected the first examples of classes {list(first_of)}"
    assert not set(labels[start[:, 0].astype(int)]) & set(labels[end[:, 0].astype(int)])
    start, end = _interpolation_pairs(x[:5], None)                       # no labels: consecutive images
    assert start[:, 0].tolist() == [0, 1] and end[:, 0].tolist() == [2, 3], f"ours {start[:, 0]}, {end[:, 0]}"


@pytest.mark.parametrize("x_dim, shape", [(64, (8, 8)), (560, (28, 20)), (784, (28, 28)), (100, (10, 10)),
                                          (37, (1, 37))])
def test_samples_of_a_model_only_checkpoint_get_its_image_shape(x_dim, shape):
    from numpyvae import VAE
    from numpyvae.cli import _image_shape
    ours = _image_shape({}, VAE(x_dim, [4], 2), "model.npz")
    assert ours == shape, f"x_dim {x_dim}: ours {ours} vs expected {shape}"


def test_a_checkpoint_whose_image_shape_does_not_fit_is_named(tmp_path, capsys):
    from numpyvae import VAE
    from numpyvae.train import Trainer
    model = VAE(64, [4], 2)
    trainer = Trainer(model, np.full((10, 64), 0.5), batch_size=5, progress=False, verbose=False)
    ckpt.save_trainer(tmp_path / "c.npz", trainer, {"image_shape": [3, 3]})
    assert main(["sample", str(tmp_path / "c.npz"), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert "run_info.image_shape is [3, 3]" in err and "= 64" in err, err
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("extra", [["--beta", "0.2"], ["--warmup-epochs", "3"]])
def test_beta_and_warmup_runs_print_and_store_the_true_elbo_beside_the_objective(tmp_path, capsys, extra):
    import json
    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--no-plots", "--no-progress", "--out", str(out), *extra]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2 and all("train -ELBO" in line and "objective minimised" in line for line in lines), lines
    last = json.loads((out / "history.json").read_text())[-1]
    assert last["train_objective"] < last["train_neg_elbo"], f"objective {last['train_objective']} vs -ELBO {last['train_neg_elbo']}"
    assert last["train_neg_elbo"] == pytest.approx(last["train_recon"] + last["train_kl"], rel=1e-6)
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    for column in ("train_objective", "train_neg_elbo", "train_recon", "train_kl", "test_neg_elbo", "test_recon", "test_kl"):
        assert column in header, f"{column} missing from history.csv header {header}"
    assert "train -ELBO" in captured.out and "objective" in captured.out, captured.out
