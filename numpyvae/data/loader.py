"""``load(name)``: the validated public entry point that puts finding, downloading, verifying and parsing together."""
import importlib.resources
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, InputError
from ..validate import check_dtype, check_positive_int
from . import files, registry
from .content import read_verified, verify
from .download import fetch
from .parsers import parse_amat, parse_digits, parse_frey, parse_idx


@dataclass(repr=False)
class Dataset:
    """A dataset in three splits.

    x_train, x_valid, x_test : float arrays (n, x_dim), values in [0, 1]; an
                               empty split has shape (0, x_dim).
    y_train, y_valid, y_test : int64 labels (n,), or None for unlabelled data.
    image_shape              : (h, w); row i of x is an image ``x[i].reshape(h, w)``.
    source, license          : where the files were read from, and whom to credit.
    class_names              : what label k means (a list of str), or None without labels.
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
    class_names: "list | None" = None

    @property
    def x_dim(self):
        """Pixels per image, h * w."""
        return self.x_train.shape[1]

    def __repr__(self):
        sizes = ", ".join(f"{k} {len(getattr(self, 'x_' + k))}" for k in ("train", "valid", "test"))
        labels = "labelled" if self.y_train is not None else "no labels"
        return f"Dataset({self.name!r}: {sizes}; images {self.image_shape}, {labels}; from {self.source})"


def load(name, folder=None, *, n_valid=None, dtype=np.float32, download=True, progress=None, seed=0):
    """Load dataset ``name`` (one of NAMES) as a :class:`Dataset` with pixels scaled to [0, 1].

    folder   : an existing folder to look in first (see numpyvae.data.files for the rest).
    n_valid  : size of the validation split (None = the default below).
    dtype    : np.float32 (default) or np.float64 for the x arrays.
    download : fetch missing files into the cache; False raises DataError instead.
    progress : download progress on stderr: True, False, or None (only when stderr is a terminal).
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

    Every file is checked (size and sha256 of its uncompressed content)
    before it is parsed; memory never exceeds what the registry says the
    file should take.
    """
    name, folder, dtype, seed = _check_arguments(name, folder, n_valid, dtype, download, progress, seed)
    if name == "digits":
        return _load_digits(n_valid, dtype, seed)
    if name == "binarized-mnist" and n_valid not in (None, 10000):
        raise InputError(f"n_valid: binarized-mnist has a fixed validation split of 10000, got {n_valid}")

    paths = _locate(name, folder, download, progress)
    source = ", ".join(dict.fromkeys(str(p.parent) for p in paths.values()))
    contents = [(path, read_verified(path, spec, name)) for spec, path in paths.items()]
    finish = {"frey-face": _finish_frey, "binarized-mnist": _finish_binarized}.get(name, _finish_idx)
    return finish(name, contents, source, n_valid, dtype, seed)


# ---- checking the arguments --------------------------------------------------------------

def _check_arguments(name, folder, n_valid, dtype, download, progress, seed):
    """InputError naming the first bad argument; returns the normalized (name, folder, dtype, seed)."""
    if not isinstance(name, str) or name not in registry.NAMES:
        raise InputError(f"name: expected one of {sorted(registry.NAMES)}, got {name!r}")
    if folder is not None:
        if not isinstance(folder, (str, os.PathLike)):
            raise InputError(f"folder: expected a path (str or os.PathLike) or None, got {type(folder).__name__}")
        if folder == "":
            raise InputError("folder: expected an existing folder or None, got ''")
        try:
            folder = Path(folder)
            is_dir = folder.is_dir()
        except (TypeError, ValueError, OSError):        # a PathLike returning bytes, a NUL in the name
            raise InputError(f"folder: expected an existing folder, got {folder!r}") from None
        if not is_dir:
            what = "a file" if os.path.isfile(folder) else "no such folder"
            raise InputError(f"folder: expected an existing folder, got {str(folder)!r} ({what})")
    if n_valid is not None:
        check_positive_int("n_valid", n_valid, minimum=0)
    try:
        dtype = check_dtype("dtype", dtype)
    except (TypeError, ValueError) as exc:     # dtype specs numpy itself rejects in other ways
        if isinstance(exc, InputError):
            raise
        raise InputError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    for flag, value, allowed in (("download", download, "True or False"),
                                 ("progress", progress, "True, False or None")):
        if not (isinstance(value, (bool, np.bool_)) or (flag == "progress" and value is None)):
            raise InputError(f"{flag}: expected {allowed}, got {value!r}")
    seed = check_positive_int("seed", seed, minimum=0)
    return name, folder, dtype, seed


def _check_n_valid(n_valid, default, n_available):
    n_valid = default if n_valid is None else int(n_valid)
    if n_valid >= n_available:
        raise InputError(f"n_valid: expected at most {n_available - 1} (at least one training image), got {n_valid}")
    return n_valid


# ---- finding (and fetching) the files ------------------------------------------------------

def _locate(name, folder, download, progress):
    """{FileSpec: Path} for every file of dataset ``name``, downloading missing ones if allowed."""
    paths = {}
    for spec in registry.FILES[name]:
        path = files.find_file(name, spec.filename, folder)
        if path is None and download:
            path = _download(name, spec, progress)
        if path is None:
            where = "\n  ".join(str(p) for p in files.search_folders(name, folder))
            raise DataError(f"{name}: {spec.filename} (or {spec.filename}.gz) not found; looked in:\n  {where}\n"
                            "and download=False (pass folder=..., set NUMPYVAE_DATA, or allow the download)")
        paths[spec] = path
    return paths


def _download(name, spec, progress):
    """Fetch one file into the cache; only a file whose content verifies is kept."""
    urls = registry.urls(name, spec)
    target = files.download_folder(name) / spec.remote

    def check(tmp, url):
        verify(tmp, spec, name, where=url, hint="the download was not kept; retry later")

    # a gzip of N bytes of content is at most a little larger than N (stored blocks)
    return fetch(urls, target, check, progress=progress, max_bytes=spec.size + spec.size // 100 + (1 << 16),
                 folder_hint=f"set {files.CACHE_ENV} to a writable folder, or pass folder=... holding the files")


# ---- from verified bytes to a Dataset -----------------------------------------------------

def _seeded_split(n, n_test, n_valid, seed):
    """Index arrays (train, valid, test) of a seeded random permutation of range(n)."""
    perm = np.random.default_rng(seed).permutation(n)
    return perm[n_test + n_valid:], perm[n_test:n_test + n_valid], perm[:n_test]


def _load_digits(n_valid, dtype, seed):
    resource = importlib.resources.files(__package__) / registry.DIGITS_FILE
    try:
        raw = resource.read_bytes()
    except OSError as exc:
        raise DataError(f"{resource}: cannot read the embedded digits ({exc}); reinstall numpyvae") from None
    got = hashlib.sha256(raw).hexdigest()
    if got != registry.DIGITS_SHA256:
        raise DataError(f"{resource}: sha256 mismatch, expected {registry.DIGITS_SHA256}, got {got} "
                        "— the file is corrupt or not the digits file; reinstall numpyvae")
    x, y = parse_digits(raw, resource)
    train, valid, test = _seeded_split(len(x), 400, _check_n_valid(n_valid, 0, len(x) - 400), seed)
    x = x.astype(dtype) / dtype(16)
    return Dataset("digits", x[train], x[valid], x[test], y[train], y[valid], y[test], (8, 8),
                   str(resource), registry.LICENSES["digits"], registry.CLASS_NAMES["digits"])


def _finish_frey(name, contents, source, n_valid, dtype, seed):
    (path, content), = contents
    x = parse_frey(content, path).astype(dtype) / dtype(255)
    train, valid, test = _seeded_split(len(x), 200, _check_n_valid(n_valid, 200, len(x) - 200), seed)
    return Dataset(name, x[train], x[valid], x[test], None, None, None, (28, 20), source,
                   registry.LICENSES[name], registry.CLASS_NAMES[name])


def _finish_binarized(name, contents, source, n_valid, dtype, seed):
    x_train, x_valid, x_test = (parse_amat(content, path).astype(dtype) for path, content in contents)
    return Dataset(name, x_train, x_valid, x_test, None, None, None, (28, 28), source,
                   registry.LICENSES[name], registry.CLASS_NAMES[name])


def _finish_idx(name, contents, source, n_valid, dtype, seed):
    """mnist and fashion-mnist: images (n, 28, 28) and labels (n,) for train and t10k."""
    x_tr, y_tr, x_te, y_te = (parse_idx(content, path) for path, content in contents)
    for x, y, part in ((x_tr, y_tr, "train"), (x_te, y_te, "t10k")):
        if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (len(x),) or (y.size and y.max() > 9):
            raise DataError(f"{source}: {part} images {x.shape} and labels {y.shape} do not fit together, "
                            "expected (n, 28, 28) images and n labels 0..9")
    cut = len(x_tr) - _check_n_valid(n_valid, 0, len(x_tr))
    x_tr = x_tr.reshape(len(x_tr), -1).astype(dtype) / dtype(255)
    x_te = x_te.reshape(len(x_te), -1).astype(dtype) / dtype(255)
    y_tr, y_te = y_tr.astype(np.int64), y_te.astype(np.int64)
    return Dataset(name, x_tr[:cut], x_tr[cut:], x_te, y_tr[:cut], y_tr[cut:], y_te, (28, 28), source,
                   registry.LICENSES[name], registry.CLASS_NAMES[name])
