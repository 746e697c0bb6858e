"""numpyvae's training step against PyTorch's at 1, 2, 4, ... threads, each against its BLAS bound;
an MNIST epoch timed the same way for both; and (optional sections) HIPS autograd's step, the
convolutional VAE's step and log_marginal against its bound.

    python benchmarks/side_by_side.py                     # threads 1, 2, 4, ... up to the cores
    python benchmarks/side_by_side.py --threads 1,2 --rounds 7 --sections steps,epoch
    python benchmarks/side_by_side.py --quick             # does it run? (not a measurement)
    pip install "numpyvae[bench]"      # PyTorch and autograd; each is skipped when absent

Leave OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS) unset: OpenBLAS then starts with one thread
per core and the script sets the count it times (numpyvae/blas_threads.py).

The model is the pytorch/examples VAE: 784-400-20, ReLU, Bernoulli decoder on logits, analytic
KL, float32, Adam; random data of the right shape for the steps (the time of a step does not
depend on the pixel values).  At T threads:

  numpyvae step     T > 1: the batch split across T workers, each on a one-thread BLAS, and
                    Adam's update split over the parameters (numpyvae/parallel.py,
                    Trainer(workers=T)); T = 1: the serial step.
  numpyvae 1 worker the serial step on a T-thread BLAS (what numpyvae did before workers)
  numpyvae fwd+bwd  the step without the optimizer's update (the gradient summed over workers)
  numpyvae update   Adam's update alone (split over T workers)
  pytorch step      torch.set_num_threads(T); zero_grad, forward, backward, Adam
  pytorch update    torch.optim.Adam's step alone
  BLAS bound        the step's matrix products alone, on preallocated arrays, BLAS on T threads:
                    x @ W for every layer, x^T @ dout for every layer and dout @ W^T for every
                    layer but the first (whose input is data)

Each repetition ("round") runs every contender ``--steps`` steps, one after the other, after a
short sleep (``--settle``: OpenBLAS's and PyTorch's idle threads spin for a while before they
sleep, and a contender started at once would share the cores with them); a change in the
machine's load so hits all alike.  Every ratio is computed within a round and the median of the
rounds is printed with its spread (lowest and highest round): "1.42x [1.35-1.49]".  Times are
medians over the rounds.

MNIST epoch (--sections epoch): one epoch of training steps over the 60,000 training images
(batch 128, shuffled), no test evaluation for either: numpyvae's Trainer(workers=T) without a test
set against the same loop in PyTorch, interleaved the same way (--epoch-rounds).  The real MNIST
is used when ``numpyvae.data.load("mnist")`` finds it (--data-dir, or NUMPYVAE_DATA), else random
images of its shape (said so in the output).
"""
import argparse
import os
import platform
import time
import tracemalloc

import numpy as np

from numpyvae import VAE
from numpyvae.blas_threads import blas_threads, controller, n_blas_threads, one_blas_thread
from numpyvae.evaluate import log_marginal
from numpyvae.optim import Adam
from numpyvae.parallel import ParallelStep


# ---- contenders: one training step each ------------------------------------------------

def numpyvae_step(batch, seed=0, arch="mlp"):
    model = VAE(784, [400], 20, activation="relu", seed=seed, arch=arch)
    opt = Adam(model.params)
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(batch, 784)).astype(np.float32)

    def step():
        opt.step(model.loss_and_grads(x, rng=rng)[1])
    return step


def torch_vae(threads, seed=0):
    """pytorch/examples' VAE (fc1 784-400, fc21/fc22 400-20, fc3 20-400, fc4 400-784) and its Adam, on T threads."""
    import torch
    from torch import nn
    from torch.nn import functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(seed)

    class TorchVAE(nn.Module):
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
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def torch_parts(batch, threads, seed=0):
    """{"step": one training step, "update": Adam's update alone} for PyTorch on T threads."""
    import torch
    model, opt = torch_vae(threads, seed)
    x = torch.rand(batch, 784)

    def step():
        opt.zero_grad()
        model.loss(x).backward()
        opt.step()
    step()                                       # the gradients exist: "update" times opt.step alone
    return {"step": step, "update": opt.step}


def torch_step(batch, threads, seed=0):
    return torch_parts(batch, threads, seed)["step"]


