"""One run, interleaved: numpyvae's training step against PyTorch's and HIPS autograd's, and
log_marginal, each against its BLAS bound (the same matrix products and nothing else); and the
convolutional VAE's training step against PyTorch's same architecture (``--conv-only`` for that alone).

    OPENBLAS_NUM_THREADS=1 python benchmarks/side_by_side.py [--threads 1] [--repeats 7]
    pip install "numpyvae[bench]"      # PyTorch and autograd; each is skipped when absent

The model is the pytorch/examples VAE: 784-400-20, ReLU, Bernoulli decoder
on logits, analytic KL, float32, Adam; random data of the right shape (the
time of a step does not depend on the pixel values).  Each contender runs
``--steps`` steps per repetition; the repetitions of all contenders are
interleaved so that a change in the machine's load hits them alike, and the
best repetition is reported (on a shared machine the best is the least
disturbed; the median is printed beside it).

BLAS bound of a training step: the forward products x @ W, and the backward
products x^T @ dout (every layer) and dout @ W^T (every layer but the first,
whose input is data), timed alone on preallocated arrays.  BLAS bound of
log_marginal: the decoder's products z @ W ... on the same chunks of rows,
on all the BLAS threads; log_marginal itself runs as many workers as BLAS has
threads (--workers to choose), each on a one-thread BLAS.
"ratio to bound" = bound time / our time: 1.0 would mean the elementwise work
is free.  Set the BLAS threads with OPENBLAS_NUM_THREADS (and --threads, which
PyTorch is given) before comparing.
"""
import argparse
import math
import os
import platform
import time
import tracemalloc

import numpy as np

from numpyvae import VAE
from numpyvae.blas_threads import blas_threads
from numpyvae.evaluate import log_marginal
from numpyvae.optim import Adam


# ---- contenders: one training step each ------------------------------------------------

def numpyvae_step(batch, seed=0, arch="mlp"):
    model = VAE(784, [400], 20, activation="relu", seed=seed, arch=arch)
    opt = Adam(model.params)
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(batch, 784)).astype(np.float32)

    def step():
        opt.step(model.loss_and_grads(x, rng=rng)[1])
    return step


def torch_step(batch, threads, seed=0):
    import torch
    from torch import nn
    from torch.nn import functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(seed)

    class TorchVAE(nn.Module):
        """pytorch/examples' VAE: fc1 784-400, fc21/fc22 400-20, fc3 20-400, fc4 400-784."""

        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
            self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

        def loss(self, x):
            h = F.relu(self.fc1(x))
            mu, logvar = self.fc21(h), self.fc22(h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            logits = self.fc4(F.relu(self.fc3(z)))
            recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            return (recon + kl) / len(x)

    model = TorchVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 784)

    def step():
        opt.zero_grad()
        model.loss(x).backward()
        opt.step()
    return step


def autograd_step(batch, seed=0):
    import autograd.numpy as anp
    from autograd import grad
    rng = np.random.default_rng(seed)
    W1, W2, W3, W4 = (rng.normal(0, 0.05, s).astype(np.float32) for s in [(784, 400), (400, 40), (20, 400), (400, 784)])
    params = [W1, np.zeros(400, np.float32), W2, np.zeros(40, np.float32),
              W3, np.zeros(400, np.float32), W4, np.zeros(784, np.float32)]
    x = rng.uniform(size=(batch, 784)).astype(np.float32)

    def loss(p, x, eps):
        h = anp.maximum(x @ p[0] + p[1], 0)
        out = h @ p[2] + p[3]
        mu, logvar = out[:, :20], out[:, 20:]
        z = mu + anp.exp(0.5 * logvar) * eps
        logits = anp.maximum(z @ p[4] + p[5], 0) @ p[6] + p[7]
        softplus = anp.maximum(logits, 0) + anp.log1p(anp.exp(-anp.abs(logits)))
        log_px = anp.sum(x * logits - softplus)
        kl = 0.5 * anp.sum(mu * mu + anp.exp(logvar) - 1 - logvar)
        return (kl - log_px) / len(x)

    loss_grad = grad(loss)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]

    def step():                                    # Adam, the same formula as numpyvae.optim.Adam
        t[0] += 1
        g = loss_grad(params, x, rng.standard_normal((batch, 20), dtype=np.float32))
        c1, c2 = 1 - 0.9 ** t[0], 1 - 0.999 ** t[0]
        for p, gi, mi, vi in zip(params, g, m, v):
            mi *= 0.9
            mi += 0.1 * gi
            vi *= 0.999
            vi += 0.001 * gi * gi
            p -= 1e-3 * (mi / c1) / (np.sqrt(vi / c2) + 1e-8)
    return step


