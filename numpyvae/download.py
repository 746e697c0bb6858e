"""Download one file into the cache so that only a verified file ever lands there.

    fetch(urls, target, check)     # -> target, or DataError

For each URL in turn: stream the response into a temporary file in the
target's folder (a name starting with "." that the loaders never look for),
compare its length with the server's Content-Length, let ``check(tmp, url)``
verify its checksum, and only then rename it into place with ``os.replace``
(atomic: the target is either absent or complete).  On any failure the
temporary file is deleted and the next URL is tried; when all fail, DataError
names each URL and what went wrong.  Only the standard library (urllib) is
used; every blocking network operation has a timeout of ``TIMEOUT`` seconds.
"""
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .errors import DataError

TIMEOUT = 30          # seconds, for connecting and for each read
CHUNK = 1 << 16       # bytes per read


def fetch(urls, target, check, progress=True, timeout=None):
    """Download the first URL of ``urls`` that gives a verified file to Path ``target``; return it.

    check    : callable(tmp_path, url) raising DataError if the file is wrong.
    progress : draw a text progress bar on stderr.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        try:
            _fetch_one(url, target, check, progress, TIMEOUT if timeout is None else timeout)
            return target
        except DataError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    raise DataError(f"could not download {target.name} from any of {len(errors)} locations:\n  "
                    + "\n  ".join(str(e) for e in errors))


def _fetch_one(url, target, check, progress, timeout):
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            got, expected = _stream(url, out, progress, timeout, target.name)
        if expected is not None and got != expected:
            raise DataError(f"{url}: download truncated: expected {expected} bytes, got {got}")
        check(Path(tmp), url)
        os.replace(tmp, target)
    except BaseException:            # including KeyboardInterrupt: never leave a partial file
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _stream(url, out, progress, timeout, label):
    """Copy the body at ``url`` into the open file ``out``; return (bytes got, Content-Length or None)."""
    bar = ProgressBar(f"downloading {label}") if progress else None
    got, expected = 0, None
    request = urllib.request.Request(url, headers={"User-Agent": "numpyvae"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length", "")
            expected = int(length) if length.isdigit() else None
            while chunk := response.read(CHUNK):
                out.write(chunk)
                got += len(chunk)
                if bar:
                    bar.update(got, expected)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        raise DataError(f"{url}: download failed ({exc})") from None
    finally:
        if bar:
            bar.close()
    return got, expected


class ProgressBar:
    """``label [###############...............]  50%  4.9 MB of 9.7 MB`` redrawn in place on stderr."""

    def __init__(self, label, width=30, stream=None):
        self.label, self.width, self.stream = label, width, stream or sys.stderr
        self.last = None

    def update(self, done, total):
        if total:
            filled = min(self.width, self.width * done // total)
            text = (f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                    f"{100 * done // total:3d}%  {_size(done)} of {_size(total)}")
        else:
            text = f"\r{self.label} {_size(done)}"
        if text != self.last:            # redraw only when something visible changed
            self.stream.write(text)
            self.stream.flush()
            self.last = text

    def close(self):
        if self.last is not None:
            self.stream.write("\n")
            self.stream.flush()


def _size(n_bytes):
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.1f} kB"
