"""Shared helpers of test_datasets.py and test_download.py: small fake files, the real-data folder."""
import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from numpyvae import datasets as ds

REPO = Path(__file__).resolve().parents[1]
SKIP_REAL = "real datasets not found: set NUMPYVAE_DATA or place ../shared/data (see README)"


def real_data_dir():
    """$NUMPYVAE_DATA, else ../shared/data beside the repository, or None."""
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


def fake_mnist(monkeypatch, n_train=12, n_test=5, seed=0):
    """Tiny MNIST-like IDX files, gzip'd as on the servers, with their checksums put in ds.FILES.

    Returns {remote file name: gzip'd bytes} and the arrays (x_train, y_train, x_test, y_test).
    """
    rng = np.random.default_rng(seed)
    arrays = (rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train),
              rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test))
    files, specs = {}, []
    for spec, arr in zip(ds.FILES["mnist"], arrays):
        content = idx_bytes(arr)
        files[spec.remote] = gzip.compress(content, mtime=0)
        specs.append(spec._replace(sha256=sha256(content)))
    monkeypatch.setitem(ds.FILES, "mnist", tuple(specs))
    return files, arrays


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No NUMPYVAE_DATA, an empty cache in tmp_path/cache, a mirror that refuses connections, no system folders."""
    monkeypatch.delenv("NUMPYVAE_DATA", raising=False)
    monkeypatch.setenv("NUMPYVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NUMPYVAE_MIRROR", "http://127.0.0.1:9")      # never the internet
    monkeypatch.setattr(ds, "SYSTEM_FOLDERS", {})
    return tmp_path


def files_under(folder):
    """Every file below ``folder`` (hidden temporary files included), as sorted relative paths."""
    folder = Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
