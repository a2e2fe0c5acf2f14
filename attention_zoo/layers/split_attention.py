"""Split attention (ResNeSt), as timm builds it (``splat``)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from attention_zoo.layers.base import InputError, _describe, check_positive
from attention_zoo.layers.options import (TORCH_BN_EPSILON, check_bool,
                                          make_divisible, softmax_over, timm_padding)
from attention_zoo.layers.registry import CONV, register
from attention_zoo.layers.selective_kernel import BranchAttention

#: timm's floor on the attention width of split attention.
MIN_ATTN_CHANNELS = 32


@register("splat", CONV)
class SplitAttention(BranchAttention):
    """Split attention convolution (Zhang et al., 2020, arXiv:2004.08955), as
    timm's ``SplitAttn``. It replaces a convolution: like ``Conv2D`` it takes
    ``filters`` and ``strides``.

    One convolution with ``groups * radix`` groups makes ``radix`` splits
    ``U_r = ReLU(BN(conv(x))_r)`` of ``filters`` channels each (BN only with
    ``use_batch_norm``). With cardinality ``G = groups``:
    ``s = mean_hw(sum_r U_r)``, ``z = ReLU(BN(W_1 s + b_1))``,
    ``l = W_2 z + b_2`` (``W_1``, ``W_2`` 1x1 convolutions with ``G``
    groups), and per cardinal group ``g`` and channel ``c``:
    ``a_r = softmax_r(l[g, r, c])`` (``sigmoid(l)`` when ``radix`` is 1).
    Output ``sum_r a_r * U_r``. The convolution pads ``d (k - 1) / 2`` on
    every side (ResNeSt's ``padding=dilation`` for 3x3 kernels; timm's
    default ``k // 2`` without dilation). Strided and dilated, it runs at
    stride 1 and keeps every ``strides``-th output, as Keras cannot stride a
    dilated convolution.

    Input ``(batch, H, W, C)``; output ``(batch, ceil(H / strides),
    ceil(W / strides), filters)``; map: the split weights ``a``
    ``(batch, radix, filters)``.

    Args:
        filters: output channels (None: the input's ``C``).
        strides: stride of the convolution.
        kernel_size: odd kernel size of the convolution.
        dilation: its dilation.
        groups: cardinality ``G``: ``C`` divisible by ``G * radix``,
            ``filters`` by ``G``.
        use_bias: a bias in the convolution.
        radix: number of splits.
        rd_ratio, rd_divisor: attention width ``make_divisible(C * radix *
            rd_ratio, rd_divisor, min_value=32)`` (timm's rounding), unless
            ``rd_channels``.
        rd_channels: attention width per split (``rd_channels * radix`` in all).
        use_batch_norm: BatchNorm after the convolution and in the attention
            (timm's ``norm_layer``; ResNeSt uses it, ``create_attn`` does not).
        norm_epsilon: BatchNorm epsilon (PyTorch's by default).
    """

    def __init__(self, filters: int | None = None, strides: int = 1,
                 kernel_size: int = 3, dilation: int = 1, groups: int = 1,
                 use_bias: bool = False, radix: int = 2, rd_ratio: float = 0.25,
                 rd_channels: int | None = None, rd_divisor: int = 8,
                 use_batch_norm: bool = False,
                 norm_epsilon: float = TORCH_BN_EPSILON, **kwargs: Any) -> None:
        super().__init__(filters, strides, norm_epsilon, **kwargs)
        self.kernel_size = check_positive("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            # Only odd kernels keep ceil(H / strides) with symmetric padding.
            raise ValueError(f"kernel_size must be odd, received {kernel_size!r}")
        self.dilation = check_positive("dilation", dilation)
        self.groups = check_positive("groups", groups)
        self.use_bias = check_bool("use_bias", use_bias)
        self.radix = check_positive("radix", radix)
        self.rd_ratio = float(check_positive("rd_ratio", rd_ratio, integer=False))
        self.rd_channels = None if rd_channels is None else check_positive(
            "rd_channels", rd_channels)
        self.rd_divisor = check_positive("rd_divisor", rd_divisor)
        self.use_batch_norm = check_bool("use_batch_norm", use_batch_norm)

    @property
    def attn_channels(self) -> int:
        if self.rd_channels is not None:
            return self.rd_channels * self.radix
        return make_divisible(self.channels * self.radix * self.rd_ratio,
                              self.rd_divisor, min_value=MIN_ATTN_CHANNELS,
                              round_limit=0.9)

    def branch_kernel(self) -> tuple[int, int]:
        return self.kernel_size, self.dilation

    def padding(self, kernel_size: int, dilation: int) -> int:
        return timm_padding(kernel_size, 1, dilation)

    def build_gate(self, input_shape: tuple) -> None:
        radix, groups = self.radix, self.groups
        mid = self.out_channels * radix
        self.check_groups(self.channels, mid, groups * radix, input_shape)
        self.conv = self.branch_conv(mid, self.kernel_size, self.dilation,
                                     groups * radix, self.use_bias, "conv",
                                     subsample=self.dilation > 1)
        self.conv.build((None, None, None, self.channels))
        layer = self.gate_sublayer
        hidden = self.attn_channels
        if hidden % groups:
            raise InputError(
                f"{type(self).__name__} layer '{self.name}' expects an attention "
                f"width divisible by groups={groups}, received {hidden} (from input "
                f"shape {_describe(input_shape)}); set rd_channels.")
        self.fc1 = layer(keras.layers.Conv2D, hidden, 1, groups=groups, name="fc1")
        self.fc2 = layer(keras.layers.Conv2D, mid, 1, groups=groups, name="fc2")
        self.fc1.build((None, 1, 1, self.out_channels))
        self.fc2.build((None, 1, 1, hidden))
        self.bn0 = self.bn1 = None
        if self.use_batch_norm:
            self.bn0 = self.batch_norm("bn0")
            self.bn1 = self.batch_norm("bn1", gate=True)
            self.bn0.build((None, None, None, mid))
            self.bn1.build((None, 1, 1, hidden))

    @staticmethod
    def normalized(norm: Any, x: Any, training: Any) -> Any:
        return x if norm is None else norm(x, training=training)

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        radix, groups, filters = self.radix, self.groups, self.out_channels
        y = ops.relu(self.normalized(self.bn0, self.padded_conv(x, self.conv), training))
        # timm's conv output is split-major: channel r * filters + c.
        splits = ops.split(y, radix, axis=-1) if radix > 1 else [y]
        z = ops.relu(self.normalized(self.bn1, self.fc1(self.pooled_sum(splits)),
                                     training))
        logits = self.fc2(z)  # (b, 1, 1, radix * filters)
        if radix > 1:
            # fc2's channels are (group, split, c) within each cardinal group;
            # the splits' are (split, group, c).
            logits = ops.reshape(logits, (-1, groups, radix, filters // groups))
            weights = ops.transpose(softmax_over(logits, axis=2), (0, 2, 1, 3))
            weights = ops.reshape(weights, (-1, radix, filters))
        else:
            weights = ops.reshape(ops.sigmoid(logits), (-1, 1, filters))
        return self.mix(splits, weights), weights

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "dilation": self.dilation, "groups": self.groups,
                "use_bias": self.use_bias, "radix": self.radix,
                "rd_ratio": self.rd_ratio, "rd_channels": self.rd_channels,
                "rd_divisor": self.rd_divisor,
                "use_batch_norm": self.use_batch_norm}
