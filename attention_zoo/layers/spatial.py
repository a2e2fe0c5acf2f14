"""Spatial attention: CBAM's spatial module, CBAM and BAM."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from attention_zoo.layers.base import (BottleneckAttention2D,
                                       FeatureMapAttention, check_positive)
from attention_zoo.layers.channel import ChannelAttention
from attention_zoo.layers.registry import FEATURE_MAP, register


@register("spatial", FEATURE_MAP)
class SpatialAttention(FeatureMapAttention):
    """CBAM's spatial module (Woo et al., 2018, arXiv:1807.06521):
    ``gate = sigmoid(conv_k([mean_c(x); max_c(x)]))``, output ``x * gate``.

    Args:
        kernel_size: size of the square convolution (7 in the paper).

    Input and output ``(batch, H, W, C)``; map: the spatial gate
    ``(batch, H, W, 1)``.
    """

    def __init__(self, kernel_size: int = 7, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_size = check_positive("kernel_size", kernel_size)

    def build_gate(self, input_shape: tuple) -> None:
        self.conv = self.gate_sublayer(keras.layers.Conv2D, 1, self.kernel_size,
                                       padding="same", name="conv")
        self.conv.build((None, None, None, 2))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        pooled = ops.concatenate([ops.mean(x32, axis=-1, keepdims=True),
                                  ops.max(x32, axis=-1, keepdims=True)], axis=-1)
        gate = ops.sigmoid(self.conv(pooled))
        return x * ops.cast(gate, x.dtype), gate

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size}


@register("cbam", FEATURE_MAP)
class CBAM(BottleneckAttention2D):
    """Convolutional block attention module (Woo et al., 2018): channel
    attention, then spatial attention on its output.

    Args:
        reduction, min_units: of the channel MLP.
        kernel_size: of the spatial convolution.

    Input and output ``(batch, H, W, C)``; maps: ``{"channel": (batch, 1, 1,
    C), "spatial": (batch, H, W, 1)}``.
    """

    def __init__(self, reduction: float = 16, min_units: int = 8,
                 kernel_size: int = 7, **kwargs: Any) -> None:
        super().__init__(reduction, min_units, **kwargs)
        self.kernel_size = check_positive("kernel_size", kernel_size)

    def build_gate(self, input_shape: tuple) -> None:
        self.channel = self.gate_sublayer(ChannelAttention, self.reduction,
                                          self.min_units, name="channel")
        self.spatial = self.gate_sublayer(SpatialAttention, self.kernel_size,
                                          name="spatial")
        self.channel.build(input_shape)
        self.spatial.build(input_shape)

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        refined, channel = self.channel(x32, return_attention_scores=True)
        refined, spatial = self.spatial(refined, return_attention_scores=True)
        return ops.cast(refined, x.dtype), {"channel": channel, "spatial": spatial}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size}


@register("bam", FEATURE_MAP)
class BottleneckAttention(BottleneckAttention2D):
    """Bottleneck attention module (Park et al., 2018, arXiv:1807.06514).

    ``M = sigmoid(channel(x) + spatial(x))``, output ``x * (1 + M)``, where
    ``channel`` is ``mean_hw -> Dense(C/r) -> BN -> ReLU -> Dense(C)`` and
    ``spatial`` is ``1x1 conv(C/r) -> BN -> ReLU -> 2 x [3x3 conv dilated d ->
    BN -> ReLU] -> 1x1 conv(1)``.

    Args:
        reduction, min_units: bottleneck width ``max(min_units, C // r)``.
        dilation: dilation ``d`` of the 3x3 convolutions (4 in the paper).

    Input and output ``(batch, H, W, C)``; map: ``M`` ``(batch, H, W, C)``.
    """

    def __init__(self, reduction: float = 16, min_units: int = 8,
                 dilation: int = 4, **kwargs: Any) -> None:
        super().__init__(reduction, min_units, **kwargs)
        self.dilation = check_positive("dilation", dilation)

    def build_gate(self, input_shape: tuple) -> None:
        hidden = self.hidden
        layer = self.gate_sublayer
        self.channel_fc1 = layer(keras.layers.Dense, hidden, name="channel_fc1")
        self.channel_bn = layer(keras.layers.BatchNormalization, name="channel_bn")
        self.channel_fc2 = layer(keras.layers.Dense, self.channels,
                                 name="channel_fc2")
        self.spatial_convs = [
            layer(keras.layers.Conv2D, hidden, 1, name="spatial_reduce"),
            *(layer(keras.layers.Conv2D, hidden, 3, padding="same",
                    dilation_rate=self.dilation, name=f"spatial_dilated{i}")
              for i in (1, 2))]
        self.spatial_bns = [layer(keras.layers.BatchNormalization,
                                  name=f"spatial_bn{i}") for i in range(3)]
        self.spatial_out = layer(keras.layers.Conv2D, 1, 1, name="spatial_out")
        self.channel_fc1.build((None, 1, 1, self.channels))
        self.channel_bn.build((None, 1, 1, hidden))
        self.channel_fc2.build((None, 1, 1, hidden))
        width = self.channels
        for conv, bn in zip(self.spatial_convs, self.spatial_bns):
            conv.build((None, None, None, width))
            bn.build((None, None, None, hidden))
            width = hidden
        self.spatial_out.build((None, None, None, hidden))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        channel = self.channel_fc1(ops.mean(x32, axis=(1, 2), keepdims=True))
        channel = ops.relu(self.channel_bn(channel, training=training))
        channel = self.channel_fc2(channel)
        spatial = x32
        for conv, bn in zip(self.spatial_convs, self.spatial_bns):
            spatial = ops.relu(bn(conv(spatial), training=training))
        spatial = self.spatial_out(spatial)
        attention = ops.sigmoid(channel + spatial)
        return x * ops.cast(1.0 + attention, x.dtype), attention

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dilation": self.dilation}
