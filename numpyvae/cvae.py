"""The conditional VAE (Sohn, Lee & Yan 2015): p(x | z, y) and q(z | x, y) with a one-hot label y.

    [x | onehot(y)] (B, D+Y) --encoder--> h --posterior--> mu, logvar (B, Z)
    z = mu + exp(logvar / 2) * eps                                      (K, B, Z)
    [z | onehot(y)] (K*B, Z+Y) --decoder--> out --likelihood--> log p(x | z, y)   (K, B)

The bound is the ELBO with everything conditioned on y (derivations/14, eq. (14.8)):

    log p(x | y) >= E_q(z|x,y) [log p(x | z, y)] - KL(q(z | x, y) || p(z)),

with p(z) = N(0, I) (or a learned mixture: the label enters only the two
networks).  The estimators are the VAE's, unchanged; the label's columns of
the decoder's input gradient are dropped (y is data, not a parameter).
The networks are MLPs whose first layer takes the label's Y extra inputs.
"""
import math

import numpy as np

from .errors import InputError
from .estimators import ESTIMATORS, _logsumexp
from .optim import Adam
from .validate import as_float_array, check_float, check_positive_int, check_rng
from .vae import VAE, ForwardCache, _check_grads, _finite_result, _locked, _part


class CVAE(VAE):
    """A conditional VAE on labels 0..n_classes-1: the VAE's arguments, plus ``n_classes`` (Y).

    Only the "mlp" architecture (the label is concatenated to a feature row);
    prior None (N(0, I)) or a learned mixture; the VampPrior is refused (its
    pseudo-inputs would need labels too).  Every method that sees x or z
    takes the labels y (B,) as well: ``encode(x, y)``, ``decode(z, y)``,
    ``loss_and_grads(x, y, ...)``, ``estimate(x, y, ...)``, ``sample(y, rng)``,
    ``decode_every_class(z)``, ``log_marginal(x, y, ...)``.
    """

    def __init__(self, x_dim, n_classes, hidden=(400,), z_dim=20, likelihood="bernoulli", activation="relu",
                 init="glorot", dtype=np.float32, seed=0, gaussian_mean="identity", prior=None):
        self.n_classes = check_positive_int("n_classes", n_classes)   # read by _network_inputs in VAE.__init__
        if isinstance(prior, dict) and prior.get("name") == "vampprior":
            raise InputError("prior: the conditional VAE takes N(0, I) or a 'mixture' prior, not the VampPrior "
                             "(its pseudo-inputs would need labels)")
        super().__init__(x_dim, hidden, z_dim, likelihood, activation, init, dtype, seed, gaussian_mean,
                         arch="mlp", prior=prior)
        self.config = dict(self.config, n_classes=self.n_classes)

    def _network_inputs(self):
        """The encoder sees [x | onehot(y)], the decoder [z | onehot(y)]."""
        return self.x_dim + self.n_classes, self.z_dim + self.n_classes

    # ---- labels -------------------------------------------------------------------------------

    def check_y(self, y, n, name="y"):
        """Labels (n,) of whole numbers in [0, n_classes) -> one-hot rows (n, Y) in the model dtype."""
        arr = as_float_array(name, y, ndim=1, dtype=np.float64, lo=0, hi=self.n_classes - 1)
        if arr.shape[0] != n:
            raise InputError(f"{name}: expected {n} labels (one per row), got {arr.shape[0]}")
        if np.any(arr != np.round(arr)):
            raise InputError(f"{name}: expected whole-number class labels in [0, {self.n_classes}), "
                             f"got {arr[arr != np.round(arr)][0]}")
        return np.eye(self.n_classes, dtype=self.dtype)[arr.astype(np.int64)]

    def _xy(self, x, y, name="x"):
        x = self.check_x(x, name)
        return x, self.check_y(y, len(x))

    # ---- forward ---------------------------------------------------------------------------------

    def encode(self, x, y):
        """x (B, D), y (B,) -> mu, logvar (B, Z) of q(z | x, y)."""
        x, onehot = self._xy(x, y)
        (mu, logvar), _ = self._encode(np.concatenate([x, onehot], axis=1))
        return _finite_result("encode(x, y)", "x", mu), logvar

    def decode(self, z, y):
        """z (N, Z), y (N,) -> the decoder output of p(x | z, y) (N, D) logits or (N, 2D)."""
        z = self.check_z(z)
        return _finite_result("decode(z, y)", "z", self._decode(np.concatenate([z, self.check_y(y, len(z))], axis=1))[0])

    def forward(self, x, onehot, eps):
        """Checked x (B, D), onehot (B, Y), eps (K, B, Z) -> mu, logvar, z, out, log_px (K, B), cache."""
        K, B = eps.shape[:2]
        (mu, logvar), enc_cache = self._encode(np.concatenate([x, onehot], axis=1))
        z, rcache = self.posterior.sample(mu, logvar, eps)
        zy = np.concatenate([z.reshape(K * B, self.z_dim), np.tile(onehot, (K, 1))], axis=1)   # row k*B + b: label b
        out, dec_cache = self._decode(zy)
        out = out.reshape(K, B, -1)
        return mu, logvar, z, out, self.log_px(x, out), ForwardCache(enc_cache, rcache, dec_cache)

    # ---- the loss and its gradient ---------------------------------------------------------------------

    @_locked
    def loss_and_grads(self, x, y, eps=None, rng=None, estimator="analytic", k=1, beta=1.0, grads=None,
                       weights=None):
        """Negative conditional ELBO in nats per example and its gradient (VAE.loss_and_grads, with labels y (B,)).

        weights : None (the mean over the batch), or per-example weights (B,) >= 0: the loss is then
                  -sum_b weights_b elbo_b (the semi-supervised M2 model weights each label by q(y|x)).
        """
        x, onehot = self._xy(x, y)
        est_fn = ESTIMATORS[self.check_estimator(estimator)].kernel
        beta = check_float("beta", beta, lo=0.0, hi=1e6)
        B = x.shape[0]
        if weights is None:
            weights = np.full(B, 1.0 / B)
        else:
            weights = as_float_array("weights", weights, ndim=1, dtype=np.float64, lo=0.0)
            if weights.shape != (B,):
                raise InputError(f"weights: expected shape ({B},), got {weights.shape}")
        eps = self.checked_eps(eps, rng, k, B)
        grads = self.grad_buffers(grads)
        K = eps.shape[0]

        mu, logvar, z, out, log_px, cache = self.forward(x, onehot, eps)
        prior, prior_cache = self.prior_density()
        est = est_fn(log_px, z, mu, logvar, beta, prior=prior)
        self.last_estimate = est
        loss = -float(np.dot(weights, est.elbo))
        if not np.isfinite(loss):
            raise InputError(f"x, beta: the loss is {loss} for this batch (an overflow, or the network has diverged)")

        s = -weights.astype(self.dtype)                              # d loss / d elbo_b, (B,)
        dout = self.dlog_px(x, out, cache)                           # likelihood
        dout *= (s * est.dlog_px)[..., None]
        dzy = self.decoder.call_backward(dout.reshape(K * B, -1), cache.decoder[0], _part(grads, "decoder."))
        dz = dzy[:, :self.z_dim].reshape(K, B, self.z_dim)          # the label's columns: y is data, no gradient
        if not est.reparameterized:
            dz[...] = 0
        if est.dz is not None:
            dz += s[:, None] * est.dz
        dmu, dlogvar = self.posterior.sample_backward(dz, cache.sample)
        dmu += s[:, None] * est.dmu
        dlogvar += s[:, None] * est.dlogvar
        dh = self.posterior.params_backward(dmu, dlogvar, cache.encoder[1])
        self.encoder.call_backward(dh, cache.encoder[0], _part(grads, "encoder."), need_dx=False)
        if prior_cache is not None:
            self.prior.density_backward(z, s * est.dlog_pz, prior, prior_cache, _part(grads, "prior."))
        _check_grads(grads)
        return loss, grads

    # ---- using a trained model ----------------------------------------------------------------------------

    def estimate(self, x, y, rng, estimator="analytic", k=1):
        """The estimator's value and terms for x (B, D) under labels y (B,), z sampled from q(z | x, y)."""
        x, onehot = self._xy(x, y)
        est_fn = ESTIMATORS[self.check_estimator(estimator)].kernel
        eps = self.checked_eps(None, rng, k, len(x))
        mu, logvar, z, _, log_px, _ = self.forward(x, onehot, eps)
        est = est_fn(log_px, z, mu, logvar, prior=self.prior_density()[0])
        for term in ("elbo", "recon", "kl"):
            _finite_result(f"estimate(x, y).{term}", "x", getattr(est, term))
        return est

    def elbo(self, x, y, rng, estimator="analytic", k=1):
        """Per-example conditional ELBO (or IWAE bound) (B,)."""
        return self.estimate(x, y, rng, estimator, k).elbo

    def log_marginal(self, x, y, rng, k=1000, chunk=100):
        """Importance-sampled log p(x | y) (B,), float64: log (1/k) sum_i p(x|z_i,y) p(z_i) / q(z_i|x,y), z_i ~ q.

        A lower bound in expectation (Jensen), tightening as k grows; exact for any k when q(z|x,y) is
        the true posterior.  The k samples are drawn ``chunk`` at a time and combined by log-sum-exp.
        """
        x, onehot = self._xy(x, y)
        rng, k, chunk = check_rng("rng", rng), check_positive_int("k", k), check_positive_int("chunk", chunk)
        self.check_rows("chunk * batch", chunk * len(x))
        prior = self.prior_density()[0]
        total = np.full(len(x), -np.inf)
        for start in range(0, k, chunk):
            eps = self.draw_eps(rng, min(chunk, k - start), len(x))
            mu, logvar, z, _, log_px, _ = self.forward(x, onehot, eps)
            f = (log_px + prior.log_prob(z) - self.posterior.log_prob(z, mu, logvar)).astype(np.float64)
            total = np.logaddexp(total, _logsumexp(f, axis=0))
        return _finite_result("log_marginal(x, y)", "x", total - math.log(k))

    def sample(self, y, rng):
        """One image per label in y (n,): the mean of p(x | z, y) at z ~ p(z); (n, D)."""
        y = np.asarray(y) if not isinstance(y, np.ndarray) else y
        n = self.check_rows("y", len(self.check_y(y, np.size(y))))
        z = self.prior_density()[0].sample(check_rng("rng", rng), n, self.z_dim, self.dtype)
        return self.mean_image(self.decode(z, y))

    def decode_every_class(self, z):
        """The same codes z (N, Z) decoded under every label: mean images (Y, N, D) (style kept, class changed)."""
        z = self.check_z(z)
        self.check_rows("z: n * n_classes", len(z) * self.n_classes)
        return np.stack([self.mean_image(self.decode(z, np.full(len(z), c))) for c in range(self.n_classes)])


def train(model, x, y, epochs, rng, batch_size=100, lr=1e-3, estimator="analytic", k=1):
    """Fit a CVAE with Adam on (x (N, D), y (N,)); returns the mean objective of each epoch (nats per example).

    A plain loop for lectures and scripts (the Trainer takes unlabelled data);
    every draw (shuffling, eps) comes from ``rng``.
    """
    if not isinstance(model, CVAE):
        raise InputError(f"model: expected a numpyvae CVAE, got {type(model).__name__}")
    x, _ = model._xy(x, y, "x")
    y = np.asarray(y)
    epochs, batch_size = check_positive_int("epochs", epochs), check_positive_int("batch_size", batch_size)
    rng = check_rng("rng", rng)
    opt = Adam(model.params, lr=lr)
    history = []
    for _ in range(epochs):
        perm, total = rng.permutation(len(x)), 0.0
        for start in range(0, len(x), batch_size):
            idx = perm[start:start + batch_size]
            with model.lock:
                loss, grads = model.loss_and_grads(x[idx], y[idx], rng=rng, estimator=estimator, k=k)
                opt.step(grads)
            total += loss * len(idx)
        history.append(total / len(x))
    return history
