"""Download one file into the cache so that only a complete, verified file ever lands there.

    fetch(urls, target, check, max_bytes=...)     # -> target, or DataError

For each URL in turn: stream the response into a temporary file in the
target's folder (a name starting with "." that the loaders never look for),
compare its length with the server's Content-Length, let ``check(tmp, url)``
verify its checksum, and only then rename it into place with ``os.replace``
(atomic: the target is either absent or complete).  On any failure the
temporary file is deleted and the next URL is tried; when all fail, the
DataError names each URL and what went wrong.  A folder that cannot be
written (read-only, full, not a folder) stops at once, naming the folder.

Every stage has a bound in time and size, so a bad server cannot hang a
run or fill a disk:

- connecting and receiving the response headers: ``timeout`` seconds in all
  (a watchdog shuts the socket down, so a server dripping its headers one
  byte at a time is cut off too);
- the body: silence longer than ``timeout`` fails; and once ``timeout``
  seconds have passed, the average rate since the start must stay at least
  ``MIN_RATE`` bytes/s (a server dripping a byte every few seconds fails
  within about 2 * ``timeout``);
- size: more than ``max_bytes`` (announced or received) is refused.

A download thus ends within about ``timeout + max(timeout, max_bytes / MIN_RATE) + timeout``
seconds, whatever the server does.

Why not pooch?  pooch (what ``scipy.datasets`` uses) does checksummed, cached
downloads well, and was considered.  It does not serve this package better:

- it would be a third runtime dependency, and brings requests, urllib3, idna,
  charset-normalizer, certifi, platformdirs and packaging with it, for a
  package whose rule is numpy and matplotlib only;
- it checks the hash of the file *as downloaded*.  This package checks the
  sha256 of the *uncompressed content*, so that the gzip'd copies on the
  servers, a user's own plain copy, Debian's re-compressed Fashion-MNIST and
  a mirror's copy all verify against one published value; with pooch we
  would need one hash per server and still our own check for local files;
- one URL per file (retrying the same one); falling back across MNIST's
  three locations would still be our loop;
- its cache is one folder; the search of ``folder``, ``NUMPYVAE_DATA``, the
  cache and system folders (Debian's ``/usr/share/datasets``) stays ours;
- its timeout is requests' per-read socket timeout, so the byte-dripping
  server still needs our own deadline; its ``Decompress`` processor copies
  a gzip to disk without any size bound;
- progress goes through tqdm, not the package's one ProgressBar;
- testing against a local server works the same either way.

So the downloader stays on the standard library (urllib: proxies and
redirects as usual), about a hundred lines that a student can read.
"""
import http.client
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DataError
from ..fileio import _umask
from ..progress import ProgressBar

TIMEOUT = 30          # seconds: for the headers, for any silence, and the grace period before MIN_RATE applies
MIN_RATE = 10_000     # bytes per second, on average, after the first TIMEOUT seconds
CHUNK = 1 << 16       # bytes per read


def fetch(urls, target, check, progress=None, timeout=None, max_bytes=1 << 30,
          folder_hint="choose another folder"):
    """Download the first URL of ``urls`` that gives a verified file to Path ``target``; return it.

    check       : callable(tmp_path, url) raising DataError if the file is wrong.
    progress    : True, False, or None (a progress bar only when stderr is a terminal).
    timeout     : seconds (default TIMEOUT); see the module docstring for what it bounds.
    max_bytes   : refuse a response longer than this.
    folder_hint : the fix to suggest when the target's folder cannot be written.
    """
    target = Path(target)
    timeout = TIMEOUT if timeout is None else timeout
    errors = []
    for url in urls:
        try:
            _fetch_one(url, target, check, progress, timeout, max_bytes, folder_hint)
            return target
        except _FolderError as exc:          # the next URL would fail the same way
            raise DataError(str(exc)) from None
        except DataError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    raise DataError(f"could not download {target.name} from any of {len(errors)} locations:\n  "
                    + "\n  ".join(str(e) for e in errors))


class _FolderError(Exception):
    """The target's folder cannot take the file (not a DataError: it must not be retried)."""


class _WriteFailed(Exception):
    """Writing the temporary file failed (disk full, quota): args[0] is the OSError."""


def _folder_error(folder, exc, hint):
    return _FolderError(f"{folder}: cannot write the download there ({exc.strerror or exc}); {hint}")


