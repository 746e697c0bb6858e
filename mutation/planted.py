"""The wrong formulas of issue 9, planted one at a time in a scratch copy: which tests catch each?

    nice -n 10 python mutation/planted.py            # all of them
    nice -n 10 python mutation/planted.py mc-beta    # one, by name
    python mutation/planted.py --list

Each plant replaces one exact piece of source text (it must occur exactly
once, or the plant is reported as stale) in a copy of the repository under
/tmp, then runs pytest there on PATHS (the tests and notes that check the
values of these formulas, with the suite's own settings) and prints the
failing tests with the first line of each failure message.  A plant that no
test catches is reported as MISSED and the script exits 1.  The working tree
is never modified.
"""
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(os.environ.get("NUMPYVAE_MUTATION_WORK", "/tmp/numpyvae-mutation"), "planted")

# the tests and notes that check these formulas' values; pytest runs all of them (and more), so a
# failure here is a failure of the README's `pytest`.  Slower hypothesis-driven files are left out.
PATHS = ["tests/test_estimators.py", "tests/test_values.py", "tests/test_beta_and_clip.py", "tests/test_gradcheck_numbers.py",
         "derivations/02-importance-sampling.md", "derivations/06-reparameterization.md", "derivations/08-iwae.md",
         "derivations/11-beta-warmup.md", "tests/test_conv.py", "tests/test_network.py", "derivations/12-convolution.md"]

# name: (what is wrong, [(file, exact old text, new text), ...])
PLANTS = {
    "log-marginal-no-log-k": (
        "log_marginal without its - log k", [
            ("numpyvae/evaluate.py", "out[start:start + B] = total - math.log(k)", "out[start:start + B] = total")]),
    "log-marginal-max-chunks": (
        "log_marginal's chunks combined by max instead of log-sum-exp", [
            ("numpyvae/evaluate.py", "total = np.logaddexp(total, _logsumexp(f, axis=0))",
             "total = np.maximum(total, _logsumexp(f, axis=0))")]),
    "stl-is-mc": (
        "STL turned back into plain Monte Carlo (stl returns mc's dmu/dlogvar), gradient-check surrogate to match", [
            ("numpyvae/estimators.py", "    est.dmu = np.zeros_like(mu)\n    est.dlogvar = np.zeros_like(logvar)\n", ""),
            ("numpyvae/gradcheck.py", 'if estimator == "stl":', 'if estimator == "stl-as-mc":')]),
    "analytic-beta": (
        "beta dropped from the analytic estimator's gradient", [
            ("numpyvae/estimators.py", "dmu=-beta * dkl_dmu, dlogvar=-beta * dkl_dlogvar", "dmu=-dkl_dmu, dlogvar=-dkl_dlogvar")]),
    "mc-beta": (
        "beta dropped from the mc estimator's gradient", [
            ("numpyvae/estimators.py", "    w = beta / K\n", "    w = 1.0 / K\n")]),
    "iwae-beta": (
        "beta dropped from the iwae estimator's gradient", [
            ("numpyvae/estimators.py", "    bw = beta * w[..., None]\n", "    bw = w[..., None]\n")]),
    "stl-beta": (
        "beta dropped from the stl estimator's gradient", [
            ("numpyvae/estimators.py", "    est = mc.kernel(log_px, z, mu, logvar, beta)\n",
             "    est = mc.kernel(log_px, z, mu, logvar, beta)\n    est.dz = mc.kernel(log_px, z, mu, logvar, 1.0).dz\n")]),
    "score-beta": (
        "beta dropped from the score estimator's gradient", [
            ("numpyvae/estimators.py", "    fw = f[..., None] / K\n",
             "    fw = log_weights(log_px, z, mu, logvar, 1.0)[..., None] / K\n")]),
    "encoder-clip-mask": (
        "the encoder's log-variance clip mask ignored in the backward pass", [
            ("numpyvae/posterior.py", "np.concatenate([dmu, dlogvar * inside], axis=1)",
             "np.concatenate([dmu, dlogvar], axis=1)")]),
    "decoder-clip-mask": (
        "the decoder's log-variance clip mask ignored in the backward pass", [
            ("numpyvae/vae.py", "dlogvar * dec_mask.reshape(dlogvar.shape)", "dlogvar")]),
    # the convolution's backward pass (issue 19): derivations/12-convolution.md, eq. (C3)
    "conv-unflipped-kernel": (
        "Conv2d's dx takes every window's gradient with the kernel rotated by 180 degrees", [
            ("numpyvae/conv.py", "+= cols_t[:, u, v]", "+= cols_t[:, kh - 1 - u, kw - 1 - v]")]),
    "conv-missing-stride": (
        "col2im puts window (i, j)'s gradient at (i, j) instead of (s i, s j): the stride dropped in dx", [
            ("numpyvae/conv.py", "dxp[:, :, u:u + stride * (Ho - 1) + 1:stride, v:v + stride * (Wo - 1) + 1:stride] +=",
             "dxp[:, :, u:u + Ho, v:v + Wo] +=")]),
    "conv-dropped-padding-gradient": (
        "dx cut from the padded gradient at the corner instead of after the padding", [
            ("numpyvae/conv.py", "return dxp[:, :, padding:padding + H, padding:padding + W].transpose(1, 0, 2, 3)",
             "return dxp[:, :, :H, :W].transpose(1, 0, 2, 3)")]),
    "conv-db-batch-only": (
        "Conv2d's db summed over the rows of one example only", [
            ("numpyvae/conv.py", 'grads["b"] += d.sum(axis=0)', 'grads["b"] += d[:Ho * Wo].sum(axis=0)')]),
}