def numpyvae_parts(batch, workers, seed=0, arch="mlp"):
    """{"step", "fwd+bwd", "update"} for numpyvae with ``workers`` workers (1: the serial step)."""
    model = VAE(784, [400], 20, activation="relu", seed=seed, arch=arch)
    opt = Adam(model.params)
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(batch, 784)).astype(np.float32)
    runner = model if workers == 1 else ParallelStep(model, workers)
    update = opt.step if workers == 1 else (lambda g: runner.step(opt, g))

    def fwd_bwd():
        return runner.loss_and_grads(x, rng=rng)[1]

    def step():                                  # as Trainer.train_step runs it
        if workers == 1:
            opt.step(fwd_bwd())
        else:
            with one_blas_thread():
                runner.step(opt, fwd_bwd())
    grads = {k: g.copy() for k, g in fwd_bwd().items()}
    return {"step": step, "fwd+bwd": fwd_bwd, "update": lambda: update(grads)}


# ---- an MNIST epoch, no test evaluation for either -------------------------------------------

def mnist_train(data_dir):
    """(x_train (60000, 784) float32, where it came from): the real MNIST if found, else random images."""
    from numpyvae.data import load
    try:
        return load("mnist", data_dir, download=False, progress=False).x_train, "MNIST"
    except Exception as exc:                     # not present here: random images of its shape
        why = " ".join(str(exc).split())[:200]
        x = np.random.default_rng(0).uniform(size=(60000, 784)).astype(np.float32)
        return x, f"random images of MNIST's shape (MNIST not found: {why})"


def numpyvae_epoch(x_train, workers, batch=128):
    from numpyvae.train import Trainer
    trainer = Trainer(VAE(784, [400], 20, activation="relu", seed=0), x_train, None, batch_size=batch,
                      workers=workers, progress=False, verbose=False)
    return lambda: trainer.run(trainer.epoch + 1)


def torch_epoch(x_train, threads, batch=128):
    import torch
    model, opt = torch_vae(threads)
    X, gen = torch.from_numpy(x_train), torch.Generator().manual_seed(0)

    def epoch():
        perm = torch.randperm(len(X), generator=gen)
        for start in range(0, len(X), batch):
            opt.zero_grad()
            model.loss(X[perm[start:start + batch]]).backward()
            opt.step()
    return epoch


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

def interleaved(jobs, repeats, calls, clock, settle=0.0, warm_up=True):
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
        if warm_up:
            fn()                                                   # warm up
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


def thread_counts(cores):
    """1, 2, 4, ... up to the cores, and the cores themselves when they are not a power of two."""
    counts, t = [], 1
    while t < cores:
        counts.append(t)
        t *= 2
    return counts + [cores]


def spread(values, fmt):
    """The median of the rounds with its lowest and highest: "1.42 [1.35-1.49]"."""
    v = np.asarray(values)
    return f"{fmt.format(np.median(v))} [{fmt.format(v.min())}-{fmt.format(v.max())}]"


def per_round(times, a, b):
    """times[a] / times[b] within each round."""
    return np.asarray(times[a]) / np.asarray(times[b])


