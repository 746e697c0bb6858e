"""The graded exercises, each split in three so that student code never runs where a verdict is made.

An exercise (``Exercise``) is

* ``cases(seed, hidden)``: the inputs, drawn in the judge's process from
  ``np.random.default_rng``: case 0 is the *public* case the notebook's
  check cell runs (the shapes the handout states); with ``hidden`` (a seed
  from the instructor's manifest) come *hidden* cases: other shapes and
  seeds, batch size 1, a non-square or large W, float32 inputs;
* ``run(objects, case)``: calls the student's functions on one case and
  returns their outputs as plain arrays (``Failed`` where the student's
  code raised).  Only this runs student code; when graded it runs in the
  runner process (``numpyvae.exercises.runner``);
* ``judge(case, outputs)``: computes the expected values itself (the
  package's reference forward, gradients by centred differences in
  float64) and grades each part with ``diagnose.compare``.

``grade_*`` (what a notebook's check calls) do all three in the student's
own process on the public case (plus hidden ones when given a ``hidden``
seed) and return a Report; ``check_*`` print it and raise
AssertionError (NotImplementedError for a part not written yet).

Adding an exercise: write its three functions, register it in
``EXERCISES`` with its graded parts and the package functions a
submission may not call, and list it with points in a master's metadata.
"""
from dataclasses import dataclass, field

import numpy as np

from .. import distributions as dist
from ..gradcheck import numerical_gradient, surrogate_loss
from ..layers import ACTIVATIONS, sigmoid
from ..vae import VAE
from .conv_checks import conv2d_cases, conv2d_judge, conv2d_run
from .flow_checks import PARTS as PLANAR_PARTS, planar_cases, planar_judge, planar_run
from .gumbel_checks import PARTS as GUMBEL_PARTS, gumbel_cases, gumbel_judge, gumbel_run
from .diagnose import compare, inputs_float32
from .guard import NotWritten, StudentError, call
from .report import FAIL, TODO, Part, Report


@dataclass
class Failed:
    """The student's code raised at some step: the parts it stops, a verdict (TODO/FAIL), a sentence."""

    parts: tuple
    verdict: str
    detail: str
    hint: str = ""

    @classmethod
    def of(cls, parts, err):
        return cls(tuple(parts), TODO if isinstance(err, NotWritten) else FAIL, str(err), getattr(err, "hint", ""))


def _failed_parts(failed):
    """Parts for a Failed: the first gets the sentence, the rest refer to it."""
    parts = [Part(failed.parts[0], failed.verdict, failed.detail, failed.hint)]
    return parts + [Part(n, failed.verdict, f"not graded: see {failed.parts[0]}") for n in failed.parts[1:]]


def _array(value):
    """The student's value as a numeric array for the judge, or None (the judge says what it was)."""
    if value is None:
        return None
    try:
        arr = np.asarray(value)
    except Exception:
        return f"a {type(value).__name__}"
    if arr.dtype.kind not in "biuf":
        return f"a {type(value).__name__} of dtype {arr.dtype}"
    return arr


def _own_gradient(fn, args, wrt, g):
    """Centred-difference gradient of sum(fn(*args) * g) w.r.t. args[wrt]: the gradient of the
    student's own forward (runs student code: runner side); None if it cannot be taken."""
    if any(np.asarray(a).dtype != np.float64 for a in args if isinstance(a, np.ndarray)):
        return None
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


def _grad(f, x):
    """Centred-difference gradient of the scalar f() w.r.t. x (float64, perturbed in place)."""
    return numerical_gradient(f, x)


def _cast(case, names):
    """The case's arrays ``names`` in the case's dtype (what the student receives)."""
    dtype = np.dtype(case.get("dtype", "float64"))
    return [np.asarray(case[n]).astype(dtype) for n in names]


def _f64(case, names):
    """The same arrays as the student received them, in float64 (what the judge computes with)."""
    return [a.astype(np.float64) for a in _cast(case, names)]


def _rng(seed, hidden, k):
    """The generator of hidden case k: from the manifest's hidden seed, never the public one."""
    return np.random.default_rng([int(hidden), int(seed), k])


def _label(case):
    return case.get("label", "the public case")


# ---- Exercise: Linear -------------------------------------------------------------------

def linear_cases(seed=0, hidden=None):
    """Public: N, D_in, D_out = 4, 5, 3.  Hidden: batch size 1, D_out > D_in, a large W, float32."""
    shapes = [(4, 5, 3)]
    if hidden is not None:
        r = _rng(seed, hidden, 0)
        shapes += [(1, int(r.integers(3, 8)), int(r.integers(2, 3))), (int(r.integers(5, 9)), 3, 7),
                   (int(r.integers(3, 6)), 40, 30), (5, 4, 6)]
    cases = []
    for k, (N, D_in, D_out) in enumerate(shapes):
        rng = np.random.default_rng(seed) if k == 0 else _rng(seed, hidden, k)
        cases.append({"x": rng.standard_normal((N, D_in)), "g": rng.standard_normal((N, D_out)),
                      "W": rng.standard_normal((D_in, D_out)), "b": rng.standard_normal(D_out),
                      "seed": int(rng.integers(2 ** 31)), "dtype": "float32" if k == 4 else "float64",
                      "label": "the public case" if k == 0 else f"hidden case {k} (N={N}, D_in={D_in}, D_out={D_out}"
                      + (", float32 inputs)" if k == 4 else ")")})
    return cases


