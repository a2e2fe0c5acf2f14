"""Channel attention: squeeze-excite and timm's effective SE, ECA with timm's
MLP and circular variants, and CBAM's channel module.

Each zoo layer keeps its own defaults; the docstrings say which arguments
give timm's module of the same name (``timm.layers.create_attn``).
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from attention_zoo.layers.base import (BottleneckAttention2D,
                                       FeatureMapAttention, check_positive)
from attention_zoo.layers.options import (GATES, check_bool, check_choice,
                                             make_divisible)
from attention_zoo.layers.registry import FEATURE_MAP, alias, register


def pool_hw(x32: Any, add_maxpool: bool) -> Any:
    """The global descriptor ``(batch, 1, 1, C)``: the spatial mean, or with
    ``add_maxpool`` timm's ``0.5 * mean + 0.5 * max``."""
    pooled = ops.mean(x32, axis=(1, 2), keepdims=True)
    if add_maxpool:
        pooled = 0.5 * pooled + 0.5 * ops.max(x32, axis=(1, 2), keepdims=True)
    return pooled


class TimmBottleneck2D(BottleneckAttention2D):
    """A bottleneck layer whose hidden width can also follow timm's rules.

    Hidden width: ``hidden_units`` when given (timm's ``rd_channels``); else,
    with ``divisor`` set, ``max(min_units, make_divisible(C / reduction,
    divisor))`` with timm's rounding (nearest multiple of ``divisor``, at least
    ``divisor``, ``round_limit=0``; not capped at ``C``, as timm's is not);
    else the zoo's ``max(min_units, C // reduction)`` capped at ``C``.
    """

    def __init__(self, reduction: float = 16, min_units: int = 8,
                 divisor: int | None = None, hidden_units: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(reduction, min_units, **kwargs)
        self.divisor = None if divisor is None else check_positive("divisor", divisor)
        self.hidden_units = None if hidden_units is None else check_positive(
            "hidden_units", hidden_units)

    @property
    def hidden(self) -> int:
        if self.hidden_units is not None:
            return self.hidden_units
        if self.divisor is not None:
            rounded = make_divisible(self.channels / self.reduction, self.divisor,
                                     round_limit=0.0)
            return max(self.min_units, rounded)
        return super().hidden

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "divisor": self.divisor,
                "hidden_units": self.hidden_units}


class _ChannelMLP(TimmBottleneck2D):
    """Gates channels through an MLP ``C -> hidden -> C`` (ReLU between)."""

    def __init__(self, reduction: float = 16, min_units: int = 8,
                 use_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(reduction, min_units, **kwargs)
        self.use_bias = check_bool("use_bias", use_bias)

    def build_gate(self, input_shape: tuple) -> None:
        self.fc1 = self.gate_sublayer(keras.layers.Dense, self.hidden,
                                      activation="relu", use_bias=self.use_bias,
                                      name="fc1")
        self.fc2 = self.gate_sublayer(keras.layers.Dense, self.channels,
                                      use_bias=self.use_bias, name="fc2")
        self.fc1.build((None, 1, 1, self.channels))
        self.fc2.build((None, 1, 1, self.hidden))

    def mlp(self, pooled: Any) -> Any:
        return self.fc2(self.fc1(pooled))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_bias": self.use_bias}


@register("se", FEATURE_MAP)
class SqueezeExcite(_ChannelMLP):
    """Squeeze-and-excitation (Hu et al., 2018, arXiv:1709.01507).

    ``gate = g(W2 relu(W1 p + b1) + b2)`` with ``p = mean_hw(x)`` (or, with
    ``add_maxpool``, ``0.5 mean_hw(x) + 0.5 max_hw(x)``); output ``x * gate``.
    Input and output ``(batch, H, W, C)``; map: the channel gate
    ``(batch, 1, 1, C)``.

    Args:
        reduction: bottleneck ratio ``r`` (timm's ``1 / rd_ratio``).
        min_units: smallest hidden width.
        divisor: None keeps the zoo's width ``max(min_units, C // r)``; an
            int rounds ``C / r`` as timm does (see ``TimmBottleneck2D``).
        hidden_units: the hidden width itself (timm's ``rd_channels``).
        use_bias: biases in both MLP layers (timm's ``bias``).
        add_maxpool: timm's mean-plus-max descriptor.
        gate: ``"sigmoid"`` or ``"hard_sigmoid"`` (timm's ``gate_layer``).

    Differs from timm's ``se`` (``SEModule``) in the hidden width only: the
    zoo floors ``C / 16`` (at least 8, at most ``C``), timm rounds it to a
    multiple of 8. ``divisor=8`` gives timm's module (``reduction=16,
    min_units=8`` being the defaults of both).
    """

    def __init__(self, reduction: float = 16, min_units: int = 8,
                 add_maxpool: bool = False, gate: str = "sigmoid",
                 **kwargs: Any) -> None:
        super().__init__(reduction, min_units, **kwargs)
        self.add_maxpool = check_bool("add_maxpool", add_maxpool)
        self.gate = check_choice("gate", gate, GATES)

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        gate = GATES[self.gate](self.mlp(pool_hw(x32, self.add_maxpool)))
        return x * ops.cast(gate, x.dtype), gate

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "add_maxpool": self.add_maxpool,
                "gate": self.gate}


