"""Read and set how many threads the BLAS under NumPy uses.

Why this exists: NumPy's elementwise functions (exp, log1p, tanh) run on one
core, while its matrix products run on every core BLAS is allowed.  So a
computation uses every core for all of its work only by running several
Python threads, each doing its own products with a single-threaded BLAS
(two threads each asking a two-thread BLAS for a product fight over the
cores and lose).  ``evaluate.log_marginal`` and the many-core training step
(numpyvae/parallel.py) work that way.  NumPy has no switch for BLAS threads,
so this module finds the BLAS libraries the process has loaded and calls
their own ``set_num_threads``, in one of two ways:

* ``threadpoolctl`` (an optional dependency: ``pip install "numpyvae[threads]"``):
  OpenBLAS, MKL, BLIS and FlexiBLAS, on Linux, macOS and Windows;
* without it, ctypes on the OpenBLAS libraries listed in ``/proc/self/maps``
  (Linux with OpenBLAS only, which is what NumPy's wheels for Linux carry).

Where neither finds a BLAS it can steer (Apple's Accelerate, which NumPy's
wheels for recent macOS use, has no thread switch; or another platform
without threadpoolctl), ``blas_threads()`` returns None, ``one_blas_thread()``
changes nothing, and callers fall back to one worker: the serial path, the
same numbers, only slower.  ``controller()`` says which way was found.
"""
import contextlib
import ctypes
import threading

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_lock = threading.Lock()
_held = 0            # how many one_blas_thread() blocks are open (callers may nest or run in threads)
_saved = []          # the thread counts to restore when the last one closes


def _threadpoolctl_functions():
    """[(get, set, library path)] for every BLAS threadpoolctl finds; [] when it is absent or finds none."""
    try:
        from threadpoolctl import ThreadpoolController
        found = ThreadpoolController().select(user_api="blas").lib_controllers
    except Exception:            # not installed, too old (before 3.0), or failing on this platform: the fallback
        return []
    return [(lambda c=c: int(c.num_threads), c.set_num_threads, str(c.filepath)) for c in found]


def _openblas_functions():
    """[(get, set, library path)] for every loaded OpenBLAS, as ctypes functions; [] when none is found."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.split()[-1].lower()}
    except OSError:
        return []
    found = []
    for path in sorted(p for p in paths if ".so" in p):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(lib, name, None)
            getter = getattr(lib, name.replace("set_", "get_"), None)
            if setter is not None and getter is not None:
                getter.restype, setter.argtypes = ctypes.c_int, [ctypes.c_int]
                found.append((getter, setter, path))
                break
    return found


def _find(use_threadpoolctl=True):
    """(controller name, functions): threadpoolctl's when it finds a BLAS, else ctypes on OpenBLAS, else none."""
    if use_threadpoolctl:
        found = _threadpoolctl_functions()
        if found:
            return "threadpoolctl", _numpy_first(found)
    found = _openblas_functions()
    return ("ctypes-openblas", _numpy_first(found)) if found else (None, [])


def _numpy_first(found):
    """NumPy's own BLAS first (another library, e.g. PyTorch's, may be loaded too): its count is the one read."""
    return sorted(found, key=lambda f: "numpy" not in f[2].lower())


_CONTROLLER, _found = _find()
_FUNCTIONS = [(get, set_threads) for get, set_threads, _ in _found]      # NumPy's BLAS first
LIBRARIES = [path for _, _, path in _found]                              # their files, in the same order


def controller():
    """How BLAS threads are steered here: "threadpoolctl", "ctypes-openblas", or None (they cannot be)."""
    return _CONTROLLER


def blas_threads():
    """The thread count of NumPy's BLAS, or None when it cannot be read (then it cannot be set either)."""
    return int(_FUNCTIONS[0][0]()) if _FUNCTIONS else None


@contextlib.contextmanager
def one_blas_thread():
    """Within the block every BLAS found uses one thread; the counts are restored after.

    The setting is process-wide: every thread's products use one thread while any block is open.
    """
    global _held
    with _lock:
        if _held == 0:
            _saved[:] = [int(get()) for get, _ in _FUNCTIONS]
            for _, set_threads in _FUNCTIONS:
                set_threads(1)
        _held += 1
    try:
        yield
    finally:
        with _lock:
            _held -= 1
            if _held == 0:
                for (_, set_threads), n in zip(_FUNCTIONS, _saved):
                    set_threads(n)


@contextlib.contextmanager
def n_blas_threads(n):
    """Within the block every BLAS found uses n threads (at most the count it started with); restored after.

    For benchmarks that compare thread counts in one process; it does not nest with ``one_blas_thread``.
    """
    saved = [int(get()) for get, _ in _FUNCTIONS]
    for _, set_threads in _FUNCTIONS:
        set_threads(int(n))
    try:
        yield
    finally:
        for (_, set_threads), m in zip(_FUNCTIONS, saved):
            set_threads(m)