def linear_run(objects, case):
    (Linear,) = objects
    x, g, W, b = _cast(case, "xgWb")
    D_in, D_out = W.shape
    out = {}
    try:
        layer = call(f"Linear({D_in}, {D_out}, rng)", Linear, D_in, D_out, np.random.default_rng(case["seed"]))
        layer.W, layer.b = W.copy(), b.copy()
        out["forward"] = _array(call("Linear.forward(x)", layer.forward, x))
    except (StudentError, NotWritten) as err:
        return {"failed": [Failed.of(["forward", "dx", "dW", "db"], err)]}
    try:
        for _ in range(2):                                         # twice: gradients are assigned, not accumulated
            call("Linear.forward(x)", layer.forward, x)
            out["dx"] = _array(call("Linear.backward(dout)", layer.backward, g))
    except (StudentError, NotWritten) as err:
        out["failed"] = [Failed.of(["dx", "dW", "db"], err)]
        return out
    out.update(gradient_attributes(layer, "Linear"))
    return out


def gradient_attributes(layer, owner, attrs=("dW", "db")):
    """The gradients a layer stored after backward, as arrays; a Failed part for each one missing."""
    found = {}
    for attr in attrs:
        value = getattr(layer, attr, Failed)
        found[attr] = Failed((attr,), FAIL, f"{owner} has no attribute {attr} after backward",
                             f"store the gradient of {attr[1]} in self.{attr} inside backward.") \
            if value is Failed else _array(value)
    return found


def linear_judge(case, out):
    x, g, W, b = _f64(case, "xgWb")
    f = lambda: float(np.sum((x @ W + b) * g))                    # f = sum(out * dout): its gradient is the VJP
    expected = {"dx": _grad(f, x), "dW": _grad(f, W), "db": _grad(f, b)}
    factors = {"N": (x.shape[0], "the batch")}
    twice = "ours doubled on a second backward: the gradient is accumulated (+=) instead of assigned (=)."
    return [
        ("forward", lambda: compare("forward", out["forward"], x @ W + b,
                                    alternatives={"the bias b is not added: out = x @ W + b.": x @ W})),
        ("dx", lambda: compare("dx", out["dx"], expected["dx"], factors)),
        ("dW", lambda: compare("dW", out["dW"], expected["dW"], factors, {twice: 2 * expected["dW"]})),
        ("db", lambda: compare("db", out["db"], expected["db"], factors, {
            twice: 2 * expected["db"],
            "db sums dout over the wrong axis: the batch axis is 0.": g.sum(axis=1),
            "db is dout itself: sum it over the batch axis (axis=0).": g})),
    ]


# ---- Exercise: an activation ---------------------------------------------------------

