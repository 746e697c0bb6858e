"""Never lose a run, part 2 (issue 18): the real command line, run as a subprocess, attacked where part 1 was not.

- a run resumed through another name for its folder (a symbolic link, an absolute path) is not "an old run"
  that --force removes;
- --force removes nothing until every option, the data and the model have been checked;
- a link planted as the lock file, or as a file the command writes, is refused, never written through or
  replaced;
- a checkpoint that another process keeps replacing is read once: one version, never a mix of two.

Every run is the 8x8 digits with 16 hidden units: an epoch takes a few hundredths of a second.
"""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import numpyvae
from numpyvae import checkpoint as ckpt

TINY = ["--hidden", "16", "--batch-size", "64", "--no-plots", "--quiet"]
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="symbolic links, FIFOs and O_NOFOLLOW are POSIX")
# the subprocesses run the numpyvae these tests imported (a checkout, or the installed package)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(numpyvae.__file__)))


def env():
    return {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "MPLBACKEND": "Agg"}


def numpyvae_cli(*argv, cwd, timeout=120):
    """``python -m numpyvae ARGV`` in ``cwd``: (exit code, stdout, stderr); a traceback fails the test."""
    proc = subprocess.run([sys.executable, "-m", "numpyvae", *map(str, argv)], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def train(cwd, out, epochs, *extra):
    code, out_, err = numpyvae_cli("train", "--out", out, "--epochs", epochs, *TINY, *extra, cwd=cwd)
    assert code == 0, f"training {out} ended with {code}: {err}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs trained once for the module (1 and 2 epochs, seed 0): tests copy them instead of training."""
    root = tmp_path_factory.mktemp("trained")
    for epochs in (1, 2):
        train(root, f"e{epochs}", epochs)
    return root


def copy_run(runs, epochs, to):
    """A copy of the module's run of ``epochs`` epochs at ``to`` (its parents created)."""
    import shutil
    shutil.copytree(runs / f"e{epochs}", to)
    return to


def digest(folder):
    """name -> sha256 of every regular file in a folder (what a run holds)."""
    return {name: hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(folder)) if os.path.isfile(os.path.join(folder, name))}


def epoch_of(path):
    import json
    return json.loads(str(ckpt.read(path)["trainer_counters"]))["epoch"]


# ---- 1. the run being resumed, named another way, is not removed by --force -----------------------------

@POSIX
@pytest.mark.parametrize("how", ["link to the folder", "absolute path through a linked project"])
def test_force_never_removes_the_run_being_resumed_under_another_name(tmp_path, how, runs):
    """`ln -s runs/a linka; train --resume linka/checkpoint.npz --out runs/a --force` resumes it in place."""
    real = tmp_path / "real"
    copy_run(runs, 2, real / "runs" / "a")
    if how == "link to the folder":
        os.symlink("runs/a", real / "linka")
        cwd, resume, out = real, "linka/checkpoint.npz", "runs/a"
    else:                                   # the project is reached through a link; --out is the real path
        os.symlink(real, tmp_path / "project")
        cwd, resume, out = real, str(tmp_path / "project" / "runs" / "a" / "checkpoint.npz"), str(real / "runs" / "a")
    code, _, err = numpyvae_cli("train", "--resume", resume, "--out", out, "--force", "--epochs", 3, *TINY[-2:],
                                cwd=cwd)
    path = real / "runs" / "a" / "checkpoint.npz"
    print(f"exit code ours {code} vs expected 0; stderr {err!r}")
    assert code == 0 and "removed the old run" not in err, err
    assert "nothing replaced" in err, err
    assert path.exists() and epoch_of(path) == 3, f"epoch ours {epoch_of(path) if path.exists() else None} vs 3"


@POSIX
def test_resuming_in_place_through_a_link_without_force_is_not_refused(tmp_path, runs):
    """Without --force the same resume is not refused as 'an old run' (and never advised to use --force)."""
    copy_run(runs, 1, tmp_path / "runs" / "a")
    os.symlink("runs/a", tmp_path / "linka")
    code, _, err = numpyvae_cli("train", "--resume", "linka/checkpoint.npz", "--out", "runs/a", "--epochs", 2,
                                *TINY[-2:], cwd=tmp_path)
    assert code == 0 and "--force" not in err, f"ours {code} {err!r} vs expected 0 and no advice to use --force"
    assert epoch_of(tmp_path / "runs" / "a" / "checkpoint.npz") == 2


