"""A VAE with N categorical latents of K classes each and a uniform prior, on the seam of docs/model-seam.md.

    x (B, D) --encoder Network--> h (B, N*K) --posterior.params--> logits (B, N, K)
    g (S, B, N, K) Gumbel --posterior.sample--> z (S, B, N, K): hard, relaxed or straight-through
    z (S*B, N*K) --decoder Network--> Bernoulli logits (S, B, D) --> log p(x|z) (S, B)
    estimator(log p(x|z), z, logits, KL) --> Estimate (objective and its partials)

``loss_and_grads`` runs the chain rule back in the opposite order:
likelihood -> decoder -> (posterior.sample_backward if the estimator goes
through z) -> + the estimator's direct d/dlogits -> encoder.  For the
"exact" estimator z runs over every one of the K**N configurations, weighted
by q(z|x), so the ELBO and its gradient are computed with no sampling at all.
"""
import math
import threading
from collections import OrderedDict

import numpy as np

from . import categorical as cat
from . import pixels
from .estimators import ESTIMATORS, MovingAverageBaseline
from .posterior import Categorical, UniformCategorical
from .. import distributions as dist
from ..errors import InputError
from ..layers import ACTIVATIONS, sigmoid
from ..network import Network, mlp_spec, plan
from ..params import Params
from ..validate import as_float_array, check_choice, check_dtype, check_float, check_positive_int, check_rng

bernoulli_log_prob, bernoulli_log_prob_grad = dist.bernoulli_log_prob.kernel, dist.bernoulli_log_prob_grad.kernel

# the most configurations "exact" enumerates (K**N decoder passes per example)
MAX_CONFIGURATIONS = 4096
# tau below this makes (l + g) / tau overflow-prone in float32 and the relaxation meaningless
TAU_MIN = 1e-3
# the most numbers one activation array may hold (1 GB in float32), as numpyvae/vae.py: bounds samples * batch
MAX_ACTIVATIONS = 2**28
LIKELIHOODS = ("bernoulli", "categorical")


