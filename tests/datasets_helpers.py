"""Shared helpers of the numpyvae.data tests: small fake files, an isolated environment, the real-data folder."""
import gzip
import hashlib
import http.server
import os
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from numpyvae.data import registry

REPO = Path(__file__).resolve().parents[1]
SKIP_REAL = ("real datasets not found: set NUMPYVAE_DATA to a folder holding mnist/, binarized_mnist/ "
             "and frey_face/ (see the Datasets section of docs/guide.md)")


def real_data_dir():
    """$NUMPYVAE_DATA, else a shared/data folder beside the repository (as .ci/run finds it), or None."""
    for candidate in (os.environ.get("NUMPYVAE_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    return None


def idx_bytes(arr):
    """The IDX encoding of a uint8 array: 0, 0, 0x08, ndim, big-endian sizes, data."""
    arr = np.asarray(arr, dtype=np.uint8)
    return bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def amat_bytes(rows):
    """The .amat text of a 0/1 matrix: values separated by single spaces, one row a line."""
    return "".join(" ".join(map(str, r)) + "\n" for r in np.asarray(rows)).encode()


def sha256(content):
    return hashlib.sha256(content).hexdigest()


def fake_spec(name, index, content, monkeypatch):
    """Put ``content``'s sha256 and size into registry.FILES[name][index] (for this test only)."""
    specs = list(registry.FILES[name])
    specs[index] = specs[index]._replace(sha256=sha256(content), size=len(content))
    monkeypatch.setitem(registry.FILES, name, tuple(specs))
    return specs[index]


def fake_mnist(monkeypatch, n_train=12, n_test=5, seed=0):
    """Tiny MNIST-like IDX files, gzip'd as on the servers, with their checksums and sizes in the registry.

    Returns {remote file name: gzip'd bytes} and the arrays (x_train, y_train, x_test, y_test).
    """
    rng = np.random.default_rng(seed)
    arrays = (rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train),
              rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test))
    files = {}
    for index, arr in enumerate(arrays):
        content = idx_bytes(arr)
        spec = fake_spec("mnist", index, content, monkeypatch)
        files[spec.remote] = gzip.compress(content, mtime=0)
    return files, arrays


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No NUMPYVAE_DATA, an empty cache in tmp_path/cache, a mirror that refuses connections, no system folders."""
    monkeypatch.delenv("NUMPYVAE_DATA", raising=False)
    monkeypatch.setenv("NUMPYVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NUMPYVAE_MIRROR", "http://127.0.0.1:9")      # never the internet
    monkeypatch.setattr(registry, "SYSTEM_FOLDERS", {})
    return tmp_path


def files_under(folder):
    """Every file below ``folder`` (hidden temporary files included), as sorted relative paths."""
    folder = Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ---- a local HTTP server (127.0.0.1 only: no test uses the network) ---------------------------

class Server:
    """A local HTTP server: ``files`` maps URL paths to bodies, ``mode`` says how to misbehave.

    good          : the body with its Content-Length
    slow          : waits 1 s before answering
    truncated     : announces the full length, sends half, hangs up
    cut-no-length : sends half without a Content-Length
    corrupt       : flips one bit of byte 40
    drip-body     : announces the length, then sends one byte every DRIP seconds
    drip-headers  : sends the status line, then a header one byte every DRIP seconds
    endless       : no Content-Length and zeros for ever (until the client leaves)
    huge-length   : announces 10**12 bytes
    garbage       : answers with text that is not HTTP
    redirect-loop : redirects every request to itself
    error-500     : an internal server error
    Every misbehaviour stops within STOP_AFTER seconds, or when the client leaves.
    """

    DRIP, STOP_AFTER = 0.05, 5.0

    def __init__(self):
        self.files, self.mode, self.requests = {}, "good", []
        self.stopping = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                mode = server.mode
                if mode == "garbage":
                    self.wfile.write(b"this is not HTTP at all\r\n\r\n")
                    return
                if mode == "redirect-loop":
                    self.send_response(302)
                    self.send_header("Location", self.path)
                    self.end_headers()
                    return
                if mode == "error-500":
                    self.send_error(500)
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                try:
                    self.answer(mode, body)
                except OSError:                            # the client gave up (timeout tests)
                    pass

            def answer(self, mode, body):
                if mode == "slow":
                    time.sleep(1.0)
                if mode == "drip-headers":
                    self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
                    self.drip(b"a" * 10**6)
                    return
                length = len(body)
                if mode in ("truncated", "cut-no-length"):
                    body = body[: length // 2]             # send half, then hang up
                elif mode == "corrupt":
                    body = body[:40] + bytes([body[40] ^ 0x01]) + body[41:]
                self.send_response(200)
                if mode == "huge-length":
                    self.send_header("Content-Length", str(10**12))
                elif mode not in ("cut-no-length", "endless"):
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                if mode == "drip-body":
                    self.drip(body)
                elif mode == "endless":
                    start = time.monotonic()
                    while not server.stopping.is_set() and time.monotonic() - start < server.STOP_AFTER:
                        self.wfile.write(bytes(1 << 16))
                else:
                    self.wfile.write(body)

            def drip(self, data):
                start = time.monotonic()
                for i in range(len(data)):
                    if server.stopping.is_set() or time.monotonic() - start > server.STOP_AFTER:
                        return
                    self.wfile.write(data[i:i + 1])
                    time.sleep(server.DRIP)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(isolated, monkeypatch):
    """A Server, with NUMPYVAE_MIRROR pointing at it."""
    srv = Server()
    monkeypatch.setenv("NUMPYVAE_MIRROR", srv.url)
    yield srv
    srv.close()


def serve_fake_mnist(server, monkeypatch):
    """Serve fake_mnist's files under /mnist/; returns its arrays."""
    files, arrays = fake_mnist(monkeypatch)
    server.files = {f"/mnist/{remote}": blob for remote, blob in files.items()}
    return arrays
