"""The graded exercises: each takes the student's function or class and returns a Report.

Every check draws its arrays from ``np.random.default_rng(seed)`` (float64,
shapes chosen so that no two sizes are equal and a missing transpose shows
as a wrong shape), computes the expected values with the package's
reference implementation and the expected gradients by centred differences
of the reference forward (``numpyvae.gradcheck``), and grades each part
separately with ``diagnose.compare``.  Random noise eps is held fixed.

``grade_*`` return the Report; ``check_*`` (what a notebook's test cell
calls) print it and raise AssertionError if a part failed (or
NotImplementedError if a part is not written yet), returning nothing.
"""
from dataclasses import dataclass

import numpy as np

from .. import distributions as dist
from ..gradcheck import numerical_gradient, surrogate_loss
from ..layers import ACTIVATIONS, Linear as RefLinear, sigmoid
from ..validate import check_choice
from ..vae import VAE
from .diagnose import compare
from .guard import NotWritten, StudentError, call
from .report import FAIL, TODO, Part, Report

MISSING = object()


def _fail_all(report, names, err):
    """The first part in ``names`` gets the student's exception (a sentence); the rest refer to it."""
    verdict = TODO if isinstance(err, NotWritten) else FAIL
    report.add(Part(names[0], verdict, str(err), getattr(err, "hint", "")))
    for name in names[1:]:
        report.add(Part(name, verdict, f"not graded: see {names[0]}"))
    return report


def _own_gradient(fn, args, wrt, g):
    """Centred-difference gradient of sum(fn(*args) * g) w.r.t. args[wrt]: the gradient of the
    student's own forward; None if it cannot be taken (it raises, or gives the wrong shape)."""
    arr = args[wrt].copy()
    local = list(args)
    local[wrt] = arr

    def f():
        with np.errstate(all="ignore"):
            return float(np.sum(np.asarray(fn(*local), dtype=np.float64) * g))
    try:
        grad = numerical_gradient(f, arr)
    except Exception:                              # the student's forward is too broken to differentiate
        return None
    return grad if np.all(np.isfinite(grad)) else None


def _attribute(report, obj, owner, attr, what):
    """obj.attr, or a FAIL part saying it is missing."""
    value = getattr(obj, attr, MISSING)
    if value is MISSING:
        report.add(Part(attr, FAIL, f"{owner} has no attribute {attr} after backward",
                        f"store the gradient of {what} in self.{attr} inside backward."))
    return value


# ---- Exercise: Linear -------------------------------------------------------------------

def grade_linear(Linear, seed=0):
    """Grade a class Linear(n_in, n_out, rng) with forward(x) and backward(dout) -> dx, filling dW, db.

    The grader sets the layer's W (n_in, n_out) and b (n_out,) itself, runs
    forward and backward twice (a second call must give the same gradients),
    and grades: forward, dx, dW, db.
    """
    report = Report("Linear", seed)
    rng = np.random.default_rng(seed)
    N, D_in, D_out = 4, 5, 3
    x, g = rng.standard_normal((N, D_in)), rng.standard_normal((N, D_out))
    ref = RefLinear(D_in, D_out, rng=rng, dtype=np.float64)
    ref.W[...], ref.b[...] = rng.standard_normal((D_in, D_out)), rng.standard_normal(D_out)
    W, b = ref.W.copy(), ref.b.copy()
    f = lambda: float(np.sum(ref.forward(x) * g))                 # f = sum(out * dout): its gradient is the VJP
    expected = {"dx": numerical_gradient(f, x), "dW": numerical_gradient(f, ref.W), "db": numerical_gradient(f, ref.b)}
    factors = {"N": (N, "the batch")}
    try:
        layer = call(f"Linear({D_in}, {D_out}, rng)", Linear, D_in, D_out, np.random.default_rng(seed))
        layer.W, layer.b = W.copy(), b.copy()
        out = call("Linear.forward(x)", layer.forward, x)
    except (StudentError, NotWritten) as err:
        return _fail_all(report, ["forward", "dx", "dW", "db"], err)
    report.add(compare("forward", out, x @ W + b, alternatives={"the bias b is not added: out = x @ W + b.": x @ W}))
    try:
        for _ in range(2):                                         # twice: gradients are assigned, not accumulated
            call("Linear.forward(x)", layer.forward, x)
            dx = call("Linear.backward(dout)", layer.backward, g)
    except (StudentError, NotWritten) as err:
        return _fail_all(report, ["dx", "dW", "db"], err)
    twice = "ours doubled on a second backward: the gradient is accumulated (+=) instead of assigned (=)."
    report.add(compare("dx", dx, expected["dx"], factors))
    dW = _attribute(report, layer, "Linear", "dW", "W")
    if dW is not MISSING:
        report.add(compare("dW", dW, expected["dW"], factors, {twice: 2 * expected["dW"]}))
    db = _attribute(report, layer, "Linear", "db", "b")
    if db is not MISSING:
        report.add(compare("db", db, expected["db"], factors, {
            twice: 2 * expected["db"],
            "db sums dout over the wrong axis: the batch axis is 0.": g.sum(axis=1),
            "db is dout itself: sum it over the batch axis (axis=0).": g}))
    return report


