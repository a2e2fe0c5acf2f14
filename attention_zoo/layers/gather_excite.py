"""Gather-excite attention, as timm implements it."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from attention_zoo.layers.base import check_positive
from attention_zoo.layers.channel import TimmBottleneck2D, pool_hw
from attention_zoo.layers.options import GATES, check_bool, check_choice
from attention_zoo.layers.registry import FEATURE_MAP, register


def nearest_indices(in_size: Any, out_size: Any) -> Any:
    """The source rows of torch's nearest resize from ``in_size`` to
    ``out_size`` (``F.interpolate(mode="nearest")``): ``min(floor(i * s),
    in_size - 1)`` with ``s = in_size / out_size`` in float32, as torch
    computes it (Keras's nearest resize uses half-pixel centres instead)."""
    scale = ops.cast(in_size, "float32") / ops.cast(out_size, "float32")
    source = ops.floor(ops.cast(ops.arange(out_size), "float32") * scale)
    return ops.minimum(ops.cast(source, "int32"), in_size - 1)


def _pad_hw(x: Any, pad: int, value: float = 0.0) -> Any:
    return ops.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)),
                   constant_values=value)


@register("ge", FEATURE_MAP)
class GatherExcite(TimmBottleneck2D):
    """Gather-excite (Hu et al., 2018, arXiv:1810.12348).

    A gather ``xi`` of context over an extent, an optional excite MLP, a gate
    resized to the input: output ``x * g(resize(MLP(xi(x))))``, where
    ``MLP = W2 relu(W1 . + b1) + b2`` acts per position and ``resize`` is
    torch's nearest-neighbour resize to ``(H, W)``. The gather ``xi``:

    - ``extent=0`` (global): ``mean_hw(x)`` (with ``add_maxpool``,
      ``0.5 mean_hw(x) + 0.5 max_hw(x)``), one descriptor ``(1, 1, C)``;
    - ``extent=e > 0``: average pooling with window ``2e - 1``, stride ``e``
      and ``e - 1`` padding on every side, pads not counted (plus, with
      ``add_maxpool``, max pooling alike, mixed half and half), giving
      ``(ceil(H / e), ceil(W / e), C)``;
    - ``extra_params=True`` (GE-theta, ``e > 0``): ``log2(e)`` depthwise
      3x3 stride-2 convolutions (no bias, padding 1), each followed by
      BatchNormalization, ReLU between them.

    Args:
        extent: ``e``, 0 or even (timm's rule).
        extra_params: the learned gather.
        use_mlp: the excite MLP; False gates the gathered context directly.
        reduction, min_units, divisor, hidden_units: the MLP's hidden width
            (see ``TimmBottleneck2D``).
        add_maxpool: timm's mean-plus-max gather (parameter-free gathers).
        gate: ``g``, ``"sigmoid"`` or ``"hard_sigmoid"``.
        epsilon: of the gather's BatchNormalizations.

    Input and output ``(batch, H, W, C)``; map: the gate, ``(batch, 1, 1,
    C)`` for the global extent, else ``(batch, H, W, C)``.

    The defaults are timm's ``ge`` (``GatherExcite``: global extent, MLP
    with hidden width ``C / 16`` rounded, at least 1). timm's global extent
    with ``extra_params`` (a depthwise convolution as large as the feature
    map) is not supported.
    """

    def __init__(self, extent: int = 0, extra_params: bool = False,
                 use_mlp: bool = True, reduction: float = 16, min_units: int = 1,
                 divisor: int | None = 1, hidden_units: int | None = None,
                 add_maxpool: bool = False, gate: str = "sigmoid",
                 epsilon: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(reduction, min_units, divisor=divisor,
                         hidden_units=hidden_units, **kwargs)
        if isinstance(extent, bool) or not isinstance(extent, int) or extent < 0 \
                or extent % 2:
            raise ValueError(f"extent must be 0 (global) or a positive even int, "
                             f"received {extent!r}")
        self.extent = extent
        self.extra_params = check_bool("extra_params", extra_params)
        self.use_mlp = check_bool("use_mlp", use_mlp)
        self.add_maxpool = check_bool("add_maxpool", add_maxpool)
        self.gate = check_choice("gate", gate, GATES)
        self.epsilon = float(check_positive("epsilon", epsilon, integer=False))
        if extra_params and extent == 0:
            raise ValueError("GatherExcite with extra_params=True needs an extent "
                             "> 0 (the global learned gather is not supported), "
                             "received extent=0")
        if extra_params and add_maxpool:
            raise ValueError("GatherExcite's add_maxpool applies to the "
                             "parameter-free gather, received extra_params=True "
                             "and add_maxpool=True")

    def build_gate(self, input_shape: tuple) -> None:
        layer = self.gate_sublayer
        self.gather_convs, self.gather_norms = [], []
        if self.extra_params:
            for i in range(1, int(math.log2(self.extent)) + 1):
                conv = layer(keras.layers.DepthwiseConv2D, 3, strides=2,
                             use_bias=False, name=f"gather_conv{i}")
                norm = layer(keras.layers.BatchNormalization, epsilon=self.epsilon,
                             name=f"gather_norm{i}")
                conv.build((None, None, None, self.channels))
                norm.build((None, None, None, self.channels))
                self.gather_convs.append(conv)
                self.gather_norms.append(norm)
        if self.use_mlp:
            self.fc1 = layer(keras.layers.Dense, self.hidden, activation="relu",
                             name="fc1")
            self.fc2 = layer(keras.layers.Dense, self.channels, name="fc2")
            self.fc1.build((None, None, None, self.channels))
            self.fc2.build((None, None, None, self.hidden))

    def gather(self, x32: Any, training: Any) -> Any:
        if self.extra_params:
            y = x32
            for i, (conv, norm) in enumerate(zip(self.gather_convs,
                                                 self.gather_norms)):
                # Explicit symmetric padding: "same" would pad an even side
                # at the end only, where torch pads 1 on both sides.
                y = norm(conv(_pad_hw(y, 1)), training=training)
                if i < len(self.gather_convs) - 1:
                    y = ops.relu(y)
            return y
        if self.extent == 0:
            return pool_hw(x32, self.add_maxpool)
        window, stride, pad = 2 * self.extent - 1, self.extent, self.extent - 1
        # Mean over the real positions of each window only: the pooled sums
        # of zero-padded x over the pooled counts of a zero-padded ones map.
        total = ops.average_pool(_pad_hw(x32, pad), window, stride, "valid")
        count = ops.average_pool(_pad_hw(ops.ones_like(x32[:1, :, :, :1]), pad),
                                 window, stride, "valid")
        y = total / count
        if self.add_maxpool:
            # Every window holds a real position, so -inf pads never win.
            peak = ops.max_pool(_pad_hw(x32, pad, float("-inf")), window, stride,
                                "valid")
            y = 0.5 * y + 0.5 * peak
        return y

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        y = self.gather(x32, training)
        if self.use_mlp:
            y = self.fc2(self.fc1(y))
        # The gate before the resize: nearest resizing only picks values, so
        # it commutes with the gate and gates fewer values.
        gate = GATES[self.gate](y)
        if self.extent:
            for axis in (1, 2):
                gate = ops.take(gate, nearest_indices(ops.shape(gate)[axis],
                                                      ops.shape(x32)[axis]),
                                axis=axis)
        return x * ops.cast(gate, x.dtype), gate

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "extent": self.extent,
                "extra_params": self.extra_params, "use_mlp": self.use_mlp,
                "add_maxpool": self.add_maxpool, "gate": self.gate,
                "epsilon": self.epsilon}
