#!/usr/bin/env bash
# NBTextClassifier (NBSVM) runs, and their averages with the attention
# BiGRUs of text_ensembles.sh and train_shipped.sh (those runs must exist),
# one after another on the 2-core machine, from the repository root.
set -euo pipefail
D=../shared/data
IMDB="--data $D/imdb/train.tsv.gz --val-fraction 0.1 --precision float32 --class-names negative positive"
SST2="--data $D/sst2/train.tsv --val-data $D/sst2/dev.tsv --precision float32 --class-names negative positive"
# runs/ship/imdb_nb (the default recipe) is made by train_shipped.sh.
attention-zoo train nb_text $IMDB --out runs/nb/imdb_nb_ls0 --vocab-size 1000000 --set label_smoothing=0
attention-zoo train nb_text $SST2 --out runs/nb/sst2_nb --vocab-size 300000
attention-zoo train nb_text $SST2 --out runs/nb/sst2_nb_ls0 --vocab-size 300000 --set label_smoothing=0
python benchmarks/text_ensembles.py imdb runs/ship/imdb_gru runs/ens/imdb_gru_ema_s1 \
  runs/ens/imdb_gru_ema_s2 runs/ship/imdb_nb runs/nb/imdb_nb_ls0 > benchmarks/text_nb_imdb.md
python benchmarks/text_ensembles.py sst2 runs/ens/sst2_gru_s0 runs/ens/sst2_gru_s1 \
  runs/ens/sst2_gru_s2 runs/nb/sst2_nb runs/nb/sst2_nb_ls0 > benchmarks/text_nb_sst2.md