def _fetch_one(url, target, check, progress, timeout, max_bytes, folder_hint):
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:                   # not a folder, no permission, read-only
        raise _folder_error(target.parent, exc, folder_hint) from None
    try:
        with os.fdopen(fd, "wb") as out:
            got, expected = _stream(url, out, progress, timeout, max_bytes, target.name)
        if expected is not None and got != expected:
            raise DataError(f"{url}: download truncated: expected {expected} bytes, got {got}")
        check(Path(tmp), url)
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes 0600: a shared NUMPYVAE_CACHE needs a normal file's mode
        os.replace(tmp, target)
    except _WriteFailed as failed:
        raise _folder_error(target.parent, failed.args[0], folder_hint) from None
    except OSError as exc:                   # closing (flushing) or renaming in the folder failed
        raise _folder_error(target.parent, exc, folder_hint) from None
    finally:                                 # including KeyboardInterrupt: never leave a partial file
        if os.path.exists(tmp):
            os.unlink(tmp)


def _stream(url, out, progress, timeout, max_bytes, label):
    """Copy the body at ``url`` into the open file ``out``; return (bytes got, Content-Length or None)."""
    got, expected = 0, None
    start = time.monotonic()
    try:
        response = _open(url, timeout)
        with response:
            length = response.headers.get("Content-Length", "")
            expected = int(length) if length.isdigit() else None
            if expected is not None and expected > max_bytes:
                raise DataError(f"{url}: the server announces {expected:,} bytes, more than the {max_bytes:,} "
                                "this file can have")
            bar = ProgressBar(None if expected is None else expected // 1000, f"downloading {label}", progress)
            try:
                while piece := response.read1(CHUNK):     # returns as soon as some bytes arrive
                    try:
                        out.write(piece)
                    except OSError as exc:                # disk full, quota: not the server's fault
                        raise _WriteFailed(exc) from None
                    got += len(piece)
                    bar.update(got // 1000, "kB")
                    _check_limits(url, got, max_bytes, time.monotonic() - start, timeout)
            finally:
                bar.close()
    except DataError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError, OverflowError) as exc:
        raise DataError(f"{url}: download failed ({exc})") from None     # OverflowError: a port above 65535
    return got, expected


def _check_limits(url, got, max_bytes, elapsed, timeout):
    """DataError if the body is longer than max_bytes, or slower than MIN_RATE after the grace period."""
    if got > max_bytes:
        raise DataError(f"{url}: more than the {max_bytes:,} bytes this file can have; the download was not kept")
    if elapsed > timeout and got < MIN_RATE * elapsed:
        raise DataError(f"{url}: download too slow: {got:,} bytes in {elapsed:.1f} s, below the minimum of "
                        f"{MIN_RATE:,} bytes/s; retry later or set NUMPYVAE_MIRROR to another server")


# ---- the request, with a deadline on the headers ---------------------------------------------

def _open(url, timeout):
    """urlopen(url) that fails if the response headers are not all in within ``timeout`` seconds.

    The socket timeout bounds each silence; the watchdog bounds the total, by
    shutting down the connection's socket, which wakes the blocked read.
    (http.client then takes the cut for the end of the headers, so whether
    the watchdog fired is what decides, not what urlopen returned.)
    """
    connections = []
    opener = urllib.request.build_opener(_RecordingHTTP(connections), _RecordingHTTPS(connections))
    lock = threading.Lock()
    state = {"headers_in": False, "cut": False}

    def watchdog():
        with lock:
            if state["headers_in"]:
                return
            state["cut"] = True
            for conn in connections:
                if conn.sock is not None:
                    try:
                        conn.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    timer = threading.Timer(timeout, watchdog)
    timer.daemon = True
    timer.start()
    response, failure = None, None
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "numpyvae"})
        response = opener.open(request, timeout=timeout)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError, OverflowError) as exc:
        failure = exc
    finally:
        timer.cancel()
        with lock:
            state["headers_in"] = True
    if state["cut"]:
        if response is not None:
            response.close()
        raise DataError(f"{url}: download failed (no complete response within {timeout} s)")
    if failure is not None:
        raise failure
    return response


class _Recording:
    """Mixin for urllib's HTTP(S) handlers: append each connection they open to ``connections``."""

    def __init__(self, connections, **kwargs):
        super().__init__(**kwargs)
        self.connections = connections

    def do_open(self, http_class, req, **kwargs):
        def connect(host, **conn_kwargs):
            conn = http_class(host, **conn_kwargs)
            self.connections.append(conn)
            return conn
        return super().do_open(connect, req, **kwargs)


class _RecordingHTTP(_Recording, urllib.request.HTTPHandler):
    pass


class _RecordingHTTPS(_Recording, urllib.request.HTTPSHandler):
    pass
