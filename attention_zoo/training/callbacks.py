"""Callbacks and atomic saving: checkpoints never left half-written,
throughput per epoch."""

from __future__ import annotations

import os
import time
from pathlib import Path

import keras

from attention_zoo.files import replacing


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
    weights_only = path.name.endswith(".weights.h5")
    with replacing(path, ".weights.h5" if weights_only else path.suffix) as tmp:
        if weights_only:
            model.save_weights(tmp)
        else:
            model.save(tmp)


def look_ahead(optimizer: keras.optimizers.Optimizer, variables: list,
               period: int) -> None:
    """After a step: when the optimizer's step count is a multiple of
    ``period``, replaces ``variables`` by its EMA of them."""
    if int(optimizer.iterations.numpy()) % period:
        return
    for variable, average in zip(variables, optimizer._model_variables_moving_average):
        if average is not None:
            variable.assign(average)


class Lookahead(keras.callbacks.Callback):
    """airbench's lookahead: every ``period`` steps the weights are replaced
    by the optimizer's weight EMA (``use_ema=True``). A callback rather than
    Keras's ``ema_overwrite_frequency``, whose in-graph conditional fails
    under tf.distribute (``merge_call`` inside a cond)."""

    def __init__(self, period: int) -> None:
        super().__init__()
        if not isinstance(period, int) or period < 1:
            raise ValueError(f"period must be an int >= 1, received {period!r}")
        self.period = period

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        look_ahead(self.model.optimizer, self.model.trainable_variables, self.period)
