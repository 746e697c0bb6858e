"""A training step on every core: the batch split across worker threads.

The step a student steps through is the serial one, ``VAE.loss_and_grads``
then ``Optimizer.step``.  This module wraps exactly that code; it adds no
formula.  Why it is needed at all: NumPy's matrix products use every core,
but its elementwise functions (exp, log1p, the ReLU, the optimizer's update)
use one, so a step on one thread stops getting faster beyond two or three
cores.  Here, with W workers (numpyvae/blas_threads.py: each on a
one-thread BLAS, like ``evaluate.log_marginal``):

1. eps is drawn on the calling thread from the caller's generator, exactly as
   the serial step draws it, so the random numbers do not depend on W;
2. the batch is cut into W contiguous shares of rows; worker w runs the
   serial ``loss_and_grads`` on its share, adding its gradient into its own
   buffers (the model's parameters are only read: numpyvae/vae.py, Threads);
3. the gradient of the batch mean is the shares' gradients weighted by their
   sizes, g = sum_w (B_w / B) g_w, summed in the order w = 0, 1, ...: the
   same numbers bit for bit at a fixed W, and the serial ones up to float
   rounding at another W (tests/test_parallel.py);
4. the optimizer's update is split over the parameters' elements
   (``Optimizer.step(grads, workers=...)``): the same arithmetic element by
   element, so the same numbers as the serial update, bit for bit.

With one worker the step *is* the serial step (same calls, same numbers).
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .blas_threads import blas_threads, one_blas_thread
from .errors import InputError
from .estimators import ESTIMATORS, Estimate
from .validate import check_choice, check_float, check_positive_int
from .vae import VAE

MAX_WORKERS = 256            # the most threads asked for (each holds a copy of the gradient buffers)


def default_workers():
    """As many workers as BLAS has threads (OpenBLAS's default: the cores); 1 where they cannot be set."""
    return min(blas_threads() or 1, MAX_WORKERS)


def check_workers(workers):
    """None -> ``default_workers()``; else an integer from 1 to MAX_WORKERS (InputError naming workers)."""
    if workers is None:
        return default_workers()
    if check_positive_int("workers", workers) > MAX_WORKERS:
        raise InputError(f"workers: expected an integer from 1 to {MAX_WORKERS}, got {workers!r}")
    return int(workers)


class Workers:
    """n threads that run jobs: the calling thread runs the first, a pool of n - 1 the others."""

    def __init__(self, n):
        self.n = check_workers(n)
        self._pool = ThreadPoolExecutor(self.n - 1) if self.n > 1 else None
        self._pieces = {}

    def map(self, fn, items):
        """[fn(item) for item in items], items[0] on this thread (for speed: one hand-over fewer), the rest
        on the pool; every job finishes before the first exception (by position) is raised."""
        futures = [self._pool.submit(fn, item) for item in items[1:]] if len(items) > 1 else []
        results, error = [None] * len(items), None
        try:
            results[0] = fn(items[0])
        except BaseException as exc:          # Ctrl-C included: the other jobs are waited for first
            error = exc
        for i, f in enumerate(futures, 1):
            try:
                results[i] = f.result()
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error
        return results

    def over_elements(self, arrays, fn):
        """Call fn(name, start, stop) for every element range of ``arrays`` (dict name -> C-contiguous
        array), the elements of all arrays cut into n contiguous runs of nearly equal length, one per
        worker.  The same n always gives the same runs."""
        key = tuple((name, a.size) for name, a in arrays.items())
        if key not in self._pieces:
            self._pieces[key] = split_elements(key, self.n)
        self.map(lambda pieces: [fn(*piece) for piece in pieces], self._pieces[key])

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def split_elements(sizes, n):
    """[(name, size)] -> n lists of (name, start, stop): the concatenated elements cut into n runs."""
    total = sum(size for _, size in sizes)
    cuts = [total * w // n for w in range(n + 1)]
    runs, offset = [[] for _ in range(n)], 0
    for name, size in sizes:
        for w in range(n):
            start, stop = max(cuts[w], offset), min(cuts[w + 1], offset + size)
            if start < stop:
                runs[w].append((name, start - offset, stop - offset))
        offset += size
    return runs


def share_rows(batch, n):
    """The rows of each worker's share: n contiguous slices of nearly equal size (the first ones larger)."""
    edges = [batch * w // n for w in range(n + 1)]
    return [slice(edges[w], edges[w + 1]) for w in range(n)]


class ParallelStep:
    """``loss_and_grads`` for a VAE with the batch split across ``workers`` threads.

    model   : a numpyvae.VAE (its parameters are read, never written, here).
    workers : threads, each on a one-thread BLAS while a step runs; None:
              ``default_workers()``.  A batch smaller than ``workers`` uses one
              worker per row.

    ``loss_and_grads(x, eps=, rng=, estimator=, k=, beta=)`` has the
    serial method's arguments and returns (loss, grads) as it does; grads are
    this object's buffers, overwritten by the next call.  The batch's
    Estimate is left in ``model.last_estimate`` as the serial call leaves it.
    ``step(optimizer, grads)`` applies the update split over the workers.
    One step at a time: the buffers are this object's (Trainer.train_step
    holds the model's lock across a step).
    """

    def __init__(self, model, workers=None):
        if not isinstance(model, VAE):
            raise InputError(f"model: expected a numpyvae.VAE, got {type(model).__name__}")
        self.model, self.n = model, check_workers(workers)
        self.workers = Workers(self.n)
        # one set of buffers per worker (worker w adds its share's gradient into its own), all zero between steps
        self.buffers = [model.new_grad_buffers() for _ in range(self.n)]
        self.grads = model.new_grad_buffers()                # the batch's gradient, summed from the shares
        self._dirty = False                                  # a failed step may have left buffers non-zero

    def loss_and_grads(self, x, eps=None, rng=None, estimator="analytic", k=1, beta=1.0):
        model = self.model
        x = model.check_x(x)
        check_choice("estimator", estimator, ESTIMATORS)      # refused before eps is drawn, as the serial step does
        check_float("beta", beta, lo=0.0, hi=1e6)
        B = x.shape[0]
        eps = model.checked_eps(eps, rng, k, B)              # drawn here, as the serial step draws it
        rows = share_rows(B, min(self.n, B))
        if self._dirty:
            for buffers in self.buffers:
                for g in buffers.values():
                    g[...] = 0
        self._dirty = True

        errors = np.geterr()                                 # the caller's np.errstate, for the workers too

        def share(w):
            r = rows[w]
            with np.errstate(**errors):
                return model.loss_and_grads(x[r], eps=eps[:, r], estimator=estimator, beta=beta,
                                            grads=self.buffers[w], return_estimate=True)[2]

        if len(rows) == 1:
            estimates = [share(0)]
        else:
            with one_blas_thread():                          # for speed: each worker's products on its own core
                estimates = self.workers.map(share, list(range(len(rows))))
        weights = [(r.stop - r.start) / B for r in rows]
        used = self.buffers[:len(rows)]

        def reduce(name, start, stop):
            # g = sum_w (B_w / B) g_w over this run of elements, then the worker buffers zeroed for the next step
            # (for speed: the run is read once, while it is in the cache, instead of in a separate zeroing pass)
            out = self.grads[name].reshape(-1)[start:stop]
            for w, (buffers, c) in enumerate(zip(used, weights)):
                g = buffers[name].reshape(-1)[start:stop]
                if w == 0:
                    np.multiply(g, c, out=out)
                else:
                    g *= c
                    out += g
                g[...] = 0

        self.workers.over_elements(self.grads, reduce)
        self._dirty = False
        est = _concatenate(estimates)
        model.last_estimate = est
        return -float(np.mean(est.elbo)), self.grads

    def step(self, optimizer, grads):
        """optimizer.step(grads), its update split over this step's workers."""
        with one_blas_thread():          # for speed: the check's dot products must not wake BLAS's own threads
            optimizer.step(grads, workers=self.workers)

    def close(self):
        """End the worker threads (the object cannot step after this)."""
        self.workers.close()

    def __getstate__(self):                  # copy.deepcopy, pickle: a fresh pool, not the threads
        raise TypeError("a ParallelStep holds threads: make a new one for the copy")


def _concatenate(estimates):
    """The shares' Estimates as one for the batch: per-example arrays joined along the batch axis."""
    if len(estimates) == 1:
        return estimates[0]
    first = estimates[0]

    def join(field, axis):
        parts = [getattr(e, field) for e in estimates]
        return None if parts[0] is None else np.concatenate(parts, axis=axis)

    return Estimate(elbo=join("elbo", 0), dlog_px=join("dlog_px", 1), dz=join("dz", 1), dmu=join("dmu", 0),
                    dlogvar=join("dlogvar", 0), recon=join("recon", 0), kl=join("kl", 0),
                    reparameterized=first.reparameterized)
