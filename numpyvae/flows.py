"""Planar and radial normalizing flows (Rezende & Mohamed 2015), forward and backward by hand.

derivations/13-planar-flows.md derives every line.  One planar step maps

    y = f(z) = z + u_hat tanh(w.z + b)                                  (13.2)

and, by the matrix determinant lemma, its Jacobian determinant is

    det df/dz = 1 + (1 - tanh^2(w.z + b)) (w.u_hat)                    (13.4)

The step is invertible when w.u_hat >= -1.  The free parameter u is mapped
to u_hat, which always satisfies it:

    u_hat = u + (m(w.u) - w.u) w / |w|^2,   m(a) = -1 + softplus(a)     (13.6)

so that w.u_hat = m(w.u) > -1 (and then det > 0).

Shapes: a flow acts on samples z (S, B, Z) -- S samples for each of B rows --
with one set of parameters per row: u, w (B, Z) and b (B,) for one step,
u, w (B, K, Z) and b (B, K) for K steps.  In a VAE the rows are the examples
and the encoder produces the parameters (amortized, as in the paper); to fit
a density, B = 1 and S is the number of samples.  Parameter gradients are
summed over the S samples.

Radial steps, y = z + beta (z - z0) / (alpha + |z - z0|), follow the same
pattern below (derivations/13-planar-flows.md, (13.10)-(13.15)).

Every kernel here is the formula and nothing else: the VAE checks its inputs
at its public methods before the flow posteriors (numpyvae/posterior.py) call
these, and the public functions at the bottom check theirs.
"""
import numpy as np

from .errors import InputError
from .layers import sigmoid, softplus
from .validate import as_float_array

# |w|^2 is floored here in u_hat: w = 0 exactly leaves u as it is instead of 0/0
# (the exact formula is singular there: u_hat grows like 1/|w| as w -> 0)
W_NORM2_FLOOR = 1e-30


# ---- the u reparameterization (13.6) -----------------------------------------

def u_hat_forward(u, w):
    """u, w (..., Z) -> u_hat (..., Z) with w.u_hat = -1 + softplus(w.u) > -1, and the cache.

    m(a) - a = -1 + softplus(a) - a = -1 + softplus(-a), written so for large a.
    """
    a = np.sum(w * u, axis=-1)                                 # a = w.u
    n = np.maximum(np.sum(w * w, axis=-1), W_NORM2_FLOOR)      # |w|^2, floored
    r = (softplus(-a) - 1.0) / n                               # (m(a) - a) / |w|^2
    return u + r[..., None] * w, (u, w, a, n, r)


def u_hat_backward(du_hat, cache):
    """du_hat (..., Z) -> du, dw (..., Z).  (13.7)

    u_hat = u + r w,  r = (m(a) - a) / n,  a = w.u,  n = |w|^2:
      dr/da = (sigmoid(a) - 1) / n,   dr/dn = -r / n
    """
    u, w, a, n, r = cache
    dr = np.sum(du_hat * w, axis=-1)
    da = dr * (sigmoid(a) - 1.0) / n
    dn = np.where(n > W_NORM2_FLOOR, -dr * r / n, 0.0)         # no gradient where the floor holds
    du = du_hat + da[..., None] * w
    dw = r[..., None] * du_hat + da[..., None] * u + 2.0 * dn[..., None] * w
    return du, dw


# ---- one planar step (13.2), (13.4) ---------------------------------------------

def planar_forward(z, u_hat, w, b):
    """z (S, B, Z); u_hat, w (B, Z); b (B,) -> y (S, B, Z), log|det df/dz| (S, B), cache."""
    t = np.tanh(np.sum(z * w, axis=-1) + b)                   # tanh(w.z + b)     (S, B)
    y = z + t[..., None] * u_hat                               # (13.2)
    c = np.sum(w * u_hat, axis=-1)                             # w.u_hat           (B,)
    g = 1.0 - t * t                                            # h'(w.z + b)
    det = 1.0 + g * c                                          # 1 + u_hat.psi(z), psi = h' w   (13.4)
    return y, np.log(np.abs(det)), (z, u_hat, w, t, c, g, det)


def planar_backward(dy, dlogdet, cache):
    """dy (S, B, Z), dlogdet (S, B) -> dz (S, B, Z), du_hat, dw (B, Z), db (B,).  (13.5)

    Backwards through det = 1 + g c, g = 1 - t^2, t = tanh(s), s = w.z + b, y = z + t u_hat.
    """
    z, u_hat, w, t, c, g, det = cache
    ddet = dlogdet / det                                       # d log|det| / d det = 1 / det
    dc = np.sum(ddet * g, axis=0)                              # (B,)
    dt = np.sum(dy * u_hat, axis=-1) - 2.0 * t * ddet * c      # through y and through g
    ds = dt * g                                                # tanh' = 1 - t^2
    du_hat = np.sum(dy * t[..., None], axis=0) + dc[:, None] * w
    dw = np.sum(ds[..., None] * z, axis=0) + dc[:, None] * u_hat
    dz = dy + ds[..., None] * w
    return dz, du_hat, dw, np.sum(ds, axis=0)


