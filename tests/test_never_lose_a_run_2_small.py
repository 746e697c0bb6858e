"""Issue 18, items 12-14: tracebacks after a saved run, and the smaller things (cache modes, a moved data folder,
SIGHUP, a FIFO checkpoint, the sample's file type, a checkpoint of 200,000 entries, the BLAS thread count)."""
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from datasets_helpers import isolated, server  # noqa: F401
from numpyvae import checkpoint as ckpt
from numpyvae.data import download as dl
from numpyvae.errors import CheckpointError
from test_never_lose_a_run_2 import POSIX, TINY, env, epoch_of, numpyvae_cli, train


# ---- 12. no traceback after a run is saved ---------------------------------------------------------------------

def test_a_name_the_terminal_encoding_cannot_spell_is_escaped_not_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "numpyvae", "train", "--out", "runé", "--epochs", "1", *TINY],
                          cwd=tmp_path, env={**env(), "PYTHONIOENCODING": "ascii"}, capture_output=True)
    out, err = proc.stdout.decode("ascii"), proc.stderr.decode("ascii")
    print(f"exit ours {proc.returncode} vs 0; stdout {out!r}; stderr {err!r}")
    assert proc.returncode == 0 and "Traceback" not in err and "run\\xe9" in out


def test_a_bogus_matplotlib_backend_is_ignored_with_a_note(tmp_path):
    for argv in (["train", "--out", "run2", "--epochs", "1", "--hidden", "16", "--batch-size", "64", "--quiet"],
                 ["sample", "run2/checkpoint.npz", "--out", "s.png"]):
        proc = subprocess.run([sys.executable, "-m", "numpyvae", *argv], cwd=tmp_path,
                              env={**env(), "MPLBACKEND": "bogus"}, capture_output=True, text=True)
        print(f"{argv[0]}: exit ours {proc.returncode} vs 0; stderr {proc.stderr!r}")
        assert proc.returncode == 0 and "Traceback" not in proc.stderr and "MPLBACKEND='bogus'" in proc.stderr
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "run2" / "samples.png").exists()


# ---- 13. the smaller things ----------------------------------------------------------------------------------

@POSIX
def test_downloaded_files_get_a_normal_files_mode(tmp_path, server):  # noqa: F811
    server.files = {"/f": b"x" * 1000}
    old = os.umask(0o022)
    try:
        dl.fetch([server.url + "/f"], tmp_path / "cache" / "f", lambda tmp, url: None, progress=False)
    finally:
        os.umask(old)
    mode = stat.S_IMODE(os.stat(tmp_path / "cache" / "f").st_mode)
    print(f"mode ours {oct(mode)} vs expected 0o644 (readable by the other users of a shared cache)")
    assert mode == 0o644


def test_a_run_trained_with_a_relative_data_dir_is_evaluated_from_anywhere_and_after_a_move(
        tmp_path, monkeypatch, isolated, capsys):  # noqa: F811
    """--data-dir data (relative) is recorded as an absolute folder; moved away, $NUMPYVAE_DATA finds the files."""
    from datasets_helpers import fake_mnist
    from numpyvae.cli import main
    files, _ = fake_mnist(monkeypatch)
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    for name, blob in files.items():
        (project / "data" / name).write_bytes(blob)
    monkeypatch.chdir(project)
    assert main(["train", "--dataset", "mnist", "--data-dir", "data", "--hidden", "8", "--batch-size", "4",
                 "--epochs", "1", "--no-plots", "--quiet", "--out", "run"]) == 0
    run_info = json.loads(str(ckpt.read(project / "run" / "checkpoint.npz")["run_info"]))
    assert run_info["data_dir"] == str(project / "data"), f"recorded ours {run_info['data_dir']!r}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["evaluate", str(project / "run" / "checkpoint.npz")]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "mnist test set, 5 images" in out, out
    os.rename(project / "data", tmp_path / "moved")                  # the data move; NUMPYVAE_DATA says where
    monkeypatch.setenv("NUMPYVAE_DATA", str(tmp_path / "moved"))
    code = main(["evaluate", str(project / "run" / "checkpoint.npz")])
    captured = capsys.readouterr()
    print(f"exit ours {code} vs 0; stderr {captured.err!r}")
    assert code == 0 and "mnist test set, 5 images" in captured.out
    assert f"the data folder {str(project / 'data')!r} recorded in" in captured.err


def test_a_recorded_data_folder_that_fails_is_named_as_coming_from_the_checkpoint(tmp_path, monkeypatch, isolated,
                                                                                     capsys):  # noqa: F811
    from datasets_helpers import fake_mnist
    from numpyvae.cli import main
    files, _ = fake_mnist(monkeypatch)
    (tmp_path / "data").mkdir()
    for name, blob in files.items():
        (tmp_path / "data" / name).write_bytes(blob)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "mnist", "--data-dir", "data", "--hidden", "8", "--batch-size", "4",
                 "--epochs", "1", "--no-plots", "--quiet", "--out", "run"]) == 0
    for name in files:
        (tmp_path / "data" / name).write_bytes(b"broken")
    capsys.readouterr()
    code = main(["evaluate", "run/checkpoint.npz"])
    err = capsys.readouterr().err
    print(f"exit ours {code} vs 2; stderr {err!r}")
    assert code == 2 and "recorded in run/checkpoint.npz" in err and "--data-dir" in err


