#!/usr/bin/env bash
# The commands that trained the shipped weights (saved_models/*/card.json keeps
# each one too). Run from the repository root with ../shared/data present.
set -euo pipefail
D=../shared/data
attention-zoo train attn_cnn --data $D/cifar10/cifar10-train-jpeg.zip \
  --out runs/attn_cnn_cifar10 --ship attn_cnn_cifar10
attention-zoo train attn_text --data $D/sst2/train.tsv --val-data $D/sst2/dev.tsv \
  --out runs/attn_text_sst2 --encoder bigru --text-attention additive \
  --vocab-size 20000 --max-length 64 --epochs 3 --precision float32 \
  --class-names negative positive --ship attn_text_sst2
attention-zoo train attn_text --data $D/imdb/train.tsv.gz --val-fraction 0.1 \
  --out runs/attn_text_imdb_ng3 --encoder none --text-attention additive \
  --ngrams 3 --vocab-size 200000 --max-length 1200 --embed-dim 32 --epochs 4 \
  --precision float32 --class-names negative positive --ship attn_text_imdb
