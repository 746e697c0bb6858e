"""Plant wrong displayed formulas in the derivation notes, one at a time, and show each fails pytest.

Run from the repository root:  python mutation/planted_formulas.py
Each plant edits the displayed LaTeX of one $$ block, runs that note and
tests/test_displayed_formulas.py, restores the note, and prints which tests failed.
"""
import os
import pathlib
import subprocess
import sys
PLANTS = [
 ("derivations/05-kl-closed-form.md", r"- 1 - \operatorname{logvar}_j\right)", r"- 1 + \operatorname{logvar}_j\right)", "05 KL: -1 - logvar -> -1 + logvar"),
 ("derivations/05-kl-closed-form.md", r"= \tfrac12\left(e^{\operatorname{logvar}_j} - 1\right)", r"= \tfrac12\left(e^{\operatorname{logvar}_j} + 1\right)", "05 dKL/dlogvar: 1/2(e^lv - 1) -> 1/2(e^lv + 1)"),
 ("derivations/01-marginal-likelihood.md", r"+ \log\det C +", r"- \log\det C +", "01 log p(x): +log det C -> -log det C"),
 ("derivations/03-jensen-elbo.md", r"= \log p(x) - \operatorname{KL}\big(q(z \mid x) \,\|\, p(z \mid x)\big)", r"= \log p(x) + \operatorname{KL}\big(q(z \mid x) \,\|\, p(z \mid x)\big)", "03 gap: log p - KL -> log p + KL"),
 ("derivations/04-reconstruction-and-kl.md", "+ 2\\operatorname{Cov}[R, S],\n\\qquad", "- 2\\operatorname{Cov}[R, S],\n\\qquad", "04 Var[A]: +2Cov -> -2Cov"),
 ("derivations/06-reparameterization.md", r"= \tfrac12 \sigma_j \varepsilon_j", r"= \sigma_j \varepsilon_j", "06 dz/dlogvar: 1/2 sigma eps -> sigma eps"),
 ("derivations/06-reparameterization.md", r"\nabla_{\operatorname{logvar}} \log q = -\tfrac12 + \frac{(z-\mu)^2}{2\sigma^2}", r"\nabla_{\operatorname{logvar}} \log q = -\tfrac12 + \frac{(z-\mu)^2}{\sigma^2}", "06 score dlogvar: (z-mu)^2/(2 sigma^2) -> (z-mu)^2/sigma^2"),
 ("derivations/07-backprop.md", r"= x_d - \sigma(l_d)", r"= \sigma(l_d) - x_d", "07 Bernoulli grad: x - sigma(l) -> sigma(l) - x"),
 ("derivations/08-iwae.md", r"\;\le\; \log \mathbb E", r"\;\ge\; \log \mathbb E", "08 IWAE bound: <= -> >="),
 ("derivations/11-beta-warmup.md", r"= \mathcal L(x) + (1 - \beta)\,", r"= \mathcal L(x) + (\beta - 1)\,", "11 L_beta: L + (1-beta)KL -> L + (beta-1)KL"),
 ("derivations/10-gaussian-density.md", r"\log p'(x') = \log p(x) - D \log c", r"\log p'(x') = \log p(x) + D \log c", "10 rescaling: -D log c -> +D log c"),
 ("derivations/12-convolution.md", r"(H_{\mathrm{in}} - 1)\, s - 2 p + k_h + o", r"(H_{\mathrm{in}} - 1)\, s + 2 p + k_h + o", "12 transposed conv size: -2p -> +2p"),
 ("derivations/11-beta-warmup.md", r"{\big(\beta s^2 + \lVert w_u\rVert^2\big)^2}", r"{\big(s^2 + \beta\lVert w_u\rVert^2\big)^2}", "11 A_u: (beta s^2 + |w|^2)^2 -> (s^2 + beta |w|^2)^2"),
]
for path, old, new, what in PLANTS:
    p = pathlib.Path(path); text = p.read_text()
    assert text.count(old) == 1, (what, text.count(old))
    p.write_text(text.replace(old, new))
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_displayed_formulas.py", str(p)],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(pathlib.Path.cwd())})
    finally:
        p.write_text(text)
    failed = [l.split(" - ")[0].replace("FAILED ", "") for l in r.stdout.splitlines() if l.startswith("FAILED")]
    print(f"{what}\n   rc={r.returncode}; failed: {failed[:4]}{' ...' if len(failed) > 4 else ''} ({len(failed)}) | {r.stdout.strip().splitlines()[-1]}")
