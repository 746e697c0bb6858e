"""numpyvae.data under attack: every bad file, server, folder or argument ends in DataError or InputError.

The rule checked everywhere: the outcome is either a correct result or one
of the package's own exceptions whose message names the file, URL, folder
or argument -- never another exception, never a hang, never unbounded memory.
Each test counts what it tried in OUTCOMES; run with ``-s`` to see the tally.
"""
import collections
import errno
import gzip
import os
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from datasets_helpers import (amat_bytes, fake_mnist, fake_spec, files_under, idx_bytes, isolated,  # noqa: F401
                              serve_fake_mnist, server)
from numpyvae import DataError, InputError
from numpyvae import data
from numpyvae.data import content, download, parsers, registry

OUTCOMES = collections.Counter()      # (test, outcome) -> count


def examples(n):
    """n hypothesis examples, or more under a larger profile (NUMPYVAE_HYPOTHESIS=stress: 400)."""
    return max(n, settings().max_examples)


@pytest.fixture(scope="module", autouse=True)
def tally():
    yield
    print("\nnumpyvae.data adversarial outcomes:")
    for (test, outcome), count in sorted(OUTCOMES.items()):
        print(f"  {test:42s} {outcome:12s} {count}")


def outcome(test, call, names):
    """Run ``call``; return "ok" or the package error's class name, counting it under ``test``.

    A DataError/InputError must name one of ``names`` (a file, URL or argument);
    any other exception propagates and fails the test.
    """
    try:
        result = call()
    except (DataError, InputError) as exc:
        assert any(str(n) in str(exc) for n in names), f"ours {exc!r} vs expected it to name one of {names}"
        kind = type(exc).__name__
    else:
        kind = "ok"
        assert result is not None, f"ours None from {call} vs expected a result"
    OUTCOMES[test, kind] += 1
    return kind


def peak_memory(call):
    """(result or exception, peak bytes allocated by Python while running ``call``) via tracemalloc."""
    tracemalloc.start()
    try:
        try:
            result = call()
        except (DataError, InputError) as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---- decompression bombs and lying headers: memory stays bounded ------------------------------------

