"""The run folder: one trainer at a time, and no run overwritten by accident.

A training run lives in one folder (``--out``): ``checkpoint.npz``, the
history and the figures.  Two rules keep it whole:

- **one writer**: while a trainer writes the folder it holds a lock file,
  ``.numpyvae.lock``, holding its process id and host name.  A second
  trainer is refused (RunExistsError naming the pid).  A lock whose process
  is dead (it was killed with ``kill -9``, or the machine rebooted) is stale:
  the next trainer takes it over and says so.  (Where there is no ``flock``,
  i.e. on Windows, a lock naming another pid is respected until deleted.)
- **no silent overwrite**: a new run in a folder that already holds one is
  refused unless it is the run being resumed (``--resume``) or the caller
  says ``--force`` (then the old run's files are removed, so the folder
  never mixes two runs).  "The run being resumed" is judged by the file
  itself (``os.path.samefile``), however the two paths name it: through a
  symbolic link, absolute or relative.  The caller checks everything it can
  (options, data, the model's size) between ``refuse_existing_run`` and
  ``remove_old_run``, so a refused option removes nothing.
- **no link followed**: the lock file is opened without following a
  symbolic link, and must be a regular file with one name, so a link planted
  in a run folder cannot make the trainer write someone else's file; the
  run's own files must be regular files (or absent), since saving renames
  over them.

    >>> with RunFolder("runs/digits") as run:        # doctest: +SKIP
    ...     run.refuse_existing_run(force=False)
    ...     trainer = build_and_check_everything()
    ...     run.remove_old_run()
    ...     trainer.run(...)
"""
import errno
import json
import os
import socket
import stat

from .errors import FileError, RunExistsError
from .fileio import describe_os_error, make_folder, remove_orphans

try:
    import fcntl
except ImportError:          # Windows
    fcntl = None

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)      # 0 where the platform has none (Windows)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

LOCK_NAME = ".numpyvae.lock"
CHECKPOINT = "checkpoint.npz"
HISTORY = ("history.csv", "history.json")
FIGURES = ("learning_curves.png", "reconstructions.png", "samples.png", "latent.png", "interpolation.png",
           "manifold.png")
# every file a training run writes into its folder
RUN_FILES = (CHECKPOINT, *HISTORY, *FIGURES)


def process_alive(pid):
    """True if a process with this id may exist on this machine (it may belong to another user)."""
    if pid <= 0:
        return False
    if os.name == "nt":            # there os.kill(pid, 0) would terminate the process: assume it lives
        return True
    try:
        os.kill(pid, 0)            # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:        # it exists, owned by someone else
        return True
    except OSError:                # e.g. an id out of range on this platform
        return False
    return True


def _is_plain(st):
    """A regular file with a single name: writing it cannot reach a file known by another name."""
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1


