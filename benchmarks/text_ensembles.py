"""Validation accuracy of trained text runs and of every average of two or
more of them (the ensembles `attention-zoo ensemble` would build).

    python benchmarks/text_ensembles.py imdb runs/a runs/b runs/c > out.md
    python benchmarks/text_ensembles.py sst2 runs/x runs/y > out.md

imdb: the seeded stratified 10% of ../shared/data/imdb/train.tsv.gz that
training held out; sst2: ../shared/data/sst2/dev.tsv. Each run's
probabilities are cached in <run>/val_probs.npy.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def validation(task: str):
    from attention_zoo import data

    if task == "imdb":
        return data.stratified_split(data.text_tsv(DATA / "imdb" / "train.tsv.gz"),
                                     0.1, 0)[1]
    if task == "sst2":
        return data.text_tsv(DATA / "sst2" / "dev.tsv")
    raise SystemExit(f"task must be imdb or sst2, received {task!r}")


def probabilities(run: Path, texts: np.ndarray) -> np.ndarray:
    cache = run / "val_probs.npy"
    if cache.is_file():
        return np.load(cache)
    import keras

    import attention_zoo.models  # noqa: F401  (registers the layers)
    from attention_zoo.models.text import as_text_tensor

    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    # Batches of similar lengths: each is padded to its longest text only.
    order = np.argsort([len(t.split()) for t in texts], kind="stable")
    p = np.zeros(len(texts))
    for i in range(0, len(order), 128):
        index = order[i:i + 128]
        p[index] = model.predict(as_text_tensor(list(texts[index])), verbose=0)[:, 1]
    np.save(cache, p)
    return p


def main(task: str, runs: list[str]) -> None:
    val = validation(task)
    y = np.asarray(val.labels)
    probs = {Path(r).name: probabilities(Path(r), val.texts) for r in runs}
    print(f"$ python benchmarks/text_ensembles.py {task} {' '.join(runs)}\n")
    print(f"{task} validation texts: {len(y)}; ensemble = mean of the members' "
          f"probabilities\n")
    print("| run | command (abridged) | wall s | val accuracy |\n|---|---|---|---|")
    for run in runs:
        summary = json.loads((Path(run) / "summary.json").read_text())
        command = summary["command"].split(" --out ")[1]
        acc = np.mean((probs[Path(run).name] > 0.5) == y)
        print(f"| {Path(run).name} | `--out {command}` | {summary['wall_seconds']} "
              f"| {acc:.2%} |")
    print("\n| ensemble | val accuracy |\n|---|---|")
    for n in range(2, len(runs) + 1):
        for combo in itertools.combinations(probs, n):
            acc = np.mean((np.mean([probs[k] for k in combo], 0) > 0.5) == y)
            print(f"| {' + '.join(combo)} | {acc:.2%} |")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2:])