def zeros_gzip(n_mib):
    """One gzip member of n_mib MiB of zeros (about 1 KiB of gzip per MiB)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    return b"".join(z.compress(block) for _ in range(n_mib)) + z.flush()


@pytest.fixture(scope="module")
def bomb():
    """About 2 MB of gzip that inflates to 2 GiB of zeros (32 identical members of 64 MiB)."""
    return zeros_gzip(64) * 32


CLAIM = 2 << 30      # what the bomb inflates to


def test_gzip_bomb_in_place_of_mnist_is_refused_with_bounded_memory(isolated, bomb):
    folder = isolated / "data" / "mnist"
    folder.mkdir(parents=True)
    target = folder / "train-images-idx3-ubyte.gz"
    target.write_bytes(bomb)
    for spec in registry.FILES["mnist"][1:]:
        (folder / spec.filename).write_bytes(b"")          # present (read after the train images)
    spec = registry.FILES["mnist"][0]
    result, peak = peak_memory(lambda: data.load("mnist", isolated / "data", download=False))
    assert isinstance(result, DataError), f"ours {result!r} vs expected a DataError"
    assert str(result).startswith(f"{target}: more than the 47,040,016 bytes expected"), f"ours {result}"
    print(f"bomb of {len(bomb):,} bytes claiming {CLAIM:,}: peak {peak:,} bytes (the file's size is {spec.size:,})")
    assert peak < spec.size + (8 << 20), f"ours {peak:,} bytes vs expected below {spec.size + (8 << 20):,}"
    OUTCOMES["bomb", "DataError"] += 1


@pytest.mark.parametrize("reader", ["verify", "read_amat", "read_idx", "read_frey"])
def test_gzip_bomb_through_every_reader_stays_small(tmp_path, bomb, reader):
    path = tmp_path / "bomb.gz"
    path.write_bytes(zeros_gzip(1) + bomb if reader == "read_idx" else bomb)
    small = registry.FileSpec("f", "f", "0" * 64, 1 << 20)
    call = {"verify": lambda: content.verify(path, small, "test"),
            "read_amat": lambda: parsers.read_amat(path, max_bytes=4 << 20),
            "read_idx": lambda: parsers.read_idx(path),          # zeros: type code 0x00, refused at byte 3
            "read_frey": lambda: parsers.read_frey(path, max_bytes=4 << 20)}[reader]
    result, peak = peak_memory(call)
    assert isinstance(result, DataError) and str(path) in str(result), f"ours {result!r} vs expected a DataError"
    assert peak < 16 << 20, f"ours {peak:,} bytes of peak memory vs expected below 16 MiB (the bomb claims {CLAIM:,})"
    OUTCOMES["bomb", "DataError"] += 1


def test_idx_header_with_valid_dimensions_then_a_bomb(tmp_path, bomb):
    """A correct MNIST header followed by 2 GiB of zeros: read the declared bytes, then refuse the rest."""
    header = struct.pack(">BBBBIII", 0, 0, 8, 3, 100, 28, 28)
    path = tmp_path / "lying.gz"
    path.write_bytes(gzip.compress(header) + bomb)
    result, peak = peak_memory(lambda: parsers.read_idx(path))
    assert isinstance(result, DataError), f"ours {result!r} vs expected a DataError"
    assert "has trailing bytes: dimensions (100, 28, 28) need 78,416 bytes" in str(result), f"ours {result}"
    assert peak < 8 << 20, f"ours {peak:,} vs expected below 8 MiB"


@pytest.mark.parametrize("dims", [(2**32 - 1,) * 4, (60000, 280, 280), (2**31, 2)])
def test_idx_header_claims_are_refused_before_allocating(tmp_path, dims):
    path = tmp_path / "claims"
    path.write_bytes(struct.pack(f">BBBB{len(dims)}I", 0, 0, 8, len(dims), *dims) + bytes(100))
    result, peak = peak_memory(lambda: parsers.read_idx(path))
    assert isinstance(result, DataError) and "more than max_bytes=134,217,728" in str(result), f"ours {result!r}"
    assert peak < 1 << 20, f"ours {peak:,} vs expected below 1 MiB"
    OUTCOMES["lying header", "DataError"] += 1


def test_frey_mat_header_claiming_a_huge_matrix(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    ff = np.arange(560 * 3, dtype=np.uint8).reshape(560, 3)
    scipy_io.savemat(tmp_path / "f.mat", {"ff": ff})
    raw = (tmp_path / "f.mat").read_bytes()
    dims = struct.pack("<ii", 560, 3)                     # the miINT32 dimensions sub-element of 'ff'
    assert raw.count(dims) == 1, "the test's .mat layout changed"
    for n in (10**9, 2**31 - 1, -5, 0):
        path = tmp_path / f"claims-{n}.mat"
        path.write_bytes(raw.replace(dims, struct.pack("<ii", 560, n)))
        result, peak = peak_memory(lambda: parsers.read_frey(path))
        assert isinstance(result, DataError) and str(path) in str(result), f"ours {result!r} vs expected a DataError"
        assert peak < 4 << 20, f"n={n}: ours {peak:,} vs expected below 4 MiB"
        OUTCOMES["lying header", "DataError"] += 1


def test_sparse_giant_file_named_like_mnist(isolated):
    """A plain 8 GiB (sparse) file where MNIST's t10k labels should be: refused after spec.size + 1 bytes."""
    folder = isolated / "data" / "mnist"
    folder.mkdir(parents=True)
    path = folder / "t10k-labels-idx1-ubyte"
    with open(path, "wb") as f:
        f.truncate(8 << 30)
    spec = registry.FILES["mnist"][3]
    result, peak = peak_memory(lambda: content.read_verified(path, spec, "mnist"))
    assert isinstance(result, DataError) and "more than the 10,008 bytes expected" in str(result), f"ours {result!r}"
    assert peak < 4 << 20, f"ours {peak:,} vs expected below 4 MiB"


# ---- byte-level corruption of every format: array or DataError ------------------------------------

def mutate(blob, how, at, value, length):
    """One byte-level corruption of ``blob``."""
    at = at % (len(blob) + 1)
    if how == "flip":
        return blob[:at] + bytes([(blob[at] if at < len(blob) else 0) ^ (value or 1)]) + blob[at + 1:]
    if how == "truncate":
        return blob[:at]
    if how == "insert":
        return blob[:at] + bytes([value]) * length + blob[at:]
    if how == "delete":
        return blob[:at] + blob[at + length:]
    if how == "overwrite":
        return blob[:at] + bytes([value]) * length + blob[at + length:]
    return blob + bytes([value]) * length                 # append


