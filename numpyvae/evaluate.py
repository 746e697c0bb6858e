"""Judging a trained model: bounds on a dataset, importance-sampled log p(x), active units.

Used by the trainer (test figures after each epoch) and by the command line
(``numpyvae evaluate``) alike, so both report the same numbers.  Every
function takes a model and a data array (N, D) and returns per-dataset
figures in nats per example.  Nothing here changes the model.
"""
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .blas_threads import blas_threads, one_blas_thread
from .distributions import LOG2PI
from .errors import InputError
from .estimators import _logsumexp
from .layers import Linear, ReLU, Tanh, softplus
from .progress import ProgressBar
from .validate import check_float, check_positive_int, check_rng

MAX_WORKERS = 256     # log_marginal's threads; each holds a few MiB of buffers
# log_marginal's progress off a terminal: a line this often (seconds), with the time left
PROGRESS_EVERY = 30.0


def bounds(model, x, rng, k=1, batch_size=1000):
    """Mean test figures of ``model`` on x (N, D), z sampled from q(z|x).

    Returns a dict (nats per example):
      neg_elbo : -ELBO (beta = 1): reconstruction + KL, eq. (7*), one sample z per example
      recon    : -E_q[log p(x|z)], the reconstruction term
      kl       : KL(q(z|x) || p(z)), in closed form (a flowed posterior or a learned prior: sampled,
                 one z per example; for a flow neg_elbo is the flow ELBO "mc" with one sample)
      neg_iwae : the IWAE bound -log (1/k) sum_i p(x, z_i)/q(z_i|x), only when k > 1
                 (an upper bound on -log p(x) in expectation, tighter as k grows)
    """
    x = model.check_x(x)
    rng = check_rng("rng", rng)
    k = check_positive_int("k", k)
    batch_size = check_positive_int("batch_size", batch_size)
    recon = kl = iw = 0.0
    # a learned prior or a flowed posterior has no closed-form KL: its kl is the one-sample estimate
    # log q(z|x) - log p(z)
    kl_estimator = "analytic" if model.prior.has_closed_form_kl and not model.flow_steps else "mc"
    for start in range(0, len(x), batch_size):
        est = model.estimate(x[start:start + batch_size], rng, kl_estimator, 1)
        recon -= float(np.sum(est.recon))
        kl += float(np.sum(est.kl))
        if k > 1:
            iw -= float(np.sum(model.estimate(x[start:start + batch_size], rng, "iwae", k).elbo))
    n = len(x)
    out = {"neg_elbo": (recon + kl) / n, "recon": recon / n, "kl": kl / n}
    if k > 1:
        out["neg_iwae"] = iw / n
    return out


