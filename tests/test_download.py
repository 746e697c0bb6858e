"""The download path, against a server on 127.0.0.1 (never the internet): NUMPYVAE_MIRROR points at it."""
import time

import numpy as np
import pytest

from datasets_helpers import (SKIP_REAL, files_under, isolated, real_data_dir, serve_fake_mnist,  # noqa: F401
                              server, sha256)
from numpyvae import DataError
from numpyvae import data as ds
from numpyvae.data import download as dl
from numpyvae.data import registry

MNIST_CACHED = sorted(f"mnist/{s.remote}" for s in registry.FILES["mnist"])


def same(ours, expected):
    assert ours == expected, f"ours {ours!r} vs expected {expected!r}"


# ---- a good download ---------------------------------------------------------------------------

def test_good_download_lands_in_the_cache_and_verifies(server, monkeypatch, isolated, capsys):
    x_tr, y_tr, x_te, y_te = serve_fake_mnist(server, monkeypatch)
    d = ds.load("mnist", progress=True)
    np.testing.assert_array_equal(d.x_test, x_te.reshape(len(x_te), -1).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(d.y_train, y_tr)
    same(files_under(isolated / "cache"), MNIST_CACHED)
    same(d.source, str(isolated / "cache" / "mnist"))
    err = capsys.readouterr().err
    assert "downloading train-images-idx3-ubyte.gz [" in err and " kB" in err, f"ours {err!r} vs expected a progress bar"
    served = len(server.requests)
    same(served, 4)
    server.files = {}                                      # the second time: from the cache, no request
    same(ds.load("mnist").x_train.shape, d.x_train.shape)
    same(len(server.requests), served)


@pytest.mark.parametrize("progress", [False, None])      # None: only on a terminal, and capsys is not one
def test_no_progress_output_when_off_or_not_a_terminal(server, monkeypatch, capsys, progress):
    serve_fake_mnist(server, monkeypatch)
    ds.load("mnist", progress=progress)
    same(capsys.readouterr().err, "")


def test_download_false_never_contacts_the_server(server, monkeypatch, isolated):
    serve_fake_mnist(server, monkeypatch)
    (isolated / "elsewhere").mkdir()
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte \(or train-images-idx3-ubyte.gz\) not found") as exc:
        ds.load("mnist", isolated / "elsewhere", download=False)
    for where in (str(isolated / "elsewhere" / "mnist"), str(isolated / "cache" / "mnist"), "download=False"):
        assert where in str(exc.value), f"ours {exc.value} vs expected it to name {where}"
    same(server.requests, [])


# ---- bad downloads leave nothing behind -------------------------------------------------------------

@pytest.mark.parametrize("mode, match", [
    ("truncated", r"/mnist/train-images-idx3-ubyte.gz: download truncated: expected \d+ bytes, got \d+"),
    ("corrupt", r"/mnist/train-images-idx3-ubyte.gz: (sha256 mismatch, expected [0-9a-f]{64}, got [0-9a-f]{64}"
                r"|.*corrupt or truncated gzip)"),
    ("cut-no-length", r"/mnist/train-images-idx3-ubyte.gz: .*(corrupt or truncated gzip|sha256 mismatch)"),
])
def test_bad_download_raises_and_leaves_nothing_behind(server, monkeypatch, isolated, mode, match):
    serve_fake_mnist(server, monkeypatch)
    server.mode = mode
    with pytest.raises(DataError, match=match) as exc:
        ds.load("mnist", progress=False)
    assert server.url in str(exc.value), f"ours {exc.value} vs expected the URL in it"
    same(files_under(isolated / "cache"), [])


def test_corrupt_plain_download_reports_the_checksums(server, monkeypatch, isolated):
    """A flipped byte in a file served plain (no gzip CRC to catch it first): the sha256 check must."""
    content = b"plain file content " * 100
    spec = ds.FileSpec("frey_rawface.mat", "frey_rawface.mat", sha256(content), len(content))
    monkeypatch.setitem(registry.FILES, "frey-face", (spec,))
    server.files = {"/frey_face/frey_rawface.mat": content}
    server.mode = "corrupt"
    with pytest.raises(DataError) as exc:
        ds.load("frey-face", progress=False)
    got = sha256(content[:40] + bytes([content[40] ^ 1]) + content[41:])
    same(str(exc.value), f"{server.url}/frey_face/frey_rawface.mat: sha256 mismatch, expected {spec.sha256}, "
                         f"got {got} — the file is corrupt or not the frey-face file; the download was not kept; retry later")
    same(files_under(isolated / "cache"), [])


def test_missing_file_on_the_server(server, isolated):
    with pytest.raises(DataError, match=r"/mnist/train-images-idx3-ubyte.gz: download failed \(HTTP Error 404"):
        ds.load("mnist", progress=False)
    same(files_under(isolated / "cache"), [])


def test_a_silent_server_times_out(server, monkeypatch, isolated):
    serve_fake_mnist(server, monkeypatch)
    server.mode = "slow"
    monkeypatch.setattr(dl, "TIMEOUT", 0.2)
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"download failed \((.*timed out|no complete response within 0.2 s)\)"):
        ds.load("mnist", progress=False)
    assert time.perf_counter() - start < 5, "the timeout did not stop the download"
    same(files_under(isolated / "cache"), [])