# ---- Exercise: an activation ---------------------------------------------------------

def grade_activation(Layer, kind="tanh", seed=0):
    """Grade an activation class Layer() with forward(x) and backward(dout) -> dx.

    kind names the reference in numpyvae.layers.ACTIVATIONS ("tanh",
    "sigmoid", "relu", ...).  x stays clear of 0, where relu has a kink.
    Parts: forward, dx.
    """
    check_choice("kind", kind, ACTIVATIONS)
    ref = ACTIVATIONS[kind]()
    report = Report(f"activation {kind}", seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.2, 2.0, size=(4, 5)) * rng.choice([-1.0, 1.0], size=(4, 5))
    g = rng.standard_normal(x.shape)
    f = lambda: float(np.sum(ref.forward(x) * g))
    expected_dx = numerical_gradient(f, x)
    out_ref = ref.forward(x)
    try:
        layer = call(f"{kind} layer()", Layer)
        out = call("forward(x)", layer.forward, x)
    except (StudentError, NotWritten) as err:
        return _fail_all(report, ["forward", "dx"], err)
    report.add(compare("forward", out, out_ref))
    try:
        dx = call("backward(dout)", layer.backward, g)
    except (StudentError, NotWritten) as err:
        return _fail_all(report, ["dx"], err)
    slope = expected_dx / g                                        # the local derivative, elementwise
    alternatives = {"dx is the local derivative alone: multiply it by dout (the chain rule).": slope}
    if kind == "tanh":
        alternatives["the derivative uses the input x where it needs the output: "
                     "1 - tanh(x)^2, not 1 - x^2."] = g * (1 - x ** 2)
        alternatives["1 - out is not the derivative of tanh: it is 1 - out^2."] = g * (1 - out_ref)
    if kind == "sigmoid":
        alternatives["the derivative uses the input x where it needs the output: "
                     "s (1 - s) with s = sigmoid(x)."] = g * x * (1 - x)
    report.add(compare("dx", dx, expected_dx, alternatives=alternatives,
                       where={"where x < 0": x < 0, "where x > 0": x > 0}))
    return report


# ---- Exercise: the Bernoulli log-likelihood on logits ------------------------------------

