"""Coordinate-style attention: gates computed from the feature map pooled
along width (one descriptor per row) and along height (one per column).

Hou et al.'s coordinate attention and timm's variants of it: simple
coordinate attention, efficient local attention (ELA) and strip attention.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import keras
from keras import ops

from attention_zoo.layers.base import (BottleneckAttention2D,
                                       FeatureMapAttention, check_positive)
from attention_zoo.layers.options import (GATES, check_bool, check_choice,
                                          check_odd, make_divisible)
from attention_zoo.layers.registry import FEATURE_MAP, alias, register

#: Activations of the strip encoders by name (timm's ``act_layer``); None is
#: the identity.
ACTIVATIONS: dict[str | None, Callable[[Any], Any]] = {
    None: lambda x: x,
    "relu": ops.relu,
    "silu": ops.silu,
    "hard_swish": ops.hard_silu,
}

class _StripAttention(FeatureMapAttention):
    """What the layers here share: the strip descriptors, the gate function
    and timm's optional residual (``output = x * gate + x``)."""

    def __init__(self, *args: Any, gate: str = "sigmoid", residual: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = check_choice("gate", gate, GATES)
        self.residual = check_bool("residual", residual)

    @staticmethod
    def strips(x32: Any) -> tuple[Any, Any]:
        """The means over width ``(b, H, 1, C)`` and over height ``(b, 1, W, C)``."""
        return ops.mean(x32, axis=2, keepdims=True), ops.mean(x32, axis=1, keepdims=True)

    def gate_fn(self, logits: Any) -> Any:
        return GATES[self.gate](logits)

    def gated(self, x: Any, gate: Any) -> Any:
        """``x * gate`` in ``x``'s dtype (the gate is float32), plus ``x``
        with ``residual``."""
        y = x * ops.cast(gate, x.dtype)
        return y + x if self.residual else y

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gate": self.gate, "residual": self.residual}


class _BottleneckStrips(_StripAttention, BottleneckAttention2D):
    """Strip layers that squeeze ``C`` channels to a bottleneck width:
    ``units`` when given; else, with ``divisor``, timm's rounding
    ``make_divisible(C / reduction, divisor, min_units, round_limit=0)``; else
    ``max(min_units, C // reduction)`` capped at ``C``."""

    def __init__(self, reduction: float, min_units: int, units: int | None,
                 divisor: int | None, activation: str | None, use_bias: bool,
                 **kwargs: Any) -> None:
        super().__init__(reduction, min_units, **kwargs)
        self.units = None if units is None else check_positive("units", units)
        self.divisor = None if divisor is None else check_positive("divisor", divisor)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.use_bias = check_bool("use_bias", use_bias)

    @property
    def hidden(self) -> int:
        if self.units is not None:
            return self.units
        if self.divisor is not None:
            return make_divisible(self.channels / self.reduction, self.divisor,
                                  self.min_units, round_limit=0.0)
        return super().hidden

    def act(self, y: Any) -> Any:
        return ACTIVATIONS[self.activation](y)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "divisor": self.divisor,
                "activation": self.activation, "use_bias": self.use_bias}


