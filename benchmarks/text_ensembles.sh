#!/usr/bin/env bash
# The training runs behind text_ensembles_imdb.md and text_ensembles_sst2.md,
# one after another on the 2-core machine (run from the repository root), then
# the tables. `attention-zoo ensemble RUN... --data ... --out ...` builds any
# of the averaged models as one Keras model.
set -euo pipefail
D=../shared/data
IMDB="--data $D/imdb/train.tsv.gz --val-fraction 0.1 --precision float32 --class-names negative positive"
GRU="--encoder bigru --text-attention additive --vocab-size 30000 --max-length 2000 --truncating pre --embed-dim 128 --hidden 64 --epochs 1 --set decay=false"
for s in 0 1; do
  attention-zoo train attn_text $IMDB --out runs/ens/imdb_gru_s$s --seed $s $GRU
done
for s in 1 2; do
  attention-zoo train attn_text $IMDB --out runs/ens/imdb_gru_ema_s$s --seed $s $GRU --set ema=true
done
attention-zoo train attn_text $IMDB --out runs/ens/imdb_ng3 --encoder none --text-attention additive \
  --ngrams 3 --vocab-size 200000 --max-length 3000 --embed-dim 32 --epochs 4
SST2="--data $D/sst2/train.tsv --val-data $D/sst2/dev.tsv --precision float32 --class-names negative positive"
for s in 0 1 2; do
  attention-zoo train attn_text $SST2 --out runs/ens/sst2_gru_s$s --seed $s --encoder bigru \
    --text-attention additive --vocab-size 20000 --max-length 64 --embed-dim 128 --hidden 64 \
    --epochs 3 --batch-size 32 --set ema=true --set ema_momentum=0.999
done
python benchmarks/text_ensembles.py imdb runs/ens/imdb_gru_s0 runs/ens/imdb_gru_s1 \
  runs/ens/imdb_gru_ema_s1 runs/ens/imdb_gru_ema_s2 runs/ens/imdb_ng3 > benchmarks/text_ensembles_imdb.md
python benchmarks/text_ensembles.py sst2 runs/ens/sst2_gru_s0 runs/ens/sst2_gru_s1 \
  runs/ens/sst2_gru_s2 > benchmarks/text_ensembles_sst2.md
