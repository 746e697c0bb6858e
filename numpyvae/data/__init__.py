"""Datasets by name: the embedded 8x8 digits, MNIST, Fashion-MNIST, binarized MNIST, Frey Face.

    >>> from numpyvae.data import load
    >>> data = load("digits")       # a Dataset
    >>> data.x_train.shape, data.x_test.shape, data.image_shape, data.class_names[:3]
    ((1397, 64), (400, 64), (8, 8), ['0', '1', '2'])

Every image is a row of ``x_dim = h * w`` floats in [0, 1].

One idea per module:

- :mod:`~numpyvae.data.registry`  names, files, checksums, sizes, URLs, licenses, class names
- :mod:`~numpyvae.data.files`     where files are looked for; the download cache
- :mod:`~numpyvae.data.content`   reading a file with bounded memory; size and sha256 checks
- :mod:`~numpyvae.data.parsers`   IDX, .amat, .mat and CSV bytes into uint8 arrays
- :mod:`~numpyvae.data.download`  fetching a file so that only a verified one lands in the cache
- :mod:`~numpyvae.data.binarization` grey images to binary ones
- :mod:`~numpyvae.data.loader`    ``load(name)``: the checked public entry point, and ``Dataset``

Where no searched folder has a file and ``download=True``, it is downloaded
from its original public location into the cache; ``NUMPYVAE_MIRROR=<base url>``
fetches every file from ``<base url>/<sub-folder>/<file name on the server>``
instead.  Whatever a file or a server claims, memory and time stay bounded and
a bad file ends in a DataError naming it (see content and download).
"""
from .binarization import BINARIZE, binarize
from .content import verify
from .files import cache_dir, find_file, search_roots
from .loader import Dataset, load
from .parsers import read_amat, read_frey, read_idx
from .registry import CLASS_NAMES, FILES, LICENSES, NAMES, FileSpec

__all__ = ["load", "Dataset", "binarize", "BINARIZE", "NAMES", "CLASS_NAMES", "FILES", "LICENSES", "FileSpec",
           "read_idx", "read_amat", "read_frey", "verify", "find_file", "search_roots", "cache_dir"]
