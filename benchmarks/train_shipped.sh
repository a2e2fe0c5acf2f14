#!/usr/bin/env bash
# The commands that trained the shipped weights (saved_models/*/card.json keeps
# each one too). Run from the repository root with ../shared/data present.
set -euo pipefail
D=../shared/data
# attn_cnn_cifar10: the default AttnCNN and recipe (cifar10_select:
# hard-example selection, 26 epochs; --epochs 26 spells out the default),
# seed 0, mixed_bfloat16 on a 2-core Intel Xeon with AMX (2026-12-06;
# benchmarks/cifar10_epochs.md, amx_select_e26); trained without --ship and
# shipped from its run folder afterwards.
attention-zoo train attn_cnn --data $D/cifar10/cifar10-train-jpeg.zip \
  --out runs/attn_cnn_amx_select_e26 --epochs 26
attention-zoo ship runs/attn_cnn_amx_select_e26 attn_cnn_cifar10
# attn_text_sst2: two attention BiGRUs trained on SST-2 plus IMDB's training
# reviews (their last 64 words) and an NBSVM on SST-2, averaged; the three
# members were chosen before any average of them was computed
# (benchmarks/text_sst2_extra.md has every average).
source benchmarks/sst2_extra_recipe.sh
sst2_gru 0
sst2_gru 1
sst2_nb runs/sst2x/nb 0
attention-zoo ensemble runs/sst2x/gru_s0 runs/sst2x/gru_s1 runs/sst2x/nb --data $D/sst2/train.tsv \
  --val-data $D/sst2/dev.tsv --out runs/sst2x/ens --ship attn_text_sst2
# attn_text_imdb: an attention BiGRU over whole reviews and an NBSVM, averaged.
IMDB="--data $D/imdb/train.tsv.gz --val-fraction 0.1 --precision float32 --class-names negative positive"
attention-zoo train attn_text $IMDB --out runs/ship/imdb_gru --seed 3 --encoder bigru \
  --text-attention additive --vocab-size 30000 --max-length 2000 --truncating pre \
  --embed-dim 128 --hidden 64 --epochs 1 --set decay=false --set ema=true
attention-zoo train nb_text $IMDB --out runs/ship/imdb_nb --vocab-size 1000000
attention-zoo ensemble runs/ship/imdb_gru runs/ship/imdb_nb --data $D/imdb/train.tsv.gz \
  --val-fraction 0.1 --out runs/ship/imdb --ship attn_text_imdb
