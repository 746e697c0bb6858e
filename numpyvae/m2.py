"""The semi-supervised model M2 (Kingma, Rezende, Mohamed & Welling 2014) on the conditional VAE.

A classifier q(y | x) = softmax(classifier(x)) joins the conditional VAE
(numpyvae/cvae.py); p(y) is uniform over the Y classes.  The bounds
(derivations/14-learned-priors-and-cvae.md, eqs. (14.11)-(14.12)):

    labelled (x, y):  L(x, y) = ELBO(x | y) + log p(y)                       <= log p(x, y)
    unlabelled x:     U(x) = sum_y q(y|x) [L(x, y) - log q(y|x)]             <= log p(x)

and the objective maximised (a mean over each batch):

    mean_l L(x_l, y_l) + mean_u U(x_u) + alpha mean_l log q(y_l | x_l).

The classifier appears in U only through the weights q(y|x): with
q = softmax(a), dU/da_c = q_c (f_c - U), f_c = L(x, c) - log q(c|x)  (14.12).
The conditional VAE's parameters get sum_y q(y|x) dL(x, y), one weighted
pass per label (``CVAE.loss_and_grads(..., weights=q(y|x)/B)``).
"""
import math
from collections import OrderedDict

import numpy as np

from .cvae import CVAE
from .errors import InputError
from .layers import log_softmax
from .network import Network, mlp_spec
from .optim import Adam
from .validate import check_float, check_positive_int, check_rng


