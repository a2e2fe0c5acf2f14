"""Callbacks and atomic saving: checkpoints never left half-written,
throughput per epoch."""

from __future__ import annotations

import os
import time
from pathlib import Path

import keras


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the whole model to ``path`` every epoch: written to a temporary
    name and renamed, so a kill never leaves half a file."""

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        save_atomically(self.model, self.path)


class Throughput(keras.callbacks.Callback):
    """Records wall time and training images/s of each epoch into the logs."""

    def __init__(self, examples_per_epoch: int) -> None:
        super().__init__()
        self.examples = examples_per_epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._start
        if logs is not None:
            logs["epoch_seconds"] = seconds
            logs["train_examples_per_second"] = self.examples / seconds


def save_atomically(model: keras.Model, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
    tmp = path.with_name(f".{path.name}.tmp{suffix}")
    if suffix == ".weights.h5":
        model.save_weights(tmp)
    else:
        model.save(tmp)
    os.replace(tmp, path)
