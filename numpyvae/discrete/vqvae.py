"""A small VQ-VAE: encoder Network -> M vectors of dimension d -> nearest of K codes -> decoder Network.

    x (B, D) --encoder--> z_e (B, M, d) --quantize--> z_q (B, M, d) --decoder--> Bernoulli logits (B, D)
    loss = -log p(x | z_q) + codebook loss + beta * commitment loss     (numpyvae/discrete/vq.py)

Deterministic: nothing is sampled.  ``loss_and_grads`` runs the backward pass with the straight-through
copy of the decoder's gradient from z_q to z_e.  (No prior over the codes is fitted here: see the issue's
notes for what is not done.)
"""
from collections import OrderedDict

import numpy as np

from . import vq
from .. import distributions as dist
from ..errors import InputError
from ..layers import ACTIVATIONS, sigmoid
from ..network import Network, mlp_spec
from ..params import Params
from ..validate import as_float_array, check_choice, check_dtype, check_float, check_positive_int

bernoulli_log_prob, bernoulli_log_prob_grad = dist.bernoulli_log_prob.kernel, dist.bernoulli_log_prob_grad.kernel


class VQVAE:
    """x_dim D; n_positions M and code_dim d (the encoder outputs M*d numbers); n_codes K; beta the
    commitment weight; hidden sizes of the encoder (the decoder mirrors them); Bernoulli decoder.
    codebook: "loss" (the codes learn from the codebook loss's gradient) or "ema" (``ema_step`` moves them to
    moving averages of their encoder outputs, with ``decay``; the codebook loss then gives no gradient).

    ``params``: ``encoder.{k}.W`` ..., ``codebook.E`` (K, d), ``decoder.{k}.W`` ...
    """

    def __init__(self, x_dim, n_positions=8, code_dim=4, n_codes=32, hidden=(128,), beta=0.25, activation="relu",
                 dtype=np.float32, seed=0, codebook="loss", decay=0.99):
        self.x_dim = check_positive_int("x_dim", x_dim)
        self.M, self.d = check_positive_int("n_positions", n_positions), check_positive_int("code_dim", code_dim)
        self.K = check_positive_int("n_codes", n_codes)
        self.beta = check_float("beta", beta, lo=0.0, hi=1e3)
        self.codebook = check_choice("codebook", codebook, ("loss", "ema"))
        self.decay = check_float("decay", decay, lo=0.0, hi=1.0, hi_open=True)
        check_choice("activation", activation, ACTIVATIONS)
        hidden = [check_positive_int(f"hidden[{i}]", h) for i, h in enumerate(hidden)]
        self.dtype = check_dtype("dtype", dtype)
        rng = np.random.default_rng(check_positive_int("seed", seed, minimum=0))
        md = self.M * self.d
        self.encoder = Network(mlp_spec([self.x_dim, *hidden, md], activation), (self.x_dim,), "glorot", rng,
                               self.dtype, name="encoder")
        self.decoder = Network(mlp_spec([md, *hidden[::-1], self.x_dim], activation), (md,), "glorot", rng,
                               self.dtype, name="decoder")
        self.E = rng.uniform(-1.0 / self.K, 1.0 / self.K, size=(self.K, self.d)).astype(self.dtype)
        params, self._grads = OrderedDict(), OrderedDict()
        for prefix, net in (("encoder", self.encoder), ("decoder", self.decoder)):
            own = net.own_grads()
            for name, p in net.params.items():
                params[f"{prefix}.{name}"], self._grads[f"{prefix}.{name}"] = p, own[name]
        params["codebook.E"], self._grads["codebook.E"] = self.E, np.zeros_like(self.E)
        self.params = Params(params)
        # "ema": the running counts N_k and sums m_k (vq.ema_update), started at one use of each code
        self.ema_counts = np.ones(self.K, dtype=self.dtype)
        self.ema_sums = self.E.copy()

    def check_x(self, x, name="x"):
        x = as_float_array(name, x, ndim=2, dtype=self.dtype, lo=0.0, hi=1.0)
        if x.shape[1] != self.x_dim or x.shape[0] == 0:
            raise InputError(f"{name}: expected shape (batch >= 1, {self.x_dim}), got {x.shape}")
        if len(x) * max(self.x_dim, self.M * self.K) > 2**28:
            raise InputError(f"{name}: {len(x):,} rows are more than one call may hold; use batches")
        return x

    def _encode(self, x):
        h, cache = self.encoder.call(x)
        return h.reshape(len(x), self.M, self.d), cache

    def codes(self, x):
        """The chosen code of every position, (B, M)."""
        return vq.nearest(self._encode(self.check_x(x))[0], self.E)

    def usage(self, x):
        """Counts per code (K,), the perplexity of their frequencies, and the number of dead codes, on x."""
        return vq.usage(self.codes(x), self.K)

    def reconstruct(self, x):
        """The mean image of p(x | z_q(x)), (B, D)."""
        z_q = self.E[self.codes(x)]
        return sigmoid(self.decoder.call(z_q.reshape(len(z_q), -1))[0])

    def loss_and_grads(self, x, grads=None):
        """mean_b [-log p(x|z_q) + codebook + beta commitment] and its gradient (straight-through to z_e).

        ``last``: the three terms, each a mean over the batch (nats for the first)."""
        x = self.check_x(x)
        if grads is None:
            grads = self._grads
            for g in grads.values():
                g[...] = 0
        elif not hasattr(grads, "keys") or set(grads) != set(self.params) or any(
                not isinstance(grads[k], np.ndarray) or grads[k].shape != p.shape for k, p in self.params.items()):
            raise InputError("grads: expected a dict with an array shaped like each of params")
        B = len(x)
        z_e, enc_cache = self._encode(x)
        z_q, codebook, commitment, vq_cache = vq.quantize(z_e, self.E, self.beta)
        out, dec_cache = self.decoder.call(z_q.reshape(B, -1))
        log_px = bernoulli_log_prob(x, out)
        terms = -log_px + codebook + commitment
        self.last = {"recon": -float(log_px.mean()), "codebook": float(codebook.mean()),
                     "commitment": float(commitment.mean() / self.beta) if self.beta else float(codebook.mean())}
        s = np.full(B, 1.0 / B, dtype=self.dtype)
        dout = -bernoulli_log_prob_grad(x, out) / B                                  # d loss / d logits
        dz_q = self.decoder.call_backward(dout, dec_cache, _part(grads, "decoder.")).reshape(z_q.shape)
        dz_e, dE = vq.quantize_backward(dz_q, s, s, vq_cache, self.K)                # straight-through + losses
        if self.codebook == "loss":
            grads["codebook.E"] += dE
        else:
            self._ema_batch = (z_e, vq_cache[2])                                     # for ema_step
        self.encoder.call_backward(dz_e.reshape(B, -1), enc_cache, _part(grads, "encoder."), need_dx=False)
        return float(terms.mean()), grads


    def ema_step(self):
        """codebook="ema": move the codes to the moving averages of the last loss_and_grads batch's z_e
        (call it after the optimizer's step, which leaves codebook.E alone: its gradient is zero)."""
        if self.codebook != "ema" or getattr(self, "_ema_batch", None) is None:
            raise InputError("codebook: ema_step needs codebook='ema' and a loss_and_grads call before it")
        z_e, k = self._ema_batch
        vq.ema_update(self.E, self.ema_counts, self.ema_sums, z_e, k, self.decay)
        self._ema_batch = None


def _part(grads, prefix):
    return {name[len(prefix):]: g for name, g in grads.items() if name.startswith(prefix)}
