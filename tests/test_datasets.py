"""numpyvae.data: readers and their refusals, lookup order, checksums, splits, binarize, real files."""
import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from datasets_helpers import (SKIP_REAL, amat_bytes, fake_mnist, fake_spec, idx_bytes, isolated,  # noqa: F401
                              real_data_dir, sha256)
from numpyvae import DataError, InputError
from numpyvae import data as ds
from numpyvae.data import parsers, registry

FASHION_SYSTEM = Path("/usr/share/datasets/fashion-mnist")


def same(ours, expected):
    assert ours == expected, f"ours {ours!r} vs expected {expected!r}"


# ---- the embedded digits ------------------------------------------------------------------

def embedded_digits():
    """The raw embedded digits table, parsed: x uint8 (1797, 64), y int64 (1797,)."""
    raw = (Path(ds.__file__).parent / registry.DIGITS_FILE).read_bytes()
    return parsers.parse_digits(raw)


def test_load_digits_raw_values():
    x, y = embedded_digits()
    same((x.shape, x.dtype, y.shape, y.dtype), ((1797, 64), np.uint8, (1797,), np.int64))
    same((int(x.min()), int(x.max()), sorted(set(y.tolist()))), (0, 16, list(range(10))))


def test_digits_split_is_seeded_and_scaled():
    d = ds.load("digits")
    same((d.x_train.shape, d.x_valid.shape, d.x_test.shape), ((1397, 64), (0, 64), (400, 64)))
    same((d.y_train.shape, d.y_valid.shape, d.y_test.dtype), ((1397,), (0,), np.int64))
    same((d.x_train.dtype, float(d.x_train.min()), float(d.x_train.max())), (np.float32, 0.0, 1.0))
    same((d.image_shape, d.x_dim, d.name), ((8, 8), 64, "digits"))
    assert "CC BY 4.0" in d.license and "digits.csv.gz" in d.source
    same(d.class_names, [str(k) for k in range(10)])
    x, _ = embedded_digits()
    rows = {r.tobytes() for r in x}
    missing = [i for i, r in enumerate(d.x_test[:20]) if (r * 16).astype(np.uint8).tobytes() not in rows]
    assert not missing, f"x_test rows {missing}: ours (times 16) vs expected a row of the digits file"   # pixel / 16
    np.testing.assert_array_equal(ds.load("digits").x_test, d.x_test)           # same seed, same split
    assert not np.array_equal(ds.load("digits", seed=1).x_test, d.x_test)
    d2 = ds.load("digits", n_valid=97, dtype=np.float64)
    same((len(d2.x_train), len(d2.x_valid), len(d2.x_test), d2.x_train.dtype), (1300, 97, 400, np.float64))
    np.testing.assert_array_equal(d2.x_test, d.x_test)                           # n_valid comes out of train
    assert "train 1397, valid 0, test 400" in repr(d)


def test_digits_license_file_is_shipped():
    text = (Path(ds.__file__).parent / "DIGITS_LICENSE.txt").read_text()
    assert "Alpaydin" in text and "Kaynak" in text and "CC BY 4.0" in text


# ---- argument checks -------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(name="cifar10"), "name: expected one of .*'binarized-mnist', 'digits', 'fashion-mnist', 'frey-face', 'mnist'"),
    (dict(name="digits", dtype=np.int8), "dtype: expected float32 or float64"),
    (dict(name="digits", n_valid=-1), "n_valid: expected an integer >= 0"),
    (dict(name="digits", n_valid=1397), "n_valid: expected at most 1396"),
    (dict(name="digits", n_valid=2.5), "n_valid"),
    (dict(name="digits", seed=-3), "seed"),
    (dict(name="binarized-mnist", n_valid=5), "fixed validation split of 10000"),
])
def test_load_refuses_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        ds.load(**kwargs)


# ---- IDX ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(7,), (2, 3), (2, 3, 4), (1, 2, 3, 2), (0, 5)])
@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, shape, compress):
    arr = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    path = tmp_path / "a-idx"                       # gzip is told by its magic bytes, not by the name
    path.write_bytes(gzip.compress(idx_bytes(arr)) if compress else idx_bytes(arr))
    out = ds.read_idx(path)
    same((out.shape, out.dtype), (shape, np.uint8))
    np.testing.assert_array_equal(out, arr)


