#!/usr/bin/env bash
# The commands that trained the shipped weights (saved_models/*/card.json keeps
# each one too). Run from the repository root with ../shared/data present.
set -euo pipefail
D=../shared/data
attention-zoo train attn_cnn --data $D/cifar10/cifar10-train-jpeg.zip \
  --out runs/attn_cnn_cifar10 --ship attn_cnn_cifar10