@register("coordinate", FEATURE_MAP)
class CoordinateAttention(_BottleneckStrips):
    """Coordinate attention (Hou et al., 2021, arXiv:2103.02907).

    Pools ``x`` along width and along height, encodes both strips with one
    shared ``1x1 conv(mip) -> BN -> act``, and turns each strip back into a
    gate with its own 1x1 convolution::

        y = act(BN(conv([mean_w(x); mean_h(x)^T])))     # (b, H + W, 1, mip)
        a_h = gate(conv_h(y[:H]))                        # (b, H, 1, C)
        a_w = gate(conv_w(y[H:]^T))                      # (b, 1, W, C)
        output = x * a_h * a_w   (+ x with residual)

    The factory name ``coord`` is timm's ``CoordAttn`` (``reduction=24``
    i.e. timm's ``rd_ratio * se_factor = 1/16 * 2/3``, ``divisor=8``, no
    biases, BN epsilon 1e-5 and momentum 0.9).

    Args:
        reduction, min_units: ``mip = max(min_units, C // reduction)``
            (at most ``C``); with ``divisor``, timm's
            ``make_divisible(C / reduction, divisor, min_units)``.
        units: ``mip`` itself (timm's ``rd_channels``); overrides the above.
        divisor: round ``mip`` to a multiple of it, as timm does.
        activation: ``"hard_swish"``, ``"silu"``, ``"relu"`` or None.
        use_bias: biases of the three convolutions.
        batch_norm: the BN after the shared convolution; False drops it.
        epsilon, momentum: of that BN (Keras's convention).
        gate: ``"sigmoid"`` or ``"hard_sigmoid"``.
        residual: add ``x`` to the output (timm's ``has_skip``).

    Input and output ``(batch, H, W, C)``; maps ``{"height": a_h,
    "width": a_w}``.
    """

    def __init__(self, reduction: float = 32, min_units: int = 8,
                 units: int | None = None, divisor: int | None = None,
                 activation: str | None = "hard_swish", use_bias: bool = True,
                 batch_norm: bool = True, epsilon: float = 1e-3,
                 momentum: float = 0.99, gate: str = "sigmoid",
                 residual: bool = False, **kwargs: Any) -> None:
        super().__init__(reduction, min_units, units, divisor, activation,
                         use_bias, gate=gate, residual=residual, **kwargs)
        self.batch_norm = check_bool("batch_norm", batch_norm)
        self.epsilon = float(check_positive("epsilon", epsilon, integer=False))
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) \
                or not 0.0 <= momentum <= 1.0:
            raise ValueError(
                f"momentum must be a number in [0, 1], received {momentum!r}")
        self.momentum = float(momentum)

    def build_gate(self, input_shape: tuple) -> None:
        mip = self.hidden
        layer = self.gate_sublayer
        # Sublayer names are those of files saved before the timm options.
        self.conv = layer(keras.layers.Conv2D, mip, 1, use_bias=self.use_bias,
                          name="conv")
        self.bn = layer(keras.layers.BatchNormalization, epsilon=self.epsilon,
                        momentum=self.momentum, name="bn") if self.batch_norm else None
        self.conv_h = layer(keras.layers.Conv2D, self.channels, 1,
                            use_bias=self.use_bias, name="conv_h")
        self.conv_w = layer(keras.layers.Conv2D, self.channels, 1,
                            use_bias=self.use_bias, name="conv_w")
        self.conv.build((None, None, 1, self.channels))
        if self.bn is not None:
            self.bn.build((None, None, 1, mip))
        self.conv_h.build((None, None, 1, mip))
        self.conv_w.build((None, None, 1, mip))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        height = ops.shape(x)[1]
        strip_h, strip_w = self.strips(x32)
        # One conv + BN over both strips, so they share statistics (paper).
        y = self.conv(ops.concatenate(
            [strip_h, ops.transpose(strip_w, (0, 2, 1, 3))], axis=1))
        if self.bn is not None:
            y = self.bn(y, training=training)
        y = self.act(y)
        gate_h = self.gate_fn(self.conv_h(y[:, :height]))
        gate_w = self.gate_fn(self.conv_w(
            ops.transpose(y[:, height:], (0, 2, 1, 3))))
        return self.gated(x, gate_h * gate_w), {"height": gate_h, "width": gate_w}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "batch_norm": self.batch_norm,
                "epsilon": self.epsilon, "momentum": self.momentum}


