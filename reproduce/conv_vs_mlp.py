"""The convolutional VAE next to the MLP VAE: same epochs, and the MLP again at the conv's wall-clock time.

    python reproduce/conv_vs_mlp.py [--dataset mnist] [--epochs 3] [--n-test 500] [--eval-k 5000] [--quick]
    python reproduce/conv_vs_mlp.py --eval-only --n-test 100     # evaluate the runs trained before, again

Both models are trained by the command line exactly as a user would
(``numpyvae train --dataset D --arch conv|mlp --epochs E``, the dataset's
defaults otherwise: 400 hidden units, Z = 20, Adam, batch 128, dynamic
binarization).  Then:

* the MLP is resumed for as many further epochs as fit into the conv run's
  training time (the time the trainer logs, end-of-epoch test evaluation
  included for both), so the two are also compared at equal wall-clock time;
* every model is evaluated on the same first ``--n-test`` test images,
  binarized once with a seeded generator: the test -ELBO (1 sample, averaged
  over 10 draws) and the importance-sampled log p(x) with K = ``--eval-k``
  (an estimate of, and a stochastic lower bound on, log p(x)).

The conv decoder costs about ten times the MLP's per sample, so K = 5000 on
all 10,000 test images would take hours here: the subset is stated in the
table.  Writes reproduce/results/conv_vs_mlp_<dataset>/ (result.json, table.md).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (Clock, command_line, load, log, machine, markdown_table, paired, results_dir,  # noqa: E402
                    write_result)
from numpyvae.checkpoint import load_model  # noqa: E402
from numpyvae.data import binarize  # noqa: E402
from numpyvae.evaluate import log_marginal  # noqa: E402


def train(args, out, arch, epochs, resume=None):
    """Run ``numpyvae train`` and return (the command, the trainer's seconds per epoch from history.json)."""
    cmd = ["numpyvae", "train", "--dataset", args.dataset, "--arch", arch, "--epochs", str(epochs),
           "--out", out, "--no-progress", "--seed", str(args.seed)]
    if resume:
        cmd += ["--resume", resume]
    if args.quick:
        cmd += ["--hidden", "32", "--z-dim", "4"]
    if not args.eval_only:
        log(" ".join(cmd))
        subprocess.run([sys.executable, "-m", "numpyvae", *cmd[1:]], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "command.txt"), "w") as f:
            f.write(" ".join(cmd) + "\n")
    with open(os.path.join(out, "command.txt")) as f:
        cmd = [os.path.relpath(a, os.getcwd()) if a.startswith(os.sep) else a for a in f.read().split()]
    with open(os.path.join(out, "history.json")) as f:
        text = f.read()
    rows = json.loads(text) if text.lstrip().startswith("[") else [json.loads(line) for line in text.splitlines() if line]
    return " ".join(cmd), [row["seconds"] for row in rows]