def section_steps(args, counts, has_torch, has_autograd):
    table = []
    for batch in (128, 100):
        for t in counts:
            with n_blas_threads(t):                      # the products' threads (each worker then asks for one)
                jobs, parts = {}, numpyvae_parts(batch, t)
                jobs["numpyvae step"] = parts["step"]
                if t > 1:
                    jobs["numpyvae 1 worker"] = numpyvae_parts(batch, 1)["step"]
                jobs["numpyvae fwd+bwd"], jobs["numpyvae update"] = parts["fwd+bwd"], parts["update"]
                if has_torch:
                    tp = torch_parts(batch, t)
                    jobs["pytorch step"], jobs["pytorch update"] = tp["step"], tp["update"]
                if has_autograd and t == 1:
                    jobs["autograd step"] = autograd_step(batch)
                jobs["BLAS bound"] = step_bound(batch)
                times = interleaved(jobs, args.rounds, {name: args.steps for name in jobs}, time.perf_counter,
                                    args.settle)
            print(f"\ntraining step, 784-400-20, batch {batch}, float32, {t} thread{'s' * (t > 1)} "
                  f"({'numpyvae: ' + str(t) + ' workers' if t > 1 else 'numpyvae: serial'}):")
            for name, ts in times.items():
                print(f"  {name:18s} {spread(1e3 * np.asarray(ts), '{:.2f}')} ms")
            row = {"batch": batch, "threads": t, "ours": np.median(times["numpyvae step"]),
                   "bound": np.median(times["BLAS bound"]),
                   "fb": spread(per_round(times, "BLAS bound", "numpyvae fwd+bwd"), "{:.2f}"),
                   "step_bound": spread(per_round(times, "BLAS bound", "numpyvae step"), "{:.2f}")}
            if t > 1:
                print(f"  workers vs 1 worker (same threads): "
                      f"{spread(per_round(times, 'numpyvae 1 worker', 'numpyvae step'), '{:.2f}x')}")
            if has_torch:
                row["torch"] = np.median(times["pytorch step"])
                row["ratio"] = spread(per_round(times, "pytorch step", "numpyvae step"), "{:.2f}x")
                print(f"  numpyvae vs pytorch, step: {row['ratio']};  update: "
                      f"{spread(per_round(times, 'pytorch update', 'numpyvae update'), '{:.2f}x')}")
            if "autograd step" in times:
                ratio = spread(per_round(times, "autograd step", "numpyvae step"), "{:.2f}x")
                print(f"  numpyvae vs autograd, step: {ratio}")
            print(f"  BLAS bound / numpyvae: fwd+bwd {row['fb']}, whole step {row['step_bound']}")
            table.append(row)
    print("\nsummary (medians of the rounds, [lowest-highest round]; ratio = pytorch time / numpyvae time):")
    print("| batch | threads | numpyvae step | PyTorch step | ratio | fwd+bwd vs BLAS bound |")
    print("|---|---|---|---|---|---|")
    for r in table:
        torch_ms = f"{1e3 * r['torch']:.2f} ms" if "torch" in r else "-"
        print(f"| {r['batch']} | {r['threads']} | {1e3 * r['ours']:.2f} ms | {torch_ms} | {r.get('ratio', '-')} | "
              f"{r['fb']} |")
    by_t = {r["threads"]: r["ours"] for r in table if r["batch"] == 128}
    if 1 in by_t and 2 in by_t:
        print(f"numpyvae step, batch 128, 1 -> 2 threads: {by_t[1] / by_t[2]:.2f}x faster (medians)")


def section_epoch(args, counts, has_torch):
    x_train, source = mnist_train(args.data_dir)
    x_train = x_train[:args.epoch_images]
    print(f"\nMNIST epoch: {len(x_train)} images of {source}, batch 128, Adam, no test evaluation for either; "
          f"{args.epoch_rounds} interleaved rounds")
    for t in counts:
        with n_blas_threads(t):
            jobs = {"numpyvae epoch": numpyvae_epoch(x_train, t)}
            if has_torch:
                jobs["pytorch epoch"] = torch_epoch(x_train, t)
            times = interleaved(jobs, args.epoch_rounds, {name: 1 for name in jobs}, time.perf_counter, args.settle,
                                warm_up=False)
        line = "  ".join(f"{name} {spread(ts, '{:.2f}')} s" for name, ts in times.items())
        if has_torch:
            line += f"  numpyvae vs pytorch {spread(per_round(times, 'pytorch epoch', 'numpyvae epoch'), '{:.2f}x')}"
        print(f"  {t} thread{'s' * (t > 1)}: {line}")