def plant(name):
    """Copy the repository, apply the plant, run PATHS; returns (caught, failures or a problem)."""
    what, edits = PLANTS[name]
    repo = os.path.join(WORK, name)
    if os.path.exists(repo):
        shutil.rmtree(repo)
    skip = {".git", "__pycache__", ".pytest_cache", ".hypothesis", "numpyvae.egg-info", "runs", "notebooks"}
    shutil.copytree(ROOT, repo, ignore=lambda d, names: [n for n in names if n in skip])
    for path, old, new in edits:
        with open(os.path.join(repo, path)) as f:
            src = f.read()
        if src.count(old) != 1:
            return None, [f"stale plant: {path} contains the text {src.count(old)} times, expected once: {old!r}"]
        with open(os.path.join(repo, path), "w") as f:
            f.write(src.replace(old, new))
    env = dict(os.environ, PYTHONPATH=repo, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", "--tb=short", *PATHS],
                          cwd=repo, env=env, capture_output=True, text=True)
    with open(os.path.join(WORK, name + ".txt"), "w") as f:        # the whole output, for the messages
        f.write(proc.stdout + proc.stderr)
    failed = [line[len("FAILED "):] for line in proc.stdout.splitlines() if line.startswith("FAILED ")]
    for i, f in enumerate(failed):        # a doctest's summary has no message: add its first Expected/Got
        if f.endswith(".md") and "Expected:" in proc.stdout:
            start = proc.stdout.index("Expected:")
            failed[i] += " -- " + " ".join(proc.stdout[start:start + 300].split())
    if proc.returncode not in (0, 1):
        failed.append(f"pytest exit code {proc.returncode}: {proc.stdout[-500:]}")
    return bool(failed), failed


def main(argv):
    if "--list" in argv:
        for name, (what, _) in PLANTS.items():
            print(f"{name}: {what}")
        return 0
    names = [a for a in argv if not a.startswith("-")] or list(PLANTS)
    missed = 0
    for name in names:
        caught, failures = plant(name)
        missed += not caught
        print(f"## {name}: {PLANTS[name][0]}\n{'caught' if caught else 'MISSED'} by {len(failures)} test(s) "
              f"(pytest {' '.join(PATHS)})")
        for f in failures:
            print("  - " + re.sub(r"\s+", " ", f)[:400])
        print(flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
