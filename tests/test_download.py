"""The download path, against a server on 127.0.0.1 (never the internet)."""
import gzip
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from numpyvae import DataError
from numpyvae import datasets as ds

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "frey_face" / "frey_rawface.mat"


class Handler(http.server.BaseHTTPRequestHandler):
    files = {}          # url path -> bytes
    mode = "good"       # "good", "truncated" or "corrupt"

    def do_GET(self):
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        length = len(body)
        if self.mode == "truncated":
            body = body[: length // 2]           # promise the whole file, send half, hang up
        elif self.mode == "corrupt":
            body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch, tmp_path):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("NUMPYVAE_MIRROR", f"http://127.0.0.1:{srv.server_address[1]}")
    monkeypatch.setenv("NUMPYVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NUMPYVAE_DATA", raising=False)
    Handler.mode = "good"
    yield Handler
    srv.shutdown()
    srv.server_close()


def fake_binarized_mnist(monkeypatch):
    """Small stand-in .amat files, with their checksums put in the table."""
    import hashlib
    rng = np.random.default_rng(0)
    files = {}
    for split in ("train", "valid", "test"):
        rows = rng.integers(0, 2, size=(20, 784))
        text = "".join(" ".join(map(str, r)) + "\n" for r in rows).encode()
        name = f"binarized_mnist_{split}.amat"
        files[f"/binarized-mnist/{name}"] = text
        monkeypatch.setitem(ds.CHECKSUMS, name, (hashlib.sha256(text).hexdigest(), "content"))
    return files


def cached_files(tmp_path):
    root = tmp_path / "cache"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_good_download_lands_in_the_cache_and_verifies(server, monkeypatch, tmp_path, capsys):
    server.files = fake_binarized_mnist(monkeypatch)
    d = ds.load("binarized-mnist", progress=True)
    assert d.x_train.shape == (20, 784)
    assert cached_files(tmp_path) == [f"binarized_mnist/binarized_mnist_{s}.amat" for s in ("test", "train", "valid")]
    assert "downloading binarized_mnist_train.amat" in capsys.readouterr().err
    server.files = {}                                  # second time: from the cache, no server needed
    assert ds.load("binarized-mnist").x_test.shape == (20, 784)


@pytest.mark.parametrize("mode, match", [("truncated", "truncated|download failed"), ("corrupt", "sha256 mismatch")])
def test_bad_download_leaves_nothing_behind(server, monkeypatch, tmp_path, mode, match):
    server.files = fake_binarized_mnist(monkeypatch)
    server.mode = mode
    with pytest.raises(DataError, match=match):
        ds.load("binarized-mnist", progress=False)
    assert cached_files(tmp_path) == []


def test_missing_file_on_the_server(server, tmp_path):
    server.files = {}
    with pytest.raises(DataError, match="download failed .*404"):
        ds.load("binarized-mnist", progress=False)
    assert cached_files(tmp_path) == []


@pytest.mark.skipif(not SHARED.is_file(), reason="real datasets not found: place ../shared/data (see README)")
def test_real_file_with_its_real_checksum(server, tmp_path):
    server.files = {"/frey-face/frey_rawface.mat": SHARED.read_bytes()}
    d = ds.load("frey-face", progress=False)
    assert len(d.x_train) + len(d.x_valid) + len(d.x_test) == 1965
    assert cached_files(tmp_path) == ["frey_face/frey_rawface.mat"]