def step_bound(batch, seed=0):
    """The training step's matrix products alone (784-400-20 VAE), on preallocated arrays."""
    rng = np.random.default_rng(seed)
    shapes = [(784, 400), (400, 40), (20, 400), (400, 784)]          # encoder then decoder
    products = []
    for i, (n_in, n_out) in enumerate(shapes):
        x = rng.standard_normal((batch, n_in), dtype=np.float32)
        W = rng.standard_normal((n_in, n_out), dtype=np.float32)
        d = rng.standard_normal((batch, n_out), dtype=np.float32)
        products.append((x, W, np.empty((batch, n_out), np.float32)))          # forward x @ W
        products.append((x.T, d, np.empty((n_in, n_out), np.float32)))        # dW = x^T dout
        if i != 0:                                                             # dx = dout W^T
            products.append((d, W.T, np.empty((batch, n_in), np.float32)))

    def step():
        for a, b, out in products:
            np.matmul(a, b, out=out)
    return step


# ---- log_marginal and its bound ---------------------------------------------------------

def log_marginal_job(model, x, k, max_rows, workers):
    def run():
        log_marginal(model, x, k=k, rng=np.random.default_rng(0), max_rows=max_rows, progress=False,
                     workers=workers)
    return run


def log_marginal_bound(model, n, k, max_rows):
    """The decoder's products alone, on exactly the chunks log_marginal uses (same row counts)."""
    n_per = max(1, min(n, max_rows // min(k, max_rows)))
    chunk_rows = []
    for start in range(0, n, n_per):
        B = min(n_per, n - start)
        c = max(1, max_rows // B)
        chunk_rows += [min(c, k - done) * B for done in range(0, k, c)]
    Ws = [lin.W for lin in model.decoder.linears]
    rows = max(chunk_rows)
    ins = [np.ones((rows, W.shape[0]), model.dtype) for W in Ws]
    outs = [np.empty((rows, W.shape[1]), model.dtype) for W in Ws]

    def run():
        for r in chunk_rows:
            for W, a, out in zip(Ws, ins, outs):
                np.matmul(a[:r], W, out=out[:r])
    return run


def peak_memory(fn):
    """Peak bytes allocated (numpy reports its arrays to tracemalloc) while fn runs."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


# ---- the convolutional VAE (numpyvae/architectures.py: conv) --------------------------------

def numpyvae_conv_step(batch, seed=0):
    """numpyvae's step for the conv VAE (numpyvae/architectures.py: conv), with 400 hidden units and Z = 20."""
    return numpyvae_step(batch, seed, arch="conv")


def torch_conv_step(batch, threads, seed=0):
    """The same architecture in PyTorch: conv 1-32-64 (4x4, stride 2, padding 1), 3136-400-40; mirrored."""
    import torch
    from torch import nn
    from torch.nn import functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(),
                            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(3136, 400), nn.ReLU(),
                            nn.Linear(400, 40))
    decoder = nn.Sequential(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 3136), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
                            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1),
                            nn.Flatten())
    opt = torch.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=1e-3)
    x = torch.rand(batch, 784)

    def step():
        opt.zero_grad()
        h = encoder(x)
        mu, logvar = h[:, :20], h[:, 20:]
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = F.binary_cross_entropy_with_logits(decoder(z), x, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        ((recon + kl) / batch).backward()
        opt.step()
    return step


def conv_time_shares(batch, steps=5):
    """Where numpyvae's conv step spends its time: im2col and col2im (copies) vs the rest, by timing wrappers."""
    from numpyvae import conv
    spent = {"im2col": 0.0, "col2im": 0.0}
    originals = {name: getattr(conv, name) for name in spent}

    def timed(name):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            out = originals[name](*a, **kw)
            spent[name] += time.perf_counter() - t0
            return out
        return wrapper
    step = numpyvae_conv_step(batch)
    step()
    for name in spent:
        setattr(conv, name, timed(name))
    try:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        total = time.perf_counter() - t0
    finally:
        for name, fn in originals.items():
            setattr(conv, name, fn)
    return {name: t / total for name, t in spent.items()}


PEAK_SCRIPT = """
import os, sys
sys.path.insert(0, {here!r})
import side_by_side as b
step = b.{maker}(128{extra})
step()
with open("/proc/self/statm") as f:
    before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
for _ in range(3):
    step()
with open("/proc/self/status") as f:   # VmHWM: this process's peak (ru_maxrss would carry the parent's over fork)
    peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
print(peak - before)
"""


def peak_rss(maker, extra=""):
    """Peak resident memory of a fresh process that built the model and ran four steps (bytes)."""
    import subprocess
    import sys
    code = PEAK_SCRIPT.format(here=os.path.dirname(os.path.abspath(__file__)), maker=maker, extra=extra)
    code = code.replace("- before", "")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1])


