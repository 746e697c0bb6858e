"""Download a dataset file into the cache, verified before it becomes a cached file.

The file is streamed into a temporary file beside its final name, its
length (when the server sent one) and sha256 are checked, and only then is it
renamed into place with os.replace.  A truncated or corrupt download raises
DataError and leaves nothing behind.  Set ``NUMPYVAE_MIRROR`` to a base URL
to fetch every file from ``<mirror>/<dataset>/<filename>`` instead (the tests
point it at a server on 127.0.0.1).
"""
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .errors import DataError

# The original public locations (files as their publishers serve them).
URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/{}.gz",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{}.gz",
    "binarized-mnist": "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/{}",
    "frey-face": "https://cs.nyu.edu/~roweis/data/{}",
}
TIMEOUT = 60


def url_for(name, filename):
    """Where ``filename`` of dataset ``name`` is downloaded from."""
    mirror = os.environ.get("NUMPYVAE_MIRROR")
    if mirror:
        suffix = ".gz" if name in ("mnist", "fashion-mnist") else ""
        return f"{mirror.rstrip('/')}/{name}/{filename}{suffix}"
    return URLS[name].format(filename)


def _progress(done, total, label):
    if total:
        filled = int(30 * done / total)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done / 1e6:.1f}/{total / 1e6:.1f} MB")
    else:
        sys.stderr.write(f"\r{label} {done / 1e6:.1f} MB")
    sys.stderr.flush()


def fetch(name, filename, folder, progress=True):
    """Download ``filename`` of ``name`` into ``folder/<subfolder>/``, verify it, return its path."""
    from .datasets import SUBFOLDERS, verify
    url = url_for(name, filename)
    target_dir = Path(folder) / SUBFOLDERS[name][0]
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / (filename + (".gz" if url.endswith(".gz") else ""))
    # the temporary name keeps the .gz ending so verify() treats it like the final file
    fd, tmp = tempfile.mkstemp(dir=target_dir, prefix="." + target.name + ".",
                               suffix=".part" + (".gz" if target.name.endswith(".gz") else ""))
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
                    total = int(response.headers.get("Content-Length") or 0)
                    done = 0
                    while True:
                        chunk = response.read(1 << 16)
                        if not chunk:
                            break
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            _progress(done, total, f"downloading {target.name}")
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                raise DataError(f"{url}: download failed ({exc})") from None
            finally:
                if progress:
                    sys.stderr.write("\n")
        if total and done != total:
            raise DataError(f"{url}: download truncated, got {done} of {total} bytes")
        verify(tmp, name, filename)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target

