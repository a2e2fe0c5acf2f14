# The attn_text_sst2 recipe's members, as shell functions; sourced by
# train_shipped.sh (the shipped seeds) and text_sst2_extra.sh (a replication).
D=${D:-../shared/data}
SST2="--data $D/sst2/train.tsv --val-data $D/sst2/dev.tsv --split-contractions --precision float32 --class-names negative positive"

# sst2_gru SEED: an attention BiGRU on SST-2 plus IMDB's training reviews
# (their last 64 words) -> runs/sst2x/gru_s<SEED>
sst2_gru() {
  attention-zoo train attn_text $SST2 --extra-data $D/imdb/train.tsv.gz --out runs/sst2x/gru_s$1 \
    --seed $1 --encoder bigru --text-attention additive --vocab-size 50000 --max-length 64 \
    --truncating pre --embed-dim 128 --hidden 64 --epochs 2 --batch-size 32 \
    --set ema=true --set ema_momentum=0.999
}

# sst2_nb OUT SEED: the NBSVM on SST-2 alone
sst2_nb() {
  attention-zoo train nb_text $SST2 --out $1 --seed $2 --vocab-size 300000
}