def valid_files():
    """Small valid examples of each format: (kind, content)."""
    rng = np.random.default_rng(0)
    out = [("idx", idx_bytes(rng.integers(0, 256, (3, 28, 28)))), ("idx", idx_bytes(rng.integers(0, 10, 3))),
           ("amat", amat_bytes(rng.integers(0, 2, (2, 784))))]
    try:
        import io

        from scipy.io import savemat
        buf = io.BytesIO()
        savemat(buf, {"ff": rng.integers(0, 256, (560, 2)).astype(np.uint8)})
        out.append(("frey", buf.getvalue()))
    except ImportError:
        pass
    return out


VALID = valid_files()
READERS = {"idx": parsers.read_idx, "amat": parsers.read_amat, "frey": parsers.read_frey}
MUTATIONS = st.tuples(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite", "append"]),
                      st.integers(0, 10**6), st.integers(0, 255), st.integers(1, 40))


@settings(max_examples=examples(60))
@given(which=st.integers(0, len(VALID) - 1), mutations=st.lists(MUTATIONS, min_size=1, max_size=3),
       wrap=st.sampled_from(["plain", "gzip", "gzip-then-corrupt", "gzip-magic"]))
def test_corrupted_files_give_an_array_or_a_data_error(tmp_path_factory, which, mutations, wrap):
    kind, blob = VALID[which]
    for how, at, value, length in (mutations if wrap != "gzip-then-corrupt" else ()):
        blob = mutate(blob, how, at, value, length)
    if wrap.startswith("gzip"):
        blob = gzip.compress(blob, mtime=0)
    if wrap == "gzip-then-corrupt":                      # corrupt the compressed stream itself
        for how, at, value, length in mutations:
            blob = mutate(blob, how, at, value, length)
    elif wrap == "gzip-magic":
        blob = b"\x1f\x8b" + blob
    path = tmp_path_factory.mktemp("corrupt") / f"file.{kind}"
    path.write_bytes(blob)
    for reader_kind, reader in READERS.items():          # every reader meets every kind of file
        if reader_kind == "frey" and not any(k == "frey" for k, _ in VALID):
            continue
        got = {}

        def call():
            got["x"] = reader(path)
            return got["x"]

        if outcome(f"corrupt {kind} -> {reader_kind}", call, [path]) == "ok":
            x = got["x"]
            assert x.dtype == np.uint8, f"ours {x.dtype} vs expected uint8"
            if reader_kind == "amat":
                assert x.ndim == 2 and x.shape[1] == 784 and x.max(initial=0) <= 1, f"ours {x.shape}, max {x.max()}"
            if reader_kind == "frey":
                assert x.ndim == 2 and x.shape[1] == 560 and len(x) >= 1, f"ours {x.shape} vs expected (n, 560)"


@settings(max_examples=examples(40))
@given(index=st.integers(0, 3), mutation=MUTATIONS, register=st.booleans())
def test_corrupted_mnist_through_load(tmp_path_factory, index, mutation, register):
    """One corrupted file of a tiny MNIST. register=False: the checksum must catch it; True: the registry
    is made to agree with the corrupted file, so the parsers and the consistency checks must."""
    root = tmp_path_factory.mktemp("load")
    folder = root / "mnist"
    folder.mkdir()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("NUMPYVAE_DATA", raising=False)
        monkeypatch.setenv("NUMPYVAE_CACHE", str(root / "cache"))
        monkeypatch.setattr(registry, "SYSTEM_FOLDERS", {})
        files, _ = fake_mnist(monkeypatch, n_train=4, n_test=3)
        changed = False
        for i, (remote, blob) in enumerate(files.items()):
            plain = gzip.decompress(blob)
            if i == index:
                original, plain = plain, mutate(plain, *mutation)
                changed = plain != original
                if register:
                    fake_spec("mnist", i, plain, monkeypatch)
            (folder / remote).write_bytes(gzip.compress(plain))
        loaded = {}

        def call():
            loaded["d"] = data.load("mnist", root, download=False)
            return loaded["d"]

        if outcome(f"corrupt mnist via load (registered {register})", call, [folder]) == "ok":
            d = loaded["d"]
            assert register or not changed, f"ours: a changed file passed the checks ({mutation}) vs expected a DataError"
            assert d.x_train.shape[1] == 784 and len(d.y_train) == len(d.x_train), f"ours {d.x_train.shape}, {d.y_train.shape}"
            assert 0 <= d.x_train.min() and d.x_train.max() <= 1 and d.y_train.max() <= 9, "values out of range"


