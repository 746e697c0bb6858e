"""A data file's content, read with bounded memory and checked against its sha256 and size.

A file may be stored plain or gzip'd; which one is told by its first two
bytes (the gzip magic 1f 8b), not by its name.  The content is always
*streamed*: decompressed a piece at a time, counted and hashed as it comes,
so a file never gets to claim more memory than the caller allowed.  A 2 MB
gzip of zeros that would inflate to gigabytes is refused after reading one
byte past its limit (the limit being the expected size from the registry,
or what a header declares once that is checked against a cap).

Every failure -- unreadable file, corrupt or truncated gzip, too long, too
short, wrong checksum -- is a DataError whose message starts with the file
(or the URL it came from).
"""
import gzip
import hashlib
import os
import zlib

from ..errors import DataError, InputError
from ..validate import check_positive_int

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20                  # bytes decompressed per step
MAX_BYTES = 1 << 27              # default cap (134 MB; the largest real file has 78.4 MB) when no size is known


class Content:
    """The uncompressed bytes of one file, read in bounded pieces and hashed as they go.

        with Content(path) as c:
            head = c.read(16)                  # at most 16 bytes
            body = c.read_exactly(n)           # a bytearray of up to n bytes
            c.n_read, c.sha256.hexdigest()     # everything read so far

    where : what to name in error messages (default: the path).
    """

    def __init__(self, path, where=None):
        if not isinstance(path, (str, os.PathLike)):      # an int would be taken as a file descriptor
            raise InputError(f"path: expected a file path (str or os.PathLike), got {type(path).__name__}")
        self.where = where or path
        if os.path.exists(path) and not os.path.isfile(path):     # a folder, a FIFO (would block), /dev/zero
            raise DataError(f"{self.where}: not a regular file")
        self.n_read = 0
        self.sha256 = hashlib.sha256()
        self.compressed = False
        try:
            self._file = open(path, "rb")
            self.compressed = self._file.read(2) == GZIP_MAGIC
            self._file.seek(0)
        except (OSError, ValueError) as exc:          # missing, a folder, no permission, a NUL in the name
            if hasattr(self, "_file"):
                self._file.close()
            raise DataError(f"{self.where}: cannot read the file ({getattr(exc, 'strerror', None) or exc})") from None
        self._stream = gzip.GzipFile(fileobj=self._file, mode="rb") if self.compressed else self._file

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._stream.close()
        self._file.close()

    def _failed(self, exc):
        """The DataError for an error raised while decompressing or reading."""
        if self.compressed:
            return DataError(f"{self.where}: corrupt or truncated gzip data ({exc})")
        return DataError(f"{self.where}: cannot read the file ({getattr(exc, 'strerror', None) or exc})")

    def read(self, n):
        """At most ``n`` bytes (fewer only at the end of the content; b"" after it)."""
        try:
            piece = self._stream.read(n)
        except (OSError, EOFError, zlib.error) as exc:     # bad header, truncated stream, bad CRC, I/O error
            raise self._failed(exc) from None
        self.n_read += len(piece)
        self.sha256.update(piece)
        return piece

    def read_exactly(self, n):
        """A bytearray of the next ``n`` bytes, allocated once; shorter only if the content ends first.

        ``n`` must be a size the caller trusts (from the registry, or a
        header already checked against a cap): it is allocated up front.
        """
        buffer = bytearray(n)
        view = memoryview(buffer)
        filled = 0
        while filled < n:
            piece = self.read(min(CHUNK, n - filled))
            if not piece:
                break
            view[filled:filled + len(piece)] = piece
            filled += len(piece)
        view.release()
        del buffer[filled:]
        return buffer

    def read_to_end(self, limit):
        """All the remaining content as a bytearray; DataError as soon as it exceeds ``limit`` bytes."""
        buffer = bytearray()
        while piece := self.read(min(CHUNK, limit + 1 - len(buffer))):
            buffer += piece
            if len(buffer) > limit:
                raise DataError(f"{self.where}: more than {limit:,} bytes once uncompressed, expected at most "
                                f"{limit:,}; pass a larger max_bytes if the file is really that large")
        return buffer

    def at_end(self):
        """True if no content is left (reads one byte to find out)."""
        return not self.read(1)


def read_content(path, max_bytes=MAX_BYTES, where=None):
    """The whole uncompressed content of a file (a bytearray), refused beyond ``max_bytes``."""
    max_bytes = check_positive_int("max_bytes", max_bytes, minimum=0)
    with Content(path, where) as c:
        return c.read_to_end(max_bytes)


def _check_size_and_sha256(c, complete, spec, name, hint):
    """After reading: DataError unless the content had exactly spec.size bytes with sha256 spec.sha256."""
    if not complete:
        raise DataError(f"{c.where}: more than the {spec.size:,} bytes expected once uncompressed — "
                        f"the file is corrupt or not the {name} file; {hint}")
    if c.n_read != spec.size:
        raise DataError(f"{c.where}: {c.n_read:,} bytes once uncompressed, expected {spec.size:,} — "
                        f"the file is truncated or not the {name} file; {hint}")
    got = c.sha256.hexdigest()
    if got != spec.sha256:
        raise DataError(f"{c.where}: sha256 mismatch, expected {spec.sha256}, got {got} "
                        f"— the file is corrupt or not the {name} file; {hint}")


def read_verified(path, spec, name, where=None, hint="delete it and retry"):
    """The content of a registry file (a bytearray of spec.size bytes), after checking size and sha256.

    Memory: one buffer of spec.size bytes plus one CHUNK, whatever the file claims.
    """
    with Content(path, where) as c:
        content = c.read_exactly(spec.size)
        complete = c.at_end()
        _check_size_and_sha256(c, complete, spec, name, hint)
    return content


def verify(path, spec, name, where=None, hint="delete it and retry"):
    """Check a registry file's size and sha256 without keeping its content (memory: one CHUNK)."""
    with Content(path, where) as c:
        while c.n_read <= spec.size and c.read(CHUNK):
            pass
        _check_size_and_sha256(c, c.n_read <= spec.size, spec, name, hint)