VALID_IDX = idx_bytes(np.zeros((3, 2, 2)))      # 4 + 12 header bytes + 12 data bytes = 28


@pytest.mark.parametrize("blob, match", [
    (b"\x01" + VALID_IDX[1:], "not an IDX file .*two zero bytes"),
    (VALID_IDX[:2] + b"\x0d" + VALID_IDX[3:], "type code 0x0d is not supported, expected 0x08"),
    (VALID_IDX[:3] + b"\x00" + VALID_IDX[4:], "0 dimensions, expected 1 to 4"),
    (VALID_IDX[:3] + b"\x05" + VALID_IDX[4:], "5 dimensions, expected 1 to 4"),
    (VALID_IDX[:6], "truncated IDX header: expected 16 bytes, got 6"),
    (VALID_IDX[:-5], r"truncated: dimensions \(3, 2, 2\) need 28 bytes, got 23"),
    (VALID_IDX + b"\x00", "has trailing bytes: dimensions .* need 28 bytes, got more than 29"),
    (b"", "not an IDX file"),
])
@pytest.mark.parametrize("compress", [False, True])
def test_idx_bad_headers(tmp_path, blob, match, compress):
    path = tmp_path / "bad-idx"
    path.write_bytes(gzip.compress(blob) if compress else blob)
    with pytest.raises(DataError, match=match) as exc:
        ds.read_idx(path)
    assert str(exc.value).startswith(str(path)), f"ours {exc.value} vs expected to start with {path}"


def test_idx_huge_dimensions_are_refused_not_allocated(tmp_path):
    path = tmp_path / "huge"
    path.write_bytes(bytes([0, 0, 8, 4]) + b"\xff" * 16)
    with pytest.raises(DataError, match=r"declares dimensions \(4294967295, .* more than max_bytes=134,217,728"):
        ds.read_idx(path)
    path.write_bytes(idx_bytes(np.zeros((10, 10))))
    with pytest.raises(DataError, match=r"dimensions \(10, 10\), 112 bytes, more than max_bytes=100"):
        ds.read_idx(path, max_bytes=100)
    same(ds.read_idx(path, max_bytes=112).shape, (10, 10))