# ---- bad arguments -------------------------------------------------------------------------------

WEIRD = [None, True, False, 0, 1, -1, 10**30, 2.5, float("nan"), float("inf"), "", "mnist ", "DIGITS", b"digits",
         ["digits"], ("digits",), {"digits": 1}, np.array(["digits"]), np.float32(1), np.int64(3), object(),
         np.random.default_rng(0), "float16", np.int8, "garbage dtype", {"names": ["a"]}, slice(1), Ellipsis]


@settings(max_examples=examples(120))
@given(argument=st.sampled_from(["name", "folder", "n_valid", "dtype", "download", "progress", "seed"]),
       value=st.sampled_from(WEIRD) | st.integers() | st.floats() | st.text(max_size=8) | st.binary(max_size=8))
def test_load_with_weird_arguments(argument, value):
    kwargs = {"name": "digits", argument: value}
    name = kwargs.pop("name")
    kind = outcome("load argument", lambda: data.load(name, **kwargs), [argument])
    if kind == "ok":          # accepted: the value must really be a valid one
        ok = {"name": lambda v: v == "digits", "folder": lambda v: v is None or os.path.isdir(v),
              "n_valid": lambda v: v is None or (0 <= v < 1397 and not isinstance(v, bool)),
              "dtype": lambda v: np.dtype(v) in (np.float32, np.float64),
              "download": lambda v: isinstance(v, (bool, np.bool_)), "progress": lambda v: v in (None, True, False),
              "seed": lambda v: not isinstance(v, bool) and v >= 0}[argument]
        assert ok(value), f"ours: accepted {argument}={value!r} vs expected an InputError"


@pytest.mark.parametrize("kwargs, match", [
    (dict(folder=123), "folder: expected a path .* got int"),
    (dict(folder=b"/tmp"), "folder: expected a path .* got bytes"),
    (dict(folder="/nonexistent/numpyvae"), "folder: expected an existing folder, got '/nonexistent/numpyvae' "
                                           r"\(no such folder\)"),
    (dict(folder="a\0b"), "folder: expected an existing folder"),
    (dict(download="no"), "download: expected True or False, got 'no'"),
    (dict(progress=1), "progress: expected True, False or None, got 1"),
    (dict(seed=True), "seed: expected an integer >= 0"),
    (dict(dtype="float16"), "dtype: expected float32 or float64"),
    (dict(n_valid=np.nan), "n_valid: expected an integer >= 0"),
])
def test_load_argument_messages(kwargs, match):
    with pytest.raises(InputError, match=match):
        data.load("digits", **kwargs)
    with pytest.raises(InputError, match="name: expected one of"):
        data.load(["mnist"])


def test_load_folder_that_is_a_file(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(InputError, match=r"folder: expected an existing folder, got '.*/f' \(a file\)"):
        data.load("mnist", tmp_path / "f")


@pytest.mark.parametrize("path", [0, 1, True, None, 3.5, b"/etc/passwd", ["a"]])
def test_readers_refuse_paths_that_are_not_paths(path):
    """An int would be opened as a file descriptor (0 is stdin): refused before anything is read."""
    for reader in (parsers.read_idx, parsers.read_amat, parsers.read_frey):
        with pytest.raises(InputError, match="path: expected a file path"):
            reader(path)
        OUTCOMES["reader path", "InputError"] += 1


@pytest.mark.parametrize("max_bytes", [-1, 2.5, None, True, "10"])
def test_readers_refuse_bad_max_bytes(tmp_path, max_bytes):
    (tmp_path / "f").write_bytes(idx_bytes(np.zeros(3)))
    for reader in (parsers.read_idx, parsers.read_amat, parsers.read_frey):
        with pytest.raises(InputError, match="max_bytes: expected an integer >= 0"):
            reader(tmp_path / "f", max_bytes=max_bytes)


@pytest.mark.parametrize("where", ["folder", "fifo", "dangling link", "link to /dev/zero"])
def test_things_that_are_not_regular_files_are_passed_over(isolated, where):
    folder = isolated / "data" / "mnist"
    folder.mkdir(parents=True)
    path = folder / "train-images-idx3-ubyte"
    {"folder": lambda: path.mkdir(), "fifo": lambda: os.mkfifo(path),
     "dangling link": lambda: path.symlink_to(isolated / "absent"),
     "link to /dev/zero": lambda: path.symlink_to("/dev/zero")}[where]()
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz\\) not found"):
        data.load("mnist", isolated / "data", download=False)