@register("ese", FEATURE_MAP)
class EffectiveSqueezeExcite(FeatureMapAttention):
    """Effective squeeze-excitation (Lee and Park, CenterMask, 2020,
    arXiv:1911.06667): SE with one full-width layer, no bottleneck.

    ``gate = g(W p + b)`` with ``p = mean_hw(x)`` (or, with ``add_maxpool``,
    ``0.5 mean_hw(x) + 0.5 max_hw(x)``), ``W`` of shape ``(C, C)``; output
    ``x * gate``. Input and output ``(batch, H, W, C)``; map: the channel gate
    ``(batch, 1, 1, C)``.

    Args:
        add_maxpool: timm's mean-plus-max descriptor.
        gate: ``"hard_sigmoid"`` (``relu6(z + 3) / 6``, the paper's and
            timm's) or ``"sigmoid"``.

    The defaults are timm's ``ese`` (``EffectiveSEModule``).
    """

    def __init__(self, add_maxpool: bool = False, gate: str = "hard_sigmoid",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_maxpool = check_bool("add_maxpool", add_maxpool)
        self.gate = check_choice("gate", gate, GATES)

    def build_gate(self, input_shape: tuple) -> None:
        self.fc = self.gate_sublayer(keras.layers.Dense, self.channels, name="fc")
        self.fc.build((None, 1, 1, self.channels))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        gate = GATES[self.gate](self.fc(pool_hw(x32, self.add_maxpool)))
        return x * ops.cast(gate, x.dtype), gate

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "add_maxpool": self.add_maxpool,
                "gate": self.gate}


@register("channel", FEATURE_MAP)
class ChannelAttention(_ChannelMLP):
    """CBAM's channel module (Woo et al., 2018, arXiv:1807.06521): one MLP
    shared by average- and max-pooled descriptors,
    ``gate = sigmoid(MLP(mean_hw(x)) + MLP(max_hw(x)))``, output ``x * gate``;
    with ``light=True`` (timm's ``LightChannelAttn``) the descriptors are
    mixed first, ``gate = sigmoid(MLP(0.5 mean_hw(x) + 0.5 max_hw(x)))``.
    Input and output ``(batch, H, W, C)``; map ``(batch, 1, 1, C)``.

    Args:
        reduction, min_units, divisor, hidden_units: the hidden width (see
            ``TimmBottleneck2D``).
        use_bias: biases in the MLP (timm's ``mlp_bias``).
        light: one MLP pass on the mixed descriptor.

    timm's ``ChannelAttn`` is ``reduction=16, min_units=1, divisor=1,
    use_bias=False`` (the zoo's default has biases and a hidden width of
    ``max(8, C // 16)``).
    """

    def __init__(self, reduction: float = 16, min_units: int = 8,
                 light: bool = False, **kwargs: Any) -> None:
        super().__init__(reduction, min_units, **kwargs)
        self.light = check_bool("light", light)

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        if self.light:
            logits = self.mlp(pool_hw(x32, add_maxpool=True))
        else:
            logits = (self.mlp(ops.mean(x32, axis=(1, 2), keepdims=True))
                      + self.mlp(ops.max(x32, axis=(1, 2), keepdims=True)))
        gate = ops.sigmoid(logits)
        return x * ops.cast(gate, x.dtype), gate

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "light": self.light}


def eca_kernel_size(channels: int, gamma: float = 2.0, b: float = 1.0,
                    minimum: int = 1) -> int:
    """ECA's adaptive kernel: the odd number nearest ``|log2(C) + b| / gamma``
    (rounded up to odd), at least ``minimum`` (timm: 3)."""
    k = int(abs((math.log2(channels) + b) / gamma))
    return max(k if k % 2 else k + 1, minimum)


#: How ECA's convolution pads the channel axis: with zeros (the paper), or
#: circularly (timm's ``CecaModule``: channels have no edges).
ECA_PADDINGS = {"zeros": "same", "circular": "valid"}