def _train_until_saved(tmp_path, preexec=None):
    proc = subprocess.Popen([sys.executable, "-m", "numpyvae", "train", "--out", "cut", "--epochs", "100000",
                             *TINY], cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=preexec)
    path = tmp_path / "cut" / "checkpoint.npz"
    deadline = time.time() + 60
    while not path.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.2)
    return proc, path


@POSIX
def test_sighup_saves_the_run_like_sigterm(tmp_path):
    """The terminal (or ssh session) closes: the run is saved and exits with 129, not killed unsaved."""
    proc, path = _train_until_saved(tmp_path)
    try:
        proc.send_signal(signal.SIGHUP)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"exit ours {proc.returncode} vs 129; stderr {err[-300:]!r}")
    assert proc.returncode == 129 and "stopped by SIGHUP: saved" in err and "Traceback" not in err
    assert json.loads(str(ckpt.read(path)["trainer_counters"]))["step"] > 0


@POSIX
def test_a_sighup_ignored_by_nohup_stays_ignored(tmp_path):
    proc, path = _train_until_saved(tmp_path, preexec=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    try:
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        alive = proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert alive and proc.returncode == 143, f"ours alive={alive}, exit {proc.returncode} vs alive, then 143"


# ---- 14. the BLAS thread count is recorded, and a resume with another is told ----------------------------------

@POSIX
def test_a_resume_with_another_blas_thread_count_says_it_is_not_bit_identical(tmp_path):
    from numpyvae.blas_threads import blas_threads
    if blas_threads() is None:
        pytest.skip("this NumPy's BLAS is not OpenBLAS: its thread count cannot be read")

    def run(threads, *argv):
        proc = subprocess.run([sys.executable, "-m", "numpyvae", *map(str, argv)], cwd=tmp_path, capture_output=True,
                              text=True, env={**env(), "OPENBLAS_NUM_THREADS": str(threads)})
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        return proc.stderr

    run(1, "train", "--out", "run", "--epochs", 1, *TINY)
    assert json.loads(str(ckpt.read(tmp_path / "run" / "checkpoint.npz")["run_info"]))["blas_threads"] == 1
    same = run(1, "train", "--resume", "run/checkpoint.npz", "--epochs", 2, "--no-plots", "--quiet")
    other = run(2, "train", "--resume", "run/checkpoint.npz", "--epochs", 3, "--no-plots", "--quiet")
    print(f"same count: {same!r}\nother count: {other!r}")
    assert "BLAS" not in same
    assert "trained with 1 BLAS thread(s), this process has 2" in other and "OPENBLAS_NUM_THREADS=1" in other


# ---- 13, continued: a FIFO checkpoint, the sample's file type, a checkpoint of many entries -----------------------

@POSIX
@pytest.mark.parametrize("command", ["evaluate", "sample", "train --resume"])
def test_a_fifo_checkpoint_is_named_as_such_and_nothing_hangs(tmp_path, command):
    os.mkfifo(tmp_path / "ck.npz")
    argv = command.split() + ["ck.npz"] + (["--epochs", "2"] if "train" in command else [])
    code, _, err = numpyvae_cli(*argv, cwd=tmp_path, timeout=30)
    print(f"exit ours {code} vs 2; stderr {err!r}")
    assert code == 2 and "named pipe (FIFO)" in err


def test_sample_refuses_a_file_name_that_is_not_png(tmp_path, capsys):
    from numpyvae.cli import main
    assert main(["train", "--out", str(tmp_path / "run"), "--epochs", "1", *TINY]) == 0
    for name in ("x.txt", "samples", "x.jpg"):
        code = main(["sample", str(tmp_path / "run" / "checkpoint.npz"), "--out", str(tmp_path / name)])
        err = capsys.readouterr().err
        print(f"--out {name}: exit ours {code} vs 2; stderr {err!r}")
        assert code == 2 and ".png" in err and not (tmp_path / name).exists()
    assert main(["sample", str(tmp_path / "run" / "checkpoint.npz"), "--out", str(tmp_path / "ok.PNG")]) == 0
    assert (tmp_path / "ok.PNG").read_bytes()[:4] == b"\x89PNG"


def test_a_checkpoint_of_twenty_thousand_entries_is_refused_at_once(tmp_path):
    """A real checkpoint with 20,000 extra entries: refused from the zip's directory, in well under a second."""
    train(tmp_path, "run", 1)
    arrays = dict(ckpt.read(tmp_path / "run" / "checkpoint.npz"))
    buf = io.BytesIO()
    np.save(buf, np.zeros(1, np.float32))
    blob = buf.getvalue()
    path = tmp_path / "many.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for key, value in arrays.items():
            b = io.BytesIO()
            np.save(b, value)
            zf.writestr(key + ".npy", b.getvalue())
        for i in range(20000):
            zf.writestr(f"junk/{i}.npy", blob)
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="20,0[0-9][0-9] entries"):
        ckpt.load_model(path)
    seconds = time.perf_counter() - start
    print(f"refused in ours {seconds:.3f} s vs expected < 1 s")
    assert seconds < 1
