"""The wrong formulas of issue 20's planar flows, planted one at a time in a scratch copy (as planted.py does).

    nice -n 10 python mutation/planted_flows.py            # all of them
    nice -n 10 python mutation/planted_flows.py --list

Each plant replaces one exact piece of numpyvae/flows.py or numpyvae/posterior.py in a copy of the
repository under /tmp, runs PATHS there and prints the failing tests; a plant no test catches is
reported as MISSED and the script exits 1.  The working tree is never modified.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import planted  # noqa: E402

PATHS = ["tests/test_flows.py", "tests/test_flow_fit.py", "tests/test_displayed_formulas_flows.py", "tests/test_flow_homework.py"]

PLANTS = {
    "logdet-sign-in-det": (
        "a sign in the log-det: log|1 - u_hat.psi(z)| instead of log|1 + u_hat.psi(z)|, forward and backward", [
            ("numpyvae/flows.py", "    det = 1.0 + g * c ", "    det = 1.0 - g * c "),
            ("numpyvae/flows.py", "    dc = np.sum(ddet * g, axis=0)", "    dc = -np.sum(ddet * g, axis=0)"),
            ("numpyvae/flows.py", "- 2.0 * t * ddet * c ", "+ 2.0 * t * ddet * c ")]),
    "logdet-sign-in-log-q": (
        "a sign in log q_K: log q_0 + sum log-dets instead of minus, forward and backward", [
            ("numpyvae/posterior.py", "return (z, log_q0 - sum_logdet)", "return (z, log_q0 + sum_logdet)"),
            ("numpyvae/posterior.py", "self.backward(dz, -dlog_q, fcache)", "self.backward(dz, dlog_q, fcache)")]),
    "u-not-reparameterized": (
        "u not reparameterized: u_hat = u (w.u >= -1 no longer guaranteed), forward and backward", [
            ("numpyvae/flows.py", "    return u + r[..., None] * w, (u, w, a, n, r)", "    return u + 0 * r[..., None] * w, (u, w, a, n, r)"),
            ("numpyvae/flows.py", "    du = du_hat + da[..., None] * w\n    dw = r[..., None] * du_hat + da[..., None] * u + 2.0 * dn[..., None] * w",
             "    du = du_hat\n    dw = 0 * du_hat")]),
    "psi-without-tanh-derivative": (
        "psi(z) = w instead of h'(w.z + b) w in the log-det (forward only)", [
            ("numpyvae/flows.py", "    det = 1.0 + g * c ", "    det = 1.0 + c + 0 * g ")]),
    "radial-logdet-Z-factors": (
        "the radial log-det with Z factors 1 + beta h instead of Z - 1 (forward only)", [
            ("numpyvae/flows.py", "logdet = (z.shape[-1] - 1) * np.log(np.abs(A))", "logdet = z.shape[-1] * np.log(np.abs(A))")]),
    "radial-beta-not-reparameterized": (
        "beta not reparameterized (beta = softplus(c), may stay > -alpha only by luck: here beta = c), forward and backward", [
            ("numpyvae/flows.py", "return alpha, -alpha + softplus(beta_raw), (alpha_raw, beta_raw)",
             "return alpha, beta_raw + 0 * alpha, (alpha_raw, beta_raw)"),
            ("numpyvae/flows.py", "return (dalpha - dbeta) * sigmoid(alpha_raw), dbeta * sigmoid(beta_raw)",
             "return dalpha * sigmoid(alpha_raw), dbeta")]),
}

if __name__ == "__main__":
    planted.PLANTS, planted.PATHS = PLANTS, PATHS
    planted.WORK = os.path.join(os.path.dirname(planted.WORK), "planted_flows")
    sys.exit(planted.main(sys.argv[1:]))