def grade_bernoulli(log_prob, log_prob_grad, seed=0):
    """Grade log_prob(x, logits) -> (B,) and log_prob_grad(x, logits) -> (B, D) = d log p / d logits.

    Parts: log_prob, log_prob at large |logits| (must stay finite), gradient.
    """
    report = Report("Bernoulli log-likelihood", seed)
    rng = np.random.default_rng(seed)
    B, D = 4, 6
    x = rng.uniform(size=(B, D))
    x[0] = rng.integers(0, 2, size=D)                              # a binary row as well as grey levels
    logits = rng.normal(scale=3.0, size=(B, D))
    factors = {"D": (D, "the D pixels")}
    try:
        lp = call("log_prob(x, logits)", log_prob, x, logits)
        report.add(compare("log_prob", lp, dist.bernoulli_log_prob(x, logits), factors))
    except (StudentError, NotWritten) as err:
        _fail_all(report, ["log_prob"], err)
    big = np.array([[-800.0, -40.0, 0.0, 40.0, 800.0, 3.0]] * 2)
    xb = np.array([[1.0, 0.0, 1.0, 1.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.0, 1.0, 0.5]])
    try:
        part = compare("log_prob, large |logits|", call("log_prob(x, logits)", log_prob, xb, big),
                       dist.bernoulli_log_prob(xb, big))
        if not part.passed and "not finite" in part.detail:
            part.hint = ("log(sigmoid(l)) overflows or underflows for large |l|: write log p = sum x*l - softplus(l) "
                         "with softplus(l) = max(l, 0) + log1p(exp(-|l|)).")
        report.add(part)
    except (StudentError, NotWritten) as err:
        _fail_all(report, ["log_prob, large |logits|"], err)
    f = lambda: float(np.sum(dist.bernoulli_log_prob(x, logits)))
    expected = numerical_gradient(f, logits)
    try:
        grad = call("log_prob_grad(x, logits)", log_prob_grad, x, logits)
    except (StudentError, NotWritten) as err:
        return _fail_all(report, ["gradient"], err)
    own = _own_gradient(log_prob, [x, logits], 1, np.ones(B))
    report.add(compare("gradient", grad, expected, factors, {
        "x - logits: the mean of p(x|z) is sigmoid(logits), not the logits.": x - logits,
        "the gradient on logits is x - sigmoid(logits); ours is x - sigmoid(-logits).": x - sigmoid(-logits)},
        where={"where logits < 0": logits < 0, "where logits > 0": logits > 0}, own=own))
    return report


# ---- Exercise: the reparameterization step ---------------------------------------------

def grade_reparameterize(reparameterize, reparameterize_backward, seed=0):
    """Grade reparameterize(mu, logvar, eps) -> z and reparameterize_backward(dz, mu, logvar, eps) -> (dmu, dlogvar).

    z = mu + exp(logvar / 2) * eps, all (B, Z); eps is held fixed.
    Parts: forward z (against the reference, which catches errors a
    gradient check cannot: a wrong forward with its matching backward), dmu, dlogvar.
    """
    report = Report("reparameterization", seed)
    rng = np.random.default_rng(seed)
    B, Z = 4, 3
    mu, logvar = rng.standard_normal((B, Z)), rng.uniform(-1.5, 1.5, size=(B, Z))
    eps, g = rng.standard_normal((B, Z)), rng.standard_normal((B, Z))
    sigma = np.exp(0.5 * logvar)
    z_ref = lambda m, lv: dist.reparameterize(m, lv, eps)[0]
    try:
        z = call("reparameterize(mu, logvar, eps)", reparameterize, mu, logvar, eps)
        report.add(compare("forward z", z, mu + sigma * eps, alternatives={
            "the variance exp(logvar) is used as the standard deviation: sigma = exp(logvar / 2).":
                mu + np.exp(logvar) * eps,
            "logvar is used as the standard deviation: sigma = exp(logvar / 2).": mu + logvar * eps,
            "sigma = exp(-logvar / 2) has the wrong sign in the exponent: sigma = exp(logvar / 2).": mu + eps / sigma,
            "eps is not used: z = mu + sigma * eps.": mu + sigma}))
    except (StudentError, NotWritten) as err:
        _fail_all(report, ["forward z"], err)
    m, lv = mu.copy(), logvar.copy()
    f = lambda: float(np.sum(z_ref(m, lv) * g))
    expected = {"dmu": numerical_gradient(f, m), "dlogvar": numerical_gradient(f, lv)}
    try:
        result = call("reparameterize_backward(dz, mu, logvar, eps)", reparameterize_backward, g, mu, logvar, eps)
    except (StudentError, NotWritten) as err:
        return _fail_all(report, ["dmu", "dlogvar"], err)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        return _fail_all(report, ["dmu", "dlogvar"], StudentError(
            f"reparameterize_backward returned {type(result).__name__}, expected a pair (dmu, dlogvar)"))
    student_z = lambda m_, lv_: reparameterize(m_, lv_, eps)
    own = [_own_gradient(student_z, [mu, logvar], i, g) for i in (0, 1)]
    report.add(compare("dmu", result[0], expected["dmu"], alternatives={
        "dmu is dz * sigma: z = mu + sigma * eps has dz/dmu = 1, so dmu = dz.": g * sigma}, own=own[0]))
    report.add(compare("dlogvar", result[1], expected["dlogvar"], alternatives={
        "eps is missing: dz/dlogvar = 1/2 sigma eps.": 0.5 * sigma * g,
        "d exp(logvar) eps / dlogvar: the derivative of a forward that uses the variance as the standard deviation; "
        "with sigma = exp(logvar / 2) it is 1/2 sigma eps dz.": np.exp(logvar) * eps * g}, own=own[1]))
    return report