# ---- environment variables ----------------------------------------------------------------------------

@pytest.mark.parametrize("mirror", ["ftp://example.org/", "not a url", "file:///etc", "127.0.0.1:8000"])
def test_a_mirror_that_is_not_an_http_url(isolated, monkeypatch, mirror):
    monkeypatch.setenv("NUMPYVAE_MIRROR", mirror)
    with pytest.raises(InputError, match=f"NUMPYVAE_MIRROR: expected a base URL starting with http:// or https://"):
        data.load("mnist", progress=False)


@pytest.mark.parametrize("mirror", ["http://[::1", "http://127.0.0.1:0", "http://", "http://127.0.0.1:99999"])
def test_a_mirror_url_that_cannot_work(isolated, monkeypatch, mirror):
    monkeypatch.setenv("NUMPYVAE_MIRROR", mirror)
    with pytest.raises(DataError, match="download failed") as exc:
        data.load("frey-face", progress=False)
    assert mirror.rstrip("/") in str(exc.value), f"ours {exc.value} vs expected the URL in it"
    OUTCOMES["bad mirror URL", "DataError"] += 1


def test_cache_that_is_a_file(isolated, monkeypatch):
    cache = isolated / "cache-file"
    cache.write_bytes(b"not a folder")
    monkeypatch.setenv("NUMPYVAE_CACHE", str(cache))
    with pytest.raises(DataError) as exc:
        data.load("mnist", progress=False)
    message = str(exc.value)
    for part in (f"{cache / 'mnist'}: cannot write the download there", "set NUMPYVAE_CACHE to a writable folder"):
        assert part in message, f"ours {message!r} vs expected {part!r} in it"


