"""Channel attention: squeeze-excite, ECA and CBAM's channel module."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from attention_zoo.layers.base import (BottleneckAttention2D,
                                       FeatureMapAttention, check_positive)
from attention_zoo.layers.registry import FEATURE_MAP, alias, register


class _ChannelMLP(BottleneckAttention2D):
    """Gates channels through an MLP ``C -> hidden -> C``."""

    def build_gate(self, input_shape: tuple) -> None:
        self.fc1 = self.gate_sublayer(keras.layers.Dense, self.hidden,
                                      activation="relu", name="fc1")
        self.fc2 = self.gate_sublayer(keras.layers.Dense, self.channels,
                                      name="fc2")
        self.fc1.build((None, 1, 1, self.channels))
        self.fc2.build((None, 1, 1, self.hidden))

    def mlp(self, pooled: Any) -> Any:
        return self.fc2(self.fc1(pooled))


@register("se", FEATURE_MAP)
class SqueezeExcite(_ChannelMLP):
    """Squeeze-and-excitation (Hu et al., 2018, arXiv:1709.01507).

    ``gate = sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2)``, output ``x * gate``.
    Input and output ``(batch, H, W, C)``; map: the channel gate
    ``(batch, 1, 1, C)``.

    Args:
        reduction: bottleneck ratio ``r`` (hidden width ``C // r``).
        min_units: smallest hidden width.
    """

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        gate = ops.sigmoid(self.mlp(ops.mean(x32, axis=(1, 2), keepdims=True)))
        return x * ops.cast(gate, x.dtype), gate


@register("channel", FEATURE_MAP)
class ChannelAttention(_ChannelMLP):
    """CBAM's channel module (Woo et al., 2018, arXiv:1807.06521): one MLP
    shared by average- and max-pooled descriptors,
    ``gate = sigmoid(MLP(mean_hw(x)) + MLP(max_hw(x)))``, output ``x * gate``.
    Input and output ``(batch, H, W, C)``; map ``(batch, 1, 1, C)``.
    """

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        avg = self.mlp(ops.mean(x32, axis=(1, 2), keepdims=True))
        peak = self.mlp(ops.max(x32, axis=(1, 2), keepdims=True))
        gate = ops.sigmoid(avg + peak)
        return x * ops.cast(gate, x.dtype), gate


def eca_kernel_size(channels: int, gamma: float = 2.0, b: float = 1.0) -> int:
    """ECA's adaptive kernel: the odd number nearest ``|log2(C) + b| / gamma``."""
    k = int(abs((math.log2(channels) + b) / gamma))
    return k if k % 2 else k + 1


@register("eca", FEATURE_MAP)
class EfficientChannelAttention(FeatureMapAttention):
    """ECA (Wang et al., 2020, arXiv:1910.03151): a 1-D convolution of size
    ``k`` across the pooled channel descriptor, no dimensionality reduction.
    ``gate = sigmoid(conv1d_k(mean_hw(x)))``, output ``x * gate``.

    Args:
        kernel_size: ``k``; None picks it from ``C`` (``eca_kernel_size``).
        gamma, b: the adaptive-size constants of the paper.

    Input and output ``(batch, H, W, C)``; map ``(batch, 1, 1, C)``.
    """

    def __init__(self, kernel_size: int | None = None, gamma: float = 2.0,
                 b: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_size = None if kernel_size is None else check_positive(
            "kernel_size", kernel_size)
        self.gamma = float(check_positive("gamma", gamma, integer=False))
        self.b = float(b)

    def build_gate(self, input_shape: tuple) -> None:
        k = self.kernel_size or eca_kernel_size(self.channels, self.gamma, self.b)
        self.conv = self.gate_sublayer(keras.layers.Conv1D, 1, k, padding="same",
                                       use_bias=False, name="conv")
        self.conv.build((None, self.channels, 1))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        pooled = ops.expand_dims(ops.mean(x32, axis=(1, 2)), -1)  # (b, C, 1)
        gate = ops.sigmoid(self.conv(pooled))
        gate = ops.reshape(gate, (-1, 1, 1, self.channels))
        return x * ops.cast(gate, x.dtype), gate

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "gamma": self.gamma, "b": self.b}


alias("squeeze_excite", "se")
