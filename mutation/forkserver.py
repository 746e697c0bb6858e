"""A fork server that runs pytest for cosmic-ray, without paying the import cost per mutant.

cosmic-ray runs its ``test-command`` once per mutant.  A fresh ``python -m
pytest`` spends seconds importing numpy, scipy, hypothesis and pytest before
the first test runs; the tests themselves take a fraction of that.  So:

    server:  imports those once, then for each request forks a child that
             runs ``pytest.main(args)`` in the requested folder and reports
             its exit code and output.  numpyvae itself is NOT imported by
             the server: each child imports it afresh, from the (mutated)
             source on disk, with bytecode caching off.
    client:  what cosmic-ray runs as its test command.  It connects to the
             server, forwards the pytest arguments, prints the output and
             exits with pytest's exit code.  If no server answers it runs
             ``python -m pytest`` itself (same result, only slower).

    python -m mutation.forkserver serve SOCKET
    python -m mutation.forkserver run SOCKET -- PYTEST_ARGS...
"""
import json
import os
import socket
import sys
import time

# The client must start fast: the heavy imports happen in serve() only.


def _child(cwd, args, out_path):
    """In the forked child: run pytest in cwd on args, output to out_path; never returns."""
    try:
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(cwd)
        sys.path.insert(0, cwd)
        sys.dont_write_bytecode = True
        import pytest
        code = int(pytest.main(list(args)))
    except BaseException as exc:          # anything at all: report it as a failed run
        try:
            os.write(2, f"fork server child: {exc!r}\n".encode())
        finally:
            code = 99
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _wait(pid, timeout):
    """Wait for the child; kill it after timeout seconds.  Returns its exit code (124: timed out)."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return 124
        time.sleep(0.01)


def serve(sock_path):
    """Import the test dependencies once, then answer requests forever (one at a time)."""
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    sys.dont_write_bytecode = True
    import numpy                      # noqa: F401  (the costly imports, done once)
    import scipy.stats                # noqa: F401
    import pytest                     # noqa: F401
    import hypothesis.extra.numpy     # noqa: F401
    from mutation import hypothesis_profile  # noqa: F401  (registers the "mutation" profile)
    import importlib
    import importlib.metadata
    for ep in importlib.metadata.entry_points(group="pytest11"):   # pytest's plugins (nbval pulls in jupyter)
        try:
            importlib.import_module(ep.value.split(":")[0])
        except Exception:
            pass
    import _pytest.python, _pytest.doctest, _pytest.terminal   # noqa: F401,E401
    import gc
    gc.freeze()      # the imported modules' objects: the child's gc.collect (pytest runs 5) skips them
    assert "numpyvae" not in sys.modules, "the server must not import the package under test"
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(4)
    out_path = sock_path + ".out"
    while True:
        conn, _ = srv.accept()
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            req = json.loads(data)
            pid = os.fork()
            if pid == 0:
                srv.close()
                conn.close()
                _child(req["cwd"], req["args"], out_path)
            code = _wait(pid, req.get("timeout", 120))
            with open(out_path, "rb") as f:
                out = f.read().decode("utf-8", "replace")
            conn.sendall(json.dumps({"code": code, "out": out[-20000:]}).encode() + b"\n")


def run(sock_path, args, timeout=120):
    """Client: run pytest args through the server (or directly if none answers); exit with its code."""
    req = json.dumps({"cwd": os.getcwd(), "args": args, "timeout": timeout}).encode() + b"\n"
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock_path)
    except OSError:
        os.execvp(sys.executable, [sys.executable, "-m", "pytest", "-p", "mutation.hypothesis_profile", *args])
    with s:
        s.sendall(req)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    reply = json.loads(data)
    sys.stdout.write(reply["out"])
    sys.exit(reply["code"])


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif len(sys.argv) >= 4 and sys.argv[1] == "run" and sys.argv[3] == "--":
        run(sys.argv[2], sys.argv[4:])
    else:
        sys.exit(__doc__)