# ---- 2. --force removes nothing before every option is checked ------------------------------------------

@pytest.mark.parametrize("bad", [["--batch-size", "5000"], ["--z-dim", "9000000"],
                                 ["--dataset", "mnist", "--data-dir", "no-such-folder"]],
                         ids=["batch-size", "z-dim", "missing data"])
def test_force_removes_nothing_when_an_option_is_refused(tmp_path, bad, runs):
    """`train --out fr --force --batch-size 5000` fails in one line and leaves the old run byte for byte."""
    copy_run(runs, 2, tmp_path / "fr")
    before = digest(tmp_path / "fr")
    argv = ["train", "--out", "fr", "--force", "--epochs", "1", "--no-plots", "--quiet"]
    code, _, err = numpyvae_cli(*argv, "--hidden", "16", *bad, cwd=tmp_path)
    after = digest(tmp_path / "fr")
    print(f"exit ours {code} vs 2; files ours {sorted(after)} vs {sorted(before)}; stderr {err!r}")
    assert code == 2 and "error:" in err
    assert after == before, "the old run's files changed although the new options were refused"
    assert "removed" not in err


# ---- 3. a link as the lock file ---------------------------------------------------------------------------

@POSIX
@pytest.mark.parametrize("kind", ["symlink", "hardlink", "dangling symlink"])
def test_a_planted_lock_link_is_refused_and_its_target_untouched(tmp_path, kind):
    """A `.numpyvae.lock` link in --out never makes the trainer write the file it points to."""
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's notes\n")
    os.chmod(victim, 0o644)
    out = tmp_path / "out"
    out.mkdir()
    lock = out / ".numpyvae.lock"
    if kind == "symlink":
        os.symlink(victim, lock)
    elif kind == "hardlink":
        os.link(victim, lock)
    else:
        os.symlink(tmp_path / "created-by-the-trainer", lock)
    code, _, err = numpyvae_cli("train", "--out", out, "--epochs", 1, *TINY, cwd=tmp_path)
    print(f"exit ours {code} vs 2; victim ours {victim.read_text()!r}; stderr {err!r}")
    assert code == 2 and ".numpyvae.lock" in err and "error:" in err
    assert victim.read_text() == "someone else's notes\n"
    assert not (tmp_path / "created-by-the-trainer").exists()
    assert not (out / "checkpoint.npz").exists()


# ---- 4. the atomic rename never replaces a link, a FIFO or a device -----------------------------------------

@POSIX
@pytest.mark.parametrize("kind", ["symlink to a file", "symlink to /dev/null", "fifo"])
def test_sample_out_that_is_not_a_regular_file_is_refused(tmp_path, kind, runs):
    """`sample --out L` where L is a link or a FIFO: refused in one line, L (and what it points to) unchanged."""
    copy_run(runs, 1, tmp_path / "run")
    target = tmp_path / "elsewhere.png"
    target.write_bytes(b"not ours")
    out = tmp_path / "out.png"
    if kind == "symlink to a file":
        os.symlink(target, out)
    elif kind == "symlink to /dev/null":
        os.symlink(os.devnull, out)
    else:
        os.mkfifo(out)
    code, _, err = numpyvae_cli("sample", "run/checkpoint.npz", "--out", out, cwd=tmp_path)
    print(f"exit ours {code} vs 2; stderr {err!r}")
    assert code == 2 and "expected a regular file" in err
    assert target.read_bytes() == b"not ours"
    assert (out.is_symlink() if "symlink" in kind else out.is_fifo()), "the link or FIFO was replaced"


@POSIX
def test_a_run_file_that_is_a_link_is_refused_before_training(tmp_path, runs):
    """history.json as a link to another file: refused up front, not after an epoch; the link's target kept."""
    copy_run(runs, 1, tmp_path / "run")
    other = tmp_path / "other.json"
    other.write_text("[]")
    os.unlink(tmp_path / "run" / "history.json")
    os.symlink(other, tmp_path / "run" / "history.json")
    code, _, err = numpyvae_cli("train", "--resume", "run/checkpoint.npz", "--epochs", 2, *TINY[-2:], cwd=tmp_path)
    print(f"exit ours {code} vs 2; stderr {err!r}")
    assert code == 2 and "history.json is a symbolic link" in err
    assert other.read_text() == "[]" and epoch_of(tmp_path / "run" / "checkpoint.npz") == 1


# ---- 5. one read of a checkpoint that is being replaced ---------------------------------------------------