def activation_cases(seed=0, hidden=None):
    """Public: (4, 5).  Hidden: (1, 7), (9, 2), float32 (3, 6).  x stays clear of 0 (relu's kink)."""
    shapes = [(4, 5)] + ([(1, 7), (9, 2), (3, 6)] if hidden is not None else [])
    cases = []
    for k, shape in enumerate(shapes):
        rng = np.random.default_rng(seed) if k == 0 else _rng(seed, hidden, k)
        x = rng.uniform(0.2, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        cases.append({"x": x, "g": rng.standard_normal(shape), "dtype": "float32" if k == 3 else "float64",
                      "label": "the public case" if k == 0 else f"hidden case {k} (x of shape {shape}"
                      + (", float32)" if k == 3 else ")")})
    return cases


def activation_run(objects, case):
    (Layer,) = objects
    x, g = _cast(case, "xg")
    out = {}
    try:
        layer = call("the layer()", Layer)
        out["forward"] = _array(call("forward(x)", layer.forward, x))
    except (StudentError, NotWritten) as err:
        return {"failed": [Failed.of(["forward", "dx"], err)]}
    try:
        out["dx"] = _array(call("backward(dout)", layer.backward, g))
    except (StudentError, NotWritten) as err:
        out["failed"] = [Failed.of(["dx"], err)]
    return out


def activation_judge(kind):
    def judge(case, out):
        x, g = _f64(case, "xg")
        ref = ACTIVATIONS[kind]()
        out_ref = ref.forward(x)
        f = lambda: float(np.sum(ref.forward(x) * g))
        expected_dx = _grad(f, x)
        slope = expected_dx / g                                    # the local derivative, elementwise
        alternatives = {"dx is the local derivative alone: multiply it by dout (the chain rule).": slope}
        if kind == "tanh":
            alternatives["the derivative uses the input x where it needs the output: "
                         "1 - tanh(x)^2, not 1 - x^2."] = g * (1 - x ** 2)
            alternatives["1 - out is not the derivative of tanh: it is 1 - out^2."] = g * (1 - out_ref)
        if kind == "relu":
            alternatives["dx passes dout where x < 0 and blocks it where x > 0: the mask is x > 0."] = g * (x < 0)
            alternatives["dx is dout itself: relu's derivative is 0 where x < 0."] = g
        return [("forward", lambda: compare("forward", out["forward"], out_ref)),
                ("dx", lambda: compare("dx", out["dx"], expected_dx, alternatives=alternatives,
                                       where={"where x < 0": x < 0, "where x > 0": x > 0}))]
    return judge


# ---- Exercise: the Bernoulli log-likelihood on logits ------------------------------------

BIG_LOGITS = np.array([[-800.0, -40.0, 0.0, 40.0, 800.0, 3.0]] * 2)
BIG_X = np.array([[1.0, 0.0, 1.0, 1.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.0, 1.0, 0.5]])


def bernoulli_cases(seed=0, hidden=None):
    """Public: B, D = 4, 6.  Hidden: B = 1, (7, 3), float32 (5, 4)."""
    shapes = [(4, 6)] + ([(1, 5), (7, 3), (5, 4)] if hidden is not None else [])
    cases = []
    for k, (B, D) in enumerate(shapes):
        rng = np.random.default_rng(seed) if k == 0 else _rng(seed, hidden, k)
        x = rng.uniform(size=(B, D))
        x[0] = rng.integers(0, 2, size=D)                          # a binary row as well as grey levels
        cases.append({"x": x, "logits": rng.normal(scale=3.0, size=(B, D)), "xb": BIG_X, "big": BIG_LOGITS,
                      "dtype": "float32" if k == 3 else "float64",
                      "label": "the public case" if k == 0 else f"hidden case {k} (B={B}, D={D}"
                      + (", float32)" if k == 3 else ")")})
    return cases


def bernoulli_run(objects, case):
    log_prob, log_prob_grad = objects
    x, logits = _cast(case, ["x", "logits"])
    xb, big = _cast(case, ["xb", "big"])
    out, failed = {}, []
    for part, args in (("log_prob", (x, logits)), ("log_prob, large |logits|", (xb, big))):
        try:
            out[part] = _array(call("log_prob(x, logits)", log_prob, *args))
        except (StudentError, NotWritten) as err:
            failed.append(Failed.of([part], err))
    try:
        out["gradient"] = _array(call("log_prob_grad(x, logits)", log_prob_grad, x, logits))
        out["own gradient"] = _own_gradient(log_prob, [x, logits], 1, np.ones(x.shape[0]))
    except (StudentError, NotWritten) as err:
        failed.append(Failed.of(["gradient"], err))
    out["failed"] = failed
    return out


def bernoulli_judge(case, out):
    x, logits, xb, big = _f64(case, ["x", "logits", "xb", "big"])
    D = x.shape[1]
    factors = {"D": (D, "the D pixels")}
    expected = _grad(lambda: float(np.sum(dist.bernoulli_log_prob(x, logits))), logits)

    def large():
        part = compare("log_prob, large |logits|", out["log_prob, large |logits|"], dist.bernoulli_log_prob(xb, big))
        if not part.passed and "not finite" in part.detail:
            part.hint = ("log(sigmoid(l)) overflows or underflows for large |l|: write log p = sum x*l - softplus(l) "
                         "with softplus(l) = max(l, 0) + log1p(exp(-|l|)).")
        return part
    return [
        ("log_prob", lambda: compare("log_prob", out["log_prob"], dist.bernoulli_log_prob(x, logits), factors)),
        ("log_prob, large |logits|", large),
        ("gradient", lambda: compare("gradient", out["gradient"], expected, factors, {
            "x - logits: the mean of p(x|z) is sigmoid(logits), not the logits.": x - logits,
            "the gradient on logits is x - sigmoid(logits); ours is x - sigmoid(-logits).": x - sigmoid(-logits)},
            where={"where logits < 0": logits < 0, "where logits > 0": logits > 0}, own=out.get("own gradient"))),
    ]


# ---- Exercise: the reparameterization step ---------------------------------------------

def _mu_logvar_cases(seed, hidden, public=(4, 3)):
    shapes = [public] + ([(1, 2), (6, 5), (3, 4)] if hidden is not None else [])
    cases = []
    for k, (B, Z) in enumerate(shapes):
        rng = np.random.default_rng(seed) if k == 0 else _rng(seed, hidden, k)
        cases.append({"mu": rng.standard_normal((B, Z)), "logvar": rng.uniform(-1.5, 1.5, size=(B, Z)),
                      "eps": rng.standard_normal((B, Z)), "g": rng.standard_normal((B, Z)),
                      "m0": rng.standard_normal((B, Z)), "logvar0": rng.standard_normal((B, Z)),
                      "dtype": "float32" if k == 3 else "float64",
                      "label": "the public case" if k == 0 else f"hidden case {k} (B={B}, Z={Z}"
                      + (", float32)" if k == 3 else ")")})
    return cases


def reparameterize_cases(seed=0, hidden=None):
    """Public: B, Z = 4, 3.  Hidden: B = 1, (6, 5), float32 (3, 4)."""
    return _mu_logvar_cases(seed, hidden)


def _pair(what, result):
    """(first, second) of a student's pair, or a StudentError saying what came back."""
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise StudentError(f"{what} returned {type(result).__name__}, expected a pair (dmu, dlogvar)")
    return _array(result[0]), _array(result[1])


def reparameterize_run(objects, case):
    reparameterize, reparameterize_backward = objects
    mu, logvar, eps, g = _cast(case, ["mu", "logvar", "eps", "g"])
    out, failed = {}, []
    try:
        out["forward z"] = _array(call("reparameterize(mu, logvar, eps)", reparameterize, mu, logvar, eps))
    except (StudentError, NotWritten) as err:
        failed.append(Failed.of(["forward z"], err))
    try:
        what = "reparameterize_backward(dz, mu, logvar, eps)"
        out["dmu"], out["dlogvar"] = _pair(what, call(what, reparameterize_backward, g, mu, logvar, eps))
        student_z = lambda m_, lv_: reparameterize(m_, lv_, eps)
        if "forward z" in out:
            out["own dmu"], out["own dlogvar"] = [_own_gradient(student_z, [mu, logvar], i, g) for i in (0, 1)]
    except (StudentError, NotWritten) as err:
        failed.append(Failed.of(["dmu", "dlogvar"], err))
    out["failed"] = failed
    return out


def reparameterize_judge(case, out):
    mu, logvar, eps, g = _f64(case, ["mu", "logvar", "eps", "g"])
    sigma = np.exp(0.5 * logvar)
    m, lv = mu.copy(), logvar.copy()
    f = lambda: float(np.sum(dist.reparameterize(m, lv, eps)[0] * g))
    expected = {"dmu": _grad(f, m), "dlogvar": _grad(f, lv)}
    return [
        ("forward z", lambda: compare("forward z", out["forward z"], mu + sigma * eps, alternatives={
            "the variance exp(logvar) is used as the standard deviation: sigma = exp(logvar / 2).":
                mu + np.exp(logvar) * eps,
            "logvar is used as the standard deviation: sigma = exp(logvar / 2).": mu + logvar * eps,
            "sigma = exp(-logvar / 2) has the wrong sign in the exponent: sigma = exp(logvar / 2).": mu + eps / sigma,
            "eps is not used: z = mu + sigma * eps.": mu + sigma})),
        ("dmu", lambda: compare("dmu", out["dmu"], expected["dmu"], alternatives={
            "dmu is dz * sigma: z = mu + sigma * eps has dz/dmu = 1, so dmu = dz.": g * sigma}, own=out.get("own dmu"))),
        ("dlogvar", lambda: compare("dlogvar", out["dlogvar"], expected["dlogvar"], alternatives={
            "eps is missing: dz/dlogvar = 1/2 sigma eps.": 0.5 * sigma * g,
            "d exp(logvar) eps / dlogvar: the derivative of a forward that uses the variance as the standard "
            "deviation; with sigma = exp(logvar / 2) it is 1/2 sigma eps dz.": np.exp(logvar) * eps * g},
            own=out.get("own dlogvar"))),
    ]


# ---- Exercise: the analytic KL to N(0, I) ----------------------------------------------

def kl_cases(seed=0, hidden=None):
    """Public: B, Z = 4, 3.  Hidden: B = 1, (6, 5), float32 (3, 4)."""
    return _mu_logvar_cases(seed, hidden)


def kl_run(objects, case):
    kl, kl_grads = objects
    mu, logvar = _cast(case, ["mu", "logvar"])
    out, failed = {}, []
    try:
        out["kl"] = _array(call("kl(mu, logvar)", kl, mu, logvar))
    except (StudentError, NotWritten) as err:
        failed.append(Failed.of(["kl"], err))
    try:
        out["dmu"], out["dlogvar"] = _pair("kl_grads", call("kl_grads(mu, logvar)", kl_grads, mu, logvar))
        if "kl" in out:
            ones = np.ones(mu.shape[0])
            out["own dmu"], out["own dlogvar"] = [_own_gradient(kl, [mu, logvar], i, ones) for i in (0, 1)]
    except (StudentError, NotWritten) as err:
        failed.append(Failed.of(["dmu", "dlogvar"], err))
    out["failed"] = failed
    return out


def kl_judge(case, out):
    mu, logvar = _f64(case, ["mu", "logvar"])
    half = lambda t: 0.5 * np.sum(t, axis=-1)
    m, lv = mu.copy(), logvar.copy()
    f = lambda: float(np.sum(dist.kl_std_normal(m, lv)))
    expected = {"dmu": _grad(f, m), "dlogvar": _grad(f, lv)}
    return [
        ("kl", lambda: compare("kl", out["kl"], dist.kl_std_normal(mu, logvar),
                               {"Z": (mu.shape[1], "the latent dimensions")}, {
            "the -logvar term has the wrong sign: KL = 1/2 sum (mu^2 + exp(logvar) - 1 - logvar).":
                half(mu ** 2 + np.exp(logvar) - 1 + logvar),
            "exp(logvar / 2) is the standard deviation; the KL needs the variance exp(logvar).":
                half(mu ** 2 + np.exp(logvar / 2) - 1 - logvar),
            "the variance exp(logvar) is used as the standard deviation (squared again): the variance is exp(logvar).":
                half(mu ** 2 + np.exp(2 * logvar) - 1 - logvar)})),
        ("dmu", lambda: compare("dmu", out["dmu"], expected["dmu"], own=out.get("own dmu"))),
        ("dlogvar", lambda: compare("dlogvar", out["dlogvar"], expected["dlogvar"], alternatives={
            "the -1 from the -logvar term is missing: dKL/dlogvar = 1/2 (exp(logvar) - 1).": 0.5 * np.exp(logvar),
            "the -logvar term has the wrong sign: dKL/dlogvar = 1/2 (exp(logvar) - 1).": 0.5 * (np.exp(logvar) + 1)},
            own=out.get("own dlogvar"))),
    ]


# ---- Exercise: the whole VAE's backward ------------------------------------------------

def small_vae(seed=0):
    """The float64 model the VAE exercise is graded on: 6 pixels, hidden 5, 2 latents, tanh."""
    return VAE(6, [5], 2, likelihood="bernoulli", activation="tanh", dtype=np.float64, seed=seed)


VAE_PARTS = tuple(["loss"] + list(small_vae().params)[::-1])     # the order the backward pass reaches them


def vae_cases(seed=0, hidden=None):
    """Public: B = 4, the model of seed ``seed``.  Hidden: B = 1, B = 1000 (a 1/B slip of 0.1% shows), other weights."""
    sizes = [4] + ([1, 1000, 7] if hidden is not None else [])
    cases = []
    for k, B in enumerate(sizes):
        rng = np.random.default_rng(seed) if k == 0 else _rng(seed, hidden, k)
        model_seed = seed if k == 0 else int(rng.integers(2 ** 31))
        cases.append({"x": rng.uniform(size=(B, 6)), "eps": rng.standard_normal((B, 2)), "model_seed": model_seed,
                      "label": "the public case" if k == 0 else f"hidden case {k} (B={B}, other weights)"})
    return cases


def vae_run(objects, case):
    (vae_loss_and_grads,) = objects
    x, eps = _cast(case, ["x", "eps"])
    model = small_vae(case["model_seed"])
    for lin in model.encoder.linears + model.decoder.linears:
        lin.dW[...], lin.db[...] = np.nan, np.nan                 # a gradient never written shows as NaN
    names = list(VAE_PARTS)
    try:
        result = call("vae_loss_and_grads(model, x, eps)", vae_loss_and_grads, model, x, eps)
        if not (isinstance(result, (tuple, list)) and len(result) == 2 and hasattr(result[1], "get")):
            raise StudentError(f"vae_loss_and_grads returned {type(result).__name__}, expected a pair (loss, grads dict)")
    except (StudentError, NotWritten) as err:
        return {"failed": [Failed.of(names, err)]}
    loss, got = result
    out = {"loss": _array(loss)}
    for name in names[1:]:
        try:
            value = got.get(name, Failed)
        except Exception:
            value = Failed
        out[name] = Failed((name,), FAIL, f"grads has no entry {name!r}",
                           "return a gradient for every name in model.params (model.grads() does).") \
            if value is Failed else _array(value)
    return out


def vae_judge(case, out):
    x, eps = _f64(case, ["x", "eps"])
    model = small_vae(case["model_seed"])
    B = x.shape[0]
    loss_ref, grads = model.loss_and_grads(x, eps=eps)
    grads_ref = {k: v.copy() for k, v in grads.items()}
    no_kl = {k: v.copy() for k, v in model.loss_and_grads(x, eps=eps, beta=0.0)[1].items()}
    f = lambda: surrogate_loss(model, x, eps, "analytic", None)
    expected = {name: _grad(f, p) for name, p in model.params.items()}
    factors = {"B": (B, "the batch")}
    last = f"encoder.{len(model.encoder.linears) - 1}"           # its output is [mu | logvar]: columns :Z and Z:
    Z = model.z_dim

    def param(name):
        alternatives = {"ours = -expected: this is the gradient of the ELBO; the loss is -ELBO.": -expected[name]}
        where = {}
        if name.startswith(last):
            cols = np.arange(expected[name].shape[-1])
            where = {"in the logvar columns (Z:)": (cols >= Z, "check dlogvar, the input of the encoder's backward"),
                     "in the mu columns (:Z)": (cols < Z, "check dmu, the input of the encoder's backward")}
        if not np.allclose(no_kl[name], grads_ref[name]):
            alternatives["the KL's gradient (dKL/dmu = mu, dKL/dlogvar = (exp(logvar) - 1)/2, times 1/B) "
                         "is never added to dmu, dlogvar."] = no_kl[name]
        return lambda: compare(name, out[name], expected[name], factors, alternatives, where, planted_nan=True)
    return [("loss", lambda: compare("loss", out["loss"], np.float64(loss_ref), factors, {
        "ours = -loss: the loss is the negative ELBO, -(log p(x|z) - KL).": -loss_ref}))] \
        + [(name, param(name)) for name in VAE_PARTS[1:]]


# ---- Exercise: a Gaussian decoder with a fixed variance ------------------------------------

def fixed_gaussian_cases(seed=0, hidden=None):
    """Public: B, D, s = 4, 6, 0.3.  Hidden: B = 1, another s, float32."""
    shapes = [(4, 6, 0.3)] + ([(1, 3, 0.7), (5, 2, 1.9), (3, 4, 0.5)] if hidden is not None else [])
    cases = []
    for k, (B, D, s) in enumerate(shapes):
        rng = np.random.default_rng(seed) if k == 0 else _rng(seed, hidden, k)
        cases.append({"x": rng.uniform(size=(B, D)), "mean": rng.normal(size=(B, D)), "s": s,
                      "dtype": "float32" if k == 3 else "float64",
                      "label": "the public case" if k == 0 else f"hidden case {k} (B={B}, D={D}, s={s}"
                      + (", float32)" if k == 3 else ")")})
    return cases


def fixed_gaussian_run(objects, case):
    log_prob, log_prob_grad = objects
    x, mean = _cast(case, ["x", "mean"])
    s = case["s"]
    out, failed = {}, []
    try:
        out["log_prob"] = _array(call("log_prob(x, mean, s)", log_prob, x, mean, s))
    except (StudentError, NotWritten) as err:
        failed.append(Failed.of(["log_prob"], err))
    try:
        out["gradient"] = _array(call("log_prob_grad(x, mean, s)", log_prob_grad, x, mean, s))
        out["own gradient"] = _own_gradient(lambda m_: log_prob(x, m_, s), [mean], 0, np.ones(x.shape[0]))
    except (StudentError, NotWritten) as err:
        failed.append(Failed.of(["gradient"], err))
    out["failed"] = failed
    return out


def fixed_gaussian_judge(case, out):
    x, mean = _f64(case, ["x", "mean"])
    s = case["s"]
    ref = lambda m: -0.5 * np.sum(np.log(2 * np.pi * s ** 2) + (x - m) ** 2 / s ** 2, axis=-1)
    factors = {"D": (x.shape[1], "the D pixels")}
    m = mean.copy()
    expected = _grad(lambda: float(np.sum(ref(m))), m)
    return [
        ("log_prob", lambda: compare("log_prob", out["log_prob"], ref(mean), factors, {
            "the normalising term is log(2 pi s^2) / 2 per pixel: s^2, not s.":
                -0.5 * np.sum(np.log(2 * np.pi * s) + (x - mean) ** 2 / s ** 2, axis=-1)})),
        ("gradient", lambda: compare("gradient", out["gradient"], expected, factors, {
            "divided by s where the derivative divides by s^2: (x - mean) / s^2.": (x - mean) / s,
            "the 1/s^2 is missing: (x - mean) / s^2.": x - mean}, own=out.get("own gradient"))),
    ]


# ---- Exercise: the KL to a prior that is not standard ---------------------------------------

def kl_diag_cases(seed=0, hidden=None):
    """Public: B, Z = 4, 3.  Hidden: B = 1, (6, 5), float32 (3, 4)."""
    cases = _mu_logvar_cases(seed, hidden)
    if cases:                                    # the public case as before: four normal arrays of one draw
        rng = np.random.default_rng(seed)
        cases[0]["mu"], cases[0]["logvar"], cases[0]["m0"], cases[0]["logvar0"] = rng.normal(size=(4, 4, 3))
    return cases


def kl_diag_run(objects, case):
    kl, kl_grads = objects
    mu, logvar, m0, logvar0 = _cast(case, ["mu", "logvar", "m0", "logvar0"])
    zeros = np.zeros_like(mu)
    out, failed = {}, []
    for part, args in (("kl", (mu, logvar, m0, logvar0)), ("kl at m0 = 0, logvar0 = 0", (mu, logvar, zeros, zeros))):
        try:
            out[part] = _array(call("kl(mu, logvar, m0, logvar0)", kl, *args))
        except (StudentError, NotWritten) as err:
            failed.append(Failed.of([part], err))
    try:
        what = "kl_grads(mu, logvar, m0, logvar0)"
        out["dmu"], out["dlogvar"] = _pair(what, call(what, kl_grads, mu, logvar, m0, logvar0))
    except (StudentError, NotWritten) as err:
        failed.append(Failed.of(["dmu", "dlogvar"], err))
    out["failed"] = failed
    return out


def kl_diag_judge(case, out):
    mu, logvar, m0, logvar0 = _f64(case, ["mu", "logvar", "m0", "logvar0"])
    ref = lambda m, lv, m0_, lv0: 0.5 * np.sum(lv0 - lv + (np.exp(lv) + (m - m0_) ** 2) * np.exp(-lv0) - 1, axis=-1)
    zeros = np.zeros_like(mu)
    Z = {"Z": (mu.shape[1], "the latent dimensions")}
    m, lv = mu.copy(), logvar.copy()
    f = lambda: float(np.sum(ref(m, lv, m0, logvar0)))
    expected = {"dmu": _grad(f, m), "dlogvar": _grad(f, lv)}
    return [
        ("kl", lambda: compare("kl", out["kl"], ref(mu, logvar, m0, logvar0), Z)),
        ("kl at m0 = 0, logvar0 = 0", lambda: compare("kl at m0 = 0, logvar0 = 0", out["kl at m0 = 0, logvar0 = 0"],
                                                     ref(mu, logvar, zeros, zeros), Z)),
        ("dmu", lambda: compare("dmu", out["dmu"], expected["dmu"], alternatives={
            "the prior's precision exp(-logvar0) is missing: dKL/dmu = (mu - m0) exp(-logvar0).": mu - m0})),
        ("dlogvar", lambda: compare("dlogvar", out["dlogvar"], expected["dlogvar"], alternatives={
            "this is the gradient for a standard prior: with N(m0, exp(logvar0)) it is (exp(logvar - logvar0) - 1) / 2.":
                0.5 * (np.exp(logvar) - 1)})),
    ]


# ---- the registry ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Exercise:
    """A graded exercise.

    names     : what the student's notebook must define, passed to ``run`` in this order
    parts     : every part ``judge`` grades, in order
    provided  : the parts whose code the handout provides (checked, shown, never worth points)
    forbidden : (file in numpyvae/, function qualname) the submission may not call while graded
                ("*" for every function of the file, "Class.*" for every method of a class);
                each must name something (tests/test_grading.py checks)
    """

    key: str
    title: str
    names: tuple
    parts: tuple
    cases: object
    run: object
    judge: object
    provided: tuple = ()
    forbidden: tuple = field(default=())

    @property
    def graded_parts(self):
        return tuple(p for p in self.parts if p not in self.provided)


def _activation(kind, cls):
    return Exercise(kind, f"activation {kind}", (cls,), ("forward", "dx"), activation_cases, activation_run,
                    activation_judge(kind),
                    forbidden=tuple(("layers.py", f"{name}.*") for name in ACTIVATION_CLASSES[kind]))


ACTIVATION_CLASSES = {"tanh": ("Tanh",), "relu": ("ReLU", "LeakyReLU"), "sigmoid": ("Sigmoid",),
                      "softplus": ("Softplus",), "leaky_relu": ("LeakyReLU",)}

EXERCISES = {e.key: e for e in [
    Exercise("linear", "Linear", ("Linear",), ("forward", "dx", "dW", "db"), linear_cases, linear_run, linear_judge,
             provided=("forward",), forbidden=(("layers.py", "Linear.*"),)),
    _activation("tanh", "Tanh"),
    _activation("relu", "ReLU"),
    Exercise("bernoulli", "Bernoulli log-likelihood", ("bernoulli_log_prob", "bernoulli_log_prob_grad"),
             ("log_prob", "log_prob, large |logits|", "gradient"), bernoulli_cases, bernoulli_run, bernoulli_judge,
             forbidden=(("distributions.py", "bernoulli_log_prob"), ("distributions.py", "bernoulli_log_prob_grad"))),
    Exercise("reparameterize", "reparameterization", ("reparameterize", "reparameterize_backward"),
             ("forward z", "dmu", "dlogvar"), reparameterize_cases, reparameterize_run, reparameterize_judge,
             forbidden=(("distributions.py", "reparameterize"), ("distributions.py", "reparameterize_backward"),
                        ("posterior.py", "DiagonalGaussian.sample"), ("posterior.py", "DiagonalGaussian.sample_backward"))),
    Exercise("kl", "KL to N(0, I)", ("kl_std_normal", "kl_std_normal_grads"), ("kl", "dmu", "dlogvar"),
             kl_cases, kl_run, kl_judge,
             forbidden=(("distributions.py", "kl_std_normal"), ("distributions.py", "kl_std_normal_grads"),
                        ("prior.py", "StandardNormal.kl"), ("prior.py", "StandardNormal.kl_grads"))),
    Exercise("vae", "VAE backward", ("vae_loss_and_grads",), VAE_PARTS, vae_cases, vae_run, vae_judge,
             provided=("loss",),
             forbidden=(("vae.py", "VAE.loss_and_grads"), ("vae.py", "VAE.dlog_px"), ("vae.py", "VAE.estimate"),
                        ("vae.py", "VAE.elbo"), ("estimators.py", "*"),
                        ("distributions.py", "bernoulli_log_prob_grad"), ("distributions.py", "kl_std_normal_grads"),
                        ("distributions.py", "reparameterize_backward"),
                        ("posterior.py", "DiagonalGaussian.sample_backward"), ("prior.py", "StandardNormal.kl_grads"))),
    Exercise("fixed_gaussian", "Gaussian decoder, fixed variance",
             ("fixed_gaussian_log_prob", "fixed_gaussian_log_prob_grad"), ("log_prob", "gradient"),
             fixed_gaussian_cases, fixed_gaussian_run, fixed_gaussian_judge,
             forbidden=(("distributions.py", "gaussian_log_prob"), ("distributions.py", "gaussian_log_prob_grads"))),
    Exercise("kl_diag", "KL to N(m0, exp(logvar0))", ("kl_diag", "kl_diag_grads"),
             ("kl", "kl at m0 = 0, logvar0 = 0", "dmu", "dlogvar"), kl_diag_cases, kl_diag_run, kl_diag_judge),
    Exercise("conv2d", "Conv2d", ("Conv2d",), ("forward", "dx", "dW", "db"), conv2d_cases, conv2d_run, conv2d_judge,
             provided=("forward",),
             forbidden=(("conv.py", "Conv2d.*"), ("conv.py", "ConvTranspose2d.*"), ("conv.py", "im2col"),
                        ("conv.py", "col2im"), ("exercises/conv_checks.py", "conv_backward_loops"))),
    Exercise("planar", "planar flow log-det", ("planar_logdet", "planar_logdet_backward"), PLANAR_PARTS,
             planar_cases, planar_run, planar_judge,
             forbidden=(("flows.py", "*"), ("exercises/flow_checks.py", "logdet_by_matrices"),
                        ("exercises/flow_checks.py", "expected_gradients"))),
    Exercise("gumbel_softmax", "Gumbel-softmax sample and gradient", ("gumbel_softmax", "gumbel_softmax_backward"),
             GUMBEL_PARTS, gumbel_cases, gumbel_run, gumbel_judge,
             forbidden=(("discrete/categorical.py", "gumbel_softmax"),
                        ("discrete/categorical.py", "gumbel_softmax_backward"),
                        ("discrete/posterior.py", "Categorical.sample"),
                        ("discrete/posterior.py", "Categorical.sample_backward"),
                        ("exercises/gumbel_checks.py", "softmax"))),
]}


# ---- judging ---------------------------------------------------------------------------------

def judge(exercise, cases, outputs, seed=0):
    """The Report of ``exercise`` from the cases and the student's outputs (one dict per case, or a
    Failed for the whole exercise).  A part passes only if it passes in every case; the first case
    it fails in is the one shown."""
    ex = EXERCISES[exercise] if isinstance(exercise, str) else exercise
    report = Report(ex.title, seed)
    verdicts = {}
    for case, out in zip(cases, outputs):
        if isinstance(out, Failed):
            for p in _failed_parts(out):
                verdicts.setdefault(p.name, p)
            continue
        stopped = {}
        for failed in out.get("failed", []):
            for p in _failed_parts(failed):
                stopped.setdefault(p.name, p)
        for name, grade in ex.judge(case, out):
            if name in verdicts and not verdicts[name].passed:
                continue
            if name in stopped:
                part = stopped[name]
            elif isinstance(out.get(name), Failed):
                part = _failed_parts(out[name])[0]
            elif isinstance(out.get(name), str):
                part = Part(name, FAIL, f"ours is {out[name]}, expected an array of numbers")
            elif name not in out:
                part = Part(name, FAIL, "not graded: the student's code stopped before this part")
            else:
                with inputs_float32(case.get("dtype") == "float32"):
                    part = grade()
            if not part.passed and len(cases) > 1 and not part.detail.startswith("not graded"):
                part.detail = f"{_label(case)}: {part.detail}"
            if name not in verdicts or (verdicts[name].passed and not part.passed):
                verdicts[name] = part
    for name in ex.parts:
        report.add(verdicts.get(name, Part(name, FAIL, "not graded: no case reached this part")))
    return report


def grade_in_process(exercise, objects, seed=0, hidden=None):
    """Run and judge ``exercise`` here, on the student's own objects: what a notebook's check does.

    Never used by ``grade`` (which runs the student's code in a separate process)."""
    ex = EXERCISES[exercise]
    cases = ex.cases(seed, hidden)
    return judge(ex, cases, [ex.run(objects, case) for case in cases], seed)


def _note(report, hidden):
    report.note = ("all public checks passed; hidden checks run when graded" if hidden is None
                   else "public and hidden checks ran")
    return report


def grade_linear(Linear, seed=0, hidden=None):
    """Grade a class Linear(n_in, n_out, rng) with forward(x) and backward(dout) -> dx, filling dW, db."""
    return _note(grade_in_process("linear", (Linear,), seed, hidden), hidden)


def grade_activation(Layer, kind="tanh", seed=0, hidden=None):
    """Grade an activation class Layer() with forward(x) and backward(dout) -> dx (kind: tanh, relu, sigmoid, ...)."""
    from ..validate import check_choice
    check_choice("kind", kind, ACTIVATIONS)
    ex = EXERCISES.get(kind) or Exercise(kind, f"activation {kind}", ("Layer",), ("forward", "dx"),
                                        activation_cases, activation_run, activation_judge(kind))
    cases = ex.cases(seed, hidden)
    return _note(judge(ex, cases, [ex.run((Layer,), c) for c in cases], seed), hidden)


def grade_bernoulli(log_prob, log_prob_grad, seed=0, hidden=None):
    """Grade log_prob(x, logits) -> (B,) and log_prob_grad(x, logits) -> (B, D) = d log p / d logits."""
    return _note(grade_in_process("bernoulli", (log_prob, log_prob_grad), seed, hidden), hidden)


def grade_reparameterize(reparameterize, reparameterize_backward, seed=0, hidden=None):
    """Grade reparameterize(mu, logvar, eps) -> z and reparameterize_backward(dz, mu, logvar, eps) -> (dmu, dlogvar)."""
    return _note(grade_in_process("reparameterize", (reparameterize, reparameterize_backward), seed, hidden), hidden)


def grade_kl(kl, kl_grads, seed=0, hidden=None):
    """Grade kl(mu, logvar) -> (B,) and kl_grads(mu, logvar) -> (dmu, dlogvar), each (B, Z)."""
    return _note(grade_in_process("kl", (kl, kl_grads), seed, hidden), hidden)


def grade_vae_backward(vae_loss_and_grads, seed=0, hidden=None):
    """Grade vae_loss_and_grads(model, x, eps) -> (loss, grads) for a Bernoulli VAE with analytic KL."""
    return _note(grade_in_process("vae", (vae_loss_and_grads,), seed, hidden), hidden)


def grade_fixed_gaussian(log_prob, log_prob_grad, seed=0, hidden=None):
    """Grade log_prob(x, mean, s) -> (B,) and log_prob_grad(x, mean, s) -> d/dmean, (B, D)."""
    return _note(grade_in_process("fixed_gaussian", (log_prob, log_prob_grad), seed, hidden), hidden)


def grade_kl_diag(kl, kl_grads, seed=0, hidden=None):
    """Grade kl(mu, logvar, m0, logvar0) -> (B,) and kl_grads(...) -> (dmu, dlogvar), each (B, Z)."""
    return _note(grade_in_process("kl_diag", (kl, kl_grads), seed, hidden), hidden)


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
        return judge(Exercise("gradient", report.exercise, (), (name,), None, None, None), [{}],
                     [Failed.of([name], err)])
    report.add(compare(name, grad, expected))
    return report


def grade_names(exercise, namespace, seed=0, hidden=None):
    """Grade one registered exercise, in this process, on the objects a namespace (dict) defines."""
    ex = EXERCISES[exercise]
    missing = [n for n in ex.names if n not in namespace]
    if missing:
        report = Report(ex.title, seed)
        for p in _failed_parts(Failed(ex.parts, FAIL, f"the notebook defines no {', '.join(missing)}",
                                      "keep the names the exercise gives (the grader looks them up by name).")):
            report.add(p)
        return report
    return _note(grade_in_process(exercise, tuple(namespace[n] for n in ex.names), seed, hidden), hidden)


# ---- what check cells call ----------------------------------------------------------------

def _checked(report):
    """Print the report; raise if a part failed or is not written.  Returns None (the table is printed)."""
    print(report)
    report.assert_passed()


def check_linear(Linear, seed=0, hidden=None):
    """Print the Linear exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_linear(Linear, seed, hidden))


def check_activation(Layer, kind="tanh", seed=0, hidden=None):
    """Print the activation exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_activation(Layer, kind, seed, hidden))


