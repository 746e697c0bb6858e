#!/usr/bin/env bash
# pytorch/examples' VAE reproduced with numpyvae's command line: MNIST grey
# levels, 784-400-20 with ReLU, Bernoulli likelihood, analytic KL, Adam 1e-3,
# batch 128, 10 epochs.  The published test loss for this setting is 105.6
# nats per example (its README).  Writes the run and table.md into OUT.
#
#   NUMPYVAE_DATA=../shared/data bash reproduce/pytorch_examples.sh [OUT]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/results/pytorch_examples}"
start=$(date +%s)
python -m numpyvae train --dataset mnist --hidden 400 --z-dim 20 --activation relu \
  --likelihood bernoulli --estimator analytic --optimizer adam --lr 1e-3 \
  --batch-size 128 --epochs 10 --seed 0 --out "$out/run" --force --no-progress
python -m numpyvae evaluate "$out/run/checkpoint.npz" --dataset mnist | tee "$out/evaluate.txt"
seconds=$(( $(date +%s) - start ))
python - "$out" "$seconds" <<'PY'
import json, os, platform, sys
import numpy as np
out, seconds = sys.argv[1], int(sys.argv[2])
rows = json.load(open(os.path.join(out, "run", "history.json")))
last = rows[-1]
test = last.get("test_neg_elbo", last.get("test_loss"))
train = last.get("train_neg_elbo", last.get("train_loss"))
table = ("| | test −ELBO, nats per example | train −ELBO, last epoch |\n|---|---|---|\n"
         f"| ours (numpyvae, seed 0) | {test:.2f} | {train:.2f} |\n"
         "| pytorch/examples (published) | 105.6 | |\n"
         f"| ours − published | {test - 105.6:+.2f} | |\n")
footer = (f"\nCommand: `NUMPYVAE_DATA={os.environ.get('NUMPYVAE_DATA', '')} bash reproduce/pytorch_examples.sh`  \n"
          f"Wall time: {seconds} s (training and evaluation) on {platform.machine()}, {os.cpu_count()} cores, "
          f"NumPy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}\n")
open(os.path.join(out, "table.md"), "w").write(table + footer)
print(table + footer)
PY
