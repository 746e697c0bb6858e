"""The VAE: encoder -> posterior -> reparameterization -> decoder, and its backward pass.

    x (B, D) --encoder network--> h (B, 2Z) --posterior--> mu, logvar (B, Z)
    eps (K, B, Z) ~ N(0, I);   z = mu + exp(logvar / 2) * eps      (K, B, Z)
    z --decoder network--> logits (K*B, D)           (Bernoulli)
                        or [mean | logvar_x] (K*B, 2D)  (Gaussian)
    estimator(log p(x|z), z, mu, logvar, prior) -> per-example ELBO and its partials

The encoder and decoder are ``Network`` objects built from specifications
(numpyvae/network.py): an MLP, a convolutional network, or any mix.  The
posterior q(z|x) and the prior p(z) are objects (numpyvae/posterior.py,
numpyvae/prior.py) wired in like the estimator.  ``loss_and_grads`` runs the
chain rule backwards in the same order.  Nothing of a call is kept on the
model except ``last_estimate``: the caches travel with the call.
"""
import copy
import functools
import json
import math
import threading
from collections import OrderedDict

import numpy as np

from . import distributions as dist
from .architectures import ARCHITECTURES
from .errors import InputError
from .estimators import ESTIMATORS, FLOW_ESTIMATORS
from .layers import ACTIVATIONS, INITS, sigmoid
from .network import Network, plan
from .params import Params
from .posterior import LOGVAR_LIMIT, DiagonalGaussian, PlanarFlow, RadialFlow, clip_logvar as _clip_logvar  # noqa: F401 (re-exported)
from .prior import MixturePrior, StandardNormal, VampPrior
from .validate import as_float_array, check_choice, check_dtype, check_float, check_positive_int, check_rng

# The formulas without argument checks: the VAE checks x and eps once, at its public methods.
bernoulli_log_prob, bernoulli_log_prob_grad = dist.bernoulli_log_prob.kernel, dist.bernoulli_log_prob_grad.kernel
gaussian_log_prob, gaussian_log_prob_grads = dist.gaussian_log_prob.kernel, dist.gaussian_log_prob_grads.kernel

LIKELIHOODS = ("bernoulli", "gaussian")
# the Gaussian decoder's mean: the raw output, or squashed into (0, 1) by a
# sigmoid as Kingma & Welling do for Frey Face (grey levels live in [0, 1]).
GAUSSIAN_MEANS = ("identity", "sigmoid")
# "custom": the encoder and decoder specifications were given, not built from a name
ARCH_NAMES = (*ARCHITECTURES, "custom")
# the largest model built (400 MB of float32 weights; training holds about 5 times that with Adam, and
# the command line refuses a run above --max-memory first: numpyvae/memory.py)
MAX_PARAMS = 100_000_000
# the deepest: every layer is a few Python objects, so a list of a million 1-unit layers would
# take gigabytes and minutes to build although it has few parameters
MAX_HIDDEN_LAYERS = 100
# the most numbers one activation array may hold (1 GB in float32): bounds k * batch and n
MAX_ACTIVATIONS = 2**28
# the most flow steps in a flowed posterior (the paper goes to 80)
MAX_FLOW_STEPS = 1000
# the kinds of flow step (derivations/13-planar-flows.md)
FLOWS = {"planar": PlanarFlow, "radial": RadialFlow}