@register("scoord", FEATURE_MAP)
class SimpleCoordinateAttention(_BottleneckStrips):
    """Simple coordinate attention (timm's ``SimpleCoordAttn``, a variant of
    Hou et al., 2021, arXiv:2103.02907): dense layers instead of 1x1
    convolutions, no normalization, and the two strips' logits added before
    one gate::

        a_h = fc_h(act(fc1(mean_w(x))))                  # (b, H, 1, C)
        a_w = fc_w(act(fc1(mean_h(x))))                  # (b, 1, W, C)
        g = gate(a_h + a_w)                              # (b, H, W, C)
        output = x * g   (+ x with residual)

    Defaults are timm's: ``hidden = make_divisible(C / 6, 8)`` (timm's
    ``rd_ratio * se_factor = 1/4 * 2/3``), SiLU, biases.

    Args:
        reduction, min_units, units, divisor: the hidden width, as in
            ``CoordinateAttention`` (``divisor=None``: ``max(min_units,
            C // reduction)`` capped at ``C``).
        activation: ``"silu"``, ``"hard_swish"``, ``"relu"`` or None.
        use_bias: biases of the three dense layers.
        gate: ``"sigmoid"`` or ``"hard_sigmoid"``.
        residual: add ``x`` to the output (timm's ``has_skip``).

    Input and output ``(batch, H, W, C)``; map: the gate ``g``
    ``(batch, H, W, C)``.
    """

    def __init__(self, reduction: float = 6, min_units: int = 8,
                 units: int | None = None, divisor: int | None = 8,
                 activation: str | None = "silu", use_bias: bool = True,
                 gate: str = "sigmoid", residual: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(reduction, min_units, units, divisor, activation,
                         use_bias, gate=gate, residual=residual, **kwargs)

    def build_gate(self, input_shape: tuple) -> None:
        dense = self.gate_sublayer
        self.fc1 = dense(keras.layers.Dense, self.hidden, use_bias=self.use_bias,
                         name="fc1")
        self.fc_h = dense(keras.layers.Dense, self.channels, use_bias=self.use_bias,
                          name="fc_h")
        self.fc_w = dense(keras.layers.Dense, self.channels, use_bias=self.use_bias,
                          name="fc_w")
        self.fc1.build((None, None, None, self.channels))
        self.fc_h.build((None, None, None, self.hidden))
        self.fc_w.build((None, None, None, self.hidden))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        strip_h, strip_w = self.strips(x32)
        logits_h = self.fc_h(self.act(self.fc1(strip_h)))
        logits_w = self.fc_w(self.act(self.fc1(strip_w)))
        gate = self.gate_fn(logits_h + logits_w)  # broadcasts to (b, H, W, C)
        return self.gated(x, gate), gate


class _LocalStrips(_StripAttention):
    """Strip layers that filter each strip with a depthwise 1-D convolution
    of odd size ``kernel_size`` along it (no channel reduction)."""

    def __init__(self, kernel_size: int, use_bias: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_size = check_odd("kernel_size", kernel_size)
        self.use_bias = check_bool("use_bias", use_bias)

    def build_strip_convs(self) -> None:
        k, conv = self.kernel_size, self.gate_sublayer
        self.conv_h = conv(keras.layers.DepthwiseConv2D, (k, 1), padding="same",
                           use_bias=self.use_bias, name="conv_h")
        self.conv_w = conv(keras.layers.DepthwiseConv2D, (1, k), padding="same",
                           use_bias=self.use_bias, name="conv_w")
        self.conv_h.build((None, None, 1, self.channels))
        self.conv_w.build((None, 1, None, self.channels))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "use_bias": self.use_bias}


@register("ela", FEATURE_MAP)
class EfficientLocalAttention(_LocalStrips):
    """Efficient local attention (Xu & Wan, 2024, arXiv:2403.01123), as
    timm's ``EfficientLocalAttn``: each strip goes through a depthwise 1-D
    convolution, GroupNorm and an activation before its gate::

        a_h = gate(act(GN_h(dwconv_k(mean_w(x)))))      # (b, H, 1, C)
        a_w = gate(act(GN_w(dwconv_k(mean_h(x)))))      # (b, 1, W, C)
        output = x * a_h * a_w   (+ x with residual)

    Defaults are timm's (``kernel_size=7``, one group, epsilon 1e-5, SiLU,
    no bias). As published, ELA has no activation before the sigmoid and
    shares one convolution and one GroupNorm (16 or 32 groups) between the
    two strips: ``activation=None, groups=16`` is that, except that the two
    strips here have their own weights (as timm's).

    Args:
        kernel_size: odd size of the 1-D convolutions.
        groups: GroupNorm groups (must divide ``C``); None: no norm.
        epsilon: of the GroupNorms.
        activation: ``"silu"``, ``"hard_swish"``, ``"relu"`` or None.
        use_bias: biases of the convolutions.
        gate: ``"sigmoid"`` or ``"hard_sigmoid"``.
        residual: add ``x`` to the output (timm's ``has_skip``).

    Input and output ``(batch, H, W, C)``; maps ``{"height": a_h,
    "width": a_w}``.
    """

    def __init__(self, kernel_size: int = 7, groups: int | None = 1,
                 epsilon: float = 1e-5, activation: str | None = "silu",
                 use_bias: bool = False, gate: str = "sigmoid",
                 residual: bool = False, **kwargs: Any) -> None:
        super().__init__(kernel_size, use_bias, gate=gate, residual=residual,
                         **kwargs)
        self.groups = None if groups is None else check_positive("groups", groups)
        self.epsilon = float(check_positive("epsilon", epsilon, integer=False))
        self.activation = check_choice("activation", activation, ACTIVATIONS)

    def build_gate(self, input_shape: tuple) -> None:
        self.build_strip_convs()
        self.norm_h = self.norm_w = None
        if self.groups is None:
            return
        if self.channels % self.groups:
            raise ValueError(
                f"{type(self).__name__} layer '{self.name}' expects a channel "
                f"count divisible by groups={self.groups}, received {self.channels}")
        norm = self.gate_sublayer
        self.norm_h = norm(keras.layers.GroupNormalization, self.groups,
                           epsilon=self.epsilon, name="norm_h")
        self.norm_w = norm(keras.layers.GroupNormalization, self.groups,
                           epsilon=self.epsilon, name="norm_w")
        self.norm_h.build((None, None, 1, self.channels))
        self.norm_w.build((None, 1, None, self.channels))

    def encode(self, strip: Any, conv: Any, norm: Any) -> Any:
        y = conv(strip)
        if norm is not None:
            y = norm(y)
        return self.gate_fn(ACTIVATIONS[self.activation](y))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        strip_h, strip_w = self.strips(x32)
        gate_h = self.encode(strip_h, self.conv_h, self.norm_h)
        gate_w = self.encode(strip_w, self.conv_w, self.norm_w)
        return self.gated(x, gate_h * gate_w), {"height": gate_h, "width": gate_w}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups,
                "epsilon": self.epsilon, "activation": self.activation}