def test_corrupt_gzip_and_missing_file(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(200).reshape(50, 4)))
    path = tmp_path / "x.gz"
    for blob in (good[: len(good) // 2],                                       # truncated stream
                 good[:-8] + bytes([good[-8] ^ 0xFF]) + good[-7:],             # bad CRC
                 b"\x1f\x8b" + b"garbage" * 3):                                 # bad header
        path.write_bytes(blob)
        for reader in (ds.read_idx, ds.read_amat, ds.read_frey):
            with pytest.raises(DataError, match="corrupt or truncated gzip") as exc:
                reader(path)
            assert str(path) in str(exc.value)
    with pytest.raises(DataError, match="cannot read the file"):
        ds.read_idx(tmp_path / "absent")


VALID_AMAT = amat_bytes(np.random.default_rng(1).integers(0, 2, (3, 784)))


@settings(max_examples=60, deadline=5000)
@given(data=st.binary(max_size=400), cut=st.integers(0, len(VALID_AMAT)), flip=st.integers(0, len(VALID_AMAT) - 1),
       wrap=st.sampled_from(["plain", "gzip", "gzip-magic"]))
def test_random_and_truncated_bytes_give_array_or_data_error(tmp_path_factory, data, cut, flip, wrap):
    valid_idx = idx_bytes(np.arange(60).reshape(3, 4, 5))
    blobs = [data, valid_idx[:cut], valid_idx[:4] + data, VALID_AMAT[:cut],
             VALID_AMAT[:flip] + bytes([VALID_AMAT[flip] ^ 0x01]) + VALID_AMAT[flip + 1:]]
    path = tmp_path_factory.getbasetemp() / "fuzzed"
    for blob in blobs:
        if wrap == "gzip":
            blob = gzip.compress(blob)
        elif wrap == "gzip-magic":
            blob = b"\x1f\x8b" + blob
        path.write_bytes(blob)
        for reader in (ds.read_idx, ds.read_amat):
            try:
                out = reader(path)
            except DataError as exc:
                assert str(path) in str(exc), f"ours {exc} vs expected the path {path} in it"
                continue
            assert out.dtype == np.uint8, f"ours {out.dtype} vs expected uint8"
            if reader is ds.read_amat:
                same((out.ndim, out.shape[1], bool(np.all(out <= 1))), (2, 784, True))
    if cut == len(valid_idx) and wrap != "gzip-magic":
        path.write_bytes(valid_idx[:cut] if wrap == "plain" else gzip.compress(valid_idx[:cut]))
        np.testing.assert_array_equal(ds.read_idx(path), np.arange(60).reshape(3, 4, 5))


# ---- .amat -----------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
def test_amat_round_trip(tmp_path, compress):
    rows = np.random.default_rng(0).integers(0, 2, size=(5, 784))
    path = tmp_path / "b.amat"
    path.write_bytes(gzip.compress(amat_bytes(rows)) if compress else amat_bytes(rows))
    out = ds.read_amat(path)
    same((out.shape, out.dtype), ((5, 784), np.uint8))
    np.testing.assert_array_equal(out, rows)


def test_amat_refusals_name_path_and_line(tmp_path):
    rows = np.zeros((4, 784), dtype=int)
    text = amat_bytes(rows).decode()
    lines = text.splitlines(keepends=True)
    cases = {
        "line 3 has the value b'2'": "".join(lines[:2] + [lines[2].replace("0", "2", 1)] + lines[3:]),
        "line 2 has 783 values": "".join(lines[:1] + [lines[1][2:]] + lines[2:]),
        "line 4 has 785 values": "".join(lines[:3] + ["0 " + lines[3]]),
        "line 1 has the value b'0\\\\r'": text.replace("\n", "\r\n"),
        "line 4 does not end with a newline": text[:-1],
        "line 1 has 785 values": text.replace("\n", " \n", 2),
        "the file is empty": "",
    }
    for match, content in cases.items():
        path = tmp_path / "c.amat"
        path.write_text(content, newline="")
        with pytest.raises(DataError, match=match) as exc:
            ds.read_amat(path)
        assert str(exc.value).startswith(f"{path}: "), f"ours {exc.value} vs expected to start with the path"


# ---- Frey Face (.mat, needs scipy) ---------------------------------------------------------------

def test_read_frey_small_files(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    ff = np.random.default_rng(0).integers(0, 256, (560, 3)).astype(np.uint8)
    scipy_io.savemat(tmp_path / "f.mat", {"ff": ff})
    out = ds.read_frey(tmp_path / "f.mat")
    same((out.shape, out.dtype), ((3, 560), np.uint8))
    np.testing.assert_array_equal(out[1].reshape(28, 20), ff[:, 1].reshape(28, 20))
    (tmp_path / "f.mat.gz").write_bytes(gzip.compress((tmp_path / "f.mat").read_bytes()))
    np.testing.assert_array_equal(ds.read_frey(tmp_path / "f.mat.gz"), out)
    for variables, match in (({"gg": ff}, "matrix 'ff'"), ({"ff": ff[:500]}, r"uint8 \(500, 3\), expected uint8 \(560")):
        scipy_io.savemat(tmp_path / "bad.mat", variables)
        with pytest.raises(DataError, match=match):
            ds.read_frey(tmp_path / "bad.mat")
    (tmp_path / "junk.mat").write_bytes(b"MATLAB 5.0 but not really" * 10)
    with pytest.raises(DataError, match="junk.mat: not a MATLAB file"):
        ds.read_frey(tmp_path / "junk.mat")


def test_read_frey_without_scipy(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.io", None)      # makes `from scipy.io import loadmat` fail
    (tmp_path / "f.mat").write_bytes(b"x")
    with pytest.raises(DataError, match=r"needs scipy: pip install numpyvae\[frey\]"):
        ds.read_frey(tmp_path / "f.mat")


# ---- where files are looked for -------------------------------------------------------------------

def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NUMPYVAE_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    same(ds.cache_dir(), tmp_path / "home" / ".cache" / "numpyvae")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    same(ds.cache_dir(), tmp_path / "xdg" / "numpyvae")
    monkeypatch.setenv("NUMPYVAE_CACHE", str(tmp_path / "mine"))
    same(ds.cache_dir(), tmp_path / "mine")


def test_find_file_lookup_order(isolated, monkeypatch):
    tmp = isolated
    name, fname = "fashion-mnist", "t10k-labels-idx1-ubyte"
    monkeypatch.setattr(registry, "SYSTEM_FOLDERS", {name: (str(tmp / "system"),)})
    same(ds.find_file(name, fname, tmp / "folder"), None)
    placed = [tmp / "system" / (fname + ".gz"),                       # system folder, directly in the root
              tmp / "cache" / "fashion-mnist" / fname,                # the cache, in the download sub-folder
              tmp / "env" / "fashion_mnist" / (fname + ".gz"),        # $NUMPYVAE_DATA, other spelling
              tmp / "folder" / fname]                                 # the folder argument
    monkeypatch.setenv("NUMPYVAE_DATA", str(tmp / "env"))
    for path in placed:                # each new location takes precedence over the ones before it
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        same(ds.find_file(name, fname, tmp / "folder"), path)
    (tmp / "folder" / "fashion-mnist").mkdir()
    (tmp / "folder" / "fashion-mnist" / fname).write_bytes(b"")     # the sub-folder before the root itself
    same(ds.find_file(name, fname, tmp / "folder"), tmp / "folder" / "fashion-mnist" / fname)
    with pytest.raises(InputError, match="name"):
        ds.find_file("digits", "digits.csv.gz")


def test_missing_files_without_download_say_where_they_looked(isolated):
    (isolated / "nothing").mkdir()
    with pytest.raises(DataError) as exc:
        ds.load("binarized-mnist", isolated / "nothing", download=False)
    message = str(exc.value)
    for where in ("nothing/binarized_mnist", "nothing\n", "cache/binarized_mnist", "download=False"):
        assert where in message, f"ours {message!r} vs expected it to mention {where!r}"


def test_checksum_and_size_refusals_wherever_found(isolated, monkeypatch):
    folder = isolated / "data" / "binarized_mnist"
    folder.mkdir(parents=True)
    wrong = amat_bytes(np.zeros((2, 784), int))
    for split in ("train", "valid", "test"):
        (folder / f"binarized_mnist_{split}.amat.gz").write_bytes(gzip.compress(wrong))
    monkeypatch.setenv("NUMPYVAE_DATA", str(isolated / "data"))
    train = folder / "binarized_mnist_train.amat.gz"
    with pytest.raises(DataError) as exc:                                # the real registry: too short
        ds.load("binarized-mnist", download=False)
    same(str(exc.value), f"{train}: 3,136 bytes once uncompressed, expected 78,400,000 — the file is truncated "
                         "or not the binarized-mnist file; delete it and retry")
    spec = fake_spec("binarized-mnist", 0, amat_bytes(np.ones((2, 784), int)), monkeypatch)   # right size, other content
    with pytest.raises(DataError) as exc:
        ds.load("binarized-mnist", download=False)
    got = hashlib.sha256(wrong).hexdigest()                               # of the content, not the .gz
    same(str(exc.value), f"{train}: sha256 mismatch, expected {spec.sha256}, got {got} "
                         "— the file is corrupt or not the binarized-mnist file; delete it and retry")


def test_verify_streams_plain_and_gzip_alike(tmp_path):
    content = idx_bytes(np.arange(100))
    spec = ds.FileSpec("f", "f.gz", sha256(content), len(content))
    (tmp_path / "f").write_bytes(content)
    (tmp_path / "f.gz").write_bytes(gzip.compress(content))
    for path in (tmp_path / "f", tmp_path / "f.gz"):
        ds.verify(path, spec, "mnist")
    (tmp_path / "f").write_bytes(content[:-1] + b"\x07")
    with pytest.raises(DataError, match=f"{tmp_path / 'f'}: sha256 mismatch, expected {spec.sha256}"):
        ds.verify(tmp_path / "f", spec, "mnist")
    for blob, match in ((content[:-1], "107 bytes once uncompressed, expected 108 — the file is truncated"),
                        (content + b"\x00", "more than the 108 bytes expected once uncompressed — the file is corrupt")):
        (tmp_path / "f.gz").write_bytes(gzip.compress(blob))
        with pytest.raises(DataError, match=f"{tmp_path / 'f.gz'}: {match} or not the mnist file; delete it"):
            ds.verify(tmp_path / "f.gz", spec, "mnist")


def test_load_mnist_layout_from_small_fake_files(isolated, monkeypatch):
    files, (x_tr, y_tr, x_te, y_te) = fake_mnist(monkeypatch, n_train=12, n_test=5)
    folder = isolated / "data" / "mnist"
    folder.mkdir(parents=True)
    for remote, blob in files.items():
        (folder / remote).write_bytes(blob)
    d = ds.load("mnist", isolated / "data", n_valid=4, dtype=np.float64, download=False)
    same((d.x_train.shape, d.x_valid.shape, d.x_test.shape, d.x_train.dtype), ((8, 784), (4, 784), (5, 784), np.float64))
    np.testing.assert_array_equal(d.x_valid, x_tr[8:].reshape(4, 784) / 255)    # the LAST n_valid of train
    np.testing.assert_array_equal(d.y_train, y_tr[:8])
    same((d.y_test.dtype, d.source, d.image_shape), (np.int64, str(folder), (28, 28)))
    d0 = ds.load("mnist", isolated / "data", download=False)
    same((d0.x_train.shape, d0.x_valid.shape, d0.y_valid.shape), ((12, 784), (0, 784), (0,)))
    with pytest.raises(InputError, match="n_valid: expected at most 11"):
        ds.load("mnist", isolated / "data", n_valid=12, download=False)


# ---- binarize ------------------------------------------------------------------------------------

def test_binarize_modes():
    x = np.full((2000, 4), 0.25, dtype=np.float32)
    assert ds.binarize(x) is x
    out = ds.binarize(x, "threshold")
    same((out.dtype, float(out.sum())), (np.float32, 0.0))
    same(float(ds.binarize(x, "threshold", threshold=0.2).mean()), 1.0)
    a = ds.binarize(x, "dynamic", np.random.default_rng(0))
    same((a.dtype, a.shape, set(np.unique(a).tolist())), (np.float32, x.shape, {0.0, 1.0}))
    assert abs(a.mean() - 0.25) < 0.02, f"ours {a.mean()} vs expected 0.25"
    np.testing.assert_array_equal(a, ds.binarize(x, "dynamic", np.random.default_rng(0)))
    ends = np.array([0.0, 1.0] * 500)
    np.testing.assert_array_equal(ds.binarize(ends, "dynamic", np.random.default_rng(1)), ends)


@pytest.mark.parametrize("x, kwargs, match", [
    (np.full(3, 0.5), dict(mode="dynamic"), "rng: expected a numpy.random.Generator"),
    (np.full(3, 0.5), dict(mode="dynamic", rng=np.random.RandomState(0)), "rng"),
    (np.full(3, 1.5), dict(mode="threshold"), "x: expected values <= 1.0"),
    (np.full(3, -0.1), dict(mode="none"), "x: expected values >= 0.0"),
    (np.array([0.5, np.nan]), dict(mode="none"), "x: expected finite values"),
    (np.full(3, 0.5), dict(mode="otsu"), "mode: expected one of"),
])
def test_binarize_refusals(x, kwargs, match):
    with pytest.raises(InputError, match=match):
        ds.binarize(x, **kwargs)


# ---- the real files (one load per dataset) --------------------------------------------------------

@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """load(name) from the real data folder, once per dataset, never downloading."""
    folder = real_data_dir()
    if folder is None:
        pytest.skip(SKIP_REAL)
    loaded = {}

    def get(name):
        if name not in loaded:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("NUMPYVAE_CACHE", str(tmp_path_factory.mktemp("empty-cache")))
                mp.delenv("NUMPYVAE_DATA", raising=False)
                loaded[name] = ds.load(name, folder, download=False)
        return loaded[name]
    return get


def test_real_mnist(real):
    d = real("mnist")
    same((d.x_train.shape, d.x_valid.shape, d.x_test.shape), ((60000, 784), (0, 784), (10000, 784)))
    same((sorted(set(d.y_train.tolist())), d.y_test.dtype), (list(range(10)), np.int64))
    same((float(d.x_train.min()), float(d.x_train.max()), d.x_train.dtype), (0.0, 1.0, np.float32))
    same(np.bincount(d.y_test).tolist(), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    same(d.class_names, [str(k) for k in range(10)])


def test_real_binarized_mnist(real):
    d = real("binarized-mnist")
    same((d.x_train.shape, d.x_valid.shape, d.x_test.shape), ((50000, 784), (10000, 784), (10000, 784)))
    same((d.y_train, d.y_test, d.class_names), (None, None, None))
    for x in (d.x_train, d.x_valid, d.x_test):
        same(set(np.unique(x).tolist()), {0.0, 1.0})


def test_real_frey_face(real):
    d = real("frey-face")
    same((d.x_train.shape, d.x_valid.shape, d.x_test.shape, d.image_shape), ((1565, 560), (200, 560), (200, 560), (28, 20)))
    faces = np.concatenate([d.x_train, d.x_valid, d.x_test])
    same(len(np.unique(faces, axis=0)) > 1900, True)                    # the split is a permutation of the faces
    same((float(faces.min()) >= 0, float(faces.max()) <= 1, d.y_train), (True, True, None))


def test_real_frey_image_orientation():
    folder = real_data_dir()
    if folder is None:
        pytest.skip(SKIP_REAL)
    from scipy.io import loadmat
    ff = loadmat(folder / "frey_face" / "frey_rawface.mat")["ff"]
    x = ds.read_frey(folder / "frey_face" / "frey_rawface.mat")
    same(x.shape, (1965, 560))
    np.testing.assert_array_equal(x[7].reshape(28, 20), ff[:, 7].reshape(28, 20))


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    if not FASHION_SYSTEM.is_dir():
        pytest.skip("Fashion-MNIST not installed: apt-get install -y dataset-fashion-mnist")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUMPYVAE_CACHE", str(tmp_path_factory.mktemp("empty-cache")))
        mp.delenv("NUMPYVAE_DATA", raising=False)
        return ds.load("fashion-mnist", download=False)


def test_real_fashion_mnist_from_the_system_folder(fashion):
    same(fashion.source, str(FASHION_SYSTEM))
    same((fashion.x_train.shape, fashion.x_test.shape), ((60000, 784), (10000, 784)))
    same(np.bincount(fashion.y_train).tolist(), [6000] * 10)
    same((fashion.class_names[0], fashion.class_names[9], len(fashion.class_names)), ("T-shirt/top", "Ankle boot", 10))


def test_fashion_checksums_match_the_readme_and_plain_copies_verify(tmp_path):
    if not FASHION_SYSTEM.is_dir():
        pytest.skip("Fashion-MNIST not installed: apt-get install -y dataset-fashion-mnist")
    readme_gz_sha256 = {"t10k-labels-idx1-ubyte": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
                        "train-labels-idx1-ubyte": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"}
    specs = {s.filename: s for s in registry.FILES["fashion-mnist"]}
    for fname, gz_sha in readme_gz_sha256.items():
        blob = (FASHION_SYSTEM / (fname + ".gz")).read_bytes()
        same(sha256(blob), gz_sha)
        plain = tmp_path / fname                                       # an uncompressed copy verifies too
        plain.write_bytes(gzip.decompress(blob))
        ds.verify(plain, specs[fname], "fashion-mnist")
