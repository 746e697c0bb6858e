"""The VAE: encoder -> reparameterization -> decoder, and its backward pass.

    x (B, D) --encoder MLP--> [mu | logvar] (B, 2Z)
    eps (K, B, Z) ~ N(0, I);   z = mu + exp(logvar / 2) * eps      (K, B, Z)
    z --decoder MLP--> logits (K*B, D)           (Bernoulli)
                    or [mean | logvar_x] (K*B, 2D)  (Gaussian)
    estimator(log p(x|z), z, mu, logvar) -> per-example ELBO and its partials

``loss_and_grads`` then runs the chain rule backwards in the same order.
"""
import functools
import math
import threading
from collections import OrderedDict

import numpy as np

from . import distributions as dist
from .errors import InputError
from .estimators import ESTIMATORS
from .layers import ACTIVATIONS, INITS, sigmoid
from .mlp import MLP
from .params import Params
from .validate import as_float_array, check_choice, check_dtype, check_float, check_positive_int, check_rng

# The formulas without argument checks: the VAE checks x and eps once, at its public methods.
bernoulli_log_prob, bernoulli_log_prob_grad = dist.bernoulli_log_prob.kernel, dist.bernoulli_log_prob_grad.kernel
gaussian_log_prob, gaussian_log_prob_grads = dist.gaussian_log_prob.kernel, dist.gaussian_log_prob_grads.kernel
reparameterize, reparameterize_backward = dist.reparameterize.kernel, dist.reparameterize_backward.kernel

LIKELIHOODS = ("bernoulli", "gaussian")
# the Gaussian decoder's mean: the raw output, or squashed into (0, 1) by a
# sigmoid as Kingma & Welling do for Frey Face (grey levels live in [0, 1]).
GAUSSIAN_MEANS = ("identity", "sigmoid")
# log-variances are clipped to this range (gradient zero outside) so that
# exp(logvar) stays finite even for absurd network outputs.
LOGVAR_LIMIT = 30.0
# the largest model built (400 MB of float32 weights; training holds about 5 times that with Adam, and
# the command line refuses a run above --max-memory first: numpyvae/memory.py)
MAX_PARAMS = 100_000_000
# the deepest: every layer is a few Python objects, so a list of a million 1-unit layers would
# take gigabytes and minutes to build although it has few parameters
MAX_HIDDEN_LAYERS = 100
# the most numbers one activation array may hold (1 GB in float32): bounds k * batch and n
MAX_ACTIVATIONS = 2**28


