"""Fitting a planar flow to a known 2-D density by the reverse KL, and judging the fit by quadrature.

The flow's parameters are free here (one set, B = 1), not produced by an
encoder: this is Rezende & Mohamed's Sec. 6.1 experiment, the way lecture 8
starts.  The objective is the reverse KL, estimated with S samples,

    KL(q_K || p) = E_q0[ log q_0(z_0) - sum_k log|det df_k/dz_{k-1}| - log p(z_K) ]   (13.10)

and its gradient is the hand-written backward pass of numpyvae/flows.py.
The KL of the result is then computed independently, by quadrature on a
grid with q_K evaluated by inverting the flow (``kl_by_quadrature``).

The target, ``Banana``: z_1 ~ N(0, 1), z_2 | z_1 ~ N(a z_1^2, s^2), normalized,
with the reverse KL of any diagonal Gaussian in closed form (13.11), so the
best diagonal Gaussian is known exactly.
"""
import math

import numpy as np

from . import flows
from .errors import InputError
from .optim import Adam
from .validate import check_float, check_positive_int, check_rng

LOG2PI = math.log(2 * math.pi)


class Banana:
    """p(z) = N(z_1; 0, 1) N(z_2; a z_1^2, s^2), a 2-D density bent into a banana."""

    def __init__(self, a=1.0, s=0.5):
        self.a = check_float("a", a)
        self.s = check_float("s", s, lo=0.0, lo_open=True)

    def log_prob(self, z):
        """log p(z): (..., 2) -> (...)."""
        z1, z2 = z[..., 0], z[..., 1]
        r = z2 - self.a * z1 * z1
        return -LOG2PI - math.log(self.s) - 0.5 * z1 * z1 - 0.5 * r * r / self.s ** 2

    def log_prob_grad(self, z):
        """d log p / dz: (-z_1 + 2 a z_1 r / s^2, -r / s^2), r = z_2 - a z_1^2."""
        z1, z2 = z[..., 0], z[..., 1]
        r = z2 - self.a * z1 * z1
        return np.stack([-z1 + 2 * self.a * z1 * r / self.s ** 2, -r / self.s ** 2], axis=-1)

    def kl_diagonal_gaussian(self, m, v):
        """KL(N(m, diag(v)) || p) in closed form (13.11); m, v: length-2 sequences."""
        a, s2 = self.a, self.s ** 2
        e_z1sq = m[0] ** 2 + v[0]
        e_r2 = v[1] + (m[1] - a * e_z1sq) ** 2 + a * a * (2 * v[0] ** 2 + 4 * m[0] ** 2 * v[0])
        neg_entropy = -LOG2PI - 1.0 - 0.5 * math.log(v[0] * v[1])
        return neg_entropy + LOG2PI + math.log(self.s) + 0.5 * e_z1sq + 0.5 * e_r2 / s2

    def best_diagonal_gaussian(self):
        """(m, v, KL) of the diagonal Gaussian nearest p in reverse KL (13.12):
        m_1 = 0, v_2 = s^2, m_2 = a v_1, and v_1 the positive root of (4 a^2 / s^2) v^2 + v - 1 = 0."""
        c = 4 * self.a ** 2 / self.s ** 2
        v1 = 1.0 if c == 0 else (-1 + math.sqrt(1 + 4 * c)) / (2 * c)
        m, v = (0.0, self.a * v1), (v1, self.s ** 2)
        return m, v, self.kl_diagonal_gaussian(m, v)


def init_params(K, rng, scale=0.1):
    """A planar flow's free parameters for a 2-D density: base mu, logvar (1, 2), u, w (1, K, 2), b (1, K)."""
    K = check_positive_int("K", K, minimum=0)
    rng = check_rng("rng", rng)
    return {"mu": np.zeros((1, 2)), "logvar": np.zeros((1, 2)), "u": scale * rng.standard_normal((1, K, 2)),
            "w": scale * rng.standard_normal((1, K, 2)), "b": scale * rng.standard_normal((1, K))}


def reverse_kl_and_grads(target, params, eps):
    """The S-sample estimate of KL(q_K || p), (13.10), and its gradient for every parameter; eps (S, 1, 2)."""
    mu, logvar, u, w, b = (params[n] for n in ("mu", "logvar", "u", "w", "b"))
    S = eps.shape[0]
    sigma = np.exp(0.5 * logvar)
    z0 = mu + sigma * eps                                          # the reparameterization
    u_hat, ucache = flows.u_hat_forward(u, w)                      # (13.6)
    z, sum_logdet, cache = flows.flow_forward(z0, u_hat, w, b)
    log_q0 = -0.5 * np.sum(LOG2PI + logvar + eps * eps, axis=-1)   # log q_0(z_0) at z_0 = mu + sigma eps
    kl = float(np.mean(log_q0 - sum_logdet - target.log_prob(z)))
    # backward: d kl / d z_K = -grad log p / S, d kl / d sum_logdet = -1 / S
    dz0, du_hat, dw, db = flows.flow_backward(-target.log_prob_grad(z) / S, np.full(z.shape[:2], -1.0 / S), cache)
    du, dw_u = flows.u_hat_backward(du_hat, ucache)
    grads = {"mu": dz0.sum(axis=0), "logvar": 0.5 * sigma * np.sum(dz0 * eps, axis=0) - 0.5,
             "u": du, "w": dw + dw_u, "b": db}
    return kl, grads


def fit(target, K, rng, iterations=2000, samples=256, lr=1e-2, params=None, record_every=0):
    """Fit K planar steps (and the base Gaussian) to ``target`` by Adam on the reverse KL.

    The learning rate is ``lr`` for the first two thirds of the iterations and lr / 10 after.

    Returns (params, history): history lists (iteration, the S-sample KL estimate)
    every ``record_every`` iterations (0: none).
    """
    rng = check_rng("rng", rng)
    iterations, samples = check_positive_int("iterations", iterations, minimum=0), check_positive_int("samples", samples)
    params = init_params(K, rng) if params is None else params
    opt = Adam(params, lr=lr)
    history = []
    for it in range(iterations):
        opt.lr = lr if 3 * it < 2 * iterations else lr / 10
        kl, grads = reverse_kl_and_grads(target, params, rng.standard_normal((samples, 1, 2)))
        if not math.isfinite(kl):
            raise InputError(f"lr: the fit diverged at iteration {it} (KL estimate {kl}); use a smaller lr")
        opt.step(grads)
        if record_every and (it % record_every == 0 or it == iterations - 1):
            history.append((it, kl))
    return params, history


def log_density_on(points, params):
    """log q_K at points (N, 2), by inverting the flow (numpyvae/flows.py, (13.9)) -> (N,)."""
    return flows.flowed_log_density(points[:, None, :], params["mu"], params["logvar"], params["u"], params["w"],
                                    params["b"])[:, 0]


def grid(lo=(-4.5, -3.0), hi=(4.5, 12.0), n=(361, 601)):
    """Points (N, 2) of a rectangular grid and the area of one cell."""
    t1, t2 = np.linspace(lo[0], hi[0], n[0]), np.linspace(lo[1], hi[1], n[1])
    pts = np.stack(np.meshgrid(t1, t2, indexing="ij"), axis=-1).reshape(-1, 2)
    return pts, (t1[1] - t1[0]) * (t2[1] - t2[0])


def kl_by_quadrature(target, log_q, points, cell):
    """KL(q || p) = sum over the grid of q (log q - log p) times the cell's area, and q's mass there."""
    q = np.exp(log_q)
    return float(np.sum(q * (log_q - target.log_prob(points))) * cell), float(q.sum() * cell)
