"""How many SST-2 dev words the SST-2 training phrases never show, and how
many of those IMDB's training reviews do: the case for `--extra-data`.
Words as the shipped SST-2 models see them (`standardize_contractions`).

Usage: python benchmarks/sst2_vocabulary.py [DATA_DIR]   (default ../shared/data)
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from attention_zoo.data import text_tsv  # noqa: E402
from attention_zoo.data.text import standardize_contractions  # noqa: E402


def words(texts) -> list[list[str]]:
    out = standardize_contractions(np.asarray(texts, dtype=object)).numpy()
    return [t.decode("utf-8").split() for t in out]


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    train = words(text_tsv(root / "sst2" / "train.tsv").texts)
    dev = words(text_tsv(root / "sst2" / "dev.tsv").texts)
    imdb = Counter(w for t in words(text_tsv(root / "imdb" / "train.tsv.gz").texts)
                   for w in t)
    seen = Counter(w for t in train for w in t)
    tokens = [w for t in dev for w in t]
    unseen = [w for w in tokens if w not in seen]
    print(f"$ python benchmarks/sst2_vocabulary.py {root}\n")
    print(f"SST-2 train: {len(train):,} phrases, {len(seen):,} distinct words")
    print(f"SST-2 dev: {len(dev):,} sentences, {len(tokens):,} words")
    print(f"dev words never in SST-2 train: {len(unseen):,} "
          f"({len(unseen) / len(tokens):.1%}), in "
          f"{sum(any(w not in seen for w in t) for t in dev) / len(dev):.1%} of dev sentences")
    print(f"... of those, in IMDB's training reviews: "
          f"{sum(w in imdb for w in unseen) / len(unseen):.1%} "
          f"(at least 5 times: {sum(imdb[w] >= 5 for w in unseen) / len(unseen):.1%})")
    print(f"IMDB train: {len(imdb):,} distinct words")


if __name__ == "__main__":
    main()