# ---- Exercise: the analytic KL to N(0, I) ----------------------------------------------

def grade_kl(kl, kl_grads, seed=0):
    """Grade kl(mu, logvar) -> (B,) and kl_grads(mu, logvar) -> (dmu, dlogvar), each (B, Z).

    KL(N(mu, exp(logvar)) || N(0, I)) = 1/2 sum_j [mu^2 + exp(logvar) - 1 - logvar].
    Parts: kl, dmu, dlogvar.
    """
    report = Report("KL to N(0, I)", seed)
    rng = np.random.default_rng(seed)
    B, Z = 4, 3
    mu, logvar = rng.standard_normal((B, Z)), rng.uniform(-1.5, 1.5, size=(B, Z))
    half = lambda t: 0.5 * np.sum(t, axis=-1)
    try:
        value = call("kl(mu, logvar)", kl, mu, logvar)
        report.add(compare("kl", value, dist.kl_std_normal(mu, logvar), {"Z": (Z, "the latent dimensions")}, {
            "the -logvar term has the wrong sign: KL = 1/2 sum (mu^2 + exp(logvar) - 1 - logvar).":
                half(mu ** 2 + np.exp(logvar) - 1 + logvar),
            "exp(logvar / 2) is the standard deviation; the KL needs the variance exp(logvar).":
                half(mu ** 2 + np.exp(logvar / 2) - 1 - logvar),
            "the variance exp(logvar) is used as the standard deviation (squared again): the variance is exp(logvar).":
                half(mu ** 2 + np.exp(2 * logvar) - 1 - logvar)}))
    except (StudentError, NotWritten) as err:
        _fail_all(report, ["kl"], err)
    m, lv = mu.copy(), logvar.copy()
    f = lambda: float(np.sum(dist.kl_std_normal(m, lv)))
    expected = {"dmu": numerical_gradient(f, m), "dlogvar": numerical_gradient(f, lv)}
    try:
        result = call("kl_grads(mu, logvar)", kl_grads, mu, logvar)
    except (StudentError, NotWritten) as err:
        return _fail_all(report, ["dmu", "dlogvar"], err)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        return _fail_all(report, ["dmu", "dlogvar"], StudentError(
            f"kl_grads returned {type(result).__name__}, expected a pair (dmu, dlogvar)"))
    ones = np.ones(B)
    own = [_own_gradient(kl, [mu, logvar], i, ones) for i in (0, 1)]
    report.add(compare("dmu", result[0], expected["dmu"], own=own[0]))
    report.add(compare("dlogvar", result[1], expected["dlogvar"], alternatives={
        "the -1 from the -logvar term is missing: dKL/dlogvar = 1/2 (exp(logvar) - 1).": 0.5 * np.exp(logvar),
        "the -logvar term has the wrong sign: dKL/dlogvar = 1/2 (exp(logvar) - 1).": 0.5 * (np.exp(logvar) + 1)},
        own=own[1]))
    return report


# ---- Exercise: the whole VAE's backward ------------------------------------------------

def small_vae(seed=0):
    """The float64 model the VAE exercise is graded on: 6 pixels, hidden 5, 2 latents, tanh."""
    return VAE(6, [5], 2, likelihood="bernoulli", activation="tanh", dtype=np.float64, seed=seed)


