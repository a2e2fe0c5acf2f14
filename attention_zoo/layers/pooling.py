"""Attention pooling: a learned query summarizes a sequence."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from attention_zoo.layers.base import (TracedLayer, check_positive,
                                       check_rate, check_shape, check_tensor,
                                       float32_weight, masked_softmax)
from attention_zoo.layers.registry import SEQUENCE_BLOCK, register


@register("attention_pooling", SEQUENCE_BLOCK)
class AttentionPooling1D(TracedLayer):
    """Attention pooling over time (Yang et al., 2016, "Hierarchical attention
    networks"): ``s_t = u^T tanh(W x_t + b)``, ``a = softmax_t(s)``, output
    ``sum_t a_t x_t``. ``u`` is the learned query; scores and softmax run in
    float32.

    Args:
        units: width of the tanh layer (default: the input's width).
        dropout: dropout on the attention weights while training.

    Call: ``layer(inputs, mask=None, return_attention_scores=False,
    training=None)``; inputs ``(batch, T, D)``, mask ``(batch, T)`` (a Keras
    mask is picked up). Output ``(batch, D)``; scores ``(batch, T)``, 0 at
    masked steps. A fully masked sequence pools to zeros.
    """

    def __init__(self, units: int | None = None, dropout: float = 0.0,
                 kernel_initializer: Any = "glorot_uniform", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = None if units is None else check_positive("units", units)
        self.dropout = check_rate("dropout", dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True
        self._dropout = keras.layers.Dropout(self.dropout)

    def build(self, input_shape: Any) -> None:
        check_shape(self, input_shape, "inputs", (None, None, None))
        self.width = input_shape[-1]
        units = self.units or self.width
        self.w = float32_weight(self, "w", (self.width, units),
                                self.kernel_initializer)
        self.b = float32_weight(self, "b", (units,), "zeros")
        self.u = float32_weight(self, "u", (units,), self.kernel_initializer)
        self.built = True

    def call(self, inputs: Any, mask: Any = None,
             return_attention_scores: bool = False, training: Any = None) -> Any:
        check_tensor(self, inputs, "inputs", (None, None, self.width))
        hidden = ops.tanh(ops.matmul(ops.cast(inputs, "float32"), self.w) + self.b)
        weights = masked_softmax(ops.sum(hidden * self.u, axis=-1), mask)
        dropped = self._dropout(weights, training=training)
        pooled = ops.sum(ops.expand_dims(ops.cast(dropped, inputs.dtype), -1)
                         * inputs, axis=1)
        if return_attention_scores:
            return pooled, weights
        return pooled

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units,
                "dropout": self.dropout,
                "kernel_initializer":
                    keras.initializers.serialize(self.kernel_initializer)}
