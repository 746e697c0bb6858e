"""Datasets by name: the embedded 8x8 digits, MNIST, Fashion-MNIST, binarized MNIST, Frey Face.

    data = load("mnist")          # Dataset: x_train, x_valid, x_test in [0, 1], labels, image_shape

Where the files are looked for, in order: the ``folder`` argument, the
``NUMPYVAE_DATA`` environment variable, the per-user cache (``cache_dir()``),
and known system folders (Debian's ``/usr/share/datasets/fashion-mnist``).
Each root may hold the files directly or in the dataset's sub-folder
(``mnist/``, ``binarized_mnist/``, ``frey_face/``, ``fashion-mnist/``).
Where none has them, they are downloaded into the cache (download.py).
Every file is checked against its published sha256 before it is used.
"""
import gzip
import hashlib
import importlib.resources
import io
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError, InputError
from .validate import as_float_array, check_choice, check_dtype, check_rng

BINARIZE = ("none", "threshold", "dynamic")
NAMES = ("digits", "mnist", "fashion-mnist", "binarized-mnist", "frey-face")
SUBFOLDERS = {"mnist": ("mnist",), "fashion-mnist": ("fashion-mnist", "fashion_mnist"),
              "binarized-mnist": ("binarized_mnist", "binarized-mnist"), "frey-face": ("frey_face", "frey-face")}
SYSTEM_FOLDERS = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}

# filename -> (sha256, what it is computed on: "content" = the uncompressed bytes, "file" = the bytes as stored)
CHECKSUMS = {
    "train-images-idx3-ubyte": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", "content"),
    "train-labels-idx1-ubyte": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", "content"),
    "t10k-images-idx3-ubyte": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", "content"),
    "t10k-labels-idx1-ubyte": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", "content"),
    "fashion/train-images-idx3-ubyte.gz": ("b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7", "file"),
    "fashion/train-labels-idx1-ubyte.gz": ("0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056", "file"),
    "fashion/t10k-images-idx3-ubyte.gz": ("cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa", "file"),
    "fashion/t10k-labels-idx1-ubyte.gz": ("8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05", "file"),
    "binarized_mnist_train.amat": ("ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d", "content"),
    "binarized_mnist_valid.amat": ("1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2", "content"),
    "binarized_mnist_test.amat": ("e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c", "content"),
    "frey_rawface.mat": ("265a83a23adb081755cd3de375509828e690324d1d60f076b8ecebc840d59c64", "file"),
}
IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FILES = {"mnist": IDX, "fashion-mnist": IDX,
         "binarized-mnist": ("binarized_mnist_train.amat", "binarized_mnist_valid.amat", "binarized_mnist_test.amat"),
         "frey-face": ("frey_rawface.mat",)}
LICENSES = {
    "digits": "UCI Optical Recognition of Handwritten Digits (E. Alpaydin, C. Kaynak), CC BY 4.0",
    "mnist": "MNIST (Y. LeCun, C. Cortes), commonly given as CC BY-SA 3.0",
    "fashion-mnist": "Fashion-MNIST (Zalando Research), MIT license",
    "binarized-mnist": "binarized MNIST (H. Larochelle, I. Murray 2011), derived from MNIST",
    "frey-face": "Frey Face (B. Frey, distributed by S. Roweis), no explicit license: credit them",
}


@dataclass
class Dataset:
    """A dataset split three ways; x arrays are (n, h*w) in [0, 1], labels (n,) int64 or None."""

    name: str
    x_train: np.ndarray
    y_train: object
    x_valid: np.ndarray
    y_valid: object
    x_test: np.ndarray
    y_test: object
    image_shape: tuple
    source: str
    license: str

    @property
    def x_dim(self):
        return self.x_train.shape[1]


# ---- where files live --------------------------------------------------------------