def grade_vae_backward(vae_loss_and_grads, seed=0):
    """Grade vae_loss_and_grads(model, x, eps) -> (loss, grads) for a Bernoulli VAE with analytic KL.

    loss = -(1/B) sum_b [log p(x_b | z_b) - KL(q(z|x_b) || N(0, I))], z = mu + exp(logvar/2) eps
    with eps (B, Z) fixed; grads maps each name of ``model.params`` to its gradient.
    The layers' gradient buffers are filled with NaN before the call, so a
    gradient that is never written shows.  Parts: loss, then every parameter
    in the order the backward pass reaches it (decoder's last layer first).
    """
    report = Report("VAE backward", seed)
    rng = np.random.default_rng(seed)
    model = small_vae(seed)
    B = 4
    x, eps = rng.uniform(size=(B, model.x_dim)), rng.standard_normal((B, model.z_dim))
    loss_ref, grads = model.loss_and_grads(x, eps=eps)
    grads_ref = {k: v.copy() for k, v in grads.items()}
    no_kl = {k: v.copy() for k, v in model.loss_and_grads(x, eps=eps, beta=0.0)[1].items()}
    f = lambda: surrogate_loss(model, x, eps, "analytic", None)
    expected = {name: numerical_gradient(f, p) for name, p in model.params.items()}
    for lin in model.encoder.linears + model.decoder.linears:
        lin.dW[...], lin.db[...] = np.nan, np.nan
    order = list(model.params)[::-1]           # the order the backward pass reaches them: the first FAIL is where it breaks
    names = ["loss", *order]
    try:
        result = call("vae_loss_and_grads(model, x, eps)", vae_loss_and_grads, model, x, eps)
    except (StudentError, NotWritten) as err:
        return _fail_all(report, names, err)
    if not (isinstance(result, (tuple, list)) and len(result) == 2 and hasattr(result[1], "get")):
        return _fail_all(report, names, StudentError(
            f"vae_loss_and_grads returned {type(result).__name__}, expected a pair (loss, grads dict)"))
    loss, got = result
    factors = {"B": (B, "the batch")}
    report.add(compare("loss", np.asarray(loss, dtype=np.float64) if loss is not None else None,
                       np.float64(loss_ref), factors, {
                           "ours = -loss: the loss is the negative ELBO, -(log p(x|z) - KL).": -loss_ref}))
    last = f"encoder.{len(model.encoder.linears) - 1}"     # its output is [mu | logvar]: columns :Z and Z:
    Z = model.z_dim
    for name in order:
        alternatives = {"ours = -expected: this is the gradient of the ELBO; the loss is -ELBO.": -expected[name]}
        where = {}
        if name.startswith(last):
            cols = np.arange(expected[name].shape[-1])
            where = {"in the logvar columns (Z:)": (cols >= Z, "check dlogvar, the input of the encoder's backward"),
                     "in the mu columns (:Z)": (cols < Z, "check dmu, the input of the encoder's backward")}
        if not np.allclose(no_kl[name], grads_ref[name]):
            alternatives["the KL's gradient (dKL/dmu = mu, dKL/dlogvar = (exp(logvar) - 1)/2, times 1/B) "
                         "is never added to dmu, dlogvar."] = no_kl[name]
        if name not in got:
            report.add(Part(name, FAIL, f"grads has no entry {name!r}",
                            "return a gradient for every name in model.params (model.grads() does)."))
            continue
        report.add(compare(name, got[name], expected[name], factors, alternatives, where, planted_nan=True))
    return report


# ---- Exercise: a Gaussian decoder with a fixed variance ------------------------------------