def _locked(method):
    """Run the method holding the model's lock when it uses the model's own gradient buffers (see VAE, Threads);
    a call that brings its own ``grads`` shares nothing and runs unlocked, so workers run in parallel."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        if kwargs.get("grads") is not None:
            return method(self, *args, **kwargs)
        with self.lock:
            return method(self, *args, **kwargs)
    return call


def check_config(x_dim, hidden=(400,), z_dim=20, likelihood="bernoulli", activation="relu", init="glorot",
                 dtype=np.float32, gaussian_mean="identity", arch=None, image_shape=None, encoder=None,
                 decoder=None, flow_steps=0, flow="planar", prior=None):
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
    if image_shape is not None:
        if not isinstance(image_shape, (list, tuple)) or len(image_shape) != 3:
            raise InputError(f"image_shape: expected (channels, height, width), got {image_shape!r:.80}")
        image_shape = [check_positive_int(f"image_shape[{i}]", n) for i, n in enumerate(image_shape)]
    given = (encoder is not None, decoder is not None)
    if any(given) and not all(given):
        raise InputError("encoder, decoder: give both specifications or neither")
    if arch is None:
        arch = "custom" if all(given) else "mlp"
    check_choice("arch", arch, ARCH_NAMES)
    if (arch == "custom") != all(given):
        raise InputError(f"arch: {arch!r} with encoder/decoder specifications "
                         f"{'given' if all(given) else 'missing'}; expected arch='custom' exactly when both are given")
    config = dict(x_dim=x_dim, hidden=hidden, z_dim=z_dim, likelihood=likelihood, activation=activation,
                  init=init, dtype=np.dtype(dtype).name, gaussian_mean=gaussian_mean, arch=arch,
                  image_shape=image_shape, encoder=None, decoder=None)
    flow_steps = check_positive_int("flow_steps", flow_steps, minimum=0)
    if flow_steps > MAX_FLOW_STEPS:
        raise InputError(f"flow_steps: expected at most {MAX_FLOW_STEPS} planar steps, got {flow_steps}")
    check_choice("flow", flow, FLOWS)
    if flow_steps:                             # absent for the diagonal Gaussian: configs from before flows are unchanged
        config["flow_steps"], config["flow"] = flow_steps, flow
    elif flow != "planar":
        raise InputError(f"flow: {flow!r} needs flow_steps > 0")
    if check_prior_config(prior) is not None:  # only a learned prior is named: N(0, I) models keep the config they had
        config["prior"] = check_prior_config(prior)
    if flow_steps and "prior" in config:
        raise InputError("flow_steps, prior: a flowed posterior with a learned prior is not built yet; "
                         "give one of them (flow_steps=0 or prior=None)")
    if arch == "custom":
        for name, spec, in_dim in (("encoder", encoder, x_dim), ("decoder", decoder, z_dim)):
            plan(spec, (in_dim,), name)                              # a list of valid entries, before copying it
        config.update(encoder=_plain(encoder, "encoder"), decoder=_plain(decoder, "decoder"))
    encoder, decoder = network_specs(config)
    n_params = 0
    for name, spec, in_dim in (("encoder", encoder, x_dim), ("decoder", decoder, z_dim)):
        n_params += sum(n for _, _, n in plan(spec, (in_dim,), name))
    if "prior" in config:                      # the learned prior's parameters: C x Z means and logvars, C logits,
        C = config["prior"]["components"]      # or C pseudo-inputs of D numbers
        n_params += C * (2 * z_dim + 1) if config["prior"]["name"] == "mixture" else C * x_dim
    if n_params > MAX_PARAMS:
        raise InputError(f"x_dim, hidden, z_dim: {n_params:,} parameters, expected at most {MAX_PARAMS:,}")
    return config


LEARNED_PRIORS = ("mixture", "vampprior")
# the most mixture components or pseudo-inputs (Tomczak & Welling use 500)
MAX_COMPONENTS = 100_000


def check_prior_config(prior):
    """None (or "standard_normal"): p(z) = N(0, I); else {"name": "mixture" or "vampprior", "components": C}.

    Returns None or the checked dict (plain JSON, as a checkpoint stores it).
    """
    if prior is None or (isinstance(prior, str) and prior == "standard_normal"):
        return None
    if not isinstance(prior, dict) or set(prior) != {"name", "components"}:
        raise InputError(f"prior: expected None, 'standard_normal' or a dict {{'name': one of {list(LEARNED_PRIORS)}, "
                         f"'components': a positive int}}, got {prior!r:.80}")
    name = check_choice("prior['name']", prior["name"], LEARNED_PRIORS)
    components = check_positive_int("prior['components']", prior["components"])
    if components > MAX_COMPONENTS:
        raise InputError(f"prior['components']: expected at most {MAX_COMPONENTS:,}, got {components:,}")
    return {"name": name, "components": components}


def _plain(spec, name):
    """A specification as plain JSON data (lists, not tuples), as a checkpoint gives it back."""
    try:
        return json.loads(json.dumps(spec))
    except (TypeError, ValueError) as err:
        raise InputError(f"{name}: expected plain numbers, strings and lists in the specification ({err})") from None


def make_posterior(config):
    """The posterior object of a checked config: a diagonal Gaussian, or K planar or radial flow steps on one."""
    steps = config.get("flow_steps", 0)
    return FLOWS[config.get("flow", "planar")](steps) if steps else DiagonalGaussian()


def network_specs(config):
    """(encoder, decoder) specifications of a checked config: the given ones, or the named builder's.

    Both are checked: the encoder maps D numbers to the posterior's 2Z, the decoder Z to D (or 2D).
    """
    x_dim, z_dim = config["x_dim"], config["z_dim"]
    n_latent_out = make_posterior(config).n_outputs(z_dim)
    out_dim = x_dim if config["likelihood"] == "bernoulli" else 2 * x_dim
    if config["encoder"] is not None:
        encoder, decoder = config["encoder"], config["decoder"]
    else:                                      # a named architecture: its builder makes both specifications
        encoder, decoder = ARCHITECTURES[config["arch"]](x_dim, config["hidden"], n_latent_out, z_dim, out_dim,
                                                         config["activation"], config["image_shape"])
    for name, spec, in_dim, want in (("encoder", encoder, x_dim, n_latent_out), ("decoder", decoder, z_dim, out_dim)):
        out_shape = plan(spec, (in_dim,), name)[-1][1]
        if out_shape != (want,):
            raise InputError(f"{name}: its output per example has shape {out_shape}, expected ({want},)")
    return encoder, decoder


class VAE:
    """A variational autoencoder with diagonal-Gaussian q(z|x) and N(0, I) prior.

    x_dim      : number of pixels D.
    hidden     : int or list of ints, fully connected hidden layer sizes of the
                 encoder; the decoder mirrors them.
    z_dim      : latent dimension Z.
    likelihood : "bernoulli" (decoder outputs D logits; data in [0, 1]) or
                 "gaussian" (decoder outputs D means then D log-variances).
    gaussian_mean : "identity" (mean = raw output) or "sigmoid" (mean =
                 sigmoid(raw output), in (0, 1)); Gaussian likelihood only.
    activation : "relu", "leaky_relu", "tanh", "sigmoid" or "softplus".
    init       : "glorot" or "normal" (N(0, 0.01^2), Kingma & Welling).
    dtype      : np.float32 (fast) or np.float64 (gradient checks).
    seed       : int seed of the generator that draws the initial weights.
    arch       : "mlp" (default) or "conv" (numpyvae/architectures.py), or
                 "custom" when ``encoder`` and ``decoder`` are given.
    image_shape: (C, H, W) of one image, for "conv" (default (1, s, s) when D = s^2).
    encoder, decoder : network specifications (numpyvae/network.py); the
                 encoder maps D numbers to 2Z, the decoder Z to D (or 2D).
    flow_steps : K > 0 makes q(z|x) a diagonal Gaussian pushed through K planar
                 flow steps whose parameters the encoder produces per example
                 (numpyvae/flows.py; the encoder then maps D numbers to
                 2Z + K(2Z + 1)); trained with the estimators "mc" (the flow
                 ELBO) or "iwae".  0 (default): the diagonal Gaussian.
    flow       : "planar" (default) or "radial" (K radial steps: the encoder
                 maps to 2Z + K(Z + 2)); used only when flow_steps > 0.
    prior      : None (p(z) = N(0, I)), or a learned prior (numpyvae/prior.py):
                 {"name": "mixture", "components": C} (a mixture of C diagonal
                 Gaussians) or {"name": "vampprior", "components": C} (C
                 pseudo-inputs).  Its parameters are ``params["prior.*"]``, trained
                 and checkpointed with the rest; its KL is sampled (estimator
                 "mc", "iwae" or "stl"; "analytic" refuses it).

    ``params`` is a read-only mapping name -> live parameter array (write
    into an array in place; assigning a new one is refused: numpyvae/params.py), named
    ``encoder.{k}.W``, ``encoder.{k}.b``, ``decoder.{k}.W``, ``decoder.{k}.b``
    with k counting the layers with parameters of that network from 0.

    Threads: a call keeps its caches to itself, so the methods that only
    compute (encode, decode, forward, estimate, elbo, reconstruct, sample)
    may run in several threads at once.  ``loss_and_grads`` without ``grads``
    adds into the model's own buffers and hands them back: it holds ``lock``
    (a re-entrant lock) for the call, and a thread that uses those grads while
    others may call it holds ``lock`` across the call and that use (as
    ``Trainer.train_step`` does, around the optimizer's step); with the
    caller's own ``grads`` buffers nothing is shared.  Parameters changed in
    place by another thread (an optimizer's step) are not guarded beyond
    that: to judge a model that another thread trains, judge a copy
    (``copy.deepcopy`` holds ``lock`` while it copies, and ``save_model``
    and ``save_trainer`` while they write).
    """

    def __init__(self, x_dim, hidden=(400,), z_dim=20, likelihood="bernoulli", activation="relu",
                 init="glorot", dtype=np.float32, seed=0, gaussian_mean="identity", arch=None, image_shape=None,
                 encoder=None, decoder=None, flow_steps=0, flow="planar", prior=None):
        self.config = check_config(x_dim, hidden, z_dim, likelihood, activation, init, dtype, gaussian_mean, arch,
                                   image_shape, encoder, decoder, flow_steps, flow, prior)
        encoder, decoder = network_specs(self.config)
        self.likelihood, self.gaussian_mean = likelihood, gaussian_mean
        self.dtype = np.dtype(self.config["dtype"]).type
        seed = check_positive_int("seed", seed, minimum=0)
        self.lock = threading.RLock()          # held by loss_and_grads on the model's own buffers (Threads above)
        self.x_dim, self.z_dim = self.config["x_dim"], self.config["z_dim"]
        rng = np.random.default_rng(seed)
        enc_in, dec_in = self._network_inputs()
        self.encoder = Network(encoder, (enc_in,), init, rng, self.dtype, name="encoder")
        self.decoder = Network(decoder, (dec_in,), init, rng, self.dtype, name="decoder")
        self.flow_steps = self.config.get("flow_steps", 0)
        self._widest = max(int(np.prod(shape)) for net, n_in in ((encoder, enc_in), (decoder, dec_in))
                           for _, shape, _ in plan(net, (n_in,)))   # the widest activation row
        self.posterior = make_posterior(self.config)
        self.prior = self._build_prior(self.config.get("prior"), rng)
        params, self._grads = OrderedDict(), OrderedDict()
        for prefix, net in (("encoder", self.encoder), ("decoder", self.decoder)):
            own = net.own_grads()
            for name, p in net.params.items():
                params[f"{prefix}.{name}"], self._grads[f"{prefix}.{name}"] = p, own[name]
        for name, p in self.prior.params.items():          # a learned prior's parameters (none for N(0, I))
            params[f"prior.{name}"], self._grads[f"prior.{name}"] = p, np.zeros_like(p)
        self.params = Params(params)           # live arrays; assigning a new one is refused

    def _network_inputs(self):
        """The encoder's and the decoder's input sizes (the conditional VAE adds the label to both)."""
        return self.x_dim, self.z_dim

    def _build_prior(self, prior, rng):
        """N(0, I), or the learned prior the config names, its parameters drawn from rng (after the networks')."""
        if prior is None:
            return StandardNormal()
        if prior["name"] == "mixture":
            return MixturePrior(prior["components"], self.z_dim, rng, self.dtype)
        self.check_rows("prior['components']", prior["components"])          # the encoder runs on them every step
        return VampPrior(prior["components"], self.x_dim, self.z_dim, self.encoder, self.posterior, rng, self.dtype)

    def check_estimator(self, estimator):
        """A known estimator name that this model allows: "analytic" needs a closed-form KL (not a
        learned prior's), and a flowed posterior takes only the flow ELBO ("mc") or "iwae"."""
        check_choice("estimator", estimator, ESTIMATORS)
        if self.flow_steps and estimator not in FLOW_ESTIMATORS:
            raise InputError(f"estimator: {estimator!r} needs a diagonal-Gaussian posterior (a closed form or "
                             f"its mu and logvar); a flowed posterior takes {sorted(FLOW_ESTIMATORS)}")
        if estimator == "analytic" and not self.prior.has_closed_form_kl:
            raise InputError(f"estimator: 'analytic' needs a closed-form KL, which the prior {type(self.prior).__name__} "
                             "does not have; use 'mc', 'iwae' or 'stl' (the KL term is then sampled)")
        return estimator

    def prior_density(self):
        """The prior for one call, and its cache: (prior, None) for N(0, I), else a learned prior's
        ``density()`` (the VampPrior runs the encoder on its pseudo-inputs, with a cache of its own)."""
        if not self.prior.params:
            return self.prior, None
        return self.prior.density()

    def __getstate__(self):                    # copy.deepcopy, pickle: the copy gets a lock of its own
        return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.RLock()

    def __deepcopy__(self, memo):              # copied holding the lock: one step's parameters, never a mix
        with self.lock:
            twin = memo[id(self)] = object.__new__(type(self))
            twin.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return twin

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

    def encode(self, x):
        """x: (B, D) -> mu, logvar: (B, Z), the parameters of q(z|x).  Checks x."""
        q, _ = self._encode(self.check_x(x))
        return _finite_result("encode(x)", "x", q[0]), q[1]

    def encode_flow(self, x):
        """x: (B, D) -> mu, logvar (B, Z) of the base q_0, and the flow's parameters.

        For a model with ``flow_steps`` > 0.  Planar: (u_hat, w (B, K, Z), b (B, K)),
        u_hat the reparameterized u, so numpyvae.flows.flow_forward(z0, *flow) is the
        flow; radial: (centres (B, K, Z), alpha, beta (B, K)), for radial_flow_forward.
        ``model.posterior.forward`` and ``model.posterior.inverse`` are the right pair.
        """
        if not self.flow_steps:
            raise InputError("model: encode_flow needs a model with flow_steps > 0; this one has a diagonal Gaussian")
        (mu, logvar, flow), _ = self._encode(self.check_x(x))
        for arr in (mu, *flow):
            _finite_result("encode_flow(x)", "x", arr)
        return mu, logvar, flow

    def decode(self, z):
        """z: (N, Z) -> the decoder output (N, D) logits or (N, 2D) [mean | logvar].  Checks z."""
        return _finite_result("decode(z)", "z", self._decode(self.check_z(z))[0])

    def _encode(self, x):
        """x (B, D) -> (mu, logvar) (and the flow's parameters), cache: the encoder, then the posterior."""
        h, net_cache = self.encoder.call(x)
        q, post_cache = self.posterior.params(h)        # (mu, logvar), or (mu, logvar, flow) for a flow
        return q, (net_cache, post_cache)

    def _decode(self, z):
        """z (N, Z) -> decoder output (N, D or 2D), cache (the network's, and the Gaussian's clip mask)."""
        out, net_cache = self.decoder.call(z)
        mask = None
        if self.likelihood == "gaussian":
            mean = out[:, :self.x_dim]
            if self.gaussian_mean == "sigmoid":
                mean = sigmoid(mean)
            logvar, mask = _clip_logvar(out[:, self.x_dim:])
            out = np.concatenate([mean, logvar], axis=1)
        return out, (net_cache, mask)

    def log_px(self, x, out):
        """log p(x|z) from the decoder output; x (B, D), out (K, B, D or 2D) -> (K, B)."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(x, out)
        return gaussian_log_prob(x, out[..., :self.x_dim], out[..., self.x_dim:])

    def dlog_px(self, x, out, cache=None):
        """d log p(x|z) / d (the decoder network's raw output), same shape as out.

        cache: the forward pass's cache (``forward``'s last value), which holds
        where the Gaussian's log-variance was clipped; None for a Bernoulli model.
        """
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob_grad(x, out)
        if cache is None:
            raise InputError("cache: a Gaussian model's dlog_px needs the cache that forward returned")
        mean = out[..., :self.x_dim]
        dmean, dlogvar = gaussian_log_prob_grads(x, mean, out[..., self.x_dim:])
        if self.gaussian_mean == "sigmoid":
            dmean *= mean * (1 - mean)                               # d sigmoid(a)/da = s (1 - s)
        dec_mask = cache.decoder[1]
        return np.concatenate([dmean, dlogvar * dec_mask.reshape(dlogvar.shape)], axis=-1)

    def mean_image(self, out):
        """Decoder output -> the mean of p(x|z) (sigmoid of logits, or the Gaussian mean)."""
        return sigmoid(out) if self.likelihood == "bernoulli" else out[..., :self.x_dim]

    def forward(self, x, eps):
        """The forward pass for a checked batch x (B, D) and noise eps (K, B, Z).

        Returns mu, logvar (B, Z); z (K, B, Z); the decoder output out (K, B, D or 2D);
        log_px = log p(x|z) (K, B); and the cache of this call (what backward needs).
        """
        if self.flow_steps:
            raise InputError("model: forward is the diagonal Gaussian's pass; a flow model's is forward_flow")
        K, B = eps.shape[:2]
        (mu, logvar), enc_cache = self._encode(x)
        z, rcache = self.posterior.sample(mu, logvar, eps)             # derivations/06-reparameterization.md
        out, dec_cache = self._decode(z.reshape(K * B, self.z_dim))
        out = out.reshape(K, B, -1)
        return mu, logvar, z, out, self.log_px(x, out), ForwardCache(enc_cache, rcache, dec_cache)

    def forward_flow(self, x, eps):
        """A flow model's forward pass for a checked batch x (B, D) and noise eps (K, B, Z).

        Returns z = z_K (K, B, Z), log q_K(z|x) (K, B), the decoder output out
        (K, B, D or 2D), log_px (K, B) and the cache of this call.
        """
        K, B = eps.shape[:2]
        (mu, logvar, flow), enc_cache = self._encode(x)
        (z, log_q), scache = self.posterior.sample(mu, logvar, flow, eps)   # derivations/13-planar-flows.md
        out, dec_cache = self._decode(z.reshape(K * B, self.z_dim))
        out = out.reshape(K, B, -1)
        return z, log_q, out, self.log_px(x, out), ForwardCache(enc_cache, scache, dec_cache)

    def estimator_kernel(self, estimator):
        """The estimator's kernel: a Gaussian posterior's, or for a flow the flow ELBO ("mc") or "iwae"."""
        estimator = self.check_estimator(estimator)
        return (FLOW_ESTIMATORS if self.flow_steps else ESTIMATORS)[estimator].kernel

    def draw_eps(self, rng, k, batch):
        """eps ~ N(0, I) of shape (k, batch, Z) in the model dtype, from ``rng``."""
        return self.posterior.draw_eps(rng, k, batch, self.z_dim, self.dtype)

    def checked_eps(self, eps, rng, k, B):
        """The noise for a batch of B rows, (K, B, Z) in the model dtype: the caller's ``eps``
        ((B, Z) or (K, B, Z)) checked, or k draws from ``rng`` when eps is None.  Both refuse
        K * B rows over the activation limit (check_rows) before anything is computed."""
        if eps is None:
            k = check_positive_int("k", k)
            self.check_rows("k * batch", k * B)
            return self.draw_eps(check_rng("rng", rng), k, B)
        eps = as_float_array("eps", eps, dtype=self.dtype)
        eps = eps[None] if eps.ndim == 2 else eps
        if eps.ndim != 3 or eps.shape[1:] != (B, self.z_dim) or eps.shape[0] == 0:
            raise InputError(f"eps: expected shape ({B}, {self.z_dim}) or (k >= 1, {B}, {self.z_dim}), got {eps.shape}")
        self.check_rows("eps: k * batch", eps.shape[0] * B)
        return eps

    # ---- the loss and its gradient ---------------------------------------------

    @_locked
    def loss_and_grads(self, x, eps=None, rng=None, estimator="analytic", k=1, beta=1.0, grads=None,
                       return_estimate=False):
        """Negative ELBO in nats per example, and its gradient for every parameter.

        x   : (B, D) data (in [0, 1] for Bernoulli).
        eps : (B, Z) or (K, B, Z) noise; when given nothing random is drawn,
              so the loss is a deterministic function of the parameters.
        rng : numpy Generator used to draw eps when eps is None.
        estimator : "analytic", "mc", "iwae", "stl" or "score".
        k   : samples per example (ignored when eps is given).
        beta: weight of the prior/posterior terms (KL warm-up).
        grads : None, or the caller's buffers, dict name -> array shaped and
              typed like ``params[name]``: the gradient is *added* into them
              (so workers can sum their shares).
        return_estimate : also return this call's Estimate (a third value),
              which ``last_estimate`` holds only until another thread's call.

        Returns (loss: float, grads: dict name -> array shaped like params).
        With grads=None the arrays are the model's own buffers (the layers'
        dW, db), overwritten by the next call.
        """
        x = self.check_x(x)
        est_fn = self.estimator_kernel(estimator)
        beta = check_float("beta", beta, lo=0.0, hi=1e6)
        B = x.shape[0]
        eps = self.checked_eps(eps, rng, k, B)
        grads = self.grad_buffers(grads)
        K = eps.shape[0]
        if self.flow_steps:
            loss, grads, est = self._flow_loss_and_grads(x, eps, est_fn, beta, grads)
            return (loss, grads, est) if return_estimate else (loss, grads)

        mu, logvar, z, out, log_px, cache = self.forward(x, eps)
        prior, prior_cache = self.prior_density()
        est = est_fn(log_px, z, mu, logvar, beta, prior=prior)
        self.last_estimate = est                                     # recon and kl terms, for the history
        loss = self._finite_loss(est)                                # overflow: no gradient is worth having

        # backward: loss = -(1/B) sum_b elbo_b, so every partial is scaled by -1/B
        s = -1.0 / B
        dout = self.dlog_px(x, out, cache)                           # likelihood
        dout *= (s * est.dlog_px)[..., None]
        dz = self.decoder.call_backward(dout.reshape(K * B, -1), cache.decoder[0],
                                        _part(grads, "decoder."))    # decoder
        dz = dz.reshape(K, B, self.z_dim)
        if not est.reparameterized:
            dz[...] = 0                                              # score function: no path through z
        if est.dz is not None:
            dz += s * est.dz                                         # log p(z) - log q(z|x) through z
        dmu, dlogvar = self.posterior.sample_backward(dz, cache.sample)   # reparameterization
        dmu += s * est.dmu                                           # direct terms (KL, or log q)
        dlogvar += s * est.dlogvar
        dh = self.posterior.params_backward(dmu, dlogvar, cache.encoder[1])   # no gradient where logvar was clipped
        self.encoder.call_backward(dh, cache.encoder[0], _part(grads, "encoder."),
                                   need_dx=False)                    # encoder (x needs no gradient)
        if prior_cache is not None:                                  # a learned prior's parameters (derivations/14)
            self.prior.density_backward(z, s * est.dlog_pz, prior, prior_cache, _part(grads, "prior."),
                                        _part(grads, "encoder."))
        _check_grads(grads)
        return (loss, grads, est) if return_estimate else (loss, grads)

    def _flow_loss_and_grads(self, x, eps, est_fn, beta, grads):
        """loss_and_grads for a flowed posterior (checked x, eps, grads): the same chain rule, with
        log q_K handed to the estimator and its gradient back to the flow.  derivations/13-planar-flows.md"""
        K, B = eps.shape[:2]
        z, log_q, out, log_px, cache = self.forward_flow(x, eps)
        est = est_fn(log_px, z, log_q, beta, prior=self.prior)
        self.last_estimate = est
        loss = self._finite_loss(est)
        s = -1.0 / B
        dout = self.dlog_px(x, out, cache)                           # likelihood
        dout *= (s * est.dlog_px)[..., None]
        dz = self.decoder.call_backward(dout.reshape(K * B, -1), cache.decoder[0],
                                        _part(grads, "decoder."))    # decoder
        dz = dz.reshape(K, B, self.z_dim) + s * est.dz               # log p(z_K) through z_K
        dmu, dlogvar, dflow = self.posterior.sample_backward(dz, s * est.dlog_q, cache.sample)   # flow, reparam.
        dh = self.posterior.params_backward(dmu, dlogvar, dflow, cache.encoder[1])   # u_hat, logvar's clip
        self.encoder.call_backward(dh, cache.encoder[0], _part(grads, "encoder."), need_dx=False)
        _check_grads(grads)
        return loss, grads, est

    def _finite_loss(self, est):
        """The batch's loss -mean(elbo), refused when it overflowed (no gradient is worth having)."""
        loss = -float(np.mean(est.elbo))
        if not np.isfinite(loss):
            raise InputError(f"x, beta: the loss is {loss} for this batch (an overflow: values of x too "
                             f"large for {np.dtype(self.dtype).name}, or the network has diverged)")
        return loss

    def check_grad_buffers(self, grads):
        """Refuse caller buffers that are not one array per parameter, of its shape and dtype."""
        if not hasattr(grads, "keys") or set(grads.keys()) != set(self.params):
            raise InputError(f"grads: expected a dict with exactly the keys of params ({len(self.params)} names), "
                             f"got {type(grads).__name__}")
        for name, p in self.params.items():
            g = grads[name]
            if not isinstance(g, np.ndarray) or g.shape != p.shape or g.dtype != p.dtype:
                raise InputError(f"grads[{name!r}]: expected an array of shape {p.shape} and dtype {p.dtype}, "
                                 f"got {getattr(g, 'shape', type(g).__name__)} {getattr(g, 'dtype', '')}")
        return grads

    def grad_buffers(self, grads):
        """The buffers a loss_and_grads call adds into: the model's own, zeroed, when grads is None;
        else the caller's, checked (check_grad_buffers) and left as they are."""
        if grads is None:
            for g in self._grads.values():
                g[...] = 0
            return self._grads
        return self.check_grad_buffers(grads)

    def new_grad_buffers(self):
        """Zeroed gradient buffers owned by the caller: dict name -> array like params[name]."""
        return OrderedDict((name, np.zeros_like(p)) for name, p in self.params.items())

    def grads(self):
        """dict name -> the model's own gradient buffer of that parameter (from the last backward)."""
        return OrderedDict(self._grads)

    # ---- using a trained model --------------------------------------------------

    def estimate(self, x, rng, estimator="analytic", k=1):
        """The estimator's value and terms for x (B, D), z sampled from q (no backward).

        Returns an ``estimators.Estimate``: ``elbo`` (B,) the objective (the
        ELBO, or the IWAE bound for estimator "iwae" with k > 1), ``recon`` (B,)
        the mean log p(x|z_k), ``kl`` (B,) the KL term.
        """
        x = self.check_x(x)
        est_fn = self.estimator_kernel(estimator)
        eps = self.checked_eps(None, rng, k, x.shape[0])
        if self.flow_steps:
            z, log_q, _, log_px, _ = self.forward_flow(x, eps)
            est = est_fn(log_px, z, log_q, prior=self.prior)
        else:
            mu, logvar, z, _, log_px, _ = self.forward(x, eps)
            est = est_fn(log_px, z, mu, logvar, prior=self.prior_density()[0])
        for term in ("elbo", "recon", "kl"):
            _finite_result(f"estimate(x).{term}", "x", getattr(est, term))
        return est

    def elbo(self, x, rng, estimator="analytic", k=1):
        """Per-example ELBO (or IWAE bound) (B,), with z sampled from q (no backward)."""
        return self.estimate(x, rng, estimator, k).elbo

    def reconstruct(self, x, rng=None):
        """Mean of p(x|z) at z = mu (rng None) or at one sample z ~ q(z|x).

        For a flow model: at z = f(mu), the flow applied to the base mean, or at a sample z_K."""
        if self.flow_steps:
            mu, logvar, flow = self.encode_flow(x)
            eps = np.zeros((1, *mu.shape), self.dtype) if rng is None else self.draw_eps(check_rng("rng", rng), 1, len(mu))
            mu = self.posterior.sample(mu, logvar, flow, eps)[0][0][0]   # z_K of z_0 = mu, or of a sample
            return _finite_result("reconstruct(x)", "x", self.mean_image(self._decode(mu)[0]))
        mu, logvar = self.encode(x)
        if rng is not None:
            mu = self.posterior.sample(mu, logvar, self.draw_eps(check_rng("rng", rng), 1, len(mu)))[0][0]
        return _finite_result("reconstruct(x)", "x", self.mean_image(self._decode(mu)[0]))

    def sample(self, n, rng):
        """n images: the mean of p(x|z) for z ~ p(z); (n, D)."""
        n = self.check_rows("n", check_positive_int("n", n))
        z = self.prior_density()[0].sample(check_rng("rng", rng), n, self.z_dim, self.dtype)
        return _finite_result("sample(n)", "the model's parameters", self.mean_image(self._decode(z)[0]))


class ForwardCache:
    """What one forward pass keeps for its backward: encoder (network cache, posterior clip mask),
    sample (the reparameterization's sigma and eps), decoder (network cache, Gaussian clip mask)."""

    __slots__ = ("encoder", "sample", "decoder")

    def __init__(self, encoder, sample, decoder):
        self.encoder, self.sample, self.decoder = encoder, sample, decoder


def _part(grads, prefix):
    """The buffers of one network, keyed as that network names its parameters ("0.W", ...)."""
    return {name[len(prefix):]: g for name, g in grads.items() if name.startswith(prefix)}


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