def test_interrupted_download_leaves_nothing(tmp_path, server):
    server.files = {"/f": b"x" * 1000}

    def interrupt(tmp, url):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dl.fetch([server.url + "/f"], tmp_path / "dl" / "f", interrupt, progress=False)
    same(files_under(tmp_path / "dl"), [])


# ---- URLs: the originals, the mirror, falling back -----------------------------------------------------

def test_urls_of_the_original_locations_and_the_mirror(monkeypatch):
    monkeypatch.delenv("NUMPYVAE_MIRROR", raising=False)
    first = {name: registry.urls(name, registry.FILES[name][0])[0] for name in registry.FILES}
    same(first, {
        "mnist": "https://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz",
        "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
        "binarized-mnist": "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/binarized_mnist_train.amat",
        "frey-face": "https://www.cs.nyu.edu/~roweis/data/frey_rawface.mat"})
    assert len(registry.urls("mnist", registry.FILES["mnist"][0])) > 1, "MNIST should have mirrors to fall back on"
    monkeypatch.setenv("NUMPYVAE_MIRROR", "http://127.0.0.1:8000/data/")
    same(registry.urls("binarized-mnist", registry.FILES["binarized-mnist"][2]),
         ["http://127.0.0.1:8000/data/binarized_mnist/binarized_mnist_test.amat"])


def test_falls_back_to_the_next_location(server, monkeypatch, isolated):
    serve_fake_mnist(server, monkeypatch)
    monkeypatch.delenv("NUMPYVAE_MIRROR")
    monkeypatch.setitem(registry.BASE_URLS, "mnist", (f"{server.url}/gone/", f"{server.url}/mnist/"))
    same(ds.load("mnist", progress=False).x_train.shape, (12, 784))
    same(files_under(isolated / "cache"), MNIST_CACHED)
    assert f"/gone/{registry.FILES['mnist'][0].remote}" in server.requests


def test_all_locations_failing_names_each(server, monkeypatch, isolated):
    monkeypatch.delenv("NUMPYVAE_MIRROR")
    monkeypatch.setitem(registry.BASE_URLS, "mnist", (f"{server.url}/gone/", f"{server.url}/also-gone/"))
    with pytest.raises(DataError, match="from any of 2 locations") as exc:
        ds.load("mnist", progress=False)
    for part in ("/gone/train-images", "/also-gone/train-images", "404"):
        assert part in str(exc.value), f"ours {exc.value} vs expected it to mention {part}"
    same(files_under(isolated / "cache"), [])


# ---- a real file with its real checksum ----------------------------------------------------------------

REAL_DATA = real_data_dir()     # looked up at import: the ``isolated`` fixture removes NUMPYVAE_DATA


def test_real_frey_face_with_its_real_checksum(server, isolated):
    if REAL_DATA is None:
        pytest.skip(SKIP_REAL)
    original = (REAL_DATA / "frey_face" / "frey_rawface.mat").read_bytes()
    server.files = {"/frey_face/frey_rawface.mat": original}
    d = ds.load("frey-face", progress=False)
    same(len(d.x_train) + len(d.x_valid) + len(d.x_test), 1965)
    same(files_under(isolated / "cache"), ["frey_face/frey_rawface.mat"])
    assert (isolated / "cache" / "frey_face" / "frey_rawface.mat").read_bytes() == original
