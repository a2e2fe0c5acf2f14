"""Positional embeddings added to a sequence of vectors."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from attention_zoo.layers.base import (InputError, TracedLayer,
                                       check_positive, check_shape,
                                       check_tensor)
from attention_zoo.layers.registry import SEQUENCE_BLOCK, register

MODES = ("sinusoidal", "learned")


def sinusoidal_table(length: int, width: int, base: float = 10000.0) -> np.ndarray:
    """``PE[p, 2i] = sin(p / base^(2i/width))``, ``PE[p, 2i+1] = cos(...)``,
    shape ``(length, width)``, float32."""
    positions = np.arange(length, dtype=np.float64)[:, None]
    rates = base ** (-(np.arange(width) // 2 * 2) / width)
    angles = positions * rates[None, :]
    table = np.where(np.arange(width) % 2 == 0, np.sin(angles), np.cos(angles))
    return table.astype("float32")


@register("positional", SEQUENCE_BLOCK)
class PositionalEmbedding(TracedLayer):
    """Adds a position code to each step: ``y_t = x_t + PE[t]``.

    ``mode="sinusoidal"`` uses the fixed table of Vaswani et al. (2017), no
    weights; ``mode="learned"`` learns ``PE`` of shape ``(max_length, D)``.

    Args:
        max_length: the longest sequence the layer accepts.
        mode: ``"sinusoidal"`` or ``"learned"``.

    Input and output ``(batch, T, D)`` with ``T <= max_length``; the Keras mask
    passes through.
    """

    def __init__(self, max_length: int, mode: str = "sinusoidal",
                 embeddings_initializer: Any = "uniform", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = check_positive("max_length", max_length)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, received {mode!r}")
        self.mode = mode
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        check_shape(self, input_shape, "inputs", (None, None, None))
        self._check_length(input_shape)
        self.width = input_shape[-1]
        if self.mode == "learned":
            self.embeddings = self.add_weight(
                name="embeddings", shape=(self.max_length, self.width),
                initializer=self.embeddings_initializer)
        else:
            self.table = sinusoidal_table(self.max_length, self.width)
        self.built = True

    def _check_length(self, shape: Any) -> None:
        if shape[1] is not None and shape[1] > self.max_length:
            raise InputError(
                f"PositionalEmbedding layer '{self.name}' expects inputs of "
                f"shape (None, <= {self.max_length}, {shape[-1]}), received "
                f"shape {tuple(shape)}: the sequence is longer than "
                f"max_length={self.max_length}.")

    def call(self, inputs: Any, mask: Any = None) -> Any:
        check_tensor(self, inputs, "inputs", (None, None, self.width))
        self._check_length(inputs.shape)
        length = ops.shape(inputs)[1]
        table = self.embeddings if self.mode == "learned" else self.table
        codes = ops.cast(table, inputs.dtype)[:length]
        return inputs + ops.expand_dims(codes, 0)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_length": self.max_length,
                "mode": self.mode,
                "embeddings_initializer":
                    keras.initializers.serialize(self.embeddings_initializer)}
