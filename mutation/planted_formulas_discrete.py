"""Plant wrong displayed formulas in note 15 (discrete latents), one at a time, and show each fails pytest.

Run from the repository root:  python mutation/planted_formulas_discrete.py
Each plant edits the displayed LaTeX of one $$ block of derivations/15-discrete-latents.md,
runs tests/test_displayed_formulas_discrete.py, restores the note, and prints which tests
failed (a plant that fails nothing is reported as SURVIVED and makes the script exit 1).
"""
from plant_displays import run

NOTE = "derivations/15-discrete-latents.md"
PLANTS = [
 (r"q_k = \frac{e^{l_k}}{\sum_{j} e^{l_j}}", r"q_k = \frac{e^{l_k}}{\sum_{j} e^{-l_j}}", "15.1: softmax with -l in the normaliser"),
 (r"\log q(z) = \sum_{k} z_k \log q_k", r"\log q(z) = \sum_{k} \log q_k", "15.1: log q(z) without the one-hot z"),
 (r"\sum_{k} q_k (\log q_k + \log K)", r"\sum_{k} q_k (\log q_k - \log K)", "15.2: KL with - log K"),
 (r"\mathbb E_{q}[\log p(x \mid z)] - \operatorname{KL}(q \| p)", r"\mathbb E_{q}[\log p(x \mid z)] + \operatorname{KL}(q \| p)",
  "15.2: the ELBO adding the KL"),
 (r"q \cdot (\log q - \sum_{j} q_j \log q_j)", r"q \cdot \log q", "15.2g: dKL/dl without its centring"),
 (r"\nabla_{l} \log q(z) = z - q", r"\nabla_{l} \log q(z) = q - z", "15.3: the score's sign"),
 (r"\mathbb E_{q}[f(z) \nabla_{l} \log q(z)]", r"\mathbb E_{q}[\nabla_{l} \log q(z)]", "15.3: the score without f"),
 (r"\frac{1}{S} \sum_{s} (f(z_s) - b) \nabla_{l}", r"\frac{1}{S} \sum_{s} f(z_s) \nabla_{l}", "15.4b: the baseline not subtracted"),
 (r"b_{t+1} = \alpha b_t + (1 - \alpha) \bar f_t", r"b_{t+1} = (1 - \alpha) b_t + \alpha \bar f_t", "15.4b: the moving average's weights swapped"),
 (r"b_s = \frac{S \bar f - f(z_s)}{S - 1}", r"b_s = \frac{S \bar f}{S - 1}", "15.5: the leave-one-out baseline keeping the sample"),
 (r"= \frac{1}{S - 1} \sum_{s} (f(z_s) - \bar f)", r"= \frac{1}{S} \sum_{s} (f(z_s) - \bar f)", "15.5: 1/S for 1/(S - 1)"),
 (r"F(g) = e^{-e^{-g}}", r"F(g) = e^{-e^{g}}", "15.6: the Gumbel CDF reflected"),
 (r"= j) = \frac{e^{l_j}}{\sum_{k} e^{l_k}}", r"= j) = \frac{e^{l_j / 2}}{\sum_{k} e^{l_k / 2}}", "15.6: Gumbel-max at the wrong temperature"),
 (r"y_k = \frac{e^{(l_k + g_k) / \tau}}{\sum_{j} e^{(l_j + g_j) / \tau}}", r"y_k = \frac{e^{l_k + g_k}}{\sum_{j} e^{l_j + g_j}}", "15.7: tau missing"),
 (r"\bar l = \frac{1}{\tau} y \cdot (\bar y - \sum_{j} y_j \bar y_j)", r"\bar l = \frac{1}{\tau} y \cdot (\bar y + \sum_{j} y_j \bar y_j)",
  "15.8: the softmax Jacobian's sign"),
 (r"\bar l = \frac{1}{\tau} y \cdot (\bar y - \sum_{j}", r"\bar l = y \cdot (\bar y - \sum_{j}", "15.8: 1/tau missing"),
 (r"\frac{-\log p(x)}{D \log 2}", r"\frac{-\log p(x)}{\log 2}", "15.10: bits per image, not per pixel"),
 (r"-\frac{1}{D} \log_2 p(x)", r"-\frac{1}{D} \log p(x)", "15.10: nats called bits"),
 (r"\bar l = \frac{1}{\tau} y \cdot (\bar z - \sum_{j} y_j \bar z_j)", r"\bar l = \frac{1}{\tau} z \cdot (\bar z - \sum_{j} z_j \bar z_j)",
  "15.9: straight-through through the hard z's Jacobian"),
]
TESTS = ["tests/test_displayed_formulas_discrete.py", "tests/test_displayed_formulas.py::test_every_displayed_formula_parses"]

if __name__ == "__main__":
    raise SystemExit(run(NOTE, PLANTS, TESTS))
