"""Plant errors in evaluate.log_marginal, one at a time, and show the independent-truth tests catch them.

    python mutation/planted_log_marginal.py

Uses mutation/planted.py's machinery (a scratch copy under /tmp; the working tree is never
modified).  The tests run are tests/test_log_marginal_truth.py (exact linear-Gaussian log p(x)
and quadrature) and derivations/02-importance-sampling.md: no copy of the algorithm.
"""
import sys

import planted

planted.PATHS = ["tests/test_log_marginal_truth.py", "derivations/02-importance-sampling.md"]
planted.WORK = planted.WORK.replace("planted", "planted-log-marginal")
E = "numpyvae/evaluate.py"
planted.PLANTS = {
    "no-log-k": ("the - log k left out", [(E, "return total - math.log(k)", "return total")]),
    "max-chunks": ("chunks combined by max, not log-sum-exp",
                   [(E, "total = np.logaddexp(total, _logsumexp(f, axis=0))", "total = np.maximum(total, _logsumexp(f, axis=0))")]),
    "logvar-sign": ("log q's log-variance term with the wrong sign",
                    [(E, "+ self.half_sum_logvar\n", "- self.half_sum_logvar\n")]),
    "no-eps-squared": ("log q's eps^2 term left out",
                       [(E, 'log_ratio = 0.5 * (np.einsum("kbz,kbz->kb", eps, eps) - ', 'log_ratio = 0.5 * (0 - ')]),
    "fused-z-without-mu": ("fused (Bernoulli) path: z = sigma eps, mu not added", [(E, "            z += self.mu", "            pass")]),
    "plain-z-without-sigma": ("plain path: z = mu + eps", [(E, "z = self.mu + self.sigma * eps", "z = self.mu + eps")]),
    "box-muller-cos-twice": ("float32 draws: cos for both normals of a pair",
                             [(E, "np.sin(theta, out=normals[1])", "np.cos(theta, out=normals[1])")]),
    "box-muller-radius": ("float32 draws: r = sqrt(-log(1 - u1))", [(E, "u1 *= -2", "u1 *= -1")]),
    "fused-x-flipped": ("fused path: sum_d x_d l_d with 1 - x", [(E, "self.W1x = x @ self.W1.T", "self.W1x = (1 - x) @ self.W1.T")]),
    "softplus-dropped": ("fused path: the softplus sum left out",
                         [(E, "return sum_x_logits - sum_softplus.reshape(K, B)", "return sum_x_logits")]),
}

if __name__ == "__main__":
    sys.exit(planted.main(sys.argv[1:]))