def grade_fixed_gaussian(log_prob, log_prob_grad, seed=0):
    """Grade log_prob(x, mean, s) -> (B,) and log_prob_grad(x, mean, s) -> d/dmean, (B, D).

    log N(x; mean, s^2 I) = -1/2 sum_d [log(2 pi s^2) + (x_d - mean_d)^2 / s^2], s > 0 a number.
    Parts: log_prob, gradient.
    """
    report = Report("Gaussian decoder, fixed variance", seed)
    rng = np.random.default_rng(seed)
    B, D, s = 4, 6, 0.3
    x, mean = rng.uniform(size=(B, D)), rng.normal(size=(B, D))
    ref = lambda m: -0.5 * np.sum(np.log(2 * np.pi * s ** 2) + (x - m) ** 2 / s ** 2, axis=-1)
    factors = {"D": (D, "the D pixels")}
    try:
        report.add(compare("log_prob", call("log_prob(x, mean, s)", log_prob, x, mean, s), ref(mean), factors, {
            "the normalising term is log(2 pi s^2) / 2 per pixel: s^2, not s.":
                -0.5 * np.sum(np.log(2 * np.pi * s) + (x - mean) ** 2 / s ** 2, axis=-1)}))
    except (StudentError, NotWritten) as err:
        _fail_all(report, ["log_prob"], err)
    m = mean.copy()
    expected = numerical_gradient(lambda: float(np.sum(ref(m))), m)
    try:
        grad = call("log_prob_grad(x, mean, s)", log_prob_grad, x, mean, s)
    except (StudentError, NotWritten) as err:
        return _fail_all(report, ["gradient"], err)
    own = _own_gradient(lambda m_: log_prob(x, m_, s), [mean], 0, np.ones(B))
    report.add(compare("gradient", grad, expected, factors, {
        "divided by s where the derivative divides by s^2: (x - mean) / s^2.": (x - mean) / s,
        "the 1/s^2 is missing: (x - mean) / s^2.": x - mean}, own=own))
    return report


# ---- Exercise: the KL to a prior that is not standard ---------------------------------------

def grade_kl_diag(kl, kl_grads, seed=0):
    """Grade kl(mu, logvar, m0, logvar0) -> (B,) and kl_grads(...) -> (dmu, dlogvar), each (B, Z).

    KL(N(mu, e^logvar) || N(m0, e^logvar0)) = 1/2 sum_j [logvar0 - logvar + (e^logvar + (mu - m0)^2) e^-logvar0 - 1].
    Parts: kl, kl at m0 = 0, logvar0 = 0 (must equal the KL to N(0, I)), dmu, dlogvar.
    """
    report = Report("KL to N(m0, exp(logvar0))", seed)
    rng = np.random.default_rng(seed)
    B, Z = 4, 3
    mu, logvar, m0, logvar0 = rng.normal(size=(4, B, Z))
    ref = lambda m, lv, m0_, lv0: 0.5 * np.sum(lv0 - lv + (np.exp(lv) + (m - m0_) ** 2) * np.exp(-lv0) - 1, axis=-1)
    zeros = np.zeros_like(mu)
    for part, args in (("kl", (mu, logvar, m0, logvar0)), ("kl at m0 = 0, logvar0 = 0", (mu, logvar, zeros, zeros))):
        try:
            report.add(compare(part, call("kl(mu, logvar, m0, logvar0)", kl, *args), ref(*args),
                               {"Z": (Z, "the latent dimensions")}))
        except (StudentError, NotWritten) as err:
            _fail_all(report, [part], err)
    m, lv = mu.copy(), logvar.copy()
    f = lambda: float(np.sum(ref(m, lv, m0, logvar0)))
    expected = {"dmu": numerical_gradient(f, m), "dlogvar": numerical_gradient(f, lv)}
    try:
        result = call("kl_grads(mu, logvar, m0, logvar0)", kl_grads, mu, logvar, m0, logvar0)
    except (StudentError, NotWritten) as err:
        return _fail_all(report, ["dmu", "dlogvar"], err)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        return _fail_all(report, ["dmu", "dlogvar"], StudentError(
            f"kl_grads returned {type(result).__name__}, expected a pair (dmu, dlogvar)"))
    report.add(compare("dmu", result[0], expected["dmu"], alternatives={
        "the prior's precision exp(-logvar0) is missing: dKL/dmu = (mu - m0) exp(-logvar0).": mu - m0}))
    report.add(compare("dlogvar", result[1], expected["dlogvar"], alternatives={
        "this is the gradient for a standard prior: with N(m0, exp(logvar0)) it is (exp(logvar - logvar0) - 1) / 2.":
            0.5 * (np.exp(logvar) - 1)}))
    return report


# ---- A gradient the student checks by themselves -------------------------------------------