# ---- K steps ----------------------------------------------------------------------

def flow_forward(z0, u_hat, w, b):
    """z0 (S, B, Z); u_hat, w (B, K, Z); b (B, K) -> z_K (S, B, Z), sum_k log|det| (S, B), cache."""
    z, total, caches = z0, 0.0, []
    for k in range(w.shape[1]):
        z, logdet, cache = planar_forward(z, u_hat[:, k], w[:, k], b[:, k])
        total = total + logdet
        caches.append(cache)
    return z, total + np.zeros(z0.shape[:2], dtype=z0.dtype), caches


def flow_backward(dz_K, dsum_logdet, caches):
    """dz_K (S, B, Z), dsum_logdet (S, B) -> dz0 (S, B, Z), du_hat, dw (B, K, Z), db (B, K)."""
    dz = dz_K
    du_hat = np.empty((dz.shape[1], len(caches), dz.shape[2]), dtype=dz.dtype)
    dw, db = np.empty_like(du_hat), np.empty(du_hat.shape[:2], dtype=dz.dtype)
    for k in reversed(range(len(caches))):
        dz, du_hat[:, k], dw[:, k], db[:, k] = planar_backward(dz, dsum_logdet, caches[k])
    return dz, du_hat, dw, db


# ---- the inverse, for evaluating the flowed density at a point ----------------------

def planar_inverse(y, u_hat, w, b, iterations=64):
    """The z with f(z) = y, for y (S, B, Z), needing w.u_hat >= -1.  (13.9)

    w.y + b = s + c tanh(s) with s = w.z + b and c = w.u_hat: a scalar equation,
    increasing in s when c >= -1, whose root lies in [w.y + b - |c|, w.y + b + |c|];
    bisection finds it (64 halvings of a bracket 2|c| wide: to the last bit for
    |c| < 1e3), then z = y - u_hat tanh(s).
    """
    r = np.sum(y * w, axis=-1) + b
    c = np.sum(w * u_hat, axis=-1)
    lo, hi = r - np.abs(c), r + np.abs(c)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        low = mid + c * np.tanh(mid) < r
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    return y - np.tanh(0.5 * (lo + hi))[..., None] * u_hat


def flow_inverse(y, u_hat, w, b):
    """z_0 for z_K = y (S, B, Z), undoing the K steps from the last."""
    for k in reversed(range(w.shape[1])):
        y = planar_inverse(y, u_hat[:, k], w[:, k], b[:, k])
    return y


# ---- radial flows (13.10)-(13.15) -------------------------------------------------------
#
# One radial step moves every point towards or away from a centre z0:
#     y = z + beta h(r) (z - z0),   r = |z - z0|,   h(r) = 1 / (alpha + r)
# with alpha > 0 and beta >= -alpha (then the step is invertible).  Parameters per row:
# z0 (B, Z), alpha, beta (B,); K steps: z0 (B, K, Z), alpha, beta (B, K).

def radial_params_forward(alpha_raw, beta_raw):
    """alpha = softplus(alpha_raw) > 0, beta = -alpha + softplus(beta_raw) >= -alpha.  (13.13)"""
    alpha = softplus(alpha_raw)
    return alpha, -alpha + softplus(beta_raw), (alpha_raw, beta_raw)


def radial_params_backward(dalpha, dbeta, cache):
    """dalpha, dbeta -> dalpha_raw, dbeta_raw (softplus' = sigmoid)."""
    alpha_raw, beta_raw = cache
    return (dalpha - dbeta) * sigmoid(alpha_raw), dbeta * sigmoid(beta_raw)


def radial_forward(z, z0, alpha, beta):
    """z (S, B, Z); z0 (B, Z); alpha, beta (B,) -> y (S, B, Z), log|det dy/dz| (S, B), cache.  (13.10), (13.12)

    log|det| = (Z - 1) log|1 + beta h| + log|1 + beta alpha h^2|.
    """
    d = z - z0
    r = np.sqrt(np.sum(d * d, axis=-1))
    h = 1.0 / (alpha + r)
    y = z + (beta * h)[..., None] * d
    A, B = 1.0 + beta * h, 1.0 + beta * alpha * h * h
    logdet = (z.shape[-1] - 1) * np.log(np.abs(A)) + np.log(np.abs(B))
    return y, logdet, (d, r, h, alpha, beta, A, B)


def radial_backward(dy, dlogdet, cache):
    """dy (S, B, Z), dlogdet (S, B) -> dz (S, B, Z), dz0 (B, Z), dalpha, dbeta (B,).  (13.14)"""
    d, r, h, alpha, beta, A, B = cache
    Z = d.shape[-1]
    dyd = np.sum(dy * d, axis=-1)                                   # <dy, d>
    dh = dlogdet * ((Z - 1) * beta / A + 2 * beta * alpha * h / B) + dyd * beta
    dalpha = dlogdet * beta * h * h / B - dh * h * h                 # direct, and through h = 1/(alpha + r)
    dbeta = dlogdet * ((Z - 1) * h / A + alpha * h * h / B) + dyd * h
    dr = -dh * h * h
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = np.where(r[..., None] > 0, d / r[..., None], 0.0)    # dr/dd (none at z = z0 exactly)
    dd = dy * (beta * h)[..., None] + dr[..., None] * unit
    return dy + dd, -np.sum(dd, axis=0), np.sum(dalpha, axis=0), np.sum(dbeta, axis=0)


