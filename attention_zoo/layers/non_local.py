"""Non-local attention: the embedded-Gaussian non-local block and BAT's
grouped bilinear attentional transforms, as timm builds them (``nl``, ``bat``)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from attention_zoo.layers.base import (FeatureMapAttention, InputError, _describe,
                                       check_positive, check_rate)
from attention_zoo.layers.options import check_bool, make_divisible
from attention_zoo.layers.registry import FEATURE_MAP, register
from attention_zoo.layers.options import TORCH_BN_EPSILON, TORCH_BN_MOMENTUM


class _ReducedWidth(FeatureMapAttention):
    """A feature-map layer whose inner width is timm's ``rd_channels``:
    given, or ``make_divisible(C * rd_ratio, rd_divisor)``."""

    def __init__(self, rd_ratio: float, rd_channels: int | None, rd_divisor: int,
                 norm_epsilon: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rd_ratio = float(check_positive("rd_ratio", rd_ratio, integer=False))
        self.rd_channels = None if rd_channels is None else check_positive(
            "rd_channels", rd_channels)
        self.rd_divisor = check_positive("rd_divisor", rd_divisor)
        self.norm_epsilon = float(check_positive("norm_epsilon", norm_epsilon,
                                                 integer=False))

    @property
    def hidden(self) -> int:
        return self.rd_channels or make_divisible(self.channels * self.rd_ratio,
                                                  self.rd_divisor)

    def conv1x1(self, units: int, name: str, inputs: int,
                use_bias: bool = False) -> keras.layers.Dense:
        """A built float32 1x1 convolution (a Dense on the channel axis)."""
        layer = self.gate_sublayer(keras.layers.Dense, units, use_bias=use_bias,
                                   name=name)
        layer.build((None, None, None, inputs))
        return layer

    def batch_norm(self, channels: int, name: str,
                   **kwargs: Any) -> keras.layers.BatchNormalization:
        layer = self.gate_sublayer(keras.layers.BatchNormalization,
                                   epsilon=self.norm_epsilon,
                                   momentum=TORCH_BN_MOMENTUM, name=name, **kwargs)
        layer.build((None, None, None, channels))
        return layer

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rd_ratio": self.rd_ratio,
                "rd_channels": self.rd_channels, "rd_divisor": self.rd_divisor,
                "norm_epsilon": self.norm_epsilon}


@register("nl", FEATURE_MAP)
class NonLocalAttention(_ReducedWidth):
    """Non-local block, embedded Gaussian (Wang, Girshick, Gupta and He, 2018,
    arXiv:1711.07971), in timm's 2-D form (``NonLocalAttn``).

    With 1x1 convolutions ``theta``, ``phi``, ``g`` (``C -> d``, biased) over
    the ``N = H * W`` positions,
    ``a = softmax_j(s * theta(x)_i . phi(x)_j)`` (``s = C ** -0.5`` with
    ``use_scale``, else 1; timm scales by the input width ``C``), and the
    output is ``x + BN(z(sum_j a_ij g(x)_j))`` with a biased 1x1 ``z``
    (``d -> C``). The BN's scale starts at zero, so the block starts as the
    identity (the paper's initialization).

    Args:
        use_scale: scale the scores by ``C ** -0.5``.
        rd_ratio, rd_divisor: ``d = make_divisible(C * rd_ratio, rd_divisor)``.
        rd_channels: ``d`` itself (overrides ``rd_ratio``).
        norm_epsilon: of the BatchNormalization (PyTorch's 1e-5).

    Input and output ``(batch, H, W, C)``; map: the attention weights ``a``
    ``(batch, H * W, H * W)``, positions in row-major ``(H, W)`` order, rows
    (queries) summing to 1. Memory grows as ``(H * W) ** 2``: timm places the
    block on low-resolution stages.
    """

    def __init__(self, use_scale: bool = True, rd_ratio: float = 1 / 8,
                 rd_channels: int | None = None, rd_divisor: int = 8,
                 norm_epsilon: float = TORCH_BN_EPSILON, **kwargs: Any) -> None:
        super().__init__(rd_ratio, rd_channels, rd_divisor, norm_epsilon, **kwargs)
        self.use_scale = check_bool("use_scale", use_scale)

    def build_gate(self, input_shape: tuple) -> None:
        d, c = self.hidden, self.channels
        self.theta = self.conv1x1(d, "theta", c, use_bias=True)
        self.phi = self.conv1x1(d, "phi", c, use_bias=True)
        self.g = self.conv1x1(d, "g", c, use_bias=True)
        self.z = self.conv1x1(c, "z", d, use_bias=True)
        self.norm = self.batch_norm(c, "norm", gamma_initializer="zeros")

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        batch, height, width = ops.shape(x)[:3]
        d = self.hidden
        # A static H * W keeps the map's shape known on keras.Input.
        static = isinstance(height, int) and isinstance(width, int)
        flat = (-1, height * width, d) if static else (batch, -1, d)

        def positions(conv: keras.layers.Dense) -> Any:
            return ops.reshape(conv(x32), flat)  # (b, H * W, d)

        scores = ops.matmul(positions(self.theta),
                            ops.transpose(positions(self.phi), (0, 2, 1)))
        if self.use_scale:
            scores = scores * (self.channels ** -0.5)
        weights = ops.softmax(scores, axis=-1)
        context = ops.reshape(ops.matmul(weights, positions(self.g)),
                              (batch, height, width, d))
        update = self.norm(self.z(context), training=training)
        return x + ops.cast(update, x.dtype), weights

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_scale": self.use_scale}


@register("bat", FEATURE_MAP)
class BATNonLocalAttention(_ReducedWidth):
    """Non-local block with grouped bilinear attentional transforms (BAT;
    Chi, Yuan, Yu and Luo, 2020, "Non-Local Neural Networks With Grouped
    Bilinear Attentional Transforms", CVPR; arXiv:2004.13278), in timm's form
    (``BatNonLocalAttn``).

    ``r = CBA_1(x)`` reduces ``C -> d`` channels (CBA: bias-free 1x1 conv,
    BatchNorm, activation). The transform splits ``H`` (and ``W``) into
    ``k = block_size`` bands of ``t = H / k`` rows. From ``u = CBA(r)``
    (``d -> groups`` channels), max-pooled over each band (timm's
    ``adaptive_max_pool2d`` to ``(k, 1)`` and ``(1, k)``), a ``(k, 1)`` and a
    ``(1, k)`` convolution give per group ``k x k`` matrices
    ``P = rownorm(sigmoid(.))`` and ``Q = colnorm(sigmoid(.))``; every
    channel of group ``g`` is transformed as
    ``y = (P_g (x) I_t) r (Q_g (x) I_{W/k})`` (Kronecker products: row
    ``i * t + a`` of ``y`` mixes rows ``j * t + a`` of ``r`` with weights
    ``P_g[i, j]``). Output ``x + drop(CBA_2(CBA(y)))``, ``CBA_2``:
    ``d -> C``, ``drop``: channel (spatial) dropout while training.

    ``H`` and ``W`` must be multiples of ``block_size`` (timm asserts the
    same): timm's default 7 takes 7x7, 14x14, 28x28 or 56x56 maps.

    Args:
        block_size: ``k``.
        groups: number of ``(P, Q)`` pairs; divides ``d``.
        rd_ratio, rd_divisor: ``d = make_divisible(C * rd_ratio, rd_divisor)``.
        rd_channels: ``d`` itself (overrides ``rd_ratio``).
        drop_rate: channel dropout rate of the transform's output.
        activation: of the CBA blocks (a Keras activation name).
        norm_epsilon: of the BatchNormalizations (PyTorch's 1e-5).

    Input and output ``(batch, H, W, C)``; maps: ``{"height": P, "width":
    Q}``, each ``(batch, groups, block_size, block_size)``; the rows of ``P``
    and the columns of ``Q`` sum to 1.
    """

    def __init__(self, block_size: int = 7, groups: int = 2,
                 rd_ratio: float = 0.25, rd_channels: int | None = None,
                 rd_divisor: int = 8, drop_rate: float = 0.2,
                 activation: str = "relu",
                 norm_epsilon: float = TORCH_BN_EPSILON, **kwargs: Any) -> None:
        super().__init__(rd_ratio, rd_channels, rd_divisor, norm_epsilon, **kwargs)
        self.block_size = check_positive("block_size", block_size)
        self.groups = check_positive("groups", groups)
        self.drop_rate = check_rate("drop_rate", drop_rate)
        if not isinstance(activation, str):
            raise ValueError(f"activation must be the name of a Keras activation, "
                             f"received {activation!r}")
        keras.activations.get(activation)  # refuses an unknown name now
        self.activation = activation
        if rd_channels is not None:
            self._check_groups(rd_channels)

    def _check_groups(self, width: int) -> None:
        if width % self.groups:
            raise ValueError(f"groups must divide the reduced width: {width} "
                             f"channels do not split into {self.groups} groups")

    def build_gate(self, input_shape: tuple) -> None:
        d, c, k, groups = self.hidden, self.channels, self.block_size, self.groups
        self._check_groups(d)
        self.conv1 = self.conv1x1(d, "conv1", c)
        self.bn1 = self.batch_norm(d, "bn1")
        self.ba_conv1 = self.conv1x1(groups, "ba_conv1", d)
        self.ba_bn1 = self.batch_norm(groups, "ba_bn1")
        self.conv_p = self.gate_sublayer(keras.layers.Conv2D, k * k * groups,
                                         (k, 1), name="conv_p")
        self.conv_p.build((None, k, 1, groups))
        self.conv_q = self.gate_sublayer(keras.layers.Conv2D, k * k * groups,
                                         (1, k), name="conv_q")
        self.conv_q.build((None, 1, k, groups))
        self.ba_conv2 = self.conv1x1(d, "ba_conv2", d)
        self.ba_bn2 = self.batch_norm(d, "ba_bn2")
        self.conv2 = self.conv1x1(c, "conv2", d)
        self.bn2 = self.batch_norm(c, "bn2")
        self.dropout = self.gate_sublayer(keras.layers.SpatialDropout2D,
                                          self.drop_rate, name="dropout")

    def _cba(self, x: Any, conv: Any, norm: Any, training: Any) -> Any:
        return keras.activations.get(self.activation)(norm(conv(x), training=training))

    def _check_blocks(self, shape: tuple) -> None:
        k = self.block_size
        if any(size is not None and size % k for size in shape[1:3]):
            raise InputError(
                f"{type(self).__name__} layer '{self.name}' expects inputs of "
                f"shape (batch, H, W, {self.channels}) with H and W multiples "
                f"of block_size {k}, received shape {_describe(shape)}.")

    def _band_max(self, u: Any, axis: int, batch: Any) -> Any:
        """Max over ``axis`` (1: H, 2: W), then over each of ``block_size``
        equal bands of the other spatial axis: ``(b, block_size, groups)``."""
        strip = ops.max(u, axis=axis)
        return ops.max(ops.reshape(strip, (batch, self.block_size, -1, self.groups)),
                       axis=2)

    def _bilinear(self, r: Any, p: Any, q: Any, shape: tuple) -> Any:
        """``(P (x) I) r (Q (x) I)`` per channel, without forming the
        ``H x H`` and ``W x W`` Kronecker products: in a band-major layout
        (``h = j * t + a``) left-multiplying by ``P (x) I_t`` is ``P`` times
        ``r`` reshaped to ``(k, t * W)``."""
        batch, height, width = shape
        d, k = self.hidden, self.block_size
        per_group = d // self.groups
        # Channel c uses its group's matrices (timm's expand over C // groups).
        p = ops.repeat(p, per_group, axis=1)  # (b, d, k, k)
        q_t = ops.repeat(ops.transpose(q, (0, 1, 3, 2)), per_group, axis=1)
        y = ops.transpose(r, (0, 3, 1, 2))  # (b, d, H, W)
        y = ops.matmul(p, ops.reshape(y, (batch, d, k, -1)))
        y = ops.transpose(ops.reshape(y, (batch, d, height, width)), (0, 1, 3, 2))
        # Right-multiplying by Q (x) I is Q^T times the transposed bands.
        y = ops.matmul(q_t, ops.reshape(y, (batch, d, k, -1)))
        y = ops.reshape(y, (batch, d, width, height))
        return ops.transpose(y, (0, 3, 2, 1))  # (b, H, W, d)

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        self._check_blocks(tuple(x.shape))
        batch, height, width = ops.shape(x)[:3]
        k, groups = self.block_size, self.groups
        r = self._cba(x32, self.conv1, self.bn1, training)
        u = self._cba(r, self.ba_conv1, self.ba_bn1, training)
        rows = ops.expand_dims(self._band_max(u, 2, batch), 2)  # (b, k, 1, groups)
        cols = ops.expand_dims(self._band_max(u, 1, batch), 1)  # (b, 1, k, groups)
        # The convs' output channel (g, i, j) is entry (i, j) of group g.
        p = ops.sigmoid(ops.reshape(self.conv_p(rows), (batch, groups, k, k)))
        q = ops.sigmoid(ops.reshape(self.conv_q(cols), (batch, groups, k, k)))
        p = p / ops.sum(p, axis=3, keepdims=True)
        q = q / ops.sum(q, axis=2, keepdims=True)
        y = self._bilinear(r, p, q, (batch, height, width))
        y = self._cba(y, self.ba_conv2, self.ba_bn2, training)
        y = self._cba(y, self.conv2, self.bn2, training)
        y = self.dropout(y, training=training)
        return x + ops.cast(y, x.dtype), {"height": p, "width": q}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "block_size": self.block_size,
                "groups": self.groups, "drop_rate": self.drop_rate,
                "activation": self.activation}
