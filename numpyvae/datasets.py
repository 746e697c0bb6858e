"""Datasets by name: the embedded 8x8 digits, MNIST, Fashion-MNIST, binarized MNIST, Frey Face.

    >>> data = load("digits")       # a Dataset
    >>> data.x_train.shape, data.x_test.shape, data.image_shape
    ((1397, 64), (400, 64), (8, 8))

Every image is a row of ``x_dim = h * w`` floats in [0, 1].

Where the files are looked for, in this order:

1. the ``folder`` argument of :func:`load`,
2. the folder named by the environment variable ``NUMPYVAE_DATA``,
3. the download cache :func:`cache_dir` (``$NUMPYVAE_CACHE``, else
   ``$XDG_CACHE_HOME/numpyvae``, else ``~/.cache/numpyvae``),
4. known system folders (Debian's ``/usr/share/datasets/fashion-mnist``).

In each of these roots a file may sit in the dataset's sub-folder
(``mnist/``, ``fashion-mnist/`` or ``fashion_mnist/``, ``binarized_mnist/``,
``frey_face/``) or directly in the root, plain or gzip'd (``name`` or
``name.gz``).  Where no root has a file and ``download=True``, it is
downloaded from its original public location into the cache (see
:mod:`numpyvae.download`); ``NUMPYVAE_MIRROR=<base url>`` fetches every file
from ``<base url>/<sub-folder>/<file name on the server>`` instead.

Checksums: every file, wherever it was found, is checked against the sha256
of its *uncompressed content* before it is used, so a gzip'd and a plain copy
of the same file both pass.  For files that are stored plain (Frey Face,
the binarized-MNIST ``.amat`` downloads) that is simply the file's sha256.
The Fashion-MNIST values were computed by decompressing the files of Debian's
``dataset-fashion-mnist`` (whose gzip'd files have the sha256 given in the
data README); their md5 equal the md5 of the uncompressed files that are
published for the original Zalando downloads, so both verify.
"""
import gzip
import hashlib
import importlib.resources
import io
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import DataError, InputError
from .validate import as_float_array, check_choice, check_dtype, check_positive_int, check_rng

__all__ = ["Dataset", "load", "binarize", "read_idx", "read_amat", "read_frey", "load_digits",
           "NAMES", "find_file", "cache_dir", "BINARIZE"]

NAMES = ("digits", "mnist", "fashion-mnist", "binarized-mnist", "frey-face")
BINARIZE = ("none", "threshold", "dynamic")


class FileSpec(NamedTuple):
    """One file of a dataset: the name looked for, the name on the server, its checksum."""

    filename: str   # looked for as ``filename`` or ``filename.gz``
    remote: str     # the file name under each base URL
    sha256: str     # of the uncompressed content


def _idx_files(sums):
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return tuple(FileSpec(n, n + ".gz", s) for n, s in zip(names, sums))


