"""Read and set how many threads the BLAS under NumPy uses (OpenBLAS only).

Why this exists: NumPy's elementwise functions (exp, log1p, tanh) run on one
core, while its matrix products run on every core BLAS is allowed.  So
``evaluate.log_marginal`` can use two cores for all of its work only by
running two Python threads, each doing its own products with a
single-threaded BLAS (two threads each asking a two-thread BLAS for a
product fight over the cores and lose).  NumPy has no switch for BLAS
threads, so this module calls OpenBLAS's own ``*_set_num_threads`` through
ctypes on the OpenBLAS libraries the process has loaded, found in
``/proc/self/maps`` (Linux).  Elsewhere, or under another BLAS (MKL,
Accelerate), nothing is found: ``blas_threads()`` returns None and
``one_blas_thread()`` changes nothing, and callers use one worker.
"""
import contextlib
import ctypes
import threading

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_lock = threading.Lock()
_held = 0            # how many one_blas_thread() blocks are open (callers may nest or run in threads)
_saved = []          # the thread counts to restore when the last one closes


def _openblas_functions():
    """[(get, set)] for every loaded OpenBLAS, as ctypes functions; [] when none is found."""
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
                found.append((getter, setter))
                break
    return found


_FUNCTIONS = _openblas_functions()


def blas_threads():
    """The thread count of the (first) OpenBLAS under NumPy, or None when it cannot be read."""
    return int(_FUNCTIONS[0][0]()) if _FUNCTIONS else None


@contextlib.contextmanager
def one_blas_thread():
    """Within the block every OpenBLAS found uses one thread; the counts are restored after."""
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
