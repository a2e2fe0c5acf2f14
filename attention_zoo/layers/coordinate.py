"""Coordinate attention: channel gates factorized along height and width."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from attention_zoo.layers.base import BottleneckAttention2D
from attention_zoo.layers.registry import FEATURE_MAP, register


@register("coordinate", FEATURE_MAP)
class CoordinateAttention(BottleneckAttention2D):
    """Coordinate attention (Hou et al., 2021, arXiv:2103.02907).

    Pools ``x`` along width and along height, encodes both strips with one
    shared ``1x1 conv(mip) -> BN -> h_swish``, and turns each strip back into
    a sigmoid gate: output ``x * a_h * a_w`` with ``a_h`` ``(batch, H, 1, C)``
    and ``a_w`` ``(batch, 1, W, C)``.

    Args:
        reduction, min_units: ``mip = max(min_units, C // reduction)``.

    Input and output ``(batch, H, W, C)``; maps ``{"height": a_h,
    "width": a_w}``.
    """

    def __init__(self, reduction: float = 32, min_units: int = 8,
                 **kwargs: Any) -> None:
        super().__init__(reduction, min_units, **kwargs)

    def build_gate(self, input_shape: tuple) -> None:
        mip = self.hidden
        layer = self.gate_sublayer
        self.conv = layer(keras.layers.Conv2D, mip, 1, name="conv")
        self.bn = layer(keras.layers.BatchNormalization, name="bn")
        self.conv_h = layer(keras.layers.Conv2D, self.channels, 1, name="conv_h")
        self.conv_w = layer(keras.layers.Conv2D, self.channels, 1, name="conv_w")
        self.conv.build((None, None, 1, self.channels))
        self.bn.build((None, None, 1, mip))
        self.conv_h.build((None, None, 1, mip))
        self.conv_w.build((None, None, 1, mip))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        height = ops.shape(x)[1]
        strip_h = ops.mean(x32, axis=2, keepdims=True)  # (b, H, 1, C)
        strip_w = ops.transpose(ops.mean(x32, axis=1, keepdims=True),
                                (0, 2, 1, 3))  # (b, W, 1, C)
        # One conv + BN over both strips, so they share statistics (paper).
        y = ops.concatenate([strip_h, strip_w], axis=1)
        y = ops.hard_silu(self.bn(self.conv(y), training=training))
        gate_h = ops.sigmoid(self.conv_h(y[:, :height]))
        gate_w = ops.sigmoid(self.conv_w(ops.transpose(y[:, height:],
                                                       (0, 2, 1, 3))))
        gate = ops.cast(gate_h * gate_w, x.dtype)
        return x * gate, {"height": gate_h, "width": gate_w}