FILES = {
    "mnist": _idx_files((
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2")),
    "fashion-mnist": _idx_files((
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34")),
    "binarized-mnist": tuple(FileSpec(f"binarized_mnist_{split}.amat", f"binarized_mnist_{split}.amat", s) for split, s in (
        ("train", "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d"),
        ("valid", "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2"),
        ("test", "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c"))),
    "frey-face": (FileSpec("frey_rawface.mat", "frey_rawface.mat",
                           "265a83a23adb081755cd3de375509828e690324d1d60f076b8ecebc840d59c64"),),
}

# The original public locations, tried in order (a file's URL is base + FileSpec.remote).
BASE_URLS = {
    "mnist": ("https://yann.lecun.com/exdb/mnist/",
              "https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                      "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
    "binarized-mnist": ("http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/",),
    "frey-face": ("https://www.cs.nyu.edu/~roweis/data/",),
}
MIRROR_ENV = "NUMPYVAE_MIRROR"

# Sub-folders of a data root; the first one is where downloads go and where a mirror keeps them.
SUBFOLDERS = {"mnist": ("mnist",), "fashion-mnist": ("fashion-mnist", "fashion_mnist"),
              "binarized-mnist": ("binarized_mnist",), "frey-face": ("frey_face",)}
SYSTEM_FOLDERS = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}

DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"   # of the .gz as stored
LICENSES = {
    "digits": "UCI Optical Recognition of Handwritten Digits (E. Alpaydin, C. Kaynak), CC BY 4.0",
    "mnist": "MNIST (Y. LeCun, C. Cortes), commonly given as CC BY-SA 3.0",
    "fashion-mnist": "Fashion-MNIST (Zalando Research), MIT license",
    "binarized-mnist": "binarized MNIST (H. Larochelle, I. Murray 2011), derived from MNIST",
    "frey-face": "Frey Face (B. Frey, distributed by S. Roweis), no explicit license: credit them",
}


@dataclass(repr=False)
class Dataset:
    """A dataset in three splits.

    x_train, x_valid, x_test : float arrays (n, x_dim), values in [0, 1]; an
                               empty split has shape (0, x_dim).
    y_train, y_valid, y_test : int64 labels (n,), or None for unlabelled data.
    image_shape              : (h, w); row i of x is an image ``x[i].reshape(h, w)``.
    source, license          : where the files were read from, and whom to credit.
    """

    name: str
    x_train: np.ndarray
    x_valid: np.ndarray
    x_test: np.ndarray
    y_train: "np.ndarray | None"
    y_valid: "np.ndarray | None"
    y_test: "np.ndarray | None"
    image_shape: tuple
    source: str
    license: str

    @property
    def x_dim(self):
        """Pixels per image, h * w."""
        return self.x_train.shape[1]

    def __repr__(self):
        sizes = ", ".join(f"{k} {len(getattr(self, 'x_' + k))}" for k in ("train", "valid", "test"))
        labels = "labelled" if self.y_train is not None else "no labels"
        return f"Dataset({self.name!r}: {sizes}; images {self.image_shape}, {labels}; from {self.source})"


# ---- where the files are ------------------------------------------------------------

def cache_dir():
    """The download cache: $NUMPYVAE_CACHE, else $XDG_CACHE_HOME/numpyvae, else ~/.cache/numpyvae."""
    if os.environ.get("NUMPYVAE_CACHE"):
        return Path(os.environ["NUMPYVAE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "numpyvae"


def search_roots(name, folder=None):
    """The root folders searched for dataset ``name``, in order."""
    roots = [Path(folder)] if folder is not None else []
    if os.environ.get("NUMPYVAE_DATA"):
        roots.append(Path(os.environ["NUMPYVAE_DATA"]))
    roots.append(cache_dir())
    return roots + [Path(p) for p in SYSTEM_FOLDERS.get(name, ())]


def _search_folders(name, folder=None):
    """Every folder looked in: each root's dataset sub-folders first, then the root itself."""
    return [root / sub for root in search_roots(name, folder) for sub in (*SUBFOLDERS[name], "")]


def find_file(name, filename, folder=None):
    """The Path of ``filename`` (or ``filename.gz``) of dataset ``name``, or None if nowhere."""
    check_choice("name", name, tuple(FILES))
    for where in _search_folders(name, folder):
        for candidate in (filename, filename + ".gz"):
            if (where / candidate).is_file():
                return where / candidate
    return None


def urls(name, spec):
    """The URLs to try for one file: ``$NUMPYVAE_MIRROR/<sub-folder>/<remote>`` if set, else BASE_URLS."""
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        return [f"{mirror.rstrip('/')}/{SUBFOLDERS[name][0]}/{spec.remote}"]
    return [base + spec.remote for base in BASE_URLS[name]]


# ---- reading and verifying ------------------------------------------------------------

def read_bytes(path):
    """The content of a file, gunzipped if it starts with the gzip magic bytes 1f 8b."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:   # bad header, truncated stream, bad CRC
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None


def _sha256_mismatch(where, expected, got, name, hint="delete it and retry"):
    """The DataError for a file that is not what it should be."""
    return DataError(f"{where}: sha256 mismatch, expected {expected}, got {got} "
                     f"— the file is corrupt or not the {name} file; {hint}")


def verify(path, name, spec, content=None, where=None, hint="delete it and retry"):
    """Check the sha256 of the file's uncompressed content against ``spec.sha256``.

    content : the already-read content, to avoid reading the file twice;
              without it the file is streamed through the hash in 1 MiB chunks.
    where   : what to name in the error message (default: the path).
    Raises DataError "<where>: sha256 mismatch, expected <x>, got <y> — ...".
    """
    if content is not None:
        got = hashlib.sha256(content).hexdigest()
    else:
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                is_gzip = f.read(2) == b"\x1f\x8b"
                f.seek(0)
                stream = gzip.GzipFile(fileobj=f) if is_gzip else f
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{where or path}: corrupt or truncated gzip data, or unreadable ({exc})") from None
        got = digest.hexdigest()
    if got != spec.sha256:
        raise _sha256_mismatch(where or path, spec.sha256, got, name, hint)


def parse_idx(content, path="<bytes>"):
    """IDX bytes -> uint8 array of the dimensions in the header.

    Layout: two zero bytes, the type code (0x08 = unsigned byte, the only one
    supported), the number of dimensions (1..4), each dimension as a
    big-endian uint32, then exactly prod(dims) bytes of data.
    """
    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        raise DataError(f"{path}: not an IDX file (it must start with two zero bytes, got {bytes(content[:2])!r})")
    if content[2] != 0x08:
        raise DataError(f"{path}: IDX type code 0x{content[2]:02x} is not supported, expected 0x08 (unsigned bytes)")
    ndim = content[3]
    if not 1 <= ndim <= 4:
        raise DataError(f"{path}: IDX file with {ndim} dimensions, expected 1 to 4")
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(f"{path}: truncated IDX header: expected {header} bytes, got {len(content)}")
    dims = tuple(int.from_bytes(content[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(dims)
    if len(content) != expected:
        what = "truncated" if len(content) < expected else "has trailing bytes"
        raise DataError(f"{path}: IDX file {what}: dimensions {dims} need {expected} bytes, got {len(content)}")
    return np.frombuffer(content, np.uint8, offset=header).reshape(dims)


def read_idx(path):
    """Read a plain or gzip'd IDX file (MNIST's format) into a uint8 array, e.g. (60000, 28, 28)."""
    return parse_idx(read_bytes(path), path)


def parse_amat(content, path="<bytes>", width=784):
    """Text lines of ``width`` values 0/1 separated by single spaces -> uint8 (n, width).

    Each value is one digit followed by a space (or a newline after the last),
    so a well-formed file is a (n, width, 2) array of bytes: it is checked and
    converted in one vectorised step.  Anything else is described by line.
    """
    a = np.frombuffer(content, np.uint8)
    if a.size and a.size % (2 * width) == 0:
        pairs = a.reshape(-1, width, 2)
        digits, seps = pairs[:, :, 0], pairs[:, :, 1]
        values_ok = ((digits == ord("0")) | (digits == ord("1"))).all()
        separators_ok = (seps[:, :-1] == ord(" ")).all() and (seps[:, -1] == ord("\n")).all()
        if values_ok and separators_ok:
            return digits - np.uint8(ord("0"))
    raise DataError(f"{path}: {_first_bad_line(bytes(content), width)}; expected lines of {width} values "
                    "0 or 1 separated by single spaces")


def _first_bad_line(content, width):
    """Describe the first line of a malformed .amat text (the slow path, for the error message)."""
    if not content:
        return "the file is empty"
    lines = content.split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):
        values = line.split(b" ")
        if len(values) != width:
            return f"line {number} has {len(values)} values"
        bad = next((v for v in values if v not in (b"0", b"1")), None)
        if bad is not None:
            return f"line {number} has the value {bad[:20]!r}"
    if lines[-1]:
        return f"line {len(lines)} does not end with a newline"
    return "malformed text"   # not reached: the fast path accepts everything the loop accepts


def read_amat(path):
    """Read a plain or gzip'd .amat file of binarized MNIST into uint8 (n, 784) of 0/1."""
    return parse_amat(read_bytes(path), path)


def parse_frey(content, path="<bytes>"):
    """The content of frey_rawface.mat -> uint8 (n_faces, 560); row i is ``ff[:, i]`` (28x20 image)."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataError("reading frey_rawface.mat needs scipy: pip install numpyvae[frey]") from None
    try:
        ff = loadmat(io.BytesIO(content))["ff"]
    except Exception as exc:   # scipy raises many kinds of errors for a damaged file
        raise DataError(f"{path}: not a MATLAB file holding a matrix 'ff' ({type(exc).__name__}: {exc})") from None
    if ff.ndim != 2 or ff.shape[0] != 560 or ff.shape[1] == 0 or ff.dtype != np.uint8:
        raise DataError(f"{path}: 'ff' is {ff.dtype} {ff.shape}, expected uint8 (560, n_faces)")
    return np.ascontiguousarray(ff.T)


def read_frey(path):
    """Read frey_rawface.mat (plain or gzip'd; needs scipy) into uint8 (1965, 560), one face per row."""
    return parse_frey(read_bytes(path), path)


def load_digits():
    """The embedded 8x8 digits: x uint8 (1797, 64) with values 0..16, y int64 (1797,) with 0..9."""
    resource = importlib.resources.files("numpyvae") / "data" / "digits.csv.gz"
    raw = resource.read_bytes()
    got = hashlib.sha256(raw).hexdigest()
    if got != DIGITS_SHA256:
        raise _sha256_mismatch(resource, DIGITS_SHA256, got, "digits", "reinstall numpyvae")
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.int64)
    if table.shape != (1797, 65) or table.min() < 0 or table[:, :64].max() > 16 or table[:, 64].max() > 9:
        raise DataError(f"{resource}: unexpected table {table.shape} with values {table.min()}..{table.max()}")
    return table[:, :64].astype(np.uint8), table[:, 64]


# ---- binarization -------------------------------------------------------------------

def binarize(x, mode="none", rng=None, threshold=0.5):
    """Make images x (any shape, finite values in [0, 1]) binary, keeping shape and float dtype.

    none      : x unchanged.
    threshold : 1 where x > threshold, else 0 (one fixed binarization).
    dynamic   : a fresh Bernoulli(x) draw from ``rng`` (a numpy Generator,
                required) at every call: called once per minibatch, each epoch
                sees a new binarization (the scheme of Burda et al., IWAE).
    """
    check_choice("mode", mode, BINARIZE)
    x = as_float_array("x", x, lo=0.0, hi=1.0)
    if mode == "none":
        return x
    if mode == "threshold":
        threshold = float(as_float_array("threshold", threshold, ndim=0))
        return (x > threshold).astype(x.dtype)
    rng = check_rng("rng", rng)
    return (rng.random(x.shape, dtype=x.dtype) < x).astype(x.dtype)


# ---- load by name ---------------------------------------------------------------------

def _locate(name, folder, download, progress):
    """{FileSpec: Path} for every file of dataset ``name``, downloading missing ones if allowed."""
    paths = {}
    for spec in FILES[name]:
        path = find_file(name, spec.filename, folder)
        if path is None and download:
            from .download import fetch
            target = cache_dir() / SUBFOLDERS[name][0] / spec.remote
            check = (lambda tmp, url, spec=spec:
                     verify(tmp, name, spec, where=url, hint="the download was not kept; retry later"))
            path = fetch(urls(name, spec), target, check, progress=progress)
        if path is None:
            where = "\n  ".join(str(p) for p in _search_folders(name, folder))
            raise DataError(f"{name}: {spec.filename} (or {spec.filename}.gz) not found; looked in:\n  {where}\n"
                            "and download=False (pass folder=..., set NUMPYVAE_DATA, or allow the download)")
        paths[spec] = path
    return paths


def _read_verified(name, spec, path):
    content = read_bytes(path)
    verify(path, name, spec, content)
    return content


def _seeded_split(n, n_test, n_valid, seed):
    """Index arrays (train, valid, test) of a seeded random permutation of range(n)."""
    perm = np.random.default_rng(seed).permutation(n)
    return perm[n_test + n_valid:], perm[n_test:n_test + n_valid], perm[:n_test]


def _check_n_valid(n_valid, default, n_available):
    n_valid = default if n_valid is None else check_positive_int("n_valid", n_valid, minimum=0)
    if n_valid >= n_available:
        raise InputError(f"n_valid: expected at most {n_available - 1} (at least one training image), got {n_valid}")
    return n_valid


def load(name, folder=None, *, n_valid=None, dtype=np.float32, download=True, progress=True, seed=0):
    """Load dataset ``name`` (one of NAMES) as a :class:`Dataset` with pixels scaled to [0, 1].

    folder   : a folder to look in first (see the module docstring for the rest).
    n_valid  : size of the validation split (None = the default below).
    dtype    : np.float32 (default) or np.float64 for the x arrays.
    download : fetch missing files into the cache; False raises DataError instead.
    progress : show a download progress bar on stderr.
    seed     : seeds the random splits of digits and frey-face.

    Splits (train / valid / test):
      digits          1,797 images 8x8, seeded split 1,397 / 0 / 400; n_valid
                      images move from train to valid.  Labels 0..9.
      mnist,          the official 60,000 / 10,000; valid is the LAST n_valid
      fashion-mnist   training images (default 0, so train is all 60,000 as
                      in pytorch/examples).  Labels 0..9.
      binarized-mnist its own fixed 50,000 / 10,000 / 10,000, values 0 or 1,
                      no labels; n_valid cannot be changed.
      frey-face       1,965 faces 28x20, seeded split 1,565 / 200 / 200 (n_valid
                      default 200, taken from train), no labels.
    """
    check_choice("name", name, NAMES)
    dtype = check_dtype("dtype", dtype)
    seed = check_positive_int("seed", seed, minimum=0)
    if name == "digits":
        x, y = load_digits()
        train, valid, test = _seeded_split(len(x), 400, _check_n_valid(n_valid, 0, len(x) - 400), seed)
        x = x.astype(dtype) / dtype(16)
        resource = importlib.resources.files("numpyvae") / "data" / "digits.csv.gz"
        return Dataset(name, x[train], x[valid], x[test], y[train], y[valid], y[test], (8, 8),
                       str(resource), LICENSES[name])
    if name == "binarized-mnist" and n_valid not in (None, 10000):
        raise InputError(f"n_valid: binarized-mnist has a fixed validation split of 10000, got {n_valid}")

    paths = _locate(name, folder, download, progress)
    source = ", ".join(dict.fromkeys(str(p.parent) for p in paths.values()))
    contents = [(spec, path, _read_verified(name, spec, path)) for spec, path in paths.items()]

    if name == "frey-face":
        (spec, path, content), = contents
        x = parse_frey(content, path).astype(dtype) / dtype(255)
        train, valid, test = _seeded_split(len(x), 200, _check_n_valid(n_valid, 200, len(x) - 200), seed)
        return Dataset(name, x[train], x[valid], x[test], None, None, None, (28, 20), source, LICENSES[name])
    if name == "binarized-mnist":
        x_train, x_valid, x_test = (parse_amat(content, path).astype(dtype) for _, path, content in contents)
        return Dataset(name, x_train, x_valid, x_test, None, None, None, (28, 28), source, LICENSES[name])

    # mnist and fashion-mnist: images (n, 28, 28) and labels (n,) for train and t10k
    x_tr, y_tr, x_te, y_te = (parse_idx(content, path) for _, path, content in contents)
    for x, y, part in ((x_tr, y_tr, "train"), (x_te, y_te, "t10k")):
        if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (len(x),) or (y.size and y.max() > 9):
            raise DataError(f"{source}: {part} images {x.shape} and labels {y.shape} do not fit together")
    cut = len(x_tr) - _check_n_valid(n_valid, 0, len(x_tr))
    x_tr = x_tr.reshape(len(x_tr), -1).astype(dtype) / dtype(255)
    x_te = x_te.reshape(len(x_te), -1).astype(dtype) / dtype(255)
    y_tr, y_te = y_tr.astype(np.int64), y_te.astype(np.int64)
    return Dataset(name, x_tr[:cut], x_tr[cut:], x_te, y_tr[:cut], y_tr[cut:], y_te, (28, 28), source, LICENSES[name])
