"""The wrong formulas of issue 21 (categorical latents), planted one at a time in a scratch copy.

    nice -n 10 python mutation/planted_discrete.py            # all of them
    python mutation/planted_discrete.py loo-includes-self      # one, by name
    python mutation/planted_discrete.py --list

The machinery of mutation/planted.py (a copy under /tmp, the plant's exact
text replaced, pytest run there); a plant that no test catches is MISSED and
the script exits 1.  The working tree is never modified.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import planted  # noqa: E402

D = "numpyvae/discrete/"
planted.WORK = os.path.join(os.path.dirname(planted.WORK), "planted_discrete")
planted.PATHS = ["tests/test_discrete.py", "tests/test_displayed_formulas_discrete.py", "tests/test_vq.py", "tests/test_made.py"]
planted.PLANTS = {
    "loo-includes-self": (
        "the leave-one-out baseline includes the sample itself (b = mean of all S)", [
            (D + "estimators.py", "b = (log_px.sum(axis=0) - log_px) / (S - 1)", "b = log_px.mean(axis=0)")]),
    "ma-baseline-not-subtracted": (
        "the moving-average baseline is kept but never subtracted", [
            (D + "estimators.py", "_score((log_px - baseline.value) / S, z, logits)", "_score(log_px / S, z, logits)")]),
    "ma-updated-before-use": (
        "the moving average updated with the current samples before it is used", [
            (D + "estimators.py",
             "    dlogits = _score((log_px - baseline.value) / S, z, logits)\n    baseline.update(log_px)",
             "    baseline.update(log_px)\n    dlogits = _score((log_px - baseline.value) / S, z, logits)")]),
    "softmax-jacobian-sign": (
        "a wrong sign in the softmax Jacobian of the Gumbel-softmax backward", [
            (D + "categorical.py", "(y * (dy - (y * dy).sum(", "(y * (dy + (y * dy).sum(")]),
    "tau-missing-forward": (
        "tau missing from the Gumbel-softmax sample (the backward keeps its 1/tau)", [
            (D + "categorical.py", "y = softmax((logits + g) / tau)", "y = softmax(logits + g)")]),
    "tau-missing-everywhere": (
        "tau missing from the sample and its backward (a consistent, wrong relaxation)", [
            (D + "categorical.py", "y = softmax((logits + g) / tau)", "y = softmax(logits + g)"),
            (D + "categorical.py", ".sum(axis=0) / tau", ".sum(axis=0)")]),
    "score-sign": (
        "the score with its sign flipped (softmax - z)", [
            (D + "categorical.py", "return z - softmax(logits)", "return softmax(logits) - z")]),
    "kl-grad-uncentred": (
        "dKL/dlogits without its centring term", [
            (D + "categorical.py", "return q * (lq - (q * lq).sum(axis=-1, keepdims=True))", "return q * lq")]),
    "gumbel-sign": (
        "Gumbel noise drawn as +log E (a reflected Gumbel) instead of -log E", [
            (D + "categorical.py", "(-np.log(np.maximum(e,", "(np.log(np.maximum(e,")]),
    "straight-through-soft-forward": (
        "straight-through that feeds the relaxed y forward (plain Gumbel-softmax)", [
            (D + "posterior.py", "return cat.one_hot_argmax(y), cache", "return y, cache")]),
    "exact-uniform-weights": (
        "the exact estimator weighting every configuration equally instead of by q(z|x)", [
            (D + "estimators.py", "q = np.exp(cat.log_prob(z, logits))", "q = np.full(log_px.shape, 1.0 / len(log_px))")]),
    "bpd-per-image": (
        "bits per dimension without the division by D (bits per image)", [
            (D + "pixels.py", "/ (n_dims * math.log(2))", "/ math.log(2)")]),
    "pixel-grad-uniform": (
        "the categorical pixel gradient with 1/L in place of the softmax", [
            (D + "pixels.py", "return onehot - softmax(logits)", "return onehot - 1.0 / logits.shape[-1]")]),
    "vq-no-straight-through": (
        "the VQ backward drops the decoder's gradient instead of copying it to z_e", [
            (D + "vq.py", "dz_e = dz_q + 2 * beta", "dz_e = 0 * dz_q + 2 * beta")]),
    "vq-codebook-sign": (
        "the codebook loss's gradient with its sign flipped", [
            (D + "vq.py", "(2 * dcodebook[:, None, None] * (z_q - z_e))", "(2 * dcodebook[:, None, None] * (z_e - z_q))")]),
    "vq-commitment-no-beta": (
        "the commitment gradient without beta", [
            (D + "vq.py", "2 * beta * dcommit[:, None, None]", "2 * dcommit[:, None, None]")]),
    "vq-farthest-code": (
        "quantization to the farthest code (argmax)", [
            (D + "vq.py", "return d2.argmin(axis=-1)", "return d2.argmax(axis=-1)")]),
    "vq-ema-sums-not-averaged": (
        "the EMA codebook adds each batch's sums without the (1 - decay) weight", [
            (D + "vq.py", "sums += (1 - decay) * s_k", "sums += s_k")]),
    "made-output-mask-leaks": (
        "MADE's output mask with >= (position m sees its own code)", [
            (D + "made.py", "(deg_in[:, None] > deg_h[None, :])", "(deg_in[:, None] >= deg_h[None, :])")]),
    "made-no-relu-in-backward": (
        "MADE's backward without the ReLU's mask", [
            (D + "made.py", "da = (do @ (p[\"W2\"] * self.mask2)) * (a > 0)", "da = (do @ (p[\"W2\"] * self.mask2))")]),
    "made-unmasked-gradient": (
        "MADE's dW1 not masked (masked weights drift when trained)", [
            (D + "made.py", "g[\"W1\"][...] = (da.T @ x) * self.mask1", "g[\"W1\"][...] = (da.T @ x)")]),
}

if __name__ == "__main__":
    sys.exit(planted.main(sys.argv[1:]))