def check_bernoulli(log_prob, log_prob_grad, seed=0, hidden=None):
    """Print the Bernoulli exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_bernoulli(log_prob, log_prob_grad, seed, hidden))


def check_reparameterize(reparameterize, reparameterize_backward, seed=0, hidden=None):
    """Print the reparameterization exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_reparameterize(reparameterize, reparameterize_backward, seed, hidden))


def check_kl(kl, kl_grads, seed=0, hidden=None):
    """Print the KL exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_kl(kl, kl_grads, seed, hidden))


def check_vae_backward(vae_loss_and_grads, seed=0, hidden=None):
    """Print the whole-VAE exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_vae_backward(vae_loss_and_grads, seed, hidden))


def check_fixed_gaussian(log_prob, log_prob_grad, seed=0, hidden=None):
    """Print the fixed-variance Gaussian exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_fixed_gaussian(log_prob, log_prob_grad, seed, hidden))


def check_kl_diag(kl, kl_grads, seed=0, hidden=None):
    """Print the non-standard-prior KL exercise's verdicts; AssertionError if a part failed."""
    return _checked(grade_kl_diag(kl, kl_grads, seed, hidden))


def check_gradient(f, grad, x, name="x"):
    """Print the verdict on your own gradient (with a hint); AssertionError if it is wrong."""
    return _checked(grade_gradient(f, grad, x, name))