def evaluate(path, x_test, args):
    """Test -ELBO (mean of 10 one-sample draws) and log p(x) (K = eval_k) on x_test, with standard errors."""
    model = load_model(path)
    rng = np.random.default_rng([args.seed, 5])
    elbo = np.mean([model.elbo(x_test, rng) for _ in range(10)], axis=0).astype(np.float64)
    t = time.perf_counter()
    log_px = log_marginal(model, x_test, k=args.eval_k, rng=np.random.default_rng([args.seed, 6]), progress=False)
    n = len(x_test)
    return dict(neg_elbo=-float(elbo.mean()), neg_elbo_se=float(elbo.std(ddof=1) / np.sqrt(n)),
                log_px=float(log_px.mean()), log_px_se=float(log_px.std(ddof=1) / np.sqrt(n)),
                eval_seconds=round(time.perf_counter() - t, 1), n_params=sum(p.size for p in model.params.values()),
                per_image_log_px=log_px.astype(np.float64))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "digits"])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-only", action="store_true",
                   help="evaluate the runs a previous call trained (in OUT/runs), without training again")
    p.add_argument("--quick", action="store_true", help="digits, 1 epoch, tiny models, K = 20 (seconds; for the tests)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.dataset, args.epochs, args.n_test, args.eval_k = "digits", 1, 20, 20
    clock = Clock()
    out = results_dir(f"conv_vs_mlp_{args.dataset}" + ("_quick" if args.quick else ""), args.out)
    runs = {name: os.path.join(out, "runs", name) for name in ("conv", "mlp", "mlp_same_time")}
    for path in runs.values():
        if os.path.exists(path) and not args.eval_only:
            subprocess.run(["rm", "-r", path], check=True)      # this script's own scratch runs, re-made

    commands, seconds = {}, {}
    commands["conv"], seconds["conv"] = train(args, runs["conv"], "conv", args.epochs)
    commands["mlp"], seconds["mlp"] = train(args, runs["mlp"], "mlp", args.epochs)
    conv_time, mlp_epoch = sum(seconds["conv"]), float(np.mean(seconds["mlp"]))
    same_epochs = max(args.epochs, int(conv_time // mlp_epoch)) if not args.eval_only else None
    if (same_epochs is not None and same_epochs <= args.epochs) or \
            (args.eval_only and not os.path.exists(os.path.join(runs["mlp_same_time"], "command.txt"))):
        # the conv runs took no longer than the MLP's epochs (a tiny quick model): the same-time MLP is the MLP run
        runs["mlp_same_time"] = runs["mlp"]
        commands["mlp_same_time"], seconds["mlp_same_time"] = commands["mlp"], seconds["mlp"]
    else:
        commands["mlp_same_time"], all_seconds = train(args, runs["mlp_same_time"], "mlp", same_epochs,
                                                       resume=os.path.join(runs["mlp"], "checkpoint.npz"))
        seconds["mlp_same_time"] = all_seconds

    d = load(args.dataset)
    x_test = binarize(d.x_test[:args.n_test], "dynamic", np.random.default_rng([args.seed, 7]))
    results = {}
    for name, path in runs.items():
        log(f"evaluating {name}")
        results[name] = dict(evaluate(os.path.join(path, "checkpoint.npz"), x_test, args),
                             epochs=len(seconds[name]), train_seconds=round(sum(seconds[name]), 1),
                             command=commands[name])
    per_image = {name: r.pop("per_image_log_px") for name, r in results.items()}
    differences = {f"conv - {other}": paired(per_image["conv"], per_image[other]) for other in ("mlp", "mlp_same_time")}
    label = {"conv": "conv VAE", "mlp": "MLP VAE, same epochs", "mlp_same_time": "MLP VAE, same wall-clock time"}
    rows = [[label[n], r["epochs"], f"{r['train_seconds']:.0f}", f"{r['n_params']:,}",
             f"{r['neg_elbo']:.2f} ± {r['neg_elbo_se']:.2f}", f"{-r['log_px']:.2f} ± {r['log_px_se']:.2f}"]
            for n, r in results.items()]
    table = markdown_table(["model", "epochs", "training s", "parameters", "test −ELBO (nats)",
                            f"test −log p(x), K = {args.eval_k} (nats)"], rows)
    notes = (f"{args.dataset}, the first {args.n_test} test images binarized once (seed {args.seed}); ± is the standard "
             "error over those images. −log p(x) is the importance-sampled estimate (a stochastic upper bound on "
             "the true −log p(x)). Training seconds are the trainer's own per-epoch times summed (each epoch's "
             "end-of-epoch test evaluation included, for both models). Paired differences of log p(x) over the same "
             "images (mean ± standard error): "
             + "; ".join(f"{k} {m:+.2f} ± {se:.2f} nats" for k, (m, se) in differences.items()) + ". Commands: "
             + "; ".join(f"`{r['command']}`" for r in results.values()) + ".")
    result = dict(dataset=args.dataset, n_test=args.n_test, eval_k=args.eval_k, models=results,
                  paired_log_px_differences={k: dict(mean=m, se=se) for k, (m, se) in differences.items()},
                  command=command_line(), wall_seconds=clock.seconds(), machine=machine(), quick=args.quick,
                  date=time.strftime("%Y-%m-%d"))
    write_result(out, result, table, notes)
    return result


if __name__ == "__main__":
    main()