def _locked(method):
    """Run the method holding the model's lock: the layers keep caches, so calls from threads are serialised."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)
    return call


def check_config(x_dim, hidden=(400,), z_dim=20, likelihood="bernoulli", activation="relu", init="glorot",
                 dtype=np.float32, gaussian_mean="identity"):
    """The VAE's constructor arguments checked, without building anything; returns ``VAE.config``.

    InputError names the first bad argument.  The size is checked here, before
    any weight is allocated: a typo must not eat the machine's memory.
    """
    x_dim, z_dim = check_positive_int("x_dim", x_dim), check_positive_int("z_dim", z_dim)
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        hidden = [hidden]
    if not isinstance(hidden, (list, tuple)):
        raise InputError(f"hidden: expected an int or a list of ints (hidden layer sizes), got {hidden!r:.80}")
    if len(hidden) > MAX_HIDDEN_LAYERS:
        raise InputError(f"hidden: expected at most {MAX_HIDDEN_LAYERS} hidden layers, got {len(hidden)}")
    hidden = [check_positive_int(f"hidden[{i}]", h) for i, h in enumerate(hidden)]
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("init", init, INITS)
    check_choice("likelihood", likelihood, LIKELIHOODS)
    check_choice("gaussian_mean", gaussian_mean, GAUSSIAN_MEANS)
    if likelihood == "bernoulli" and gaussian_mean != "identity":
        raise InputError(f"gaussian_mean: {gaussian_mean!r} needs likelihood='gaussian'")
    if dtype is None:                          # np.dtype(None) would quietly mean float64
        raise InputError("dtype: expected float32 or float64, got None")
    dtype = check_dtype("dtype", dtype)
    n_params = sum((a + 1) * b for sizes in layer_sizes(x_dim, hidden, z_dim, likelihood)
                   for a, b in zip(sizes[:-1], sizes[1:]))
    if n_params > MAX_PARAMS:
        raise InputError(f"x_dim, hidden, z_dim: {n_params:,} parameters, expected at most {MAX_PARAMS:,}")
    return dict(x_dim=x_dim, hidden=hidden, z_dim=z_dim, likelihood=likelihood, activation=activation,
                init=init, dtype=np.dtype(dtype).name, gaussian_mean=gaussian_mean)


def layer_sizes(x_dim, hidden, z_dim, likelihood):
    """(encoder sizes, decoder sizes): x -> hidden -> [mu | logvar] and z -> reversed hidden -> output,
    where the output is the D logits (Bernoulli) or [mean | logvar_x], 2D (Gaussian)."""
    out_dim = x_dim if likelihood == "bernoulli" else 2 * x_dim
    return [x_dim, *hidden, 2 * z_dim], [z_dim, *hidden[::-1], out_dim]


def _clip_logvar(raw):
    """logvar = clip(raw, -L, L); returns it and the mask where the gradient passes."""
    inside = np.abs(raw) < LOGVAR_LIMIT
    return np.clip(raw, -LOGVAR_LIMIT, LOGVAR_LIMIT), inside


class VAE:
    """A variational autoencoder with diagonal-Gaussian q(z|x) and N(0, I) prior.

    x_dim      : number of pixels D.
    hidden     : int or list of ints, hidden layer sizes of the encoder; the
                 decoder mirrors them.
    z_dim      : latent dimension Z.
    likelihood : "bernoulli" (decoder outputs D logits; data in [0, 1]) or
                 "gaussian" (decoder outputs D means then D log-variances).
    gaussian_mean : "identity" (mean = raw output) or "sigmoid" (mean =
                 sigmoid(raw output), in (0, 1)); Gaussian likelihood only.
    activation : "relu", "leaky_relu", "tanh", "sigmoid" or "softplus".
    init       : "glorot" or "normal" (N(0, 0.01^2), Kingma & Welling).
    dtype      : np.float32 (fast) or np.float64 (gradient checks).
    seed       : int seed of the generator that draws the initial weights.

    ``params`` is a read-only mapping name -> live parameter array (write
    into an array in place; assigning a new one is refused), named
    ``encoder.{i}.W``, ``encoder.{i}.b``, ``decoder.{i}.W``, ``decoder.{i}.b``
    with i counting the Linear layers of that MLP from 0.

    Threads: the layers keep the caches of the last forward pass, so every
    method that runs the network (encode, decode, forward, loss_and_grads,
    estimate, elbo, reconstruct, sample) holds ``lock`` (a re-entrant lock)
    for the whole call: calls from several threads are serialised, never
    interleaved.  What they return is the caller's own, except the grads of
    ``loss_and_grads``, the model's buffers, which the next loss_and_grads
    from any thread overwrites: a thread that uses them while other threads
    call the model holds ``lock`` across the call and that use (as
    ``Trainer.train_step`` does, around the optimizer's step).  Parameters
    changed in place by another thread are not guarded beyond that: to judge
    a model that another thread trains, judge a copy.
    """

    def __init__(self, x_dim, hidden=(400,), z_dim=20, likelihood="bernoulli", activation="relu",
                 init="glorot", dtype=np.float32, seed=0, gaussian_mean="identity"):
        self.config = check_config(x_dim, hidden, z_dim, likelihood, activation, init, dtype, gaussian_mean)
        x_dim, hidden, z_dim = self.config["x_dim"], self.config["hidden"], self.config["z_dim"]
        self.likelihood, self.gaussian_mean = likelihood, gaussian_mean
        self.dtype = np.dtype(self.config["dtype"]).type
        seed = check_positive_int("seed", seed, minimum=0)
        self.lock = threading.RLock()          # held by every call that runs the network (see Threads above)
        self.x_dim, self.z_dim = x_dim, z_dim
        encoder_sizes, decoder_sizes = layer_sizes(x_dim, hidden, z_dim, likelihood)
        self._widest = max(encoder_sizes[1:] + decoder_sizes[1:])     # the widest activation row
        rng = np.random.default_rng(seed)
        self.encoder = MLP(encoder_sizes, activation, init, rng, self.dtype)
        self.decoder = MLP(decoder_sizes, activation, init, rng, self.dtype)
        params = OrderedDict()
        self._grad_of = OrderedDict()
        for prefix, mlp in (("encoder", self.encoder), ("decoder", self.decoder)):
            for i, lin in enumerate(mlp.linears):
                params[f"{prefix}.{i}.W"], self._grad_of[f"{prefix}.{i}.W"] = lin.W, (lin, "dW")
                params[f"{prefix}.{i}.b"], self._grad_of[f"{prefix}.{i}.b"] = lin.b, (lin, "db")
        self.params = Params(params)           # live arrays; assigning a new one is refused (numpyvae.params)

    def __getstate__(self):                    # copy.deepcopy, pickle: the copy gets a lock of its own
        return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.RLock()

    # ---- forward pieces -----------------------------------------------------

    def check_x(self, x, name="x"):
        """Validate a batch: (B, x_dim), finite, in [0, 1] for Bernoulli; cast to the model dtype."""
        hi_lo = (0.0, 1.0) if self.likelihood == "bernoulli" else (None, None)
        x = as_float_array(name, x, ndim=2, dtype=self.dtype, lo=hi_lo[0], hi=hi_lo[1])
        if x.shape[1] != self.x_dim or x.shape[0] == 0:
            raise InputError(f"{name}: expected shape (batch >= 1, {self.x_dim}), got {x.shape}")
        return x

    def check_z(self, z, name="z"):
        """Validate latent codes: (N, z_dim), finite; cast to the model dtype."""
        z = as_float_array(name, z, ndim=2, dtype=self.dtype)
        if z.shape[1] != self.z_dim or z.shape[0] == 0:
            raise InputError(f"{name}: expected shape (n >= 1, {self.z_dim}), got {z.shape}")
        return z

    def check_rows(self, name, rows):
        """Refuse a request whose activations would exceed MAX_ACTIVATIONS numbers (rows x widest layer)."""
        if rows * self._widest > MAX_ACTIVATIONS:
            raise InputError(f"{name}: {rows:,} rows of up to {self._widest} numbers exceed the "
                             f"{MAX_ACTIVATIONS:,} one array may hold here; use fewer (or chunks)")
        return rows

    @_locked
    def encode(self, x):
        """x: (B, D) -> mu, logvar: (B, Z), the parameters of q(z|x).  Checks x."""
        mu, logvar = self._encode(self.check_x(x))
        return _finite_result("encode(x)", "x", mu), logvar

    @_locked
    def decode(self, z):
        """z: (N, Z) -> the decoder output (N, D) logits or (N, 2D) [mean | logvar].  Checks z."""
        return _finite_result("decode(z)", "z", self._decode(self.check_z(z)))

    def _encode(self, x):
        """encode for a checked x; caches for backward."""
        h = self.encoder.forward(x)
        mu, raw = h[:, :self.z_dim], h[:, self.z_dim:]
        logvar, self._enc_mask = _clip_logvar(raw)
        return mu, logvar

    def _decode(self, z):
        """decode for a checked z; caches for backward."""
        out = self.decoder.forward(z)
        if self.likelihood == "gaussian":
            mean = out[:, :self.x_dim]
            if self.gaussian_mean == "sigmoid":
                mean = sigmoid(mean)
            logvar, self._dec_mask = _clip_logvar(out[:, self.x_dim:])
            out = np.concatenate([mean, logvar], axis=1)
        return out

    def log_px(self, x, out):
        """log p(x|z) from the decoder output; x (B, D), out (K, B, D or 2D) -> (K, B)."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(x, out)
        return gaussian_log_prob(x, out[..., :self.x_dim], out[..., self.x_dim:])

    def dlog_px(self, x, out):
        """d log p(x|z) / d out, same shape as out."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob_grad(x, out)
        mean = out[..., :self.x_dim]
        dmean, dlogvar = gaussian_log_prob_grads(x, mean, out[..., self.x_dim:])
        if self.gaussian_mean == "sigmoid":
            dmean *= mean * (1 - mean)                               # d sigmoid(a)/da = s (1 - s)
        return np.concatenate([dmean, dlogvar * self._dec_mask.reshape(dlogvar.shape)], axis=-1)

    def mean_image(self, out):
        """Decoder output -> the mean of p(x|z) (sigmoid of logits, or the Gaussian mean)."""
        return sigmoid(out) if self.likelihood == "bernoulli" else out[..., :self.x_dim]

    @_locked
    def forward(self, x, eps):
        """The forward pass for a checked batch x (B, D) and noise eps (K, B, Z).

        Returns mu, logvar (B, Z); z (K, B, Z); the decoder output out (K, B, D or 2D);
        log_px = log p(x|z) (K, B); and the reparameterization's cache.
        """
        K, B = eps.shape[:2]
        mu, logvar = self._encode(x)
        z, rcache = reparameterize(mu, logvar, eps)                 # derivations/06-reparameterization.md
        out = self._decode(z.reshape(K * B, self.z_dim)).reshape(K, B, -1)
        return mu, logvar, z, out, self.log_px(x, out), rcache

    def draw_eps(self, rng, k, batch):
        """eps ~ N(0, I) of shape (k, batch, Z) in the model dtype, from ``rng``."""
        return rng.standard_normal((k, batch, self.z_dim), dtype=self.dtype)

    # ---- the loss and its gradient ---------------------------------------------

    @_locked
    def loss_and_grads(self, x, eps=None, rng=None, estimator="analytic", k=1, beta=1.0):
        """Negative ELBO in nats per example, and its gradient for every parameter.

        x   : (B, D) data (in [0, 1] for Bernoulli).
        eps : (B, Z) or (K, B, Z) noise; when given nothing random is drawn,
              so the loss is a deterministic function of the parameters.
        rng : numpy Generator used to draw eps when eps is None.
        estimator : "analytic", "mc", "iwae", "stl" or "score".
        k   : samples per example (ignored when eps is given).
        beta: weight of the prior/posterior terms (KL warm-up).

        Returns (loss: float, grads: dict name -> array shaped like params).
        The grad arrays are the layers' own buffers, overwritten by the next call.
        """
        x = self.check_x(x)
        est_fn = ESTIMATORS[check_choice("estimator", estimator, ESTIMATORS)].kernel
        beta = check_float("beta", beta, lo=0.0, hi=1e6)
        B = x.shape[0]
        if eps is None:
            k = check_positive_int("k", k)
            self.check_rows("k * batch", k * B)
            eps = self.draw_eps(check_rng("rng", rng), k, B)
        else:
            eps = as_float_array("eps", eps, dtype=self.dtype)
            eps = eps[None] if eps.ndim == 2 else eps
            if eps.ndim != 3 or eps.shape[1:] != (B, self.z_dim) or eps.shape[0] == 0:
                raise InputError(f"eps: expected shape ({B}, {self.z_dim}) or (k >= 1, {B}, {self.z_dim}), "
                                 f"got {eps.shape}")
            self.check_rows("eps: k * batch", eps.shape[0] * B)
        K = eps.shape[0]

        mu, logvar, z, out, log_px, rcache = self.forward(x, eps)
        est = est_fn(log_px, z, mu, logvar, beta)
        self.last_estimate = est                                     # recon and kl terms, for the history
        loss = -float(np.mean(est.elbo))
        if not np.isfinite(loss):                                    # overflow: no gradient is worth having
            raise InputError(f"x, beta: the loss is {loss} for this batch (an overflow: values of x too "
                             f"large for {np.dtype(self.dtype).name}, or the network has diverged)")

        # backward: loss = -(1/B) sum_b elbo_b, so every partial is scaled by -1/B
        s = -1.0 / B
        dout = self.dlog_px(x, out)                                  # likelihood
        dout *= (s * est.dlog_px)[..., None]
        dz = self.decoder.backward(dout.reshape(K * B, -1))          # decoder
        dz = dz.reshape(K, B, self.z_dim)
        if not est.reparameterized:
            dz[...] = 0                                              # score function: no path through z
        if est.dz is not None:
            dz += s * est.dz                                         # log p(z) - log q(z|x) through z
        dmu, dlogvar = reparameterize_backward(dz, rcache)          # reparameterization
        dmu += s * est.dmu                                           # direct terms (KL, or log q)
        dlogvar += s * est.dlogvar
        dlogvar *= self._enc_mask                                    # logvar was clipped: no gradient outside
        self.encoder.backward(np.concatenate([dmu, dlogvar], axis=1), need_dx=False)   # encoder (x needs no gradient)
        grads = self.grads()
        _check_grads(grads)
        return loss, grads

    def grads(self):
        """dict name -> the gradient buffer of that parameter (from the last backward)."""
        return OrderedDict((name, getattr(layer, attr)) for name, (layer, attr) in self._grad_of.items())

    # ---- using a trained model --------------------------------------------------

    @_locked
    def estimate(self, x, rng, estimator="analytic", k=1):
        """The estimator's value and terms for x (B, D), z sampled from q (no backward).

        Returns an ``estimators.Estimate``: ``elbo`` (B,) the objective (the
        ELBO, or the IWAE bound for estimator "iwae" with k > 1), ``recon`` (B,)
        the mean log p(x|z_k), ``kl`` (B,) the KL term.
        """
        x = self.check_x(x)
        est_fn = ESTIMATORS[check_choice("estimator", estimator, ESTIMATORS)].kernel
        k = check_positive_int("k", k)
        self.check_rows("k * batch", k * x.shape[0])
        eps = self.draw_eps(check_rng("rng", rng), k, x.shape[0])
        mu, logvar, z, _, log_px, _ = self.forward(x, eps)
        est = est_fn(log_px, z, mu, logvar)
        for term in ("elbo", "recon", "kl"):
            _finite_result(f"estimate(x).{term}", "x", getattr(est, term))
        return est

    def elbo(self, x, rng, estimator="analytic", k=1):
        """Per-example ELBO (or IWAE bound) (B,), with z sampled from q (no backward)."""
        return self.estimate(x, rng, estimator, k).elbo

    @_locked
    def reconstruct(self, x, rng=None):
        """Mean of p(x|z) at z = mu (rng None) or at one sample z ~ q(z|x)."""
        mu, logvar = self.encode(x)
        z = mu if rng is None else reparameterize(mu, logvar, self.draw_eps(check_rng("rng", rng), 1, len(mu)))[0][0]
        return _finite_result("reconstruct(x)", "x", self.mean_image(self._decode(z)))

    @_locked
    def sample(self, n, rng):
        """n images: the mean of p(x|z) for z ~ N(0, I); (n, D)."""
        n = self.check_rows("n", check_positive_int("n", n))
        z = check_rng("rng", rng).standard_normal((n, self.z_dim), dtype=self.dtype)
        return _finite_result("sample(n)", "the model's parameters", self.mean_image(self._decode(z)))


def _finite_result(what, cause, arr):
    """Refuse to hand back NaN or inf: name the call and the input that made it overflow."""
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{cause}: {what} overflowed to NaN or inf in {arr.dtype}; "
                         f"expected values of {cause} small enough for finite results")
    return arr


def _check_grads(grads):
    """Refuse NaN or inf gradients, cheaply: only the bias gradients are read.

    db is the column sum of a layer's dout, and every lower layer's dout is
    computed from it, so a NaN or inf arising anywhere in the backward pass
    shows up in the db of its layer (a few thousand numbers, where the weights
    are hundreds of thousands).  What they cannot show, an overflow confined to
    one product dW = x^T dout, needs absurd weights; Optimizer.step reads every
    gradient and refuses it before anything is applied.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        # sum(g^2) is finite only if every g is (exact check only when it is not)
        bad = [name for name, g in grads.items() if name.endswith(".b") and not math.isfinite(np.dot(g, g))
               and not np.all(np.isfinite(g))]
    if bad:
        raise InputError(f"x, beta: the gradients of {bad} overflowed to NaN or inf for this batch "
                         "(values of x too large, or the network has diverged)")
