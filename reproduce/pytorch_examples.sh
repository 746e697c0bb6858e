#!/usr/bin/env bash
# Reproduce the pytorch/examples VAE setting with numpyvae's command line:
# MNIST grey levels, 784-400-20 with ReLU, Bernoulli likelihood, analytic KL,
# Adam 1e-3, batch 128, 10 epochs.  The published test loss for this setting
# is 105.6 nats per example.
#
#   NUMPYVAE_DATA=../shared/data bash scripts/reproduce_pytorch_examples.sh [OUT]
set -euo pipefail
out="${1:-runs/mnist-pytorch-examples}"
python -m numpyvae train --dataset mnist --hidden 400 --z-dim 20 --activation relu \
  --likelihood bernoulli --estimator analytic --optimizer adam --lr 1e-3 \
  --batch-size 128 --epochs 10 --seed 0 --out "$out" --no-progress
python -m numpyvae evaluate "$out/checkpoint.npz" --dataset mnist