@register("strip", FEATURE_MAP)
class StripAttention(_LocalStrips):
    """Strip attention (timm's ``StripAttn``): the two strips, each
    optionally filtered by a depthwise 1-D convolution along it, are added
    and gated::

        g = gate(dwconv_k(mean_w(x)) + dwconv_k(mean_h(x)))  # (b, H, W, C)
        output = x * g   (+ x with residual)

    Defaults are timm's (``kernel_size=3``, no bias).

    Args:
        kernel_size: odd size of the 1-D convolutions.
        use_conv: False: no convolutions (no weights), the raw means.
        use_bias: biases of the convolutions.
        gate: ``"sigmoid"`` or ``"hard_sigmoid"``.
        residual: add ``x`` to the output (timm's ``has_skip``).

    Input and output ``(batch, H, W, C)``; map: the gate ``g``
    ``(batch, H, W, C)``.
    """

    def __init__(self, kernel_size: int = 3, use_conv: bool = True,
                 use_bias: bool = False, gate: str = "sigmoid",
                 residual: bool = False, **kwargs: Any) -> None:
        super().__init__(kernel_size, use_bias, gate=gate, residual=residual,
                         **kwargs)
        self.use_conv = check_bool("use_conv", use_conv)

    def build_gate(self, input_shape: tuple) -> None:
        if self.use_conv:
            self.build_strip_convs()

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        strip_h, strip_w = self.strips(x32)
        if self.use_conv:
            strip_h, strip_w = self.conv_h(strip_h), self.conv_w(strip_w)
        gate = self.gate_fn(strip_h + strip_w)  # broadcasts to (b, H, W, C)
        return self.gated(x, gate), gate

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_conv": self.use_conv}


# timm's CoordAttn: C * rd_ratio * se_factor = C / 24 rounded to 8s, no
# biases, torch's BatchNorm2d defaults (eps 1e-5, momentum 0.1 = Keras 0.9).
alias("coord", "coordinate", reduction=24, divisor=8, use_bias=False,
      epsilon=1e-5, momentum=0.9)
