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
import stat
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


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))


def refuse_non_regular(path, what=None):
    """FileError if ``path`` exists and is not a regular file (a link, a folder, a FIFO, a device).

    The rename of atomic_write would replace such a thing (``/dev/full`` as
    root, a link to another file) instead of writing into it: it is refused.
    """
    try:
        mode = os.lstat(path).st_mode
    except (OSError, ValueError):              # absent (a new name), or unreachable: the write will say why
        return
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise FileError(f"{what or repr(path)}: is {kind}, expected a regular file or a new name "
                    "(the file is written beside it and renamed into place, which would replace it)")


def _write_file(fd, data, durable):
    """Write ``data`` (bytes, or a function that writes into a binary file) to the open file ``fd``, close it;
    with ``durable``, wait until it is on disk."""
    with os.fdopen(fd, "wb") as f:
        if callable(data):
            data(f)
        else:
            f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())


def atomic_write(path, data, durable=True):
    """Write ``data`` to ``path`` via a temporary file and os.replace.

    data    : bytes, or a function ``write(f)`` that writes into the open binary
              temporary file (a large checkpoint is so never held twice in memory).

    durable : flush the file to the disk before the rename (os.fsync), so that
              even a power cut leaves the old file or the new one.  Costs a
              disk round trip (milliseconds to tens of milliseconds); False
              still survives a killed process, which is enough for a file
              that can be rebuilt (the history, kept inside the checkpoint too).

    The file gets the usual permissions (0666 minus the umask, e.g. 0644), as
    a file written with ``open`` would.  Raises FileError when the disk is full,
    the folder is read-only, or ``path`` names a folder; the old file is then
    untouched and no temporary file is left behind.  ``path`` must be a
    regular file or a new name: a symbolic link, a FIFO or a device
    (``/dev/full``, ``/dev/stdout``) is refused, since the rename would
    replace it rather than write into it.
    """
    path = os.fspath(path)
    if not path:
        raise FileError("path: expected a file name, got an empty string")
    if os.path.isdir(path):
        raise FileError(f"{path!r}: is a folder, expected a file name")
    refuse_non_regular(path)
    folder = make_folder(os.path.dirname(os.path.abspath(path)))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=TMP_SUFFIX)
    except OSError as exc:
        raise FileError(f"cannot write {path!r} ({describe_os_error(exc)})") from None
    try:
        _write_file(fd, data, durable)
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes 0600; give it a normal file's mode
        refuse_non_regular(path)             # again: it may have been replaced while we wrote
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
