import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from numpyvae import DataError, InputError
from numpyvae import datasets as ds

REPO = Path(__file__).resolve().parents[1]


def real_data_dir():
    for candidate in (os.environ.get("NUMPYVAE_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


needs_real = pytest.mark.skipif(real_data_dir() is None,
                                reason="real datasets not found: set NUMPYVAE_DATA or place ../shared/data (see README)")


def idx_bytes(arr):
    arr = np.asarray(arr, dtype=np.uint8)
    return bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


# ---- the embedded digits ----------------------------------------------------------------

def test_digits_are_embedded_and_split():
    d = ds.load("digits")
    assert (d.x_train.shape, d.x_valid.shape, d.x_test.shape) == ((1397, 64), (0, 64), (400, 64))
    assert d.x_train.dtype == np.float32 and d.x_train.min() == 0 and d.x_train.max() == 1
    assert sorted(set(d.y_test)) == list(range(10)) and d.image_shape == (8, 8)
    assert "CC BY 4.0" in d.license
    again = ds.load("digits")
    np.testing.assert_array_equal(again.x_test, d.x_test)      # the split is seeded


def test_unknown_name_and_bad_arguments():
    with pytest.raises(InputError, match="name: expected one of"):
        ds.load("cifar10")
    with pytest.raises(InputError, match="dtype"):
        ds.load("digits", dtype=np.int8)


# ---- IDX -------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    path.write_bytes(gzip.compress(idx_bytes(arr)) if compress else idx_bytes(arr))
    np.testing.assert_array_equal(ds.read_idx(path), arr)


@pytest.mark.parametrize("mutate, match", [
    (lambda b: b"\x01" + b[1:], "two zero bytes"),
    (lambda b: b[:2] + b"\x0d" + b[3:], "type code 0x0d"),
    (lambda b: b[:3] + b"\x07" + b[4:], "7 dimensions"),
    (lambda b: b[:-5], "truncated"),
    (lambda b: b + b"\x00", "trailing bytes"),
    (lambda b: b[:6], "truncated IDX header"),
])
def test_idx_bad_headers(tmp_path, mutate, match):
    path = tmp_path / "bad-idx"
    path.write_bytes(mutate(idx_bytes(np.zeros((3, 2, 2)))))
    with pytest.raises(DataError, match=match) as exc:
        ds.read_idx(path)
    assert str(path) in str(exc.value)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "x.gz"
    good = gzip.compress(idx_bytes(np.zeros((50, 4))))
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        ds.read_idx(path)
    flipped = bytearray(good)
    flipped[-6] ^= 0xFF                                  # the CRC
    path.write_bytes(bytes(flipped))
    with pytest.raises(DataError, match=str(path)):
        ds.read_idx(path)


@given(data=st.binary(max_size=300), cut=st.integers(0, 80), gz=st.booleans())
def test_random_and_truncated_bytes_never_escape(tmp_path_factory, data, cut, gz):
    valid = idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
    folder = tmp_path_factory.mktemp("fuzz")
    for i, blob in enumerate((data, valid[:cut], valid[:4] + data)):
        path = folder / f"f{i}"
        path.write_bytes(gzip.compress(blob) if gz else blob)
        for reader in (ds.read_idx, ds.read_amat):
            try:
                out = reader(path)
            except DataError:
                continue
            assert out.dtype == np.uint8


# ---- .amat -----------------------------------------------------------------------------

def test_amat_reader(tmp_path):
    rows = np.random.default_rng(0).integers(0, 2, size=(3, 784))
    text = "".join(" ".join(map(str, r)) + "\n" for r in rows)
    (tmp_path / "b.amat").write_text(text)
    np.testing.assert_array_equal(ds.read_amat(tmp_path / "b.amat"), rows)
    (tmp_path / "c.amat").write_text(text.replace("1 0", "2 0", 1))
    with pytest.raises(DataError, match="line 1"):
        ds.read_amat(tmp_path / "c.amat")
    (tmp_path / "d.amat").write_text(text[:-3])
    with pytest.raises(DataError, match="expected lines of 784"):
        ds.read_amat(tmp_path / "d.amat")


# ---- lookup and checksums ------------------------------------------------------------------

def test_lookup_order_and_checksum_refusal(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPYVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NUMPYVAE_DATA", raising=False)
    with pytest.raises(DataError, match="not found in .*and download=False"):
        ds.load("binarized-mnist", tmp_path / "nothing", download=False)
    fake = tmp_path / "explicit" / "binarized_mnist"
    fake.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (fake / f"binarized_mnist_{split}.amat").write_text(" ".join(["0"] * 784) + "\n")
    with pytest.raises(DataError, match="sha256 mismatch, expected ad693b29"):
        ds.load("binarized-mnist", tmp_path / "explicit", download=False)
    assert ds.find_file("binarized-mnist", "binarized_mnist_test.amat", tmp_path / "explicit") == fake / "binarized_mnist_test.amat"


def test_binarize():
    rng = np.random.default_rng(0)
    x = np.full((1000, 4), 0.25)
    assert ds.binarize(x, "threshold").sum() == 0
    assert abs(ds.binarize(x, "dynamic", rng).mean() - 0.25) < 0.03
    with pytest.raises(InputError, match="rng"):
        ds.binarize(x, "dynamic")
    with pytest.raises(InputError, match="x: expected values <= 1.0"):
        ds.binarize(x + 1, "threshold")


# ---- the real files -------------------------------------------------------------------------

@needs_real
@pytest.mark.parametrize("name, shapes, labelled", [
    ("mnist", ((60000, 784), (10000, 784)), True),
    ("binarized-mnist", ((50000, 784), (10000, 784)), False),
    ("frey-face", ((1565, 560), (200, 560)), False),
])
def test_real_datasets_load_with_checksums(name, shapes, labelled):
    d = ds.load(name, real_data_dir(), download=False)
    assert (d.x_train.shape, d.x_test.shape) == shapes
    assert 0 <= d.x_train.min() and d.x_train.max() <= 1
    assert (d.y_train is not None) == labelled
    if name == "binarized-mnist":
        assert d.x_valid.shape == (10000, 784) and set(np.unique(d.x_test)) == {0.0, 1.0}
    if name == "frey-face":
        assert d.image_shape == (28, 20) and len(d.x_train) + len(d.x_valid) + len(d.x_test) == 1965
    if labelled:
        assert sorted(set(d.y_test)) == list(range(10))


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Fashion-MNIST not installed: apt-get install -y dataset-fashion-mnist")
def test_fashion_mnist_from_debian(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMPYVAE_CACHE", str(tmp_path))
    monkeypatch.delenv("NUMPYVAE_DATA", raising=False)
    d = ds.load("fashion-mnist", download=False)
    assert d.source == "/usr/share/datasets/fashion-mnist"
    assert (d.x_train.shape, d.x_test.shape) == ((60000, 784), (10000, 784))
    assert sorted(set(d.y_train)) == list(range(10))
