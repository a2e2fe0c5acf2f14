#!/usr/bin/env bash
# SST-2 with IMDB's training reviews as extra training texts: a replication of
# the shipped attn_text_sst2 recipe (benchmarks/train_shipped.sh: seeds 0 and
# 1 and the NBSVM) with fresh seeds, then the tables. Run from the repository
# root, one command after another on the 2-core machine.
set -euo pipefail
D=../shared/data
SST2="--data $D/sst2/train.tsv --val-data $D/sst2/dev.tsv --split-contractions --precision float32 --class-names negative positive"
for s in 2 3; do
  attention-zoo train attn_text $SST2 --extra-data $D/imdb/train.tsv.gz --out runs/sst2x/gru_s$s \
    --seed $s --encoder bigru --text-attention additive --vocab-size 50000 --max-length 64 \
    --truncating pre --embed-dim 128 --hidden 64 --epochs 2 --batch-size 32 \
    --set ema=true --set ema_momentum=0.999
done
attention-zoo train nb_text $SST2 --out runs/sst2x/nb_s1 --seed 1 --vocab-size 300000
python benchmarks/text_ensembles.py sst2 runs/sst2x/gru_s2 runs/sst2x/gru_s3 runs/sst2x/nb_s1 \
  > benchmarks/text_sst2_replication.md