def radial_inverse(y, z0, alpha, beta):
    """The z with radial_forward(z) = y, needing alpha > 0, beta >= -alpha.  (13.15)

    |y - z0| = r (1 + beta / (alpha + r)): r is the non-negative root of
    r^2 + (alpha + beta - r') r - alpha r' = 0, r' = |y - z0|; z - z0 is y - z0 scaled by r / r'.
    """
    e = y - z0
    rp = np.sqrt(np.sum(e * e, axis=-1))
    c = alpha + beta - rp
    r = 0.5 * (-c + np.sqrt(c * c + 4 * alpha * rp))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(rp > 0, r / rp, 1.0)
    return z0 + scale[..., None] * e


def radial_flow_forward(z0_, centres, alpha, beta):
    """K radial steps: z0_ (S, B, Z); centres (B, K, Z); alpha, beta (B, K) -> z_K, sum log|det| (S, B), caches."""
    z, total, caches = z0_, np.zeros(z0_.shape[:2], dtype=z0_.dtype), []
    for k in range(centres.shape[1]):
        z, logdet, cache = radial_forward(z, centres[:, k], alpha[:, k], beta[:, k])
        total = total + logdet
        caches.append(cache)
    return z, total, caches


def radial_flow_backward(dz_K, dsum_logdet, caches):
    """dz_K (S, B, Z), dsum_logdet (S, B) -> dz0 (S, B, Z), dcentres (B, K, Z), dalpha, dbeta (B, K)."""
    dz = dz_K
    B, K, Z = dz.shape[1], len(caches), dz.shape[2]
    dc, da, db = np.empty((B, K, Z), dz.dtype), np.empty((B, K), dz.dtype), np.empty((B, K), dz.dtype)
    for k in reversed(range(K)):
        dz, dc[:, k], da[:, k], db[:, k] = radial_backward(dz, dsum_logdet, caches[k])
    return dz, dc, da, db


def radial_flow_inverse(y, centres, alpha, beta):
    """z_0 for z_K = y (S, B, Z), undoing the K radial steps from the last."""
    for k in reversed(range(centres.shape[1])):
        y = radial_inverse(y, centres[:, k], alpha[:, k], beta[:, k])
    return y


# ---- public, checked entries ----------------------------------------------------------

def _flow_args(z, u, w, b):
    z, u, w, b = (as_float_array(n, a) for n, a in (("z", z), ("u", u), ("w", w), ("b", b)))
    if z.ndim != 3 or w.ndim != 3 or u.shape != w.shape or b.shape != w.shape[:2] or w.shape[0] != z.shape[1] \
            or w.shape[2] != z.shape[2]:
        raise InputError(f"z, u, w, b: expected shapes (S, B, Z), (B, K, Z), (B, K, Z), (B, K), got "
                         f"{z.shape}, {u.shape}, {w.shape}, {b.shape}")
    return z, u, w, b


def planar_flow(z, u, w, b):
    """K planar steps applied to z (S, B, Z) with free parameters u, w (B, K, Z), b (B, K).

    u is reparameterized to u_hat first (13.6).  Returns z_K (S, B, Z) and
    sum_k log|det df_k/dz_{k-1}| (S, B).  InputError names a bad argument.
    """
    z, u, w, b = _flow_args(z, u, w, b)
    u_hat, _ = u_hat_forward(u, w)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        z_K, logdet, _ = flow_forward(z, u_hat, w, b)
    if not (np.all(np.isfinite(z_K)) and np.all(np.isfinite(logdet))):
        raise InputError("z, u, w, b: values so extreme that the flow overflowed; expected moderate values")
    return z_K, logdet


def flowed_log_density(y, mu, logvar, u, w, b):
    """log q_K(y) for y (S, B, Z): q_0 = N(mu, diag(exp(logvar))) (B, Z) pushed through K planar steps.

    log q_K(y) = log q_0(z_0) - sum_k log|det df_k/dz_{k-1}|, with z_0 = f^-1(y) by bisection (13.9).
    """
    from .distributions import gaussian_log_prob
    y, u, w, b = _flow_args(y, u, w, b)
    mu, logvar = as_float_array("mu", mu), as_float_array("logvar", logvar)
    if mu.shape != (y.shape[1], y.shape[2]) or logvar.shape != mu.shape:
        raise InputError(f"mu, logvar: expected shape {(y.shape[1], y.shape[2])}, got {mu.shape}, {logvar.shape}")
    u_hat, _ = u_hat_forward(u, w)
    z0 = flow_inverse(y, u_hat, w, b)
    _, logdet, _ = flow_forward(z0, u_hat, w, b)
    return gaussian_log_prob.kernel(z0, mu, logvar) - logdet