@pytest.mark.parametrize("failure", ["no permission", "read-only", "disk full", "rename"])
def test_cache_that_cannot_be_written(server, monkeypatch, isolated, failure):
    """Simulated (the tests may run as root, who may write anywhere): one clear DataError, nothing left."""
    serve_fake_mnist(server, monkeypatch)
    code = {"no permission": errno.EACCES, "read-only": errno.EROFS, "disk full": errno.ENOSPC,
            "rename": errno.EXDEV}[failure]

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    if failure in ("no permission", "read-only"):
        monkeypatch.setattr(download.tempfile, "mkstemp", fail)
    elif failure == "rename":
        monkeypatch.setattr(download.os, "replace", fail)
    else:
        real_fdopen = os.fdopen

        class Full:
            def __init__(self, f):
                self.f, self.name = f, f.name

            def write(self, piece):
                fail()

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

        monkeypatch.setattr(download.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(DataError) as exc:
        data.load("mnist", progress=False)
    message = str(exc.value)
    for part in (f"{isolated / 'cache' / 'mnist'}: cannot write the download there ({os.strerror(code)})",
                 "set NUMPYVAE_CACHE to a writable folder"):
        assert part in message, f"ours {message!r} vs expected {part!r} in it"
    assert "any of" not in message, f"ours {message!r}: a local failure should not try the other locations"
    assert files_under(isolated / "cache") == [], f"ours {files_under(isolated / 'cache')} vs expected nothing left"
    OUTCOMES["unwritable cache", "DataError"] += 1


# ---- servers that misbehave: bounded in time, nothing kept ----------------------------------------------

@pytest.mark.parametrize("mode, match", [
    ("drip-body", r"download too slow: \d+ bytes in [\d.]+ s, below the minimum of 10,000 bytes/s"),
    ("drip-headers", r"download failed \(no complete response within 0.3 s\)"),
    ("endless", r"more than the [\d,]+ bytes this file can have"),
    ("huge-length", r"the server announces 1,000,000,000,000 bytes, more than the [\d,]+"),
    ("garbage", r"download failed \("),
    ("redirect-loop", r"download failed \(HTTP Error 30\d"),
    ("error-500", r"download failed \(HTTP Error 500"),
    ("slow", r"download failed \("),
])
def test_misbehaving_server(server, monkeypatch, isolated, mode, match):
    serve_fake_mnist(server, monkeypatch)
    server.mode = mode
    monkeypatch.setattr(download, "TIMEOUT", 0.3)
    start = time.monotonic()
    with pytest.raises(DataError, match=match) as exc:
        data.load("mnist", progress=False)
    took = time.monotonic() - start
    assert f"{server.url}/mnist/train-images-idx3-ubyte.gz" in str(exc.value), f"ours {exc.value} vs expected the URL"
    assert took < 3, f"ours {took:.1f} s vs expected the download to give up within 3 s"
    assert files_under(isolated / "cache") == [], f"ours {files_under(isolated / 'cache')} vs expected nothing kept"
    OUTCOMES["misbehaving server", "DataError"] += 1


def test_served_bomb_is_refused_with_bounded_memory(server, monkeypatch, isolated, bomb):
    """A mirror serving 2 MB that inflates to 2 GiB: stored in a temporary file, refused by the streaming check."""
    serve_fake_mnist(server, monkeypatch)
    server.files["/mnist/train-labels-idx1-ubyte.gz"] = zeros_gzip(32)        # 32 KiB of gzip, 32 MiB of zeros
    result, peak = peak_memory(lambda: data.load("mnist", progress=False))
    assert isinstance(result, DataError), f"ours {result!r} vs expected a DataError"
    assert "train-labels-idx1-ubyte.gz: " in str(result), f"ours {result}"
    assert peak < 16 << 20, f"ours {peak:,} vs expected below 16 MiB"
    assert files_under(isolated / "cache" / "mnist") == ["train-images-idx3-ubyte.gz"], "only the verified file stays"


@settings(max_examples=examples(80))
@given(mode=st.sampled_from(["none", "threshold", "dynamic"]) | st.sampled_from(WEIRD),
       x=st.sampled_from([np.full((2, 3), 0.5), np.array([0.0, 1.0]), np.array([np.nan]), np.array([1.5]),
                          np.array(["a"]), [[0.5, 0.5], [0.5]], "x", None, np.zeros((0, 4)), np.float32(0.3)]),
       rng=st.sampled_from([None, np.random.default_rng(0), np.random.RandomState(0), 3]),
       threshold=st.sampled_from([0.5, 0.0, 1.0, -0.1, 1.5, float("nan"), "0.5", None, np.array([0.5, 0.5])]))
def test_binarize_with_weird_arguments(mode, x, rng, threshold):
    result = {}

    def call():
        result["b"] = data.binarize(x, mode, rng=rng, threshold=threshold)
        return result["b"]

    if outcome("binarize argument", call, ["mode", "x", "rng", "threshold"]) == "ok":
        b, xa = result["b"], np.asarray(x, dtype=float)
        assert b.shape == xa.shape and np.all((b == 0) | (b == 1) | (mode == "none")), f"ours {b!r} from {x!r}"


def test_data_env_pointing_at_a_file_or_nowhere(isolated, monkeypatch):
    for value in (str(isolated / "absent"), __file__, "relative/elsewhere"):
        monkeypatch.setenv("NUMPYVAE_DATA", value)
        with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz\) not found; looked in:") as exc:
            data.load("mnist", download=False)
        assert value in str(exc.value), f"ours {exc.value} vs expected it to list {value}"


def test_https_mirror_that_speaks_plain_http(server, monkeypatch, isolated):
    """The HTTPS path of the downloader: a TLS handshake with a plain HTTP server fails cleanly."""
    serve_fake_mnist(server, monkeypatch)
    monkeypatch.setenv("NUMPYVAE_MIRROR", server.url.replace("http://", "https://"))
    with pytest.raises(DataError, match=r"https://127.0.0.1:\d+/mnist/train-images-idx3-ubyte.gz: download failed"):
        data.load("mnist", progress=False)
    assert files_under(isolated / "cache") == [], "nothing kept"


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null", "a folder"])
def test_readers_refuse_what_is_not_a_regular_file(tmp_path, special):
    path = tmp_path if special == "a folder" else special
    for reader in (parsers.read_idx, parsers.read_amat, parsers.read_frey):
        with pytest.raises(DataError, match=f"{path}: not a regular file"):
            reader(path)
        OUTCOMES["special file", "DataError"] += 1