# ---- timing -------------------------------------------------------------------------------

def interleaved(jobs, repeats, calls, clock, settle=0.0):
    """{name: [seconds per call, one per repetition]}, the jobs interleaved within each repetition.

    clock: time.perf_counter (wall) or time.process_time (CPU time of this
    process: with one BLAS thread it is not inflated by other programs'
    load, so on a shared machine it is the steadier of the two).
    settle: seconds to sleep before each timed job.  After a product,
    OpenBLAS's idle threads spin for a while before they sleep; a job that
    starts at once shares the cores with them (log_marginal's workers lose
    up to 0.05 s that way, once per call, not per image).
    """
    times = {name: [] for name in jobs}
    for fn in jobs.values():
        fn()                                                       # warm up
    for _ in range(repeats):
        for name, fn in jobs.items():
            n = calls[name]
            time.sleep(settle)
            t0 = clock()
            for _ in range(n):
                fn()
            times[name].append((clock() - t0) / n)
    return times


def optional(name):
    try:
        __import__(name)
        return True
    except ImportError:
        print(f"({name} is not installed: skipped; pip install \"numpyvae[bench]\")")
        return False


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OPENBLAS_NUM_THREADS", "1")),
                   help="threads given to PyTorch (set OPENBLAS_NUM_THREADS to the same for NumPy)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--steps", type=int, default=50, help="training steps per repetition")
    p.add_argument("--lm-images", type=int, default=4, help="images per log_marginal repetition")
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--max-rows", type=int, default=1024)
    p.add_argument("--workers", type=int, default=None,
                   help="log_marginal's workers (default: as many as BLAS has threads)")
    p.add_argument("--settle", type=float, default=0.3,
                   help="seconds of sleep before each timed log_marginal job (see interleaved)")
    p.add_argument("--skip-training", action="store_true")
    p.add_argument("--conv-only", action="store_true", help="only the convolutional VAE's training step")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall time, or this process's CPU time (steadier on a shared machine, one thread only)")
    args = p.parse_args()
    has_torch, has_autograd = optional("torch"), optional("autograd")
    versions = f"NumPy {np.__version__}"
    if has_torch:
        import torch
        versions += f", PyTorch {torch.__version__}"
    if has_autograd:
        from importlib.metadata import version
        versions += f", autograd {version('autograd')}"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {versions}; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, torch threads {args.threads}; "
          f"{args.clock} clock, best (median) of {args.repeats} interleaved repetitions")
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    if not args.skip_training:
        batch = 128
        jobs = {"numpyvae": numpyvae_conv_step(batch)}
        if has_torch:
            jobs["pytorch"] = torch_conv_step(batch, args.threads)
        conv_steps = max(1, args.steps // 10)
        times = interleaved(jobs, args.repeats, {name: conv_steps for name in jobs}, clock)
        best = {name: min(t) for name, t in times.items()}
        print(f"\ntraining step, conv VAE (conv 32-64, 3136-400-20, mirrored), batch {batch}, float32, "
              f"{conv_steps} steps per repetition:")
        for name, t in times.items():
            mem = peak_rss(("numpyvae_conv_step" if name == "numpyvae" else "torch_conv_step"),
                           "" if name == "numpyvae" else f", {args.threads}")
            print(f"  {name:10s} {1e3 * best[name]:7.1f} ms ({1e3 * np.median(t):.1f})  "
                  f"{batch / best[name]:7.0f} examples/s  peak resident memory {mem / 2 ** 20:.0f} MiB")
        if "pytorch" in best:
            print(f"  numpyvae vs pytorch: {best['pytorch'] / best['numpyvae']:.2f}x "
                  f"(median {np.median(times['pytorch']) / np.median(times['numpyvae']):.2f}x)")
        shares = conv_time_shares(batch)
        print(f"  numpyvae's step: im2col {100 * shares['im2col']:.0f}%, col2im {100 * shares['col2im']:.0f}% "
              f"of its time (the copies around the products)")
    if args.conv_only:
        return
    if not args.skip_training:
        for batch in (128, 100):
            jobs = {"numpyvae": numpyvae_step(batch)}
            if has_torch:
                jobs["pytorch"] = torch_step(batch, args.threads)
            if has_autograd:
                jobs["autograd"] = autograd_step(batch)
            jobs["BLAS bound"] = step_bound(batch)
            times = interleaved(jobs, args.repeats, {name: args.steps for name in jobs}, clock)
            best = {name: min(t) for name, t in times.items()}
            print(f"\ntraining step, 784-400-20, batch {batch}, float32:")
            for name, t in times.items():
                print(f"  {name:10s} {1e3 * best[name]:7.2f} ms ({1e3 * np.median(t):.2f})  "
                      f"{batch / best[name]:9.0f} examples/s  ratio to bound {best['BLAS bound'] / best[name]:.2f}")
            for other in ("pytorch", "autograd"):
                if other in best:
                    print(f"  numpyvae vs {other}: {best[other] / best['numpyvae']:.2f}x "
                          f"(median {np.median(times[other]) / np.median(times['numpyvae']):.2f}x)")

    for hidden, z_dim, act in (([400], 20, "relu"), ([200, 200], 50, "tanh")):
        model = VAE(784, hidden, z_dim, activation=act, seed=0)
        x = (np.random.default_rng(1).uniform(size=(args.lm_images, 784)) < 0.3).astype(np.float32)
        jobs = {"log_marginal": log_marginal_job(model, x, args.k, args.max_rows, args.workers),
                "BLAS bound": log_marginal_bound(model, len(x), args.k, args.max_rows)}
        times = interleaved(jobs, args.repeats, {name: 1 for name in jobs}, clock, args.settle)
        best = {name: min(t) for name, t in times.items()}
        peak = peak_memory(jobs["log_marginal"])
        arch = f"784-{'-'.join(map(str, hidden))}-{z_dim} {act}"
        workers = args.workers or blas_threads() or 1
        print(f"\nlog_marginal, {arch}, k={args.k}, {args.max_rows} rows per chunk, float32, "
              f"{workers} worker{'s' * (workers > 1)}:")
        for name, t in times.items():
            print(f"  {name:12s} {best[name] / len(x):.3f} s per image ({np.median(t) / len(x):.3f})  "
                  f"-> {10000 * best[name] / len(x) / 60:.1f} min for 10,000 images")
        print(f"  ratio to bound {best['BLAS bound'] / best['log_marginal']:.2f} "
              f"(median {np.median(times['BLAS bound']) / np.median(times['log_marginal']):.2f}); "
              f"peak memory {peak / 2 ** 20:.1f} MiB")


if __name__ == "__main__":
    main()
