"""Global context (GCNet) attention."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from attention_zoo.layers.base import BottleneckAttention2D
from attention_zoo.layers.registry import FEATURE_MAP, register


@register("gc", FEATURE_MAP)
class GlobalContext(BottleneckAttention2D):
    """Global context block (Cao et al., 2019, arXiv:1904.11492).

    One softmax over all ``H * W`` positions, ``a = softmax_hw(x W_k)``, pools
    a context ``c = sum_hw a x``; a bottleneck transform
    ``T(c) = W_2 relu(LN(W_1 c))`` is added to every position:
    output ``x + T(c)``.

    Args:
        reduction, min_units: bottleneck width ``max(min_units, C // r)``.

    Input and output ``(batch, H, W, C)``; map: ``a`` ``(batch, H, W, 1)``.
    """

    def build_gate(self, input_shape: tuple) -> None:
        hidden = self.hidden
        layer = self.gate_sublayer
        self.attention_logits = layer(keras.layers.Dense, 1, name="attention_logits")
        self.transform_fc1 = layer(keras.layers.Dense, hidden, name="transform_fc1")
        self.transform_norm = layer(keras.layers.LayerNormalization,
                                    name="transform_norm")
        self.transform_fc2 = layer(keras.layers.Dense, self.channels,
                                   name="transform_fc2")
        self.attention_logits.build((None, None, None, self.channels))
        self.transform_fc1.build((None, 1, 1, self.channels))
        self.transform_norm.build((None, 1, 1, hidden))
        self.transform_fc2.build((None, 1, 1, hidden))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        logits = self.attention_logits(x32)  # (b, H, W, 1)
        # Softmax over two axes, spelled out so it lowers to TFLite built-ins.
        logits = logits - ops.max(logits, axis=(1, 2), keepdims=True)
        weights = ops.exp(logits)
        weights = weights / ops.sum(weights, axis=(1, 2), keepdims=True)
        context = ops.sum(x32 * weights, axis=(1, 2), keepdims=True)
        transform = ops.relu(self.transform_norm(self.transform_fc1(context)))
        transform = self.transform_fc2(transform)
        return x + ops.cast(transform, x.dtype), weights