def section_conv(args, threads, has_torch, clock):
    batch = 128
    jobs = {"numpyvae": numpyvae_conv_step(batch)}
    if threads > 1:
        jobs[f"numpyvae {threads} workers"] = numpyvae_parts(batch, threads, arch="conv")["step"]
    if has_torch:
        jobs["pytorch"] = torch_conv_step(batch, threads)
    conv_steps = max(1, args.steps // 10)
    times = interleaved(jobs, args.rounds, {name: conv_steps for name in jobs}, clock)
    best = {name: min(t) for name, t in times.items()}
    print(f"\ntraining step, conv VAE (conv 32-64, 3136-400-20, mirrored), batch {batch}, float32, "
          f"{threads} threads (numpyvae: the serial step on {threads} BLAS threads, and {threads} workers), "
          f"{conv_steps} steps per repetition, best (median):")
    for name, t in times.items():
        mem = "" if "workers" in name else ("  peak resident memory " + str(round(peak_rss(
            "numpyvae_conv_step" if name == "numpyvae" else "torch_conv_step",
            "" if name == "numpyvae" else f", {threads}") / 2 ** 20)) + " MiB")
        print(f"  {name:18s} {1e3 * best[name]:7.1f} ms ({1e3 * np.median(t):.1f})  "
              f"{batch / best[name]:7.0f} examples/s{mem}")
    if "pytorch" in best:
        for name in [n for n in best if n.startswith("numpyvae")]:
            print(f"  {name} vs pytorch: {spread(per_round(times, 'pytorch', name), '{:.2f}x')}")
    shares = conv_time_shares(batch)
    print(f"  numpyvae's step: im2col {100 * shares['im2col']:.0f}%, col2im {100 * shares['col2im']:.0f}% "
          f"of its time (the copies around the products)")


def section_log_marginal(args, clock):
    for hidden, z_dim, act in (([400], 20, "relu"), ([200, 200], 50, "tanh")):
        model = VAE(784, hidden, z_dim, activation=act, seed=0)
        x = (np.random.default_rng(1).uniform(size=(args.lm_images, 784)) < 0.3).astype(np.float32)
        jobs = {"log_marginal": log_marginal_job(model, x, args.k, args.max_rows, args.workers),
                "BLAS bound": log_marginal_bound(model, len(x), args.k, args.max_rows)}
        times = interleaved(jobs, args.rounds, {name: 1 for name in jobs}, clock, max(args.settle, 0.3))
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


SECTIONS = ("steps", "epoch", "conv", "log_marginal")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", default=None,
                   help="comma-separated thread counts (default: 1, 2, 4, ... up to the cores)")
    p.add_argument("--sections", default="steps,epoch",
                   help=f"comma-separated, from {', '.join(SECTIONS)} (conv and log_marginal run at the most threads)")
    p.add_argument("--rounds", "--repeats", type=int, default=7, help="interleaved rounds (at least 7 for a claim)")
    p.add_argument("--steps", type=int, default=50, help="training steps per contender per round")
    p.add_argument("--epoch-rounds", type=int, default=7, help="interleaved rounds of the MNIST epoch")
    p.add_argument("--epoch-images", type=int, default=None, help="the first N training images only (a quick check)")
    p.add_argument("--data-dir", default=None, help="where MNIST is (default: numpyvae.data's search)")
    p.add_argument("--settle", type=float, default=0.05,
                   help="seconds of sleep before each timed job (idle BLAS and OpenMP threads spin, then sleep)")
    p.add_argument("--lm-images", type=int, default=4, help="images per log_marginal repetition")
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--max-rows", type=int, default=1024)
    p.add_argument("--workers", type=int, default=None,
                   help="log_marginal's workers (default: as many as BLAS has threads)")
    p.add_argument("--autograd", action="store_true", help="HIPS autograd's step too (at 1 thread)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="conv and log_marginal sections: wall time, or this process's CPU time")
    p.add_argument("--quick", action="store_true",
                   help="a check that everything runs (about a minute), not a measurement: 2 rounds of 5 steps, "
                        "an epoch of 2,048 images, 1 and 2 threads")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.steps, args.epoch_rounds, args.epoch_images = 2, 5, 1, 2048
        args.threads = args.threads or ",".join(str(t) for t in (1, 2) if t <= (os.cpu_count() or 1))
    sections = [s for s in args.sections.split(",") if s]
    if set(sections) - set(SECTIONS):
        p.error(f"--sections: unknown {sorted(set(sections) - set(SECTIONS))}; choose from {SECTIONS}")
    cores = os.cpu_count() or 1
    counts = thread_counts(cores) if args.threads is None else [int(t) for t in args.threads.split(",")]
    start = blas_threads()
    if start is None:
        print("numpyvae cannot steer this BLAS's threads (numpyvae/blas_threads.py): every count runs the serial step")
    elif max(counts) > start:
        print(f"note: OpenBLAS started with {start} threads (OPENBLAS_NUM_THREADS?); unset it to time more")
    has_torch, has_autograd = optional("torch"), args.autograd and optional("autograd")
    versions = f"NumPy {np.__version__}"
    if has_torch:
        import torch
        versions += f", PyTorch {torch.__version__}"
    if has_autograd:
        from importlib.metadata import version
        versions += f", autograd {version('autograd')}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"machine: {cpu}, {cores} cores, {platform.system()}, Python {platform.python_version()}, {versions}; "
          f"BLAS threads steered by {controller()}; threads {counts}; {args.rounds} interleaved rounds of "
          f"{args.steps} steps; load average before {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "")
    t0 = time.perf_counter()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    if "steps" in sections:
        section_steps(args, counts, has_torch, has_autograd)
    if "epoch" in sections:
        section_epoch(args, counts, has_torch)
    if "conv" in sections:
        with n_blas_threads(max(counts)):
            section_conv(args, max(counts), has_torch, clock)
    if "log_marginal" in sections:
        with n_blas_threads(max(counts)):
            section_log_marginal(args, clock)
    print(f"\n(took {time.perf_counter() - t0:.0f} s; load average after {os.getloadavg()[0]:.2f})"
          if hasattr(os, "getloadavg") else "")


if __name__ == "__main__":
    main()
