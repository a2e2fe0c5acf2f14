"""Spatial attention: CBAM's spatial module, CBAM (and timm's light CBAM)
and BAM."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from attention_zoo.layers.base import (BottleneckAttention2D,
                                       FeatureMapAttention, check_positive)
from attention_zoo.layers.channel import ChannelAttention, TimmBottleneck2D
from attention_zoo.layers.options import check_bool
from attention_zoo.layers.registry import FEATURE_MAP, alias, register


@register("spatial", FEATURE_MAP)
class SpatialAttention(FeatureMapAttention):
    """CBAM's spatial module (Woo et al., 2018, arXiv:1807.06521):
    ``gate = sigmoid(conv_k([mean_c(x); max_c(x)]))``, output ``x * gate``;
    with ``light=True`` (timm's ``LightSpatialAttn``) the two maps are mixed
    into one first, ``gate = sigmoid(conv_k(0.5 mean_c(x) + 0.5 max_c(x)))``.
    With ``batch_norm=True`` the convolution has no bias and is followed by
    BatchNormalization (timm's ``ConvNormAct``).

    Args:
        kernel_size: size of the square convolution (7 in the paper).
        batch_norm: BatchNormalization after a bias-free convolution.
        epsilon: its epsilon (timm's BatchNorm2d: 1e-5).
        light: one input map instead of two.

    Input and output ``(batch, H, W, C)``; map: the spatial gate
    ``(batch, H, W, 1)``.

    timm's ``SpatialAttn`` is ``batch_norm=True`` (the zoo's default: a
    convolution with bias and no norm).
    """

    def __init__(self, kernel_size: int = 7, batch_norm: bool = False,
                 epsilon: float = 1e-5, light: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_size = check_positive("kernel_size", kernel_size)
        self.batch_norm = check_bool("batch_norm", batch_norm)
        self.epsilon = float(check_positive("epsilon", epsilon, integer=False))
        self.light = check_bool("light", light)

    def build_gate(self, input_shape: tuple) -> None:
        self.conv = self.gate_sublayer(keras.layers.Conv2D, 1, self.kernel_size,
                                       padding="same", use_bias=not self.batch_norm,
                                       name="conv")
        self.conv.build((None, None, None, 1 if self.light else 2))
        if self.batch_norm:
            self.bn = self.gate_sublayer(keras.layers.BatchNormalization,
                                         epsilon=self.epsilon, name="bn")
            self.bn.build((None, None, None, 1))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        mean = ops.mean(x32, axis=-1, keepdims=True)
        peak = ops.max(x32, axis=-1, keepdims=True)
        if self.light:
            pooled = 0.5 * mean + 0.5 * peak
        else:
            pooled = ops.concatenate([mean, peak], axis=-1)
        logits = self.conv(pooled)
        if self.batch_norm:
            logits = self.bn(logits, training=training)
        gate = ops.sigmoid(logits)
        return x * ops.cast(gate, x.dtype), gate

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "batch_norm": self.batch_norm, "epsilon": self.epsilon,
                "light": self.light}


@register("cbam", FEATURE_MAP)
class CBAM(TimmBottleneck2D):
    """Convolutional block attention module (Woo et al., 2018,
    arXiv:1807.06521): channel attention, then spatial attention on its
    output (``ChannelAttention`` and ``SpatialAttention``).

    Args:
        reduction, min_units, divisor, hidden_units: the channel MLP's hidden
            width (see ``TimmBottleneck2D``).
        kernel_size: of the spatial convolution.
        use_bias: biases in the channel MLP.
        batch_norm, epsilon: the spatial convolution without bias, then
            BatchNormalization with this epsilon.
        light: timm's light CBAM: mean and max mixed before the channel MLP
            and before the spatial convolution.

    Input and output ``(batch, H, W, C)``; maps: ``{"channel": (batch, 1, 1,
    C), "spatial": (batch, H, W, 1)}``.

    Differs from timm's ``cbam`` (``CbamModule``), which is ``min_units=1,
    divisor=1, use_bias=False, batch_norm=True`` (hidden width: ``C / 16``
    rounded, at least 1; the zoo's: ``max(8, C // 16)``). timm's ``lcbam``
    (``LightCbamModule``) is registered as ``"lcbam"`` (those and
    ``light=True``).
    """

    def __init__(self, reduction: float = 16, min_units: int = 8,
                 kernel_size: int = 7, use_bias: bool = True,
                 batch_norm: bool = False, epsilon: float = 1e-5,
                 light: bool = False, **kwargs: Any) -> None:
        super().__init__(reduction, min_units, **kwargs)
        self.kernel_size = check_positive("kernel_size", kernel_size)
        self.use_bias = check_bool("use_bias", use_bias)
        self.batch_norm = check_bool("batch_norm", batch_norm)
        self.epsilon = float(check_positive("epsilon", epsilon, integer=False))
        self.light = check_bool("light", light)

    def build_gate(self, input_shape: tuple) -> None:
        self.channel = self.gate_sublayer(
            ChannelAttention, self.reduction, self.min_units, light=self.light,
            use_bias=self.use_bias, divisor=self.divisor,
            hidden_units=self.hidden_units, name="channel")
        self.spatial = self.gate_sublayer(
            SpatialAttention, self.kernel_size, batch_norm=self.batch_norm,
            epsilon=self.epsilon, light=self.light, name="spatial")
        self.channel.build(input_shape)
        self.spatial.build(input_shape)

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        refined, channel = self.channel(x32, return_attention_scores=True,
                                        training=training)
        refined, spatial = self.spatial(refined, return_attention_scores=True,
                                        training=training)
        return ops.cast(refined, x.dtype), {"channel": channel, "spatial": spatial}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "use_bias": self.use_bias, "batch_norm": self.batch_norm,
                "epsilon": self.epsilon, "light": self.light}


alias("lcbam", "cbam", min_units=1, divisor=1, use_bias=False, batch_norm=True,
      light=True)


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