def grade_gradient(f, grad, x, name="x"):
    """Grade the array grad against the centred-difference gradient of the scalar f() w.r.t. x.

    f takes no argument and must read x (perturbed in place); x float64.
    """
    report = Report(f"gradient of f w.r.t. {name}", 0)
    try:
        x = np.asarray(x)
        if x.dtype != np.float64:
            raise StudentError(f"x has dtype {x.dtype}: gradient checks need float64 (x.astype(np.float64))")
        expected = call("f()", numerical_gradient, f, x, copy=False)      # f must read this very x
    except (StudentError, NotWritten) as err:
        return _fail_all(report, [name], err)
    report.add(compare(name, grad, expected))
    return report


# ---- the registry the grade command uses ---------------------------------------------------

@dataclass(frozen=True)
class Exercise:
    """A graded exercise: the names it reads from the student's notebook, and its grader."""

    names: tuple
    grade: object
    title: str


EXERCISES = {
    "linear": Exercise(("Linear",), grade_linear, "Linear: forward, dx, dW, db"),
    "tanh": Exercise(("Tanh",), lambda Tanh, seed=0: grade_activation(Tanh, "tanh", seed), "Tanh: forward, dx"),
    "bernoulli": Exercise(("bernoulli_log_prob", "bernoulli_log_prob_grad"), grade_bernoulli,
                          "Bernoulli log-likelihood and its gradient on logits"),
    "reparameterize": Exercise(("reparameterize", "reparameterize_backward"), grade_reparameterize,
                               "the reparameterization step and its backward"),
    "kl": Exercise(("kl_std_normal", "kl_std_normal_grads"), grade_kl, "the analytic KL to N(0, I) and its gradient"),
    "vae": Exercise(("vae_loss_and_grads",), grade_vae_backward, "the whole VAE's backward"),
    "fixed_gaussian": Exercise(("fixed_gaussian_log_prob", "fixed_gaussian_log_prob_grad"), grade_fixed_gaussian,
                               "a Gaussian decoder with a fixed variance"),
    "kl_diag": Exercise(("kl_diag", "kl_diag_grads"), grade_kl_diag, "the KL to a non-standard diagonal Gaussian"),
}


def grade_names(exercise, namespace, seed=0):
    """Grade one registered exercise on the objects a notebook defined (a dict name -> object)."""
    ex = EXERCISES[exercise]
    missing = [n for n in ex.names if n not in namespace]
    if missing:
        report = Report(ex.title, seed)
        report.add(Part("defined", FAIL, f"the notebook defines no {', '.join(missing)}",
                        "keep the names the exercise gives (the grader looks them up by name)."))
        return report
    return ex.grade(*(namespace[n] for n in ex.names), seed=seed)


# ---- what test cells call ----------------------------------------------------------------

def _checked(report):
    """Print the report; raise if a part failed or is not written.  Returns None (the table is printed)."""
    print(report)
    report.assert_passed()


def check_linear(Linear, seed=0):
    """Print the Linear exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_linear(Linear, seed))


def check_activation(Layer, kind="tanh", seed=0):
    """Print the activation exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_activation(Layer, kind, seed))


def check_bernoulli(log_prob, log_prob_grad, seed=0):
    """Print the Bernoulli exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_bernoulli(log_prob, log_prob_grad, seed))


def check_reparameterize(reparameterize, reparameterize_backward, seed=0):
    """Print the reparameterization exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_reparameterize(reparameterize, reparameterize_backward, seed))


def check_kl(kl, kl_grads, seed=0):
    """Print the KL exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_kl(kl, kl_grads, seed))


def check_vae_backward(vae_loss_and_grads, seed=0):
    """Print the whole-VAE exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_vae_backward(vae_loss_and_grads, seed))


def check_fixed_gaussian(log_prob, log_prob_grad, seed=0):
    """Print the fixed-variance Gaussian exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_fixed_gaussian(log_prob, log_prob_grad, seed))


def check_kl_diag(kl, kl_grads, seed=0):
    """Print the non-standard-prior KL exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_kl_diag(kl, kl_grads, seed))


def check_gradient(f, grad, x, name="x"):
    """Print the verdict on your own gradient (with a hint); AssertionError if it is wrong."""
    return _checked(grade_gradient(f, grad, x, name))
