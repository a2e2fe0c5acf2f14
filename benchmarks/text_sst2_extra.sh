#!/usr/bin/env bash
# SST-2 with IMDB's training reviews as extra training texts: a replication of
# the shipped attn_text_sst2 recipe (benchmarks/train_shipped.sh: seeds 0 and
# 1 and the NBSVM) with fresh seeds, then the tables. Run from the repository
# root, one command after another on the 2-core machine.
set -euo pipefail
source benchmarks/sst2_extra_recipe.sh
sst2_gru 2
sst2_gru 3
sst2_nb runs/sst2x/nb_s1 1
python benchmarks/text_ensembles.py sst2 runs/sst2x/gru_s2 runs/sst2x/gru_s3 runs/sst2x/nb_s1 \
  > benchmarks/text_sst2_replication.md