class M2:
    """The conditional VAE ``cvae`` (a CVAE) with a classifier q(y|x): an MLP of ``classifier_hidden`` units.

    ``params``: the CVAE's (``encoder.*``, ``decoder.*``, ``prior.*``) and ``classifier.*``.
    """

    def __init__(self, cvae, classifier_hidden=(400,), activation="relu", seed=0):
        if not isinstance(cvae, CVAE):
            raise InputError(f"cvae: expected a numpyvae CVAE, got {type(cvae).__name__}")
        self.cvae, self.n_classes, self.x_dim = cvae, cvae.n_classes, cvae.x_dim
        hidden = [check_positive_int(f"classifier_hidden[{i}]", h) for i, h in enumerate(classifier_hidden)]
        self.classifier = Network(mlp_spec([self.x_dim, *hidden, self.n_classes], activation), (self.x_dim,),
                                  rng=np.random.default_rng(check_positive_int("seed", seed, minimum=0)),
                                  dtype=cvae.dtype, name="classifier")
        self.params = OrderedDict(cvae.params)
        self.params.update((f"classifier.{k}", p) for k, p in self.classifier.params.items())
        self.log_py = -math.log(self.n_classes)                        # p(y) uniform

    def new_grad_buffers(self):
        return OrderedDict((k, np.zeros_like(p)) for k, p in self.params.items())

    def log_q_y(self, x):
        """log q(y|x) (B, Y) for a checked batch x."""
        return log_softmax(self.classifier.call(x)[0])

    def classify(self, x):
        """q(y|x) (B, Y) and the most probable label (B,)."""
        q = np.exp(self.log_q_y(self.cvae.check_x(x)))
        return q, np.argmax(q, axis=1)

    def _labels_all(self, B, c):
        return np.full(B, c)

    def bounds(self, x, rng, estimator="analytic", k=1):
        """L(x, y) for every label (B, Y) and U(x) (B,), z sampled (no backward)."""
        x = self.cvae.check_x(x)
        L = np.stack([self.cvae.estimate(x, self._labels_all(len(x), c), rng, estimator, k).elbo
                      for c in range(self.n_classes)], axis=1).astype(np.float64) + self.log_py
        log_q = self.log_q_y(x).astype(np.float64)
        return L, np.sum(np.exp(log_q) * (L - log_q), axis=1)

    def loss_and_grads(self, x_l, y_l, x_u, eps_l=None, eps_u=None, rng=None, estimator="analytic", k=1,
                       alpha=1.0, grads=None):
        """Negative M2 objective (nats per example) and its gradient for every parameter.

        x_l (B_l, D), y_l (B_l,) labelled; x_u (B_u, D) unlabelled; eps_l (K, B_l, Z), eps_u (K, B_u, Z)
        held fixed when given (the same eps_u for every label); alpha >= 0 the classification weight.
        """
        cvae = self.cvae
        x_l, x_u = cvae.check_x(x_l, "x_l"), cvae.check_x(x_u, "x_u")
        onehot_l = cvae.check_y(y_l, len(x_l), "y_l")
        alpha = check_float("alpha", alpha, lo=0.0, hi=1e6)
        if grads is None:
            grads = self.new_grad_buffers()
        elif not hasattr(grads, "keys") or set(grads) != set(self.params):
            raise InputError(f"grads: expected a dict with exactly the keys of params ({len(self.params)} names)")
        cvae_grads = {k: g for k, g in grads.items() if not k.startswith("classifier.")}
        clf_grads = {k[len("classifier."):]: g for k, g in grads.items() if k.startswith("classifier.")}
        B_l, B_u = len(x_l), len(x_u)
        if eps_u is None:
            eps_u = cvae.draw_eps(check_rng("rng", rng), check_positive_int("k", k), B_u)

        # labelled: -mean L(x_l, y_l), and -alpha mean log q(y_l | x_l)                     (14.11)
        loss_l, _ = cvae.loss_and_grads(x_l, y_l, eps=eps_l, rng=rng, estimator=estimator, k=k, grads=cvae_grads)
        logits_l, cache_l = self.classifier.call(x_l)
        log_q_l = log_softmax(logits_l)
        class_term = float(np.mean(np.sum(onehot_l * log_q_l, axis=1)))
        d_logits_l = -(alpha / B_l) * (onehot_l - np.exp(log_q_l))

        # unlabelled: U = sum_y q_y (L_y - log q_y); the CVAE weighted by q_y / B_u per label  (14.11)
        logits_u, cache_u = self.classifier.call(x_u)
        log_q_u = log_softmax(logits_u)
        q_u = np.exp(log_q_u)
        L_u = np.empty((B_u, self.n_classes))
        for c in range(self.n_classes):
            cvae.loss_and_grads(x_u, self._labels_all(B_u, c), eps=eps_u, estimator=estimator, grads=cvae_grads,
                                weights=q_u[:, c] / B_u)
            L_u[:, c] = cvae.last_estimate.elbo + self.log_py
        f = L_u - log_q_u
        U = np.sum(q_u * f, axis=1)
        d_logits_u = (-(1.0 / B_u) * q_u * (f - U[:, None])).astype(cvae.dtype)    # (14.12)

        self.classifier.call_backward(d_logits_l.astype(cvae.dtype), cache_l, clf_grads, need_dx=False)
        self.classifier.call_backward(d_logits_u, cache_u, clf_grads, need_dx=False)
        loss = (loss_l - self.log_py) - float(np.mean(U)) - alpha * class_term
        if not np.isfinite(loss):
            raise InputError(f"x_l, x_u: the M2 loss is {loss} for this batch (an overflow, or the network diverged)")
        return loss, grads


def train(model, x_l, y_l, x_u, epochs, rng, batch_size=100, lr=1e-3, alpha=1.0, estimator="analytic"):
    """Fit M2 with Adam: each step one unlabelled batch (an epoch is a pass over x_u) and a labelled
    batch of the same size drawn from (x_l, y_l).  Returns the mean loss of each epoch."""
    if not isinstance(model, M2):
        raise InputError(f"model: expected a numpyvae M2, got {type(model).__name__}")
    x_l, x_u = model.cvae.check_x(x_l, "x_l"), model.cvae.check_x(x_u, "x_u")
    model.cvae.check_y(y_l, len(x_l), "y_l")
    y_l = np.asarray(y_l).astype(np.int64)
    epochs, batch_size = check_positive_int("epochs", epochs), check_positive_int("batch_size", batch_size)
    rng = check_rng("rng", rng)
    opt = Adam(model.params, lr=lr)
    history = []
    for _ in range(epochs):
        perm, total = rng.permutation(len(x_u)), 0.0
        for start in range(0, len(x_u), batch_size):
            iu = perm[start:start + batch_size]
            il = rng.integers(0, len(x_l), min(batch_size, len(x_l)))
            loss, grads = model.loss_and_grads(x_l[il], y_l[il], x_u[iu], rng=rng, estimator=estimator, alpha=alpha)
            opt.step(grads)
            total += loss * len(iu)
        history.append(total / len(x_u))
    return history