# Runs the real command line with one change: each time the checkpoint is opened, another process's
# save is imitated right after the open -- the file at that path is replaced (atomically) by the other
# version.  A command that reads the file once gets one version; one that opens it again gets the other.
SWAPPER = r"""
import builtins, os, shutil, sys
path, a, b = (os.path.realpath(p) for p in sys.argv[1:4])
real_open, count = builtins.open, [0]
def swapping_open(file, *args, **kw):
    f = real_open(file, *args, **kw)
    if isinstance(file, (str, bytes, os.PathLike)) and os.path.realpath(os.fsdecode(file)) == path:
        count[0] += 1
        shutil.copyfile(b if count[0] % 2 else a, path + ".new")
        os.replace(path + ".new", path)
    return f
builtins.open = swapping_open
import io; io.open = swapping_open
from numpyvae.cli import main
sys.exit(main(sys.argv[4:]))
"""


def swapped_cli(cwd, path, a, b, *argv):
    """The command line with ``path`` replaced by b, a, b, ... after each of its opens."""
    proc = subprocess.run([sys.executable, "-c", SWAPPER, path, a, b, *map(str, argv)], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def test_resume_reads_the_checkpoint_once_while_it_is_replaced(tmp_path, runs):
    """Resuming from a checkpoint another trainer rewrites: model, counters and Adam all from one version."""
    copy_run(runs, 1, tmp_path / "src")
    (tmp_path / "a.npz").write_bytes((tmp_path / "src" / "checkpoint.npz").read_bytes())      # epoch 1
    train(tmp_path, "src2", 2, "--seed", "5")      # another run (the same seed would be the same trajectory)
    (tmp_path / "b.npz").write_bytes((tmp_path / "src2" / "checkpoint.npz").read_bytes())     # epoch 2
    # the truth: resume from a fixed copy of version a
    (tmp_path / "fixed").mkdir()
    (tmp_path / "fixed" / "checkpoint.npz").write_bytes((tmp_path / "a.npz").read_bytes())
    code, _, err = numpyvae_cli("train", "--resume", "fixed/checkpoint.npz", "--out", "truth", "--epochs", 3,
                                *TINY[-2:], cwd=tmp_path)
    assert code == 0, err
    (tmp_path / "live").mkdir()
    live = tmp_path / "live" / "checkpoint.npz"
    live.write_bytes((tmp_path / "a.npz").read_bytes())
    code, _, err = swapped_cli(tmp_path, live, tmp_path / "a.npz", tmp_path / "b.npz", "train", "--resume",
                               "live/checkpoint.npz", "--out", "resumed", "--epochs", 3, *TINY[-2:])
    assert code == 0, err
    ours, truth = ckpt.read(tmp_path / "resumed" / "checkpoint.npz"), ckpt.read(tmp_path / "truth" / "checkpoint.npz")
    for key in truth:
        if key.startswith(("param/", "optim/")) or key == "trainer_counters":
            same = np.array_equal(ours[key], truth[key])
            print(f"{key}: resumed during replacement vs resumed from a fixed copy: {'same' if same else 'DIFFER'}")
            assert same, f"{key} differs: the resumed run mixed two versions of the checkpoint"


def test_evaluate_reads_the_checkpoint_once_while_it_is_replaced(tmp_path, runs):
    """evaluate while the checkpoint is replaced: one run's model with that same run's binarization."""
    copy_run(runs, 2, tmp_path / "plain")
    train(tmp_path, "thresh", 2, "--binarize", "threshold", "--seed", "3")
    a, b = tmp_path / "plain" / "checkpoint.npz", tmp_path / "thresh" / "checkpoint.npz"
    code, truth, err = numpyvae_cli("evaluate", a, cwd=tmp_path)
    assert code == 0, err
    (tmp_path / "live").mkdir()
    live = tmp_path / "live" / "checkpoint.npz"
    live.write_bytes(a.read_bytes())
    code, ours, err = swapped_cli(tmp_path, live, a, b, "evaluate", "live/checkpoint.npz")
    print(f"ours:\n{ours}\nexpected (the first version alone):\n{truth}")
    assert code == 0 and ours == truth


# ---- 9. --log-marginal: bounded, progress in a log, Ctrl-C within a second --------------------------------------

def test_log_marginal_k_is_bounded_on_the_command_line(tmp_path, runs):
    copy_run(runs, 1, tmp_path / "run")
    code, _, err = numpyvae_cli("evaluate", "run/checkpoint.npz", "--log-marginal", 10**12, cwd=tmp_path, timeout=60)
    print(f"exit ours {code} vs 2; stderr {err!r}")
    assert code == 2 and "--log-marginal" in err and "1000000" in err


LONG_LOG_MARGINAL = r"""
import sys
import numpy as np
from numpyvae import evaluate
from numpyvae.vae import VAE
evaluate.PROGRESS_EVERY = 0.5                     # a line every half second (30 s by default)
x = np.random.default_rng(0).random((4, 64))
try:
    evaluate.log_marginal(VAE(64, [16], 2), x, k=10**8, rng=np.random.default_rng(0), workers=2)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


@POSIX
def test_log_marginal_off_a_terminal_shows_progress_and_stops_at_once_on_ctrl_c():
    """k = 10^8 with two workers, stderr a pipe: a progress line with the time left, and Ctrl-C ends it in < 3 s."""
    import select
    import signal
    import time
    proc = subprocess.Popen([sys.executable, "-c", LONG_LOG_MARGINAL], env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 20)
        line = proc.stderr.readline() if ready else ""
        time.sleep(0.2)
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        seconds = time.perf_counter() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"progress line {line!r}; stopped {seconds:.2f} s after Ctrl-C (expected < 3), exit {proc.returncode}")
    assert "samples" in line and "left" in line, f"ours {line!r} vs expected a progress line with the time left"
    assert proc.returncode == 130 and "interrupted" in out and seconds < 3


# ---- 10. --test-k: the row limit checked up front, never after an epoch ---------------------------------------

def test_a_large_test_k_trains_instead_of_failing_after_the_first_epoch(tmp_path, monkeypatch, capsys):
    """--test-k whose k * 1000 test rows exceed one array's limit: the test batch shrinks, the run trains.

    The limit (2^28 numbers) is lowered to 2^16 here so that the case takes a fraction of a second; with
    the real one it is --test-k 5243 on the digits' default network (issue 18), which takes 20 s.
    """
    import json
    from numpyvae import vae
    from numpyvae.cli import main
    monkeypatch.setattr(vae, "MAX_ACTIVATIONS", 2**16)      # 1024 rows of the 64-wide decoder output
    code = main(["train", "--out", str(tmp_path / "run"), "--epochs", "1", "--test-k", "50", *TINY])
    err = capsys.readouterr().err
    print(f"exit ours {code} vs 0; stderr {err!r}")
    assert code == 0 and "overflowed" not in err
    history = json.loads(str(ckpt.read(tmp_path / "run" / "checkpoint.npz")["history"]))
    assert history[0]["test_neg_iwae"] is not None and history[0]["test_neg_iwae"] <= history[0]["test_neg_elbo"] + 1


def test_a_test_k_beyond_the_row_limit_is_refused_up_front_with_the_true_reason():
    from numpyvae.data import load
    from numpyvae.errors import InputError
    from numpyvae.train import Trainer
    from numpyvae.vae import VAE
    data = load("digits")
    with pytest.raises(InputError, match=r"test_k: 100,000,000 rows .* one test image"):
        Trainer(VAE(64, [16], 2), data.x_train, data.x_test, test_k=10**8)


# ---- 11. memory: estimated before anything is allocated, refused above --max-memory ----------------------------

def test_a_model_too_large_for_the_memory_limit_is_refused_before_it_is_built(tmp_path):
    """--z-dim 200000 (about 4.4 GB measured): refused at once, saying the estimate and how to allow it."""
    import time
    t0 = time.perf_counter()
    code, _, err = numpyvae_cli("train", "--out", "big", "--z-dim", 200000, "--epochs", 1, "--no-plots",
                                cwd=tmp_path, timeout=60)
    seconds = time.perf_counter() - t0
    print(f"exit ours {code} vs 2 after {seconds:.1f} s; stderr {err!r}")
    assert code == 2 and "about 4.5 GiB" in err and "--max-memory 5" in err
    assert not (tmp_path / "big" / "checkpoint.npz").exists()


def test_the_memory_limit_is_the_users_to_raise(tmp_path):
    code, _, err = numpyvae_cli("train", "--out", "small", "--epochs", 1, *TINY, "--max-memory", "0.001",
                                cwd=tmp_path)
    assert code == 2 and "above the limit of 0.001 GiB" in err, err
    code, _, err = numpyvae_cli("train", "--out", "small", "--epochs", 1, *TINY, "--max-memory", "1", cwd=tmp_path)
    assert code == 0, err