def log_marginal(model, x, k=5000, rng=None, max_rows=1024, progress=None, workers=None):
    """Importance-sampled log p(x) with q(z|x) as the proposal -- seed eq. (3*).

        log p(x) ~ log (1/k) sum_i w_i,   w_i = p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x)

    x : (N, D) -> (N,) estimates in nats, float64.
    For a model with a flowed posterior (``flow_steps`` > 0) the proposal is
    the flowed density q_K: z_i is the flow's output and log q the flow's
    log q_K(z_i|x) (derivations/13-planar-flows.md, (13.1)).
    It is the IWAE bound with K = k: a lower bound in expectation that
    tightens as k grows (derivations/02-importance-sampling.md).

    The k samples of an example are drawn in chunks of at most ``max_rows``
    decoder rows (several examples share a chunk when k < max_rows), and a
    running log-sum-exp in float64 combines the chunks.  Memory is bounded by
    the chunk, whatever N and k: a few arrays of max_rows x (D or a hidden
    size) per worker, 6 MiB at the peak for 784-400-20 or 784-200-200-50 in
    float32 with the default 1024 rows and one worker, and about that much
    again for each further worker (measured by benchmarks/side_by_side.py
    with tracemalloc).  Chunks that small keep the elementwise work in the
    processor's cache, where it is fastest; the same script times it against
    the decoder's matrix products alone.

    The log weights are computed in the model's dtype and summed over the k
    samples in float64.  The precision check: with the same eps, a float32
    784-200-200-50 model's log weights (about -560 nats) differ from its
    float64 twin's by at most 1.6e-4 nats (tests/test_reproduce.py), far
    below the Monte Carlo error of k = 5000 samples.

    workers : Python threads sharing the examples; None = as many as BLAS has
        threads (1 when that cannot be read: see numpyvae/blas_threads.py),
        at most MAX_WORKERS.
        With more than one, BLAS runs one thread per product for the call
        (restored after) and each worker does its own products and
        elementwise work, so both use every core (for speed: NumPy's
        elementwise functions use one core).  Each group of examples draws
        its eps from its own stream spawned from ``rng``, so the estimates
        do not depend on the number of workers.
    progress : a bar on stderr, counting samples, with the time left; None
        shows it only when stderr is a terminal, and elsewhere (a log file)
        writes a line every PROGRESS_EVERY seconds instead.  A stop (Ctrl-C,
        or a worker's error) ends every worker within one chunk of samples.
    """
    x = model.check_x(x)
    k = check_positive_int("k", k)
    rng = check_rng("rng", rng)
    max_rows = check_positive_int("max_rows", max_rows)
    if workers is None:
        workers = min(blas_threads() or 1, MAX_WORKERS)
    elif check_positive_int("workers", workers) > MAX_WORKERS:
        raise InputError(f"workers: expected an integer from 1 to {MAX_WORKERS}, got {workers!r}")
    bad = [name for name, p in model.params.items() if not np.all(np.isfinite(p))]
    if bad:                            # refused like bounds, elbo and estimate refuse it: never a NaN estimate
        raise InputError(f"model: parameters {bad[:4]} hold NaN or inf; log p(x) cannot be estimated")
    n_per = max(1, min(len(x), max_rows // min(k, max_rows)))   # examples per pass
    starts = range(0, len(x), n_per)
    streams = rng.spawn(len(starts))                            # one eps stream per pass
    workers = min(workers, len(starts))
    out = np.empty(len(x), dtype=np.float64)
    # counted in samples (N k in all), so that even one example of a huge k shows progress
    bar = ProgressBar(len(x) * k, f"log p(x), k={k}: samples", progress, log_every=PROGRESS_EVERY, eta=True)
    model_lock = model.lock            # a Trainer in another thread holds it across each step: reads see whole steps
    bar_lock = threading.Lock()        # the count of examples done, and the bar drawn from it
    stop = threading.Event()           # set when any worker fails (or the caller is interrupted)
    done = [0]

    def tick(samples):
        with bar_lock:
            done[0] += samples
            bar.update(done[0])

    def work(passes):
        log_w = (_FlowLogWeights if model.flow_steps else _LogWeights)(model, max_rows, model_lock)
        try:
            for p in passes:
                if stop.is_set():
                    return
                start = starts[p]
                xb = x[start:start + n_per]
                with np.errstate(over="ignore", invalid="ignore"):
                    lm = _log_mean_weight(log_w, xb, k, max_rows, streams[p], stop, tick)
                if lm is None:                      # stopped (another worker failed, or Ctrl-C)
                    return
                if not np.all(np.isfinite(lm)):     # an overflow in the network: refused, never a NaN estimate
                    i = start + int(np.argmax(~np.isfinite(lm)))
                    raise InputError(f"x, model: log_marginal overflowed to {lm[i - start]} at example {i} "
                                     f"in {np.dtype(model.dtype).name}; expected parameters and values of x "
                                     "small enough for finite results")
                out[start:start + len(xb)] = lm
        except BaseException:
            stop.set()                                               # the other workers end too
            raise

    try:
        if workers == 1:
            work(range(len(starts)))
        else:
            with one_blas_thread(), ThreadPoolExecutor(workers) as pool:
                jobs = [pool.submit(work, range(i, len(starts), workers)) for i in range(workers)]
                try:
                    for job in jobs:
                        job.result()                                 # a worker's exception is raised here
                finally:
                    stop.set()                                       # on Ctrl-C: end after the current pass
    finally:
        bar.close()
    return out


def _log_mean_weight(log_w, xb, k, max_rows, rng, stop=None, tick=None):
    """log (1/k) sum_i w_i for the examples xb (B, D), in chunks of at most max_rows rows -> (B,).

    stop : a threading.Event checked before every chunk (Ctrl-C in another
           thread ends the work within a chunk, whatever k); None when stopped.
    tick : called with the number of samples after every chunk (the progress).
    """
    B = len(xb)
    log_w.set_batch(xb)
    total = np.full(B, -np.inf)
    c = max(1, max_rows // B)                                        # samples per chunk
    for done in range(0, k, c):
        if stop is not None and stop.is_set():
            return None
        f = log_w(log_w.draw_eps(rng, min(c, k - done), B))          # (kc, B) float64
        total = np.logaddexp(total, _logsumexp(f, axis=0))
        if tick is not None:
            tick(f.size)
    return total - math.log(k)


class _LogWeights:
    """log w = log p(x|z) + log p(z) - log q(z|x) for z = mu + sigma * eps: log_marginal's inner loop.

    ``set_batch(x)`` encodes a batch x (B, D); calling with eps (K, B, Z)
    returns the log weights (K, B) in float64.  The two tricks below are
    the reason this is not simply ``estimators.log_weights``: they cut the
    passes over the (K*B, D) decoder output from about ten to three.
    """

    def __init__(self, model, max_rows, model_lock=None):
        self.model = model
        self.model_lock = model.lock if model_lock is None else model_lock
        if model.dtype == np.float32:
            n_pairs = (max_rows * model.z_dim + 1) // 2
            self.uniforms = np.empty(2 * n_pairs, dtype=np.float32)     # draw_eps's buffers
            self.normals = np.empty(2 * n_pairs, dtype=np.float32)
        # the fused path below is written for an MLP decoder (Linear layers and activations)
        self.fused = model.likelihood == "bernoulli" and model.decoder.is_dense()
        if self.fused:
            # every decoder Linear as one product: (H+1, H') weights, the bias as the
            # weight of an extra input fixed at 1, and each layer's input written into
            # a preallocated [input | 1] buffer (for speed: no bias pass, no new arrays)
            with self.model_lock:            # a consistent copy, even while another thread trains the model
                self.Ws = [np.concatenate([lin.W, lin.b[None, :]], axis=0) for lin in model.decoder.linears]
            self.ins = [np.ones((max_rows, W.shape[0]), dtype=model.dtype) for W in self.Ws]
            self.acts = [layer for layer in model.decoder.layers if not isinstance(layer, Linear)]
            self.W1 = self.Ws[-1]
            self.logits = np.empty((max_rows, self.W1.shape[1]), dtype=model.dtype)
            self.ones = np.ones(self.W1.shape[1], dtype=model.dtype)

    def set_batch(self, x):
        self.x = x
        with self.model_lock:
            self.mu, self.logvar = self.model.encode(x)
            # a learned prior's mixture, computed once per batch (None: p(z) = N(0, I), below in closed form)
            self.prior = self.model.prior_density()[0] if self.model.prior.params else None
        self.sigma = np.exp(0.5 * self.logvar)
        self.half_sum_logvar = 0.5 * np.sum(self.logvar, axis=-1)
        if self.fused:
            # sum_d x_d l_d = [h | 1] . (W1 x): one (H+1,) vector per example,
            # so the (K*B, D) product x * l is never formed
            self.W1x = x @ self.W1.T                                 # (B, H+1)

    def draw_eps(self, rng, K, B):
        """eps ~ N(0, I) of shape (K, B, Z) from rng, K * B <= max_rows.

        float32 models: by the Box-Muller transform into preallocated buffers
        (for speed: 0.15 ms per 1024 x 50 draws where rng.standard_normal takes
        0.43, 8% of log_marginal's time):  u1, u2 ~ U[0, 1),
            r = sqrt(-2 log(1 - u1)),  theta = 2 pi u2,  (r cos theta, r sin theta) ~ N(0, I_2).
        float32 uniforms are multiples of 2^-24, so r < 5.77: the pairs beyond,
        a mass of exp(-5.77^2 / 2) = 6e-8, are never drawn.
        float64 models: rng.standard_normal, as everywhere else.
        """
        if self.model.dtype != np.float32:
            return self.model.draw_eps(rng, K, B)
        n = K * B * self.model.z_dim
        m = (n + 1) // 2
        u1, u2 = self.uniforms[:2 * m].reshape(2, m)
        rng.random(out=u1, dtype=np.float32)
        rng.random(out=u2, dtype=np.float32)
        np.subtract(1, u1, out=u1)
        np.log(u1, out=u1)
        u1 *= -2
        r = np.sqrt(u1, out=u1)
        theta = np.multiply(u2, np.float32(2 * np.pi), out=u2)
        normals = self.normals[:2 * m].reshape(2, m)
        np.cos(theta, out=normals[0])
        np.sin(theta, out=normals[1])
        normals *= r
        return self.normals[:n].reshape(K, B, -1)

    def __call__(self, eps):
        K, B = eps.shape[:2]
        if self.fused:                                               # z straight into the first product's input
            z = self.ins[0][:K * B, :-1].reshape(K, B, -1)
            np.multiply(self.sigma, eps, out=z)
            z += self.mu                                             # z = mu + sigma * eps, the reparameterization (derivations/06)
        else:
            z = self.mu + self.sigma * eps                           # (K, B, Z), the reparameterization (derivations/06)
        # log p(z) - log q(z|x) at z = mu + sigma eps: the log 2 pi terms cancel
        # and (z - mu)^2 / sigma^2 = eps^2, so no division is needed
        # (the sums of squares by einsum: no (K, B, Z) temporaries, for speed)
        if self.prior is None:
            log_ratio = 0.5 * (np.einsum("kbz,kbz->kb", eps, eps) - np.einsum("kbz,kbz->kb", z, z)) + self.half_sum_logvar
        else:                                                        # log p(z) + 1/2 [Z log 2 pi + sum logvar + eps^2]
            log_ratio = (self.prior.log_prob(z) + 0.5 * (np.einsum("kbz,kbz->kb", eps, eps) + z.shape[-1] * LOG2PI)
                         + self.half_sum_logvar)
        if self.fused:
            log_px = self._bernoulli_log_px(K, B)
        else:
            with self.model_lock:
                out = self.model.decode(z.reshape(K * B, -1)).reshape(K, B, -1)
            log_px = self.model.log_px(self.x, out)
        return log_px.astype(np.float64) + log_ratio

    def _bernoulli_log_px(self, K, B):
        """log p(x|z) = sum_d x_d l_d - softplus(l_d), l = h W + b, for the z in ins[0] -> (K, B)."""
        n = K * B
        for W, a, act, out in zip(self.Ws, self.ins, self.acts, self.ins[1:]):    # the hidden layers
            h = out[:n, :-1]
            np.matmul(a[:n], W, out=h)                               # h W + b, the bias from the ones column
            _activate(act, h)
        h1 = self.ins[-1][:n]
        logits = self.logits[:n]
        np.matmul(h1, self.W1, out=logits)
        # softplus(l) = log(1 + exp(l)), in place: two passes where the
        # overflow-safe form takes five (for speed).  exp overflows to inf only
        # where l > 88 (float32); those rows are redone with the safe form.
        with np.errstate(over="ignore"):
            np.exp(logits, out=logits)
            np.log1p(logits, out=logits)
        sum_softplus = logits @ self.ones               # the row sums, by BLAS (for speed: 2.5x np.sum's)
        bad = ~np.isfinite(sum_softplus)
        if bad.any():
            sum_softplus[bad] = np.sum(softplus(h1[bad] @ self.W1), axis=1)
        sum_x_logits = np.einsum("kbh,bh->kb", h1.reshape(K, B, -1), self.W1x)
        return sum_x_logits - sum_softplus.reshape(K, B)


class _FlowLogWeights:
    """log w = log p(x|z_K) + log p(z_K) - log q_K(z_K|x), z_K the flowed sample: a flowed posterior's
    log_marginal, with q_K as the proposal (derivations/13-planar-flows.md); the same calls as _LogWeights."""

    def __init__(self, model, max_rows, model_lock=None):
        self.model = model
        self.model_lock = model.lock if model_lock is None else model_lock

    def set_batch(self, x):
        self.x = x
        with self.model_lock:
            self.mu, self.logvar, self.flow = self.model.encode_flow(x)

    def draw_eps(self, rng, K, B):
        return self.model.draw_eps(rng, K, B)

    def __call__(self, eps):
        K, B = eps.shape[:2]
        (z, log_q), _ = self.model.posterior.sample(self.mu, self.logvar, self.flow, eps)
        with self.model_lock:
            out = self.model.decode(z.reshape(K * B, -1)).reshape(K, B, -1)
        log_px = self.model.log_px(self.x, out)
        return log_px.astype(np.float64) + (self.model.prior.log_prob(z) - log_q).astype(np.float64)


def _activate(layer, h):
    """Apply a hidden layer's activation to h in place (for speed); the layer's own forward otherwise."""
    if isinstance(layer, Tanh):
        np.tanh(h, out=h)
    elif isinstance(layer, ReLU):
        np.maximum(h, 0, out=h)
    else:
        h[...] = layer.call(h)[0]


def active_units(model, x, threshold=1e-2):
    """Burda et al.'s active units: latent u is active if Cov_x(E_q[u]) > threshold.

    E_q[u] is the posterior mean mu_u(x); its variance over the data x (N, D)
    is returned with the count of active units: (count, variances (Z,)).
    """
    threshold = check_float("threshold", threshold, lo=0.0)
    mu, _ = model.encode(model.check_x(x))
    var = np.var(mu.astype(np.float64), axis=0)
    return int(np.sum(var > threshold)), var
