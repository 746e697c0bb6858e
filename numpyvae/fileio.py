"""Writing files so that nothing is ever half-written.

``atomic_write`` writes to a temporary file in the destination's folder,
flushes it to disk, and renames it over the destination: a reader sees the
old file or the new one, never a mix, even if the process is killed.  The
temporary file is named ``.<name>.<random>.tmp``; ``remove_orphans`` deletes
the ones a killed process left behind.

Errors of the file system (disk full, read-only folder, a path that is a
folder) become :class:`numpyvae.errors.FileError`, naming the path.
"""
import errno
import glob
import os
import tempfile

from .errors import FileError

TMP_SUFFIX = ".tmp"


def _umask():
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def describe_os_error(exc):
    """A short human reason for an OSError."""
    reasons = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
               errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
               errno.EPERM: "permission denied", errno.EISDIR: "it is a folder",
               errno.ENOTDIR: "a part of the path is a file, not a folder"}
    return reasons.get(exc.errno, exc.strerror or str(exc))


def make_folder(folder, what="folder"):
    """Create ``folder`` (and its parents) if needed; FileError if that is impossible."""
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FileError(f"{what} {folder!r}: exists and is a file, expected a folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise FileError(f"{what} {folder!r}: cannot create it ({describe_os_error(exc)})") from None
    except ValueError as exc:                # a NUL character in the name
        raise FileError(f"{what} {folder!r}: not a valid folder name ({exc})") from None
    return folder


def _write_file(fd, data, durable):
    """Write all of ``data`` to the open file ``fd`` and close it; with ``durable``, wait until it is on disk."""
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())


def atomic_write(path, data, durable=True):
    """Write ``data`` (bytes) to ``path`` via a temporary file and os.replace.

    durable : flush the file to the disk before the rename (os.fsync), so that
              even a power cut leaves the old file or the new one.  Costs a
              disk round trip (milliseconds to tens of milliseconds); False
              still survives a killed process, which is enough for a file
              that can be rebuilt (the history, kept inside the checkpoint too).

    The file gets the usual permissions (0666 minus the umask, e.g. 0644), as
    a file written with ``open`` would.  Raises FileError when the disk is full,
    the folder is read-only, or ``path`` names a folder; the old file is then
    untouched and no temporary file is left behind.
    """
    path = os.fspath(path)
    if not path:
        raise FileError("path: expected a file name, got an empty string")
    if os.path.isdir(path):
        raise FileError(f"{path!r}: is a folder, expected a file name")
    folder = make_folder(os.path.dirname(os.path.abspath(path)))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=TMP_SUFFIX)
    except OSError as exc:
        raise FileError(f"cannot write {path!r} ({describe_os_error(exc)})") from None
    try:
        _write_file(fd, data, durable)
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes 0600; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise FileError(f"cannot write {path!r} ({describe_os_error(exc)})") from None
        raise
    return path


def remove_orphans(path):
    """Delete temporary files that an interrupted ``atomic_write(path, ...)`` left behind.

    Returns the list of removed paths.  Only names of the exact form
    ``.<basename>.<random>.tmp`` beside ``path`` are touched.
    """
    path = os.fspath(path)
    folder, base = os.path.split(os.path.abspath(path))
    removed = []
    for tmp in glob.glob(os.path.join(glob.escape(folder), "." + glob.escape(base) + ".*" + TMP_SUFFIX)):
        try:
            os.unlink(tmp)
            removed.append(tmp)
        except OSError:
            pass
    return removed
