"""How much memory a training run takes, estimated before anything is allocated.

    peak ~ 50 MB (Python, NumPy, the data)
         + P s (3 + slots)     the parameters, their gradients, the optimizer's slots and its scratch
         + R W s 5             the widest forward and backward pass: R rows through the layers with
                               weights, whose outputs are W numbers wide in all, each kept about 5 times over
                               (caches, masks, the estimator's Z-wide temporaries)

P parameters of s bytes (4 for float32, 8 for float64); slots 2 for Adam, 1
for Adagrad and SGD; R the most rows at once: batch_size * k in training,
min(1000, test images) * test_k for the test figures after each epoch.
A resumed run also holds the checkpoint's arrays while they are loaded:
P s (1 + slots) more.  Saving streams the arrays into the file and costs
almost nothing more.

Measured peak resident memory against this estimate (benchmarks/memory_estimate.py:
the digits, one epoch, float32, Adam; x86_64, 2 cores, Linux, Python 3.11;
benchmarks/results/memory_estimate.txt): --z-dim 50000 1151 MiB vs 1184 MiB,
--hidden 2000 2000 237 vs 269 MiB, the default 128-2 network 43 vs 53 MiB:
the estimate is 3-24% above what was measured.  A convolutional network's
column matrices (im2col) are counted too: twice each conv layer's, at most
MAX_COLS numbers a chunk; on the digits the conv estimate is 38-51% above
the measured peak (benchmarks/results/memory_estimate.txt).
"""
import numpy as np

from .network import plan
from .vae import network_specs

BASE = 50 * 2**20
SLOTS = {"adam": 2, "adagrad": 1, "sgd": 1}
PASS_COPIES = 5


def _column_bytes(spec, steps, in_shape, rows, s):
    """A convolution's column matrices (numpyvae/conv.py): each layer's im2col copy, at most MAX_COLS numbers
    per chunk, kept from forward to backward, and as many again while the backward pass builds dx."""
    from .conv import MAX_COLS
    total, shape = 0, tuple(in_shape)
    for entry, (kind, out_shape, _) in zip(spec, steps):
        if kind in ("conv2d", "conv_transpose2d"):
            k = entry["kernel_size"]
            kk = k * k if isinstance(k, int) else k[0] * k[1]
            grid = out_shape[1] * out_shape[2] if kind == "conv2d" else shape[1] * shape[2]
            channels = shape[0] if kind == "conv2d" else out_shape[0]
            total += 2 * min(rows * grid * channels * kk, MAX_COLS) * s
        shape = out_shape
    return total


def training_bytes(config, optimizer="adam", rows=1000, resuming=False, workers=1):
    """The estimated peak memory (bytes) of training a VAE of ``config`` (VAE.config) with ``rows`` at once.

    workers > 1 (numpyvae/parallel.py): each worker's gradient buffers and the summed gradient, P s (workers + 1),
    more; the rows are shared among the workers, so the passes take no more.
    """
    encoder, decoder = network_specs(config)
    enc_steps, dec_steps = plan(encoder, (config["x_dim"],), "encoder"), plan(decoder, (config["z_dim"],), "decoder")
    steps = enc_steps + dec_steps
    n_params = sum(n for _, _, n in steps)
    width = sum(int(np.prod(shape)) for _, shape, n in steps if n)     # the outputs of the layers with weights
    s = 8 if config["dtype"] == "float64" else 4
    slots = SLOTS.get(optimizer, 2)
    total = BASE + n_params * s * (3 + slots) + rows * width * s * PASS_COPIES
    total += (_column_bytes(encoder, enc_steps, (config["x_dim"],), rows, s)
              + _column_bytes(decoder, dec_steps, (config["z_dim"],), rows, s))
    if resuming:
        total += n_params * s * (1 + slots)
    if workers > 1:
        total += n_params * s * (workers + 1)
    return total