class RunFolder:
    """The output folder of one training run, locked while it is used.

    folder : the run's folder; created if missing (FileError if impossible).

    Use as a context manager: entering takes the lock (RunExistsError if
    another live trainer holds it), leaving releases it.  ``notes`` collects
    the lines worth telling the user (a stale lock taken over, orphan
    temporary files removed, an old run replaced).

    The lock is the lock file held open with an exclusive ``flock``: the
    operating system drops it when its process ends, however it ends, so a
    lock that can be taken is stale by definition.  Where ``flock`` does not
    exist (Windows) the pid written in the file decides: a live pid holds it.
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self.lock_path = os.path.join(self.folder, LOCK_NAME)
        self.notes = []
        self._fd = None
        self._old = []            # the old run's files, removed by remove_old_run (with --force)

    def path(self, name):
        return os.path.join(self.folder, name)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    # ---- the lock -----------------------------------------------------------------------

    def _owner(self):
        """The pid the lock file names, or None if it is empty, unreadable or garbled."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        except OSError:
            return None
        try:
            owner = json.loads(os.read(fd, 1000).decode("utf-8")) if _is_plain(os.fstat(fd)) else None
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)
        pid = owner.get("pid") if isinstance(owner, dict) else None
        return pid if isinstance(pid, int) and not isinstance(pid, bool) else None

    def _refuse(self, pid):
        who = "another trainer" if pid is None else f"another trainer (pid {pid})"
        stale = "" if fcntl is not None else f" (if none is running, delete {self.lock_path!r})"
        raise RunExistsError(f"--out {self.folder!r}: {who} is writing this folder; wait for it to finish, "
                             f"stop it, or choose another --out{stale}")

    def acquire(self):
        """Take the folder's lock, or raise RunExistsError if a live trainer holds it."""
        make_folder(self.folder, "--out")
        for _ in range(3):   # retried only if the lock file was replaced between our open and our flock
            try:
                # never through a link (O_NOFOLLOW), and a FIFO must not block the open (O_NONBLOCK)
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _NONBLOCK, 0o666)
            except OSError as exc:
                if exc.errno == errno.ELOOP or os.path.islink(self.lock_path):
                    self._refuse_odd_lock("a symbolic link")
                raise FileError(f"--out {self.folder!r}: cannot write in this folder ({describe_os_error(exc)}: "
                                f"the lock file {LOCK_NAME} cannot be created); nothing was changed, "
                                "choose a writable --out") from None
            st = os.fstat(fd)
            if not _is_plain(st):
                os.close(fd)
                self._refuse_odd_lock("a hard link to a file with another name" if stat.S_ISREG(st.st_mode)
                                      else "not a regular file")
            if not self._lock_fd(fd):
                os.close(fd)
                self._refuse(self._owner())
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.lock_path))
            except FileNotFoundError:         # the previous holder removed it just now
                same = False
            if same:
                break
            os.close(fd)
        else:
            self._refuse(None)
        previous = self._owner()
        if previous is not None and previous != os.getpid():
            self.notes.append(f"took over the stale lock of pid {previous} (no longer running) in {self.folder}")
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        except OSError as exc:
            self.release()
            raise FileError(f"--out {self.folder!r}: cannot write the lock file {LOCK_NAME} "
                            f"({describe_os_error(exc)})") from None

    def _refuse_odd_lock(self, what):
        raise FileError(f"--out {self.folder!r}: the lock file {LOCK_NAME} is {what}; the trainer writes "
                        f"its lock only into a regular file of its own, so nothing was changed. "
                        f"Remove {self.lock_path!r} (it may point at someone else's file) or choose another --out")

    def _lock_fd(self, fd):
        """flock the open lock file; False if a live process holds it."""
        if fcntl is None:                     # no flock: a live pid other than ours holds the lock
            pid = self._owner()
            return pid is None or pid == os.getpid() or not process_alive(pid)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise FileError(f"--out {self.folder!r}: cannot lock {LOCK_NAME} ({describe_os_error(exc)})") from None
        return True

    def release(self):
        """Remove the lock file and let go of it (the file goes first, while it is still ours)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.lock_path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    # ---- what the folder holds ----------------------------------------------------------------

    def existing_run(self):
        """The run files already in the folder (names), [] if it holds no run (a dangling link counts)."""
        return [name for name in RUN_FILES if os.path.lexists(self.path(name))]

    def holds(self, checkpoint):
        """True if ``checkpoint`` is this folder's checkpoint file, however the two paths name it."""
        if checkpoint is None:
            return False
        try:
            return os.path.samefile(checkpoint, self.path(CHECKPOINT))
        except (OSError, ValueError):       # either is missing: they cannot be the same file
            return False

    def refuse_existing_run(self, force, resuming=None):
        """Refuse to start a new run over an old one unless ``force``; with ``force``, note the old files.

        resuming : the checkpoint being resumed, or None.  Resuming the run
                   that lives in this folder is not a new run (compared by
                   the file itself, not by its name).
        Nothing is removed here: ``remove_old_run`` does it, once the caller
        has checked everything else.  Returns the names that it will remove.
        """
        if self.holds(resuming):
            if force:
                self.notes.append(f"--force: nothing replaced, the run in {self.folder} is resumed")
            self._old = []
            self.check_run_files()
            return []
        old = self.existing_run()
        if old and not force:
            how = ("resume it with --resume " + self.path(CHECKPOINT)) if CHECKPOINT in old else \
                "choose another --out"
            raise RunExistsError(
                f"--out {self.folder!r} already holds a run ({', '.join(old)}); {how}, "
                "or pass --force to replace it")
        self._old = old
        self.check_run_files(except_=old)
        return list(old)

    def check_run_files(self, except_=()):
        """Refuse a run file that is a link, a folder, a FIFO or a device: saving would rename over it."""
        for name in RUN_FILES:
            if name in except_:
                continue
            try:
                st = os.lstat(self.path(name))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise FileError(f"--out {self.folder!r}: cannot inspect {name} ({describe_os_error(exc)})") from None
            if not stat.S_ISREG(st.st_mode):
                what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                raise FileError(f"--out {self.folder!r}: {name} is {what}; the trainer would replace it, so "
                                "nothing was changed. Move it away, or choose another --out")

    def remove_old_run(self):
        """With --force: remove the old run's files that refuse_existing_run found; returns their names.

        A link among them is removed itself, never what it points to.
        """
        old, self._old = self._old, []
        for name in old:
            try:
                os.unlink(self.path(name))
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise FileError(f"--force: cannot remove {self.path(name)!r} ({describe_os_error(exc)})") from None
        if old:
            self.notes.append(f"--force: removed the old run's {', '.join(old)} from {self.folder}")
        return old

    def remove_orphans(self):
        """Delete temporary files a killed write left beside the run's files; returns how many."""
        removed = [p for name in RUN_FILES for p in remove_orphans(self.path(name))]
        if removed:
            self.notes.append(f"removed {len(removed)} temporary file(s) left by an interrupted write in {self.folder}")
        return len(removed)
