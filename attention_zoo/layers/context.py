"""Global context (GCNet) attention, with timm's fusion variants."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from attention_zoo.layers.base import check_positive
from attention_zoo.layers.channel import TimmBottleneck2D
from attention_zoo.layers.options import GATES, check_bool, check_choice
from attention_zoo.layers.registry import FEATURE_MAP, alias, register


def _transformed(context: Any, fc1: Any, norm: Any, fc2: Any) -> Any:
    return fc2(ops.relu(norm(fc1(context))))


@register("gc", FEATURE_MAP)
class GlobalContext(TimmBottleneck2D):
    """Global context block (Cao et al., 2019, arXiv:1904.11492).

    One softmax over all ``H * W`` positions, ``a = softmax_hw(x W_k + b_k)``,
    pools a context ``c = sum_hw a x`` (with ``use_attn=False``, timm's
    option: ``c = mean_hw(x)``, ``a`` uniform). Bottleneck transforms
    ``T(c) = W_2 relu(LN(W_1 c))`` fuse it into every position: by addition
    (``fuse_add``, the paper's), ``output = x + T_add(c)``, by scaling
    (``fuse_scale``), ``output = x * g(T_scale(c))``, or both (scale first,
    each with its own transform).

    Args:
        reduction, min_units, divisor, hidden_units: the transforms' hidden
            width (see ``TimmBottleneck2D``).
        use_attn: the softmax pooling; False pools the mean.
        fuse_add, fuse_scale: the fusions (at least one).
        epsilon: of the LayerNormalizations.
        gate: ``g``, ``"sigmoid"`` or ``"hard_sigmoid"``.

    Input and output ``(batch, H, W, C)``; map: ``a`` ``(batch, H, W, 1)``,
    with ``fuse_scale`` the dict ``{"attention": a, "gate": (batch, 1, 1,
    C)}``.

    Differs from timm's ``gc`` (``GlobalContext``), which fuses by scaling:
    timm's is ``fuse_add=False, fuse_scale=True, reduction=8, min_units=1,
    divisor=1, epsilon=1e-6``. The zoo's default is timm's ``gca`` with the
    zoo's hidden width (``max(8, C // 16)``, timm: ``C / 8`` rounded) and
    Keras's LayerNormalization epsilon (1e-3, timm: 1e-6); timm's ``gca`` is
    registered as ``"gca"``.
    """

    def __init__(self, reduction: float = 16, min_units: int = 8,
                 use_attn: bool = True, fuse_add: bool = True,
                 fuse_scale: bool = False, epsilon: float = 1e-3,
                 gate: str = "sigmoid", **kwargs: Any) -> None:
        super().__init__(reduction, min_units, **kwargs)
        self.use_attn = check_bool("use_attn", use_attn)
        self.fuse_add = check_bool("fuse_add", fuse_add)
        self.fuse_scale = check_bool("fuse_scale", fuse_scale)
        if not (fuse_add or fuse_scale):
            raise ValueError("GlobalContext needs fuse_add or fuse_scale (or "
                             "both), received fuse_add=False, fuse_scale=False")
        self.epsilon = float(check_positive("epsilon", epsilon, integer=False))
        self.gate = check_choice("gate", gate, GATES)

    def _transform(self, prefix: str) -> tuple:
        """``Dense(hidden) -> LayerNorm -> ReLU -> Dense(C)`` of one fusion."""
        hidden = self.hidden
        layers = (
            self.gate_sublayer(keras.layers.Dense, hidden, name=f"{prefix}_fc1"),
            self.gate_sublayer(keras.layers.LayerNormalization,
                               epsilon=self.epsilon, name=f"{prefix}_norm"),
            self.gate_sublayer(keras.layers.Dense, self.channels,
                               name=f"{prefix}_fc2"))
        for layer, width in zip(layers, (self.channels, hidden, hidden)):
            layer.build((None, 1, 1, width))
        return layers

    def build_gate(self, input_shape: tuple) -> None:
        if self.use_attn:
            self.attention_logits = self.gate_sublayer(
                keras.layers.Dense, 1, name="attention_logits")
            self.attention_logits.build((None, None, None, self.channels))
        # The add transform keeps its original names: saved files use them.
        if self.fuse_add:
            self.transform_fc1, self.transform_norm, self.transform_fc2 = \
                self._transform("transform")
        if self.fuse_scale:
            self.scale_fc1, self.scale_norm, self.scale_fc2 = self._transform("scale")

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        if self.use_attn:
            logits = self.attention_logits(x32)  # (b, H, W, 1)
            # Softmax over two axes, spelled out so it lowers to TFLite built-ins.
            logits = logits - ops.max(logits, axis=(1, 2), keepdims=True)
            weights = ops.exp(logits)
            weights = weights / ops.sum(weights, axis=(1, 2), keepdims=True)
            context = ops.sum(x32 * weights, axis=(1, 2), keepdims=True)
        else:
            context = ops.mean(x32, axis=(1, 2), keepdims=True)
            weights = ops.ones_like(x32[..., :1])
            weights = weights / ops.sum(weights, axis=(1, 2), keepdims=True)
        output, maps = x, weights
        if self.fuse_scale:
            gate = GATES[self.gate](_transformed(
                context, self.scale_fc1, self.scale_norm, self.scale_fc2))
            output = output * ops.cast(gate, x.dtype)
            maps = {"attention": weights, "gate": gate}
        if self.fuse_add:
            transform = _transformed(context, self.transform_fc1,
                                     self.transform_norm, self.transform_fc2)
            output = output + ops.cast(transform, x.dtype)
        return output, maps

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_attn": self.use_attn,
                "fuse_add": self.fuse_add, "fuse_scale": self.fuse_scale,
                "epsilon": self.epsilon, "gate": self.gate}


alias("gca", "gc", reduction=8, min_units=1, divisor=1, epsilon=1e-6)