def cache_dir():
    """$NUMPYVAE_CACHE, else $XDG_CACHE_HOME/numpyvae, else ~/.cache/numpyvae."""
    if os.environ.get("NUMPYVAE_CACHE"):
        return Path(os.environ["NUMPYVAE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "numpyvae"


def search_roots(name, folder=None):
    """The folders searched for dataset ``name``, in order."""
    roots = [Path(folder)] if folder is not None else []
    if os.environ.get("NUMPYVAE_DATA"):
        roots.append(Path(os.environ["NUMPYVAE_DATA"]))
    roots.append(cache_dir())
    roots += [Path(p) for p in SYSTEM_FOLDERS.get(name, ())]
    return roots


def find_file(name, filename, folder=None):
    """The path of ``filename`` (plain or .gz) of dataset ``name``, or None."""
    for root in search_roots(name, folder):
        for sub in ("", *SUBFOLDERS.get(name, ())):
            for candidate in (filename, filename + ".gz"):
                path = root / sub / candidate
                if path.is_file():
                    return path
    return None


# ---- reading and verifying ----------------------------------------------------------

def read_bytes(path):
    """The file's content, gunzipped when it starts with the gzip magic bytes 1f 8b."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None


def _checksum_key(name, filename):
    return ("fashion/" + filename + ".gz") if name == "fashion-mnist" else filename


def verify(path, name, filename, content=None):
    """Check the file's sha256 against the published one; DataError on a mismatch."""
    path = Path(path)
    expected, over = CHECKSUMS[_checksum_key(name, filename)]
    if over == "file":
        if name == "fashion-mnist" and not path.name.endswith(".gz"):
            return   # an uncompressed copy: only the IDX header and length can be checked (read_idx does)
        got = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        got = hashlib.sha256(read_bytes(path) if content is None else content).hexdigest()
    if got != expected:
        raise DataError(f"{path}: sha256 mismatch, expected {expected}, got {got} -- the file is corrupt "
                        f"or not the {name} file {filename}; delete it and retry")


def parse_idx(content, path="<bytes>"):
    """IDX bytes -> uint8 array.  Header: 0, 0, type 0x08, ndim, then ndim big-endian uint32 sizes."""
    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        raise DataError(f"{path}: not an IDX file (the magic number must start with two zero bytes)")
    if content[2] != 0x08:
        raise DataError(f"{path}: IDX type code 0x{content[2]:02x}, expected 0x08 (unsigned bytes)")
    ndim = content[3]
    if not 1 <= ndim <= 4:
        raise DataError(f"{path}: IDX with {ndim} dimensions, expected 1 to 4")
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(f"{path}: truncated IDX header ({len(content)} bytes, expected {header})")
    dims = tuple(int(d) for d in np.frombuffer(content, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(content) != expected:
        what = "truncated" if len(content) < expected else "has trailing bytes"
        raise DataError(f"{path}: IDX file {what}: dimensions {dims} need {expected} bytes, got {len(content)}")
    return np.frombuffer(content, np.uint8, offset=header).reshape(dims)


def read_idx(path):
    """Read a plain or gzip'd IDX file into a uint8 array, validating its header and length."""
    return parse_idx(read_bytes(path), path)


def parse_amat(content, path="<bytes>", width=784):
    """'0 1 0 ... 1\\n' lines of 0/1 values -> uint8 (n, width); checked vectorised."""
    line = 2 * width
    if len(content) == 0 or len(content) % line:
        raise DataError(f"{path}: expected lines of {width} values '0'/'1' separated by spaces "
                        f"({line} bytes each), got {len(content)} bytes")
    a = np.frombuffer(content, np.uint8).reshape(-1, width, 2)
    seps = a[:, :, 1]
    bad_sep = (seps[:, :-1] != ord(" ")).any(axis=1) | (seps[:, -1] != ord("\n"))
    bad_val = ((a[:, :, 0] != ord("0")) & (a[:, :, 0] != ord("1"))).any(axis=1)
    bad = np.flatnonzero(bad_sep | bad_val)
    if bad.size:
        raise DataError(f"{path}: line {bad[0] + 1} is not {width} values of 0 or 1 separated by spaces")
    return (a[:, :, 0] - ord("0")).astype(np.uint8)


def read_amat(path):
    """Read a plain or gzip'd .amat file of binarized MNIST into uint8 (n, 784)."""
    return parse_amat(read_bytes(path), path)


def read_frey(path):
    """frey_rawface.mat -> uint8 (1965, 560), one 28x20 face per row (needs scipy)."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataError("reading frey_rawface.mat needs scipy: pip install numpyvae[frey]") from None
    try:
        ff = loadmat(str(path))["ff"]
    except Exception as exc:  # scipy raises many types for a bad file
        raise DataError(f"{path}: not a readable MATLAB file with a matrix 'ff' ({type(exc).__name__}: {exc})") from None
    if ff.ndim != 2 or ff.shape[0] != 560:
        raise DataError(f"{path}: 'ff' has shape {ff.shape}, expected (560, n_faces)")
    return np.ascontiguousarray(ff.T.astype(np.uint8))


def load_digits():
    """The embedded 8x8 digits: x uint8 (1797, 64) with values 0..16, y int64 (1797,)."""
    raw = importlib.resources.files("numpyvae").joinpath("data/digits.csv.gz").read_bytes()
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.int64)
    if table.shape != (1797, 65) or table.min() < 0 or table[:, :64].max() > 16:
        raise DataError(f"numpyvae/data/digits.csv.gz: unexpected table of shape {table.shape}")
    return table[:, :64].astype(np.uint8), table[:, 64]


# ---- binarization -------------------------------------------------------------------

def binarize(x, mode="none", rng=None, threshold=0.5):
    """Make x (values in [0, 1]) binary, keeping its shape and float dtype.

    none      : x unchanged.
    threshold : 1 where x > threshold, else 0 (a fixed binarization).
    dynamic   : a fresh Bernoulli(x) draw from ``rng`` at every call; called
                once per minibatch, every epoch sees a new binarization
                (the scheme of Burda et al.'s IWAE experiments).
    """
    check_choice("mode", mode, BINARIZE)
    x = as_float_array("x", x, lo=0.0, hi=1.0)
    if mode == "none":
        return x
    if mode == "threshold":
        return (x > threshold).astype(x.dtype)
    return (check_rng("rng", rng).random(x.shape, dtype=x.dtype) < x).astype(x.dtype)


# ---- load by name ---------------------------------------------------------------------

def _split(x, y, n_valid, n_test, seed):
    perm = np.random.default_rng(seed).permutation(len(x))
    test, valid, train = perm[:n_test], perm[n_test:n_test + n_valid], perm[n_test + n_valid:]
    pick = (lambda idx: None if y is None else y[idx])
    return x[train], pick(train), x[valid], pick(valid), x[test], pick(test)


def _locate(name, folder, download, progress):
    paths = {}
    for filename in FILES[name]:
        path = find_file(name, filename, folder)
        if path is None and download:
            from .download import fetch
            path = fetch(name, filename, cache_dir(), progress=progress)
        if path is None:
            where = ", ".join(str(r) for r in search_roots(name, folder))
            raise DataError(f"{name}: {filename} not found in {where}, and download=False")
        paths[filename] = path
    return paths


def load(name, folder=None, *, n_valid=None, dtype=np.float32, download=True, progress=True, seed=0):
    """Load a dataset by name; see the module docstring for where files are looked for.

    Splits: mnist, fashion-mnist: the official 60,000 / 10,000, with the last
    ``n_valid`` (default 0) training images held out for validation.
    binarized-mnist: its own 50,000 / 10,000 / 10,000.  frey-face: 1,965 faces,
    a seeded split 1,565 / 200 / 200.  digits: 1,797 images, a seeded split
    1,397 / 0 / 400 (n_valid moves images from train to validation).
    """
    check_choice("name", name, NAMES)
    dtype = check_dtype("dtype", dtype)
    if name == "digits":
        x, y = load_digits()
        nv = 0 if n_valid is None else int(n_valid)
        parts = _split(x.astype(dtype) / 16, y, nv, 400, seed)
        return Dataset(name, *parts, (8, 8), "numpyvae/data/digits.csv.gz", LICENSES[name])
    paths = _locate(name, folder, download, progress)
    source = str(next(iter(paths.values())).parent)
    if name == "frey-face":
        verify(paths["frey_rawface.mat"], name, "frey_rawface.mat")
        x = read_frey(paths["frey_rawface.mat"]).astype(dtype) / 255
        nv = 200 if n_valid is None else int(n_valid)
        return Dataset(name, *_split(x, None, nv, 200, seed), (28, 20), source, LICENSES[name])
    if name == "binarized-mnist":
        arrays = []
        for filename in FILES[name]:
            content = read_bytes(paths[filename])
            verify(paths[filename], name, filename, content)
            arrays.append(parse_amat(content, paths[filename]).astype(dtype))
        return Dataset(name, arrays[0], None, arrays[1], None, arrays[2], None, (28, 28), source, LICENSES[name])
    arrays = {}
    for filename in IDX:
        content = read_bytes(paths[filename])
        verify(paths[filename], name, filename, content)
        arrays[filename] = parse_idx(content, paths[filename])
    x_tr, y_tr = arrays[IDX[0]], arrays[IDX[1]]
    x_te, y_te = arrays[IDX[2]], arrays[IDX[3]]
    if x_tr.shape[1:] != (28, 28) or len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise DataError(f"{source}: images {x_tr.shape}/{x_te.shape} and labels {y_tr.shape}/{y_te.shape} do not match")
    nv = 0 if n_valid is None else int(n_valid)
    if not 0 <= nv < len(x_tr):
        raise InputError(f"n_valid: expected 0 <= n_valid < {len(x_tr)}, got {n_valid}")
    x_tr = x_tr.reshape(len(x_tr), -1).astype(dtype) / 255
    x_te = x_te.reshape(len(x_te), -1).astype(dtype) / 255
    cut = len(x_tr) - nv
    return Dataset(name, x_tr[:cut], y_tr[:cut].astype(np.int64), x_tr[cut:], y_tr[cut:].astype(np.int64),
                   x_te, y_te.astype(np.int64), (28, 28), source, LICENSES[name])
