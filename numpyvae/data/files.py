"""Where a dataset's files are looked for, and where downloads go.

The roots searched, in this order:

1. the ``folder`` argument of :func:`numpyvae.data.load`,
2. the folder named by the environment variable ``NUMPYVAE_DATA``,
3. the download cache :func:`cache_dir` (``$NUMPYVAE_CACHE``, else
   ``$XDG_CACHE_HOME/numpyvae``, else ``~/.cache/numpyvae``),
4. known system folders (Debian's ``/usr/share/datasets/fashion-mnist``).

In each root a file may sit in the dataset's sub-folder (``mnist/``,
``fashion-mnist/`` or ``fashion_mnist/``, ``binarized_mnist/``,
``frey_face/``) or directly in the root, plain or gzip'd (``name`` or
``name.gz``).
"""
import os
from pathlib import Path

from ..errors import DataError, InputError
from . import registry

CACHE_ENV = "NUMPYVAE_CACHE"
DATA_ENV = "NUMPYVAE_DATA"


def cache_dir():
    """The download cache: $NUMPYVAE_CACHE, else $XDG_CACHE_HOME/numpyvae, else ~/.cache/numpyvae."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = Path.home() / ".cache"
        except RuntimeError:            # no $HOME and no password entry to find one
            raise DataError(f"no home folder to put the download cache in; set {CACHE_ENV} to a writable folder") from None
    return Path(base) / "numpyvae"


def search_roots(name, folder=None):
    """The root folders searched for dataset ``name``, in order (a list of Paths)."""
    roots = [Path(folder)] if folder is not None else []
    if os.environ.get(DATA_ENV):
        roots.append(Path(os.environ[DATA_ENV]))
    roots.append(cache_dir())
    return roots + [Path(p) for p in registry.SYSTEM_FOLDERS.get(name, ())]


def search_folders(name, folder=None):
    """Every folder looked in: each root's dataset sub-folders first, then the root itself."""
    if not isinstance(name, str) or name not in registry.SUBFOLDERS:
        raise InputError(f"name: expected one of {sorted(registry.SUBFOLDERS)}, got {name!r}")
    return [root / sub for root in search_roots(name, folder) for sub in (*registry.SUBFOLDERS[name], "")]


def find_file(name, filename, folder=None):
    """The Path of ``filename`` (or ``filename.gz``) of dataset ``name``, or None if nowhere.

    Only regular files count (os.path.isfile: a folder, a FIFO or a broken
    link of that name is passed over, and an unreadable folder on the way
    is treated as absent rather than raising).
    """
    for where in search_folders(name, folder):
        for candidate in (filename, filename + ".gz"):
            if os.path.isfile(where / candidate):
                return where / candidate
    return None


def download_folder(name):
    """The cache sub-folder that downloads of dataset ``name`` go to (created by the download)."""
    return cache_dir() / registry.SUBFOLDERS[name][0]
