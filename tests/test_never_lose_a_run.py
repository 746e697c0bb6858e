"""Never lose a run: signals, a second trainer, an old run, a full disk, a read-only folder, permissions.

Every test trains the 8x8 digits with a tiny network (16 hidden units) so that
an epoch takes a few hundredths of a second.
"""
import errno
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from numpyvae import checkpoint as ckpt
from numpyvae import fileio, runs
from numpyvae.cli import main
from numpyvae.runs import LOCK_NAME, RunFolder

TINY = ["--hidden", "16", "--batch-size", "64", "--no-plots"]
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and file modes")


def cli(capsys, *argv):
    """Run the command line in this process: (exit code, stdout, stderr); any exception fails the test."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:          # argparse's own refusals
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def one_error_line(err):
    """The stderr of a refusal: exactly one 'numpyvae: error:' line; returns it."""
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, f"ours {err!r} vs expected one error line"
    return lines[0]


def params_of(path):
    return ckpt.load_model(path).params


def assert_same_params(a, b):
    for name in a:
        np.testing.assert_array_equal(b[name], a[name], err_msg=f"parameter {name}: ours vs expected differ")


def files_and_bytes(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder)) if (folder / name).is_file()}


def counters(path):
    return json.loads(str(ckpt.read(path)["trainer_counters"]))


# ---- signals -------------------------------------------------------------------------------------

@POSIX
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_the_run_and_resume_is_bit_identical(tmp_path, capsys, sig, code):
    """SIGTERM (what `timeout` and clusters send) and Ctrl-C both save the run; resuming ends bit-identical.

    While the first trainer runs, a second one in the same folder is refused and the first goes on unharmed.
    """
    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "numpyvae", "train", "--epochs", "100000", "--out", str(cut),
                             "--quiet", *TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    path = cut / "checkpoint.npz"
    try:
        deadline = time.time() + 120
        while not path.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert path.exists(), f"no checkpoint after 120 s: {proc.stderr.read1() if proc.poll() is not None else ''}"
        if sig == signal.SIGTERM:
            # a second trainer in the same folder is refused, naming the first one's pid
            for extra in ([], ["--force"], ["--resume", path]):
                got, _, err = cli(capsys, "train", "--epochs", "1", "--out", cut, *TINY, *extra)
                line = one_error_line(err)
                assert got == 2 and f"another trainer (pid {proc.pid})" in line, f"ours {got}, {line!r}"
        time.sleep(0.2)                          # somewhere inside a later epoch
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, f"ours exit code {proc.returncode} vs expected {code}: {err.decode()[-500:]}"
    assert f"stopped by {signal.Signals(sig).name}: saved".encode() in err, err[-300:]
    assert b"Traceback" not in err, err.decode()
    assert not (cut / LOCK_NAME).exists(), "the lock was not released"
    # the history on disk is the checkpoint's: the two never disagree
    saved = ckpt.read(path)
    on_disk = json.loads((cut / "history.json").read_text())
    assert on_disk == json.loads(str(saved["history"])), "history.json vs the checkpoint's history differ"

    stopped = counters(path)
    assert stopped["batch_index"] > 0 or stopped["epoch"] > 0, stopped
    target = stopped["epoch"] + 1                # finish the interrupted epoch
    got, out, err = cli(capsys, "train", "--resume", path, "--epochs", target, "--quiet", "--no-plots")
    assert got == 0, err
    got, _, err = cli(capsys, "train", "--epochs", target, "--out", tmp_path / "whole", "--quiet", *TINY)
    assert got == 0, err
    assert_same_params(params_of(tmp_path / "whole" / "checkpoint.npz"), params_of(path))


# ---- a second trainer, an old run, a dead trainer's leftovers -------------------------------------

def test_a_second_trainer_in_the_same_folder_is_refused(tmp_path, capsys):
    with RunFolder(tmp_path) as run:                         # "another trainer" holds the folder
        got, _, err = cli(capsys, "train", "--epochs", "1", "--out", tmp_path, *TINY)
        line = one_error_line(err)
        assert got == 2 and f"another trainer (pid {os.getpid()})" in line and "--out" in line, line
        assert os.listdir(tmp_path) == [LOCK_NAME], os.listdir(tmp_path)
    assert os.listdir(tmp_path) == [], "the lock outlived its holder"
    assert cli(capsys, "train", "--epochs", "1", "--out", tmp_path, "-q", *TINY)[0] == 0


def test_a_new_run_over_an_old_one_needs_resume_or_force(tmp_path, capsys):
    assert cli(capsys, "train", "--epochs", "1", "--out", tmp_path, "-q", *TINY)[0] == 0
    (tmp_path / "manifold.png").write_bytes(b"a figure of the old run")
    (tmp_path / "notes.txt").write_text("the user's own file")
    before = files_and_bytes(tmp_path)
    got, _, err = cli(capsys, "train", "--epochs", "1", "--out", tmp_path, "--z-dim", "3", *TINY)
    line = one_error_line(err)
    assert got == 2 and "already holds a run" in line and "--resume" in line and "--force" in line, line
    assert files_and_bytes(tmp_path) == before, "a refused run changed the folder"

    got, out, err = cli(capsys, "train", "--epochs", "1", "--out", tmp_path, "--z-dim", "3", "-q", "--force", *TINY)
    assert got == 0 and "--force: removed the old run's" in err, err
    assert not (tmp_path / "manifold.png").exists(), "the old run's figure survived --force beside the new run"
    assert (tmp_path / "notes.txt").read_text() == "the user's own file"
    assert ckpt.load_model(tmp_path / "checkpoint.npz").z_dim == 3
    # resuming the run in its own folder is not a new run (and --force, said there, is not silently dropped)
    got, out, err = cli(capsys, "train", "--resume", tmp_path / "checkpoint.npz", "--epochs", "2", "-q", "--no-plots",
                        "--force")
    assert got == 0 and "trained from epoch 1 to 2" in out and "--force: nothing replaced" in err, (out, err)


def test_a_stale_lock_and_orphan_temporary_files_are_cleaned_up(tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)                                   # a process that has ended
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": "here"}))
    orphans = [".checkpoint.npz.k3j_x1.tmp", ".history.csv.a8b9c0.tmp"]
    for name in orphans:
        (tmp_path / name).write_bytes(b"half a file")
    (tmp_path / ".other.tmp").write_bytes(b"not ours")
    got, _, err = cli(capsys, "train", "--epochs", "1", "--out", tmp_path, "-q", *TINY)
    assert got == 0, err
    assert f"took over the stale lock of pid {pid}" in err and "removed 2 temporary file(s)" in err, err
    left = sorted(os.listdir(tmp_path))
    assert left == [".other.tmp", "checkpoint.npz", "history.csv", "history.json"], f"ours {left}"

    (tmp_path / LOCK_NAME).write_text("garbled {")            # a kill between creating and writing it
    got, _, err = cli(capsys, "train", "--resume", tmp_path / "checkpoint.npz", "--epochs", "2", "-q", "--no-plots")
    assert got == 0 and not (tmp_path / LOCK_NAME).exists(), err


def test_without_flock_the_pid_in_the_lock_decides(tmp_path, capsys, monkeypatch):
    """Windows has no flock: a lock naming a live process is respected, one naming a dead process is taken over."""
    monkeypatch.setattr(runs, "fcntl", None)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": os.getppid(), "host": "here"}))     # alive: our parent
    got, _, err = cli(capsys, "train", "--epochs", "1", "--out", tmp_path, *TINY)
    assert got == 2 and f"another trainer (pid {os.getppid()})" in err and "delete" in err, err
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": int(dead.stdout), "host": "here"}))
    got, _, err = cli(capsys, "train", "--epochs", "1", "--out", tmp_path, "-q", *TINY)
    assert got == 0 and f"stale lock of pid {int(dead.stdout)}" in err and not (tmp_path / LOCK_NAME).exists(), err


# ---- a full disk, a read-only folder -----------------------------------------------------------------

def fail_writes(monkeypatch, fails, code):
    """atomic_write's n-th file (from 1) fails where fails(n): half of it is written, then OSError(code).

    Three files are written per epoch: checkpoint.npz, history.csv, history.json.
    """
    real, count = fileio._write_file, [0]

    def write(fd, data, durable):
        count[0] += 1
        if fails(count[0]):
            if callable(data):                 # a checkpoint is written by a function into the file
                import io
                buf = io.BytesIO()
                data(buf)
                data = buf.getvalue()
            os.write(fd, data[:len(data) // 2])
            os.close(fd)
            raise OSError(code, os.strerror(code))
        real(fd, data, durable)

    monkeypatch.setattr(fileio, "_write_file", write)


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "the disk is full"),
                                          (errno.EROFS, "the file system is read-only"),
                                          (errno.EACCES, "permission denied")])
def test_a_failing_write_loses_nothing_saved_and_says_so(tmp_path, capsys, monkeypatch, code, reason):
    """Every write from the 4th on fails (epoch 2's checkpoint): the first error is the one reported."""
    fail_writes(monkeypatch, lambda n: n >= 4, code)
    got, _, err = cli(capsys, "train", "--epochs", "3", "--out", tmp_path, "-q", *TINY)
    line = one_error_line(err)
    assert got == 2, err
    assert f"cannot write '{tmp_path / 'checkpoint.npz'}' ({reason})" in line, f"ours {line!r}"
    assert "training stopped at epoch 2" in line and "checkpoint.npz holds epoch 1" in line, line
    assert "--resume" in line, line
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz", "history.csv", "history.json"], os.listdir(tmp_path)
    assert counters(tmp_path / "checkpoint.npz")["epoch"] == 1
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1

    monkeypatch.undo()                                    # space freed: the run goes on from epoch 1
    got, out, err = cli(capsys, "train", "--resume", tmp_path / "checkpoint.npz", "-q")
    assert got == 0 and "trained from epoch 1 to 3" in out, err
    assert len(json.loads((tmp_path / "history.json").read_text())) == 3


def test_a_failing_history_write_names_it_and_keeps_the_checkpoint(tmp_path, capsys, monkeypatch):
    fail_writes(monkeypatch, lambda n: n == 5, errno.ENOSPC)     # epoch 2: checkpoint written, history.csv not
    got, _, err = cli(capsys, "train", "--epochs", "3", "--out", tmp_path, "-q", *TINY)
    line = one_error_line(err)
    assert got == 2 and "history.csv' (the disk is full)" in line and "checkpoint.npz holds epoch 2" in line, line
    assert counters(tmp_path / "checkpoint.npz")["epoch"] == 2
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_a_diverging_run_keeps_its_last_good_epoch_and_says_so(tmp_path, capsys, monkeypatch):
    from numpyvae.errors import TrainingError
    from numpyvae.train import Trainer
    step = Trainer.train_step

    def diverge(self, xb):                   # epoch 2 (22 steps an epoch) goes NaN
        if self.step == 30:
            raise TrainingError("loss became nan at step 31 (epoch 2, batch 9); lower the learning rate")
        return step(self, xb)

    monkeypatch.setattr(Trainer, "train_step", diverge)
    got, _, err = cli(capsys, "train", "--epochs", "3", "--out", tmp_path, "-q", *TINY)
    line = one_error_line(err)
    assert got == 2 and "loss became nan at step 31" in line and "checkpoint.npz holds epoch 1" in line, line
    assert "--resume" not in line, "resuming a diverged run with the same settings would diverge again"
    assert counters(tmp_path / "checkpoint.npz")["epoch"] == 1
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1


def read_only_folder(folder):
    """Make ``folder`` read-only for real: chmod for a normal user; as root, a read-only tmpfs or None."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    if shutil.which("mount") is None:
        return None
    ro = folder / "ro"
    ro.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True)
    if done.returncode != 0:
        return None
    return lambda: subprocess.run(["umount", str(ro)], capture_output=True)


@POSIX
def test_a_read_only_folder_is_refused_in_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli(capsys, "train", "--epochs", "1", "--out", run, "-q", *TINY)[0] == 0
    before = files_and_bytes(run)
    undo = read_only_folder(run)
    if undo is None:
        pytest.skip("running as root without the right to mount a read-only tmpfs (the EROFS case is simulated above)")
    try:
        target = run / "ro" if (run / "ro").exists() else run         # root: the read-only mount inside
        for argv in (["train", "--resume", run / "checkpoint.npz", "--out", target, "--epochs", "2"],
                     ["train", "--epochs", "1", "--out", target / "new", *TINY],
                     ["sample", run / "checkpoint.npz", "--out", target / "s.png"]):
            got, _, err = cli(capsys, *argv)
            line = one_error_line(err)
            assert got == 2 and ("read-only" in line or "permission denied" in line), f"{argv}: ours {line!r}"
    finally:
        undo()
    assert files_and_bytes(run) == before, "the read-only folder's run changed"


# ---- permissions, progress, pipes --------------------------------------------------------------------

@POSIX
def test_output_files_get_normal_permissions(tmp_path, capsys):
    old = os.umask(0o027)
    try:
        assert cli(capsys, "train", "--epochs", "1", "--out", tmp_path, "-q", *TINY)[0] == 0
        assert cli(capsys, "sample", tmp_path / "checkpoint.npz", "--out", tmp_path / "s.png", "--n", "4")[0] == 0
    finally:
        os.umask(old)
    modes = {name: oct(os.stat(tmp_path / name).st_mode & 0o777) for name in os.listdir(tmp_path)}
    assert modes == dict.fromkeys(modes, oct(0o640)) and len(modes) == 4, f"ours {modes} vs expected 0o640 (umask 027)"


def test_a_log_file_gets_epoch_lines_and_no_progress_frames(tmp_path, capsys):
    got, _, err = cli(capsys, "train", "--epochs", "2", "--out", tmp_path / "a", *TINY)
    assert got == 0 and "\r" not in err, f"carriage returns in a log: {err[:200]!r}"
    assert "epoch 1: train -ELBO" in err and "epoch 2: train -ELBO" in err, err
    got, _, err = cli(capsys, "train", "--epochs", "2", "--out", tmp_path / "b", "--no-progress", *TINY)
    assert "epoch 2: train -ELBO" in err, "--no-progress hid the per-epoch lines"
    got, out, err = cli(capsys, "train", "--epochs", "2", "--out", tmp_path / "c", "--quiet", *TINY)
    assert got == 0 and err == "" and "trained 2 epochs" in out, f"--quiet: ours {err!r}"


@POSIX
def test_the_progress_bar_is_drawn_on_a_terminal(tmp_path, capsys, monkeypatch):
    master, slave = pty.openpty()
    chunks = []
    reader = threading.Thread(target=lambda: _drain(master, chunks), daemon=True)
    reader.start()
    with os.fdopen(slave, "w") as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        code = main(["train", "--epochs", "2", "--out", str(tmp_path), "--hidden", "16", "--batch-size", "8",
                     "--no-plots"])
        terminal.flush()
        monkeypatch.undo()
    reader.join(timeout=10)
    os.close(master)
    shown = b"".join(chunks).decode()
    assert code == 0, shown
    assert "epoch 1/2 [" in shown and "#" * 30 in shown, f"no bar on a terminal: {shown[:300]!r}"
    assert "epoch 2: train -ELBO" in shown, shown[-300:]


def _drain(fd, chunks):
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:                      # the other end closed
            return
        if not chunk:
            return
        chunks.append(chunk)


@POSIX
def test_a_closed_pipe_ends_quietly(tmp_path, capsys):
    """`numpyvae evaluate ... | head -1`: the reader leaves; no BrokenPipeError traceback."""
    assert cli(capsys, "train", "--epochs", "1", "--out", tmp_path, "-q", *TINY)[0] == 0
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}   # stdout block-buffered, as usual
    proc = subprocess.Popen([sys.executable, "-m", "numpyvae", "evaluate", str(tmp_path / "checkpoint.npz")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()                                     # like `head` exiting before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == "", f"ours exit {proc.returncode}, stderr {err!r}"
    # `train 2>&1 | head -2`: the log reader leaves early; the run still finishes, saved, and exits like `yes | head`
    read, write = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "numpyvae", "train", "--epochs", "3", "--out", str(tmp_path / "log"),
                             *TINY], stdout=write, stderr=write, env=env)
    os.close(write)
    os.close(read)
    assert proc.wait(timeout=120) == 141, f"ours exit {proc.returncode} vs expected 141"
    assert len(json.loads((tmp_path / "log" / "history.json").read_text())) == 3


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_results_on_a_full_disk_or_a_closed_stdout_end_in_one_line(tmp_path, capsys, monkeypatch):
    assert cli(capsys, "train", "--epochs", "1", "--out", tmp_path, "-q", *TINY)[0] == 0
    with open("/dev/full", "w") as full:                 # every write to it fails with ENOSPC
        monkeypatch.setattr(sys, "stdout", full)
        code = main(["evaluate", str(tmp_path / "checkpoint.npz")])
        monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2 and one_error_line(err).endswith("standard output: cannot write the results (the disk is full)"), \
        f"ours {code}, {err!r}"
    monkeypatch.setattr(sys, "stdout", None)             # started with `>&-`
    assert main(["evaluate", str(tmp_path / "checkpoint.npz")]) == 0
