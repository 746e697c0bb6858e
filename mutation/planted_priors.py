"""Issue 20's wrong formulas (learned priors, the conditional VAE), planted one at a time: which tests catch each?

    nice -n 10 python mutation/planted_priors.py            # all of them
    nice -n 10 python mutation/planted_priors.py --list

The machinery of mutation/planted.py (a scratch copy under /tmp, one exact
text replaced, pytest run there), with this issue's plants and test files:
wrong code in numpyvae/prior.py, estimators.py and cvae.py, and wrong
displayed formulas in derivations/14-learned-priors-and-cvae.md (the
"formula-" plants, caught by tests/test_displayed_formulas_priors.py).
A plant that no test catches is reported as MISSED and the script exits 1.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import planted  # noqa: E402

NOTE = "derivations/14-learned-priors-and-cvae.md"
planted.WORK = os.path.join(os.environ.get("NUMPYVAE_MUTATION_WORK", "/tmp/numpyvae-mutation"), "planted-priors")
planted.PATHS = ["tests/test_learned_priors.py", "tests/test_cvae.py", "tests/test_m2.py",
                 "tests/test_displayed_formulas_priors.py", NOTE]
planted.PLANTS = {
    "pseudo-input-gradient-dropped": (
        "the VampPrior's gradient into its pseudo-inputs dropped (the encoder's backward still runs)", [
            ("numpyvae/prior.py",
             'grads["pseudo_inputs"] += self.encoder.call_backward(dh, net_cache, encoder_grads, need_dx=True)',
             'self.encoder.call_backward(dh, net_cache, encoder_grads, need_dx=True)')]),
    "responsibility-sign": (
        "a wrong sign in the mixture's responsibilities: r = exp(log p - a) instead of exp(a - log p)", [
            ("numpyvae/prior.py", "return log_p, np.exp(a - log_p[:, None])", "return log_p, np.exp(log_p[:, None] - a)")]),
    "logits-softmax-sign": (
        "the log-softmax's backward with + pi sum instead of - pi sum", [
            ("numpyvae/prior.py", 'grads["logits"] += dlog_pi - pi * dlog_pi.sum()',
             'grads["logits"] += dlog_pi + pi * dlog_pi.sum()')]),
    "vamp-encoder-share-dropped": (
        "the VampPrior's share of the encoder's gradient dropped (no buffers passed to the encoder's backward)", [
            ("numpyvae/prior.py", "self.encoder.call_backward(dh, net_cache, encoder_grads, need_dx=True)",
             "self.encoder.call_backward(dh, net_cache, None, need_dx=True)")]),
    "mixture-logvar-no-half": (
        "the mixture's log-variance gradient without its 1/2", [
            ("numpyvae/prior.py", 'dlogvars += 0.5 * (np.einsum("nc,ncz->cz", gr, scaled * diff) - gr.sum(axis=0)[:, None])',
             'dlogvars += (np.einsum("nc,ncz->cz", gr, scaled * diff) - gr.sum(axis=0)[:, None])')]),
    "mixture-weights-ignored": (
        "the mixture's log-density without the log-weights log pi_c", [
            ("numpyvae/prior.py", "a = self.log_weights - 0.5 * np.sum(", "a = 0.0 - 0.5 * np.sum(")]),
    "iwae-dlog-pz-unweighted": (
        "the iwae estimator handing the prior 1/K per sample instead of the importance weights", [
            ("numpyvae/estimators.py", "dlog_pz=beta * w)", "dlog_pz=np.full_like(log_px, beta / K))")]),
    "cvae-label-order-swapped": (
        "the conditional decoder fed [y | z] instead of [z | y] in the forward pass", [
            ("numpyvae/cvae.py", "zy = np.concatenate([z.reshape(K * B, self.z_dim), np.tile(onehot, (K, 1))], axis=1)",
             "zy = np.concatenate([np.tile(onehot, (K, 1)), z.reshape(K * B, self.z_dim)], axis=1)")]),
    "cvae-dz-wrong-columns": (
        "the conditional decoder's input gradient read from the last Z columns (the label's) instead of the first", [
            ("numpyvae/cvae.py", "dz = dzy[:, :self.z_dim].reshape(K, B, self.z_dim)",
             "dz = dzy[:, -self.z_dim:].reshape(K, B, self.z_dim)")]),
    "m2-classifier-gradient-sign": (
        "M2's classifier gradient q (U - f) instead of q (f - U)", [
            ("numpyvae/m2.py", "q_u * (f - U[:, None])", "q_u * (U[:, None] - f)")]),
    "m2-cvae-weights-uniform": (
        "M2's unlabelled CVAE passes weighted 1/(Y B) instead of q(y|x)/B", [
            ("numpyvae/m2.py", "weights=q_u[:, c] / B_u)", "weights=np.full(B_u, 1.0 / (B_u * self.n_classes)))")]),
    "m2-entropy-dropped": (
        "M2's unlabelled bound without the classifier's entropy (f = L instead of L - log q)", [
            ("numpyvae/m2.py", "f = L_u - log_q_u", "f = L_u")]),
    "cvae-log-marginal-no-log-k": (
        "log p(x|y) by importance sampling without its - log k", [
            ("numpyvae/cvae.py", 'return _finite_result("log_marginal(x, y)", "x", total - math.log(k))',
             'return _finite_result("log_marginal(x, y)", "x", total)')]),
}
FORMULA_PLANTS = {     # name: (what is wrong, exact LaTeX in note 14, its wrong replacement)
    "formula-14.1-lse-sign": ("14.1: the log-sum-exp's shift added instead of subtracted",
                              r"M + \log \sum_c e^{a_c - M}", r"M + \log \sum_c e^{a_c + M}"),
    "formula-14.2-responsibility-sign": ("14.2: the responsibility as e^{log p - a_c}",
                                         r"e^{a_c - \log p(z)}", r"e^{\log p(z) - a_c}"),
    "formula-14.3-sign": ("14.3: the gradient in z without its minus", r"\log p(z) = -\sum_c r_c", r"\log p(z) = \sum_c r_c"),
    "formula-14.4-half": ("14.4: the log-variance gradient without its 1/2", r"\frac12 \Big(\frac{(z - m_c)^2}", r"\Big(\frac{(z - m_c)^2}"),
    "formula-14.5-softmax-sign": ("14.5: the logits' gradient r_c + w_c", r"= r_c - w_c", r"= r_c + w_c"),
    "formula-14.6-kl-reversed": ("14.6: the KL's integrand reversed (log p - log q)",
                                 r"\big[\log q(z \mid x) - \log p(z)\big]", r"\big[\log p(z) - \log q(z \mid x)\big]"),
    "formula-14.7-no-mean": ("14.7: the VampPrior summed, not averaged, over the pseudo-inputs",
                             r"p(z) = \frac1C \sum_c q(z \mid u_c)", r"p(z) = \sum_c q(z \mid u_c)"),
    "formula-14.8-no-logvar-route": ("14.8: the pseudo-input gradient without the log-variance's route",
                                     r" + \frac{\partial \log p(z)}{\partial \operatorname{logvar}_c}\, \frac{\partial \operatorname{logvar}_c}{\partial u_c}", ""),
    "formula-14.9-bound-reversed": ("14.9: the CVAE bound as an upper bound", r"\log p(x \mid y) \ge", r"\log p(x \mid y) \le"),
    "formula-14.11-no-log-prior": ("14.11: the labelled bound without log p(y)",
                                   r" + \log p(y) \le \log p(x, y)", r" \le \log p(x, y)"),
    "formula-14.12-no-entropy": ("14.12: the unlabelled bound without - log q(y|x)",
                                 r"\big(\mathcal L(x, y) - \log q(y \mid x)\big)", r"\mathcal L(x, y)"),
    "formula-14.13-no-baseline": ("14.13: the classifier's gradient without - U(x)",
                                  r" - \log q(c \mid x) - \mathcal U(x)\big)", r" - \log q(c \mid x)\big)"),
    "formula-14.10-mean-of-logs": ("14.10: the importance-sampled estimate as a mean of log weights (the ELBO)",
                                   r"\log \Big(\frac1K \sum_k W(z_k)\Big)", r"\frac1K \sum_k \log W(z_k)"),
}
planted.PLANTS.update({name: (what, [(NOTE, old, new)]) for name, (what, old, new) in FORMULA_PLANTS.items()})

if __name__ == "__main__":
    sys.exit(planted.main(sys.argv[1:]))
