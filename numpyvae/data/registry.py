"""What each dataset is made of: its files, their checksums and sizes, where they live, whom to credit.

Nothing here reads a file or opens a connection; the other modules of
:mod:`numpyvae.data` look things up in these tables.

Checksums and sizes are those of a file's *uncompressed content*, so a
gzip'd and a plain copy of the same file both verify.  For files stored
plain (Frey Face, the binarized-MNIST ``.amat`` downloads) that is simply the
file's own sha256 and length.  The Fashion-MNIST values were computed by
decompressing the files of Debian's ``dataset-fashion-mnist``; their md5
equal the published md5 of the uncompressed original Zalando files.
"""
import os
from typing import NamedTuple

from ..errors import InputError

NAMES = ("digits", "mnist", "fashion-mnist", "binarized-mnist", "frey-face")


class FileSpec(NamedTuple):
    """One file of a dataset.

    filename : looked for as ``filename`` or ``filename.gz``
    remote   : the file's name under each base URL
    sha256   : hex digest of the uncompressed content
    size     : length of the uncompressed content in bytes; also the cap on
               how much is ever decompressed into memory for this file
    """

    filename: str
    remote: str
    sha256: str
    size: int


def _idx_files(sums):
    """The four IDX files of MNIST and Fashion-MNIST (same names, same sizes)."""
    names_and_sizes = (("train-images-idx3-ubyte", 16 + 60000 * 28 * 28), ("train-labels-idx1-ubyte", 8 + 60000),
                       ("t10k-images-idx3-ubyte", 16 + 10000 * 28 * 28), ("t10k-labels-idx1-ubyte", 8 + 10000))
    return tuple(FileSpec(n, n + ".gz", s, size) for (n, size), s in zip(names_and_sizes, sums))


def _amat(split, n_rows, sha256):
    """One .amat file of binarized MNIST: n_rows lines of 784 "d " pairs (the last ends in a newline)."""
    name = f"binarized_mnist_{split}.amat"
    return FileSpec(name, name, sha256, n_rows * 784 * 2)


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
    "binarized-mnist": (
        _amat("train", 50000, "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d"),
        _amat("valid", 10000, "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2"),
        _amat("test", 10000, "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c")),
    "frey-face": (FileSpec("frey_rawface.mat", "frey_rawface.mat",
                           "265a83a23adb081755cd3de375509828e690324d1d60f076b8ecebc840d59c64", 1100584),),
}

# The embedded digits ship inside the package: the sha256 is of the .gz as stored.
DIGITS_FILE = "digits.csv.gz"
DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"

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

LICENSES = {
    "digits": "UCI Optical Recognition of Handwritten Digits (E. Alpaydin, C. Kaynak), CC BY 4.0",
    "mnist": "MNIST (Y. LeCun, C. Cortes), commonly given as CC BY-SA 3.0",
    "fashion-mnist": "Fashion-MNIST (Zalando Research), MIT license",
    "binarized-mnist": "binarized MNIST (H. Larochelle, I. Murray 2011), derived from MNIST",
    "frey-face": "Frey Face (B. Frey, distributed by S. Roweis), no explicit license: credit them",
}

# What label k means; None for the unlabelled datasets.
CLASS_NAMES = {
    "digits": [str(k) for k in range(10)],
    "mnist": [str(k) for k in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "binarized-mnist": None,
    "frey-face": None,
}


def urls(name, spec):
    """The URLs to try for one file: ``$NUMPYVAE_MIRROR/<sub-folder>/<remote>`` if set, else BASE_URLS."""
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        if not mirror.startswith(("http://", "https://")):
            raise InputError(f"{MIRROR_ENV}: expected a base URL starting with http:// or https://, got {mirror!r}")
        return [f"{mirror.rstrip('/')}/{SUBFOLDERS[name][0]}/{spec.remote}"]
    return [base + spec.remote for base in BASE_URLS[name]]