@register("eca", FEATURE_MAP)
class EfficientChannelAttention(FeatureMapAttention):
    """ECA (Wang et al., 2020, arXiv:1910.03151): a 1-D convolution of size
    ``k`` across the pooled channel descriptor, no dimensionality reduction.
    ``gate = g(conv1d_k(mean_hw(x)))``, output ``x * gate``. With
    ``use_mlp`` (timm's ``ecam``, not in the paper) each channel's mean is
    first expanded to ``hidden`` features by a per-channel linear map and a
    ReLU, and the ``k``-convolution (with bias) maps them back to one:
    ``gate = g(conv1d_k(relu(conv1d_1(mean_hw(x)))))``.

    Args:
        kernel_size: ``k``; None picks it from ``C`` (``eca_kernel_size``).
        gamma, b: the adaptive-size constants of the paper.
        min_kernel_size: the smallest adaptive ``k`` (timm's rule: 3).
        padding: ``"zeros"`` (the paper) or ``"circular"`` (timm's ``ceca``;
            needs an odd ``k``).
        use_mlp: the MLP variant.
        reduction, divisor, hidden_units: its hidden width, ``hidden_units``
            or timm's ``make_divisible(C / reduction, divisor)`` (timm's
            ``EcaModule`` rounding, ``round_limit=0.9``).
        gate: ``"sigmoid"`` or ``"hard_sigmoid"``.

    Input and output ``(batch, H, W, C)``; map ``(batch, 1, 1, C)``.

    Differs from timm's ``eca`` (``EcaModule``) in the adaptive kernel size
    only: timm's is at least 3 (``min_kernel_size=3``); the zoo's can be 1.
    timm's ``ecam`` is registered as ``"ecam"`` (``use_mlp=True,
    min_kernel_size=3``), its ``ceca`` (``CecaModule``) as ``"ceca"``
    (``padding="circular", min_kernel_size=3``).
    """

    def __init__(self, kernel_size: int | None = None, gamma: float = 2.0,
                 b: float = 1.0, min_kernel_size: int = 1,
                 padding: str = "zeros", use_mlp: bool = False,
                 reduction: float = 8, divisor: int = 8,
                 hidden_units: int | None = None, gate: str = "sigmoid",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_size = None if kernel_size is None else check_positive(
            "kernel_size", kernel_size)
        self.gamma = float(check_positive("gamma", gamma, integer=False))
        self.b = float(b)
        self.min_kernel_size = check_positive("min_kernel_size", min_kernel_size)
        self.padding = check_choice("padding", padding, ECA_PADDINGS)
        if padding == "circular" and kernel_size is not None and kernel_size % 2 == 0:
            raise ValueError(f"EfficientChannelAttention with padding='circular' "
                             f"needs an odd kernel_size, received {kernel_size}")
        self.use_mlp = check_bool("use_mlp", use_mlp)
        self.reduction = check_positive("reduction", reduction, integer=False)
        self.divisor = check_positive("divisor", divisor)
        self.hidden_units = None if hidden_units is None else check_positive(
            "hidden_units", hidden_units)
        self.gate = check_choice("gate", gate, GATES)

    def build_gate(self, input_shape: tuple) -> None:
        k = self.kernel_size or eca_kernel_size(self.channels, self.gamma, self.b,
                                                self.min_kernel_size)
        self.pad = 0
        if self.padding == "circular":
            if k % 2 == 0 or k // 2 > self.channels:
                raise ValueError(
                    f"EfficientChannelAttention with padding='circular' needs an "
                    f"odd kernel_size of at most 2 * C + 1 = {2 * self.channels + 1}, "
                    f"received kernel_size {k} for {self.channels} channels")
            self.pad = k // 2
        layer = self.gate_sublayer
        kernel = dict(padding=ECA_PADDINGS[self.padding])
        if self.use_mlp:
            hidden = self.hidden_units or make_divisible(
                self.channels / self.reduction, self.divisor, round_limit=0.9)
            self.conv = layer(keras.layers.Conv1D, hidden, 1, name="conv")
            self.conv2 = layer(keras.layers.Conv1D, 1, k, name="conv2", **kernel)
            self.conv.build((None, self.channels, 1))
            self.conv2.build((None, self.channels + 2 * self.pad, hidden))
        else:
            self.conv = layer(keras.layers.Conv1D, 1, k, use_bias=False,
                              name="conv", **kernel)
            self.conv.build((None, self.channels + 2 * self.pad, 1))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        y = ops.expand_dims(ops.mean(x32, axis=(1, 2)), -1)  # (b, C, 1)
        conv = self.conv
        if self.use_mlp:
            y, conv = ops.relu(self.conv(y)), self.conv2
        if self.pad:
            # Slices and a concatenation: TFLite has no circular pad.
            y = ops.concatenate([y[:, self.channels - self.pad:], y,
                                 y[:, :self.pad]], axis=1)
        gate = GATES[self.gate](conv(y))
        gate = ops.reshape(gate, (-1, 1, 1, self.channels))
        return x * ops.cast(gate, x.dtype), gate

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "gamma": self.gamma, "b": self.b,
                "min_kernel_size": self.min_kernel_size, "padding": self.padding,
                "use_mlp": self.use_mlp, "reduction": self.reduction,
                "divisor": self.divisor, "hidden_units": self.hidden_units,
                "gate": self.gate}


alias("squeeze_excite", "se")
alias("ecam", "eca", use_mlp=True, min_kernel_size=3)
alias("ceca", "eca", padding="circular", min_kernel_size=3)