class CategoricalVAE:
    """N categorical latents of K classes, uniform prior, Bernoulli decoder.

    x_dim     : pixels D (data in [0, 1]).
    n_latents : N;  n_classes : K >= 2.
    hidden    : the encoder's hidden layer sizes (D -> hidden -> N*K); the decoder mirrors them.
    encoder, decoder : network specifications instead (numpyvae/network.py), D -> N*K and N*K -> D.
    dtype     : np.float32 (fast) or np.float64 (gradient checks).
    likelihood: "bernoulli" (x in [0, 1], D decoder logits) or "categorical" (x whole grey levels
                0 .. levels-1, D*levels decoder logits; numpyvae/discrete/pixels.py).

    ``params`` maps ``encoder.{k}.W`` ... ``decoder.{k}.b`` to the live arrays.
    """

    def __init__(self, x_dim, n_latents=20, n_classes=10, hidden=(512, 256), activation="relu",
                 dtype=np.float32, seed=0, encoder=None, decoder=None, likelihood="bernoulli", levels=256):
        self.x_dim = check_positive_int("x_dim", x_dim)
        self.likelihood = check_choice("likelihood", likelihood, LIKELIHOODS)
        self.levels = check_positive_int("levels", levels, minimum=2) if likelihood == "categorical" else None
        n_out = self.x_dim * (self.levels or 1)
        self.n_latents = check_positive_int("n_latents", n_latents)
        self.n_classes = check_positive_int("n_classes", n_classes, minimum=2)
        check_choice("activation", activation, ACTIVATIONS)
        if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
            hidden = [hidden]
        if not isinstance(hidden, (list, tuple)):
            raise InputError(f"hidden: expected an int or a list of ints, got {hidden!r:.80}")
        hidden = [check_positive_int(f"hidden[{i}]", h) for i, h in enumerate(hidden)]
        if dtype is None:
            raise InputError("dtype: expected float32 or float64, got None")
        self.dtype = check_dtype("dtype", dtype)
        seed = check_positive_int("seed", seed, minimum=0)
        self.posterior = Categorical(self.n_latents, self.n_classes)
        self.prior = UniformCategorical(self.n_latents, self.n_classes)
        nk = self.posterior.n_outputs()
        if (encoder is None) != (decoder is None):
            raise InputError("encoder, decoder: give both specifications or neither")
        if encoder is None:
            encoder = mlp_spec([self.x_dim, *hidden, nk], activation)
            decoder = mlp_spec([nk, *hidden[::-1], n_out], activation)
        for name, spec, n_in, want in (("encoder", encoder, self.x_dim, nk), ("decoder", decoder, nk, n_out)):
            out = plan(spec, (n_in,), name)[-1][1]
            if out != (want,):
                raise InputError(f"{name}: its output per example has shape {out}, expected ({want},)")
        rng = np.random.default_rng(seed)
        self.encoder = Network(encoder, (self.x_dim,), "glorot", rng, self.dtype, name="encoder")
        self.decoder = Network(decoder, (nk,), "glorot", rng, self.dtype, name="decoder")
        params, self._grads = OrderedDict(), OrderedDict()
        for prefix, net in (("encoder", self.encoder), ("decoder", self.decoder)):
            own = net.own_grads()
            for name, p in net.params.items():
                params[f"{prefix}.{name}"], self._grads[f"{prefix}.{name}"] = p, own[name]
        self.params = Params(params)
        self.lock = threading.RLock()          # held by loss_and_grads while it fills the model's own buffers
        self._widest = max(int(np.prod(shape)) for spec, n_in in ((encoder, self.x_dim), (decoder, nk))
                           for _, shape, _ in plan(spec, (n_in,)))

    def __getstate__(self):                    # copy.deepcopy, pickle: the copy gets a lock of its own
        return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.RLock()

    # ---- checks at the boundary --------------------------------------------------------

    def check_x(self, x, name="x"):
        """(B, D) finite values in [0, 1] (Bernoulli) or whole levels 0 .. levels-1 (categorical), model dtype."""
        hi = 1.0 if self.likelihood == "bernoulli" else self.levels - 1
        x = as_float_array(name, x, ndim=2, dtype=self.dtype, lo=0.0, hi=hi)
        if x.shape[1] != self.x_dim or x.shape[0] == 0:
            raise InputError(f"{name}: expected shape (batch >= 1, {self.x_dim}), got {x.shape}")
        if self.likelihood == "categorical" and np.any(x != np.round(x)):
            raise InputError(f"{name}: a categorical-pixel model expects whole grey levels 0 .. {self.levels - 1} "
                             f"(numpyvae.discrete.pixels.quantize), found {x[x != np.round(x)][0]}")
        return x

    def log_px(self, x, out):
        """log p(x|z) (S, B) from the decoder output (S, B, D or D*L)."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(x, out)
        return pixels.log_prob(x, out.reshape(*out.shape[:-1], self.x_dim, self.levels))

    def dlog_px(self, x, out):
        """d log p(x|z) / d (decoder output), the shape of out."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob_grad(x, out)
        return pixels.log_prob_grad(x, out.reshape(*out.shape[:-1], self.x_dim, self.levels)).reshape(out.shape)

    def mean_image(self, out):
        """The mean of p(x|z) in [0, 1]: sigmoid(logits), or the mean level / (levels - 1)."""
        if self.likelihood == "bernoulli":
            return sigmoid(out)
        return pixels.mean_level(out.reshape(*out.shape[:-1], self.x_dim, self.levels))

    def check_noise(self, g, batch, name="g"):
        """Gumbel noise (S, B, N, K), finite, cast to the model dtype."""
        g = as_float_array(name, g, ndim=4, dtype=self.dtype)
        want = (batch, self.n_latents, self.n_classes)
        if g.shape[1:] != want or g.shape[0] == 0:
            raise InputError(f"{name}: expected shape (S >= 1, {', '.join(map(str, want))}), got {g.shape}")
        return g

    def check_rows(self, name, rows):
        """Refuse a request whose activations would exceed MAX_ACTIVATIONS numbers (rows x widest layer)."""
        if rows * self._widest > MAX_ACTIVATIONS:
            raise InputError(f"{name}: {rows:,} decoder rows of up to {self._widest} numbers exceed the "
                             f"{MAX_ACTIVATIONS:,} one array may hold here; use fewer")
        return rows

    def _noise(self, g, rng, samples, batch):
        if g is None:
            samples = check_positive_int("samples", samples)
            self.check_rows("samples * batch", samples * batch)
            return self.posterior.draw_noise(check_rng("rng", rng), samples, batch, self.dtype)
        g = self.check_noise(g, batch)
        self.check_rows("g: samples * batch", g.shape[0] * batch)
        return g

    def _check_configurations(self, batch):
        c = self.n_classes ** self.n_latents if self.n_latents * math.log(self.n_classes) < 30 else math.inf
        if c > MAX_CONFIGURATIONS:
            raise InputError(f"n_latents, n_classes: K**N = {self.n_classes}**{self.n_latents} configurations; "
                             f"enumerating them is offered up to {MAX_CONFIGURATIONS}")
        self.check_rows("x: configurations * batch", int(c) * batch)
        return int(c)

    # ---- forward pieces ------------------------------------------------------------------

    def _encode(self, x):
        h, cache = self.encoder.call(x)
        return self.posterior.params(h), cache

    def _decode(self, z):
        """z (S, B, N, K) -> Bernoulli logits (S, B, D), the network's cache."""
        S, B = z.shape[:2]
        out, cache = self.decoder.call(z.reshape(S * B, -1))
        return out.reshape(S, B, -1), cache

    def logits(self, x):
        """x (B, D) -> the encoder's logits (B, N, K) of q(z|x)."""
        return self._encode(self.check_x(x))[0]

    # ---- the objective and its gradient ---------------------------------------------------

    def loss_and_grads(self, x, g=None, rng=None, estimator="score_loo", samples=1, tau=1.0, baseline=None,
                       grads=None):
        """See ``_loss_and_grads``; holds ``lock`` when it fills the model's own buffers (grads=None)."""
        if grads is not None:
            return self._loss_and_grads(x, g, rng, estimator, samples, tau, baseline, grads)
        with self.lock:
            return self._loss_and_grads(x, g, rng, estimator, samples, tau, baseline, grads)

    def _loss_and_grads(self, x, g, rng, estimator, samples, tau, baseline, grads):
        """Minus the estimator's objective, averaged over the batch, and its gradient for every parameter.

        x         : (B, D) data in [0, 1].
        g         : Gumbel noise (S, B, N, K); when given nothing random is drawn.
        rng       : numpy Generator that draws g (S = ``samples``) when g is None.
        estimator : "score_ma", "score_loo" (S >= 2), "gumbel_softmax", "straight_through", or "exact"
                    (every configuration; g, rng, samples ignored).
        tau       : the temperature of "gumbel_softmax" and "straight_through" (> 0).
        baseline  : a MovingAverageBaseline for "score_ma" (updated after use).
        grads     : None (the model's own buffers, overwritten) or the caller's buffers (added into).

        Returns (loss, grads).  ``last`` holds this call's objective, its recon and kl terms (B,) and,
        for "gumbel_softmax", ``elbo_hard``: the ELBO estimated with the hard samples of the same g
        (the relaxed objective is not a bound; the hard ELBO is).
        """
        x = self.check_x(x)
        fn, mode = ESTIMATORS[check_choice("estimator", estimator, ESTIMATORS)]
        B = x.shape[0]
        if mode == "all":
            self._check_configurations(B)
        else:
            g = self._noise(g, rng, samples, B)
            if estimator == "score_loo" and g.shape[0] < 2:
                raise InputError(f"samples: 'score_loo' needs at least 2 samples per example, got {g.shape[0]}")
        if mode in ("relaxed", "straight_through"):
            tau = check_float("tau", tau, lo=TAU_MIN)
        if estimator == "score_ma" and not isinstance(baseline, MovingAverageBaseline):
            raise InputError(f"baseline: 'score_ma' needs a MovingAverageBaseline, got {type(baseline).__name__}")
        if grads is None:
            grads = self._grads
            for buf in grads.values():
                buf[...] = 0
        else:
            grads = self._check_grad_buffers(grads)

        logits, enc_cache = self._encode(x)
        if mode == "all":
            z, scache = self.prior.configurations(self.dtype)[:, None], None        # (C, 1, N, K)
            z = np.broadcast_to(z, (len(z), B, self.n_latents, self.n_classes))
        else:
            z, scache = self.posterior.sample(logits, g, mode, tau)
        out, dec_cache = self._decode(z)
        log_px = self.log_px(x, out)                                               # (S, B)
        with np.errstate(over="ignore", invalid="ignore"):
            est = fn(log_px, z, logits, self.prior.kl(logits), self.prior.kl_grad(logits), baseline)
        loss = -float(np.mean(est.objective))
        if not np.isfinite(loss):
            raise InputError(f"x: the loss is {loss} for this batch (the network has diverged)")
        self.last = {"objective": est.objective, "recon": est.recon, "kl": est.kl}
        if mode == "relaxed":
            hard = self.log_px(x, self._decode(cat.gumbel_max(logits, g))[0])
            self.last["elbo_hard"] = hard.mean(axis=0) - est.kl

        # backward: loss = -(1/B) sum_b objective_b
        s = -1.0 / B
        dout = self.dlog_px(x, out) * (s * est.dlog_px)[..., None]                # likelihood
        S = z.shape[0]
        dz = self.decoder.call_backward(dout.reshape(S * B, -1), dec_cache, _part(grads, "decoder."),
                                        need_dx=est.through_z)                  # decoder
        dlogits = s * est.dlogits                                                # KL and score terms
        if est.through_z:
            dlogits = dlogits + self.posterior.sample_backward(dz.reshape(z.shape), scache)   # through y
        self.encoder.call_backward(self.posterior.params_backward(dlogits), enc_cache,
                                   _part(grads, "encoder."), need_dx=False)     # encoder
        return loss, grads

    def _check_grad_buffers(self, grads):
        if not hasattr(grads, "keys") or set(grads.keys()) != set(self.params):
            raise InputError(f"grads: expected a dict with exactly the keys of params ({len(self.params)} names)")
        for name, p in self.params.items():
            buf = grads[name]
            if not isinstance(buf, np.ndarray) or buf.shape != p.shape or buf.dtype != p.dtype:
                raise InputError(f"grads[{name!r}]: expected an array of shape {p.shape} and dtype {p.dtype}")
        return grads

    def new_grad_buffers(self):
        """Zeroed gradient buffers owned by the caller."""
        return OrderedDict((name, np.zeros_like(p)) for name, p in self.params.items())

    # ---- values --------------------------------------------------------------------------

    def exact_elbo(self, x):
        """The ELBO (B,) by summing over all K**N configurations: E_q[log p(x|z)] - KL, no sampling."""
        x = self.check_x(x)
        self._check_configurations(len(x))
        logits, _ = self._encode(x)
        z = self.prior.configurations(self.dtype)[:, None]
        log_px = self.log_px(x, self._decode(np.broadcast_to(z, (len(z), *logits.shape)))[0])
        q = np.exp(self.posterior.log_prob(z, logits))
        return (q * log_px).sum(axis=0) - self.prior.kl(logits)

    def exact_log_px(self, x):
        """log p(x) = log sum_z p(z) p(x|z) (B,), by enumeration, with a stable log-sum-exp."""
        x = self.check_x(x)
        self._check_configurations(len(x))
        z = self.prior.configurations(self.dtype)[:, None]
        log_px = self.log_px(x, self._decode(np.broadcast_to(z, (len(z), len(x), self.n_latents,
                                                                         self.n_classes)))[0])
        return _logmeanexp(log_px + self.prior.log_prob(z) + math.log(len(z)))

    def elbo_hard(self, x, g=None, rng=None, samples=1):
        """The ELBO estimated with hard samples z_s = onehot(argmax(l + g_s)) ~ q: mean_s log p(x|z_s) - KL (B,)."""
        x = self.check_x(x)
        g = self._noise(g, rng, samples, len(x))
        logits, _ = self._encode(x)
        return self.log_px(x, self._decode(cat.gumbel_max(logits, g))[0]).mean(axis=0) - self.prior.kl(logits)

    def relaxed_objective(self, x, tau, g=None, rng=None, samples=1):
        """mean_s log p(x|y_s) - KL with y_s = softmax((l + g_s)/tau) (B,): what Gumbel-softmax ascends.

        Not a lower bound on log p(x): the decoder is evaluated off the one-hot corners.
        """
        x = self.check_x(x)
        tau = check_float("tau", tau, lo=TAU_MIN)
        g = self._noise(g, rng, samples, len(x))
        logits, _ = self._encode(x)
        y, _ = cat.gumbel_softmax(logits, g, tau)
        return self.log_px(x, self._decode(y)[0]).mean(axis=0) - self.prior.kl(logits)

    def log_marginal(self, x, rng, samples=1000, chunk=100):
        """Importance-sampled log p(x) (B,) with q(z|x) as proposal: log mean_s p(x|z_s) p(z_s) / q(z_s|x).

        A stochastic lower bound on log p(x) that tightens as ``samples`` grows (the IWAE bound).
        """
        x = self.check_x(x)
        samples, chunk = check_positive_int("samples", samples), check_positive_int("chunk", chunk)
        rng = check_rng("rng", rng)
        chunk = max(1, min(chunk, MAX_ACTIVATIONS // (self._widest * len(x))))    # bounded memory per chunk
        self.check_rows("x", len(x))
        logits, _ = self._encode(x)
        parts = []
        for start in range(0, samples, chunk):
            g = self.posterior.draw_noise(rng, min(chunk, samples - start), len(x), self.dtype)
            z = cat.gumbel_max(logits, g)
            log_w = (self.log_px(x, self._decode(z)[0]) + self.prior.log_prob(z)
                     - self.posterior.log_prob(z, logits))
            parts.append(log_w.astype(np.float64))
        return _logmeanexp(np.concatenate(parts, axis=0))

    def reconstruct(self, x):
        """The mean image at the most probable configuration argmax q(z|x), (B, D)."""
        logits = self.logits(x)
        return self.mean_image(self._decode(cat.one_hot_argmax(logits)[None])[0][0])

    def sample(self, n, rng):
        """n images: the mean of p(x|z) for z from the uniform prior, (n, D)."""
        n = self.check_rows("n", check_positive_int("n", n))
        z = self.prior.sample(check_rng("rng", rng), n, self.dtype)
        return self.mean_image(self._decode(z[None])[0][0])


def _part(grads, prefix):
    return {name[len(prefix):]: g for name, g in grads.items() if name.startswith(prefix)}


def _logmeanexp(a):
    """log mean exp over axis 0, shifted by the max."""
    m = a.max(axis=0)
    return m + np.log(np.exp(a - m).mean(axis=0))
