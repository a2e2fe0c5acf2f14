"""Selective kernel convolution (SKNet), as timm builds it (``sk``), and
what it shares with split attention (``splat``): convolution branches mixed
by a softmax over the branches, computed from their pooled sum.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops

from attention_zoo.layers.base import (ConvAttention, InputError, Shape,
                                       _describe, check_positive)
from attention_zoo.layers.options import (TORCH_BN_EPSILON, TORCH_BN_MOMENTUM,
                                          check_bool, make_divisible, softmax_over,
                                          timm_padding)
from attention_zoo.layers.registry import CONV, register

def conv_output_size(size: int | None, kernel_size: int, strides: int,
                     dilation: int, padding: int) -> int | None:
    """PyTorch's output length of a convolution padded ``padding`` on both
    sides: ``floor((size + 2 padding - dilation (k - 1) - 1) / strides) + 1``."""
    if size is None:
        return None
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // strides + 1


class BranchAttention(ConvAttention):
    """Base of the layers here: convolution branches in the compute dtype,
    zero-padded symmetrically as timm pads them, mixed by float32 weights
    ``(batch, branches, filters)``.

    Subclasses build their convolutions with ``branch_conv`` and
    ``batch_norm``, and mix branches with ``mix``.
    """

    def __init__(self, filters: int | None = None, strides: int = 1,
                 norm_epsilon: float = TORCH_BN_EPSILON, **kwargs: Any) -> None:
        super().__init__(filters, strides, **kwargs)
        self.norm_epsilon = float(check_positive("norm_epsilon", norm_epsilon,
                                                 integer=False))

    def branch_conv(self, filters: int, kernel_size: int, dilation: int,
                    groups: int, use_bias: bool, name: str,
                    subsample: bool = False) -> keras.layers.Conv2D:
        """A branch convolution; with ``subsample`` it runs at stride 1 and
        ``padded_conv`` keeps every ``strides``-th output: the same values,
        for the dilated convolutions Keras refuses to stride."""
        # 'valid' after an explicit ops.pad: Keras's 'same' pads strided
        # convolutions asymmetrically, timm symmetrically.
        return keras.layers.Conv2D(
            filters, kernel_size, strides=1 if subsample else self.strides,
            padding="valid", dilation_rate=dilation, groups=groups,
            use_bias=use_bias, dtype=self.dtype_policy, name=name)

    def batch_norm(self, name: str, gate: bool = False,
                   epsilon: float | None = None) -> keras.layers.BatchNormalization:
        """A BatchNorm of a branch (compute dtype) or, with ``gate``, of the
        attention (float32)."""
        dtype = "float32" if gate else self.dtype_policy
        return keras.layers.BatchNormalization(
            epsilon=self.norm_epsilon if epsilon is None else epsilon,
            momentum=TORCH_BN_MOMENTUM, dtype=dtype, name=name)

    def padded_conv(self, x: Any, conv: keras.layers.Conv2D) -> Any:
        pad = self.padding(conv.kernel_size[0], conv.dilation_rate[0])
        if pad:
            x = ops.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        y = conv(x)
        if conv.strides[0] != self.strides:
            y = y[:, ::self.strides, ::self.strides, :]
        return y

    def padding(self, kernel_size: int, dilation: int) -> int:
        """Zeros added on every side before a branch convolution."""
        raise NotImplementedError

    def branch_kernel(self) -> tuple[int, int]:
        """``(kernel_size, dilation)`` of a branch convolution; every branch
        gives the same output size."""
        raise NotImplementedError

    def check_groups(self, inputs: int, outputs: int, groups: int,
                     input_shape: tuple) -> None:
        """A grouped convolution needs both its widths divisible by its groups."""
        if inputs % groups or outputs % groups:
            raise InputError(
                f"{type(self).__name__} layer '{self.name}' expects the input and "
                f"output widths of its convolution ({inputs} and {outputs}) to be "
                f"divisible by its {groups} groups, received input shape "
                f"{_describe(input_shape)} with filters={self.out_channels}.")

    @staticmethod
    def pooled_sum(branches: Sequence[Any]) -> Any:
        """``mean_hw(sum of branches)`` in float32: ``(batch, 1, 1, filters)``."""
        total = ops.cast(branches[0], "float32")
        for branch in branches[1:]:
            total = total + ops.cast(branch, "float32")
        return ops.mean(total, axis=(1, 2), keepdims=True)

    @staticmethod
    def mix(branches: Sequence[Any], weights: Any) -> Any:
        """``sum_i branch_i * weights[:, i]``, weights ``(batch, n, filters)``."""
        dtype = branches[0].dtype
        output = None
        for i, branch in enumerate(branches):
            weight = ops.cast(weights[:, i:i + 1, None, :], dtype)  # (b, 1, 1, C)
            output = branch * weight if output is None else output + branch * weight
        return output

    def compute_output_shape(self, input_shape: Shape) -> tuple:
        kernel_size, dilation = self.branch_kernel()
        pad = self.padding(kernel_size, dilation)

        def size(n: int | None) -> int | None:
            return conv_output_size(n, kernel_size, self.strides, dilation, pad)

        return (input_shape[0], size(input_shape[1]), size(input_shape[2]),
                self.filters or input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "norm_epsilon": self.norm_epsilon}


def _kernel_sizes(kernel_size: int | Sequence[int] | None) -> list[int]:
    if kernel_size is None:
        return [3, 5]
    sizes = [kernel_size] * 2 if isinstance(kernel_size, int) else list(kernel_size)
    def valid(k: Any) -> bool:
        return isinstance(k, int) and not isinstance(k, bool) and k >= 3 and k % 2 == 1

    if not sizes or not all(valid(k) for k in sizes):
        raise ValueError("kernel_size must be an odd int >= 3 or a non-empty list "
                         f"of them, received {kernel_size!r}")
    return sizes


@register("sk", CONV)
class SelectiveKernel(BranchAttention):
    """Selective kernel convolution (Li et al., 2019, arXiv:1903.06586), as
    timm's ``SelectiveKernel``. It replaces a convolution: like ``Conv2D``
    it takes ``filters`` and ``strides``.

    ``n`` branches ``U_i = ReLU(BN(conv_i(x_i)))`` with kernel ``k_i``
    (timm's default: one 3x3 and one 3x3 dilated 2, i.e. 3 and 5 with
    ``keep_3x3``); with ``split_input`` branch ``i`` sees the ``i``-th of
    ``n`` equal channel slices ``x_i``, else all of ``x``. Attention over
    the branches: ``s = mean_hw(sum_i U_i)``, ``z = ReLU(BN(W_r s))``,
    ``a = softmax_i(W_s z)`` per output channel; output ``sum_i a_i * U_i``.
    Convolutions pad ``((strides - 1) + d (k - 1)) // 2`` on every side, as
    timm does; ``W_r``, ``W_s`` are bias-free 1x1 convolutions. Strided with
    a dilated branch (the default's second), every branch runs at stride 1
    and keeps every ``strides``-th output, as Keras cannot stride a dilated
    convolution: ``strides ** 2`` times the convolutions' work.

    Input ``(batch, H, W, C)``; output ``(batch, H', W', filters)`` with
    ``H' = ceil(H / strides)`` for strides 1 and 2 (timm's padding gives
    ``floor((H + 2 p - d (k - 1) - 1) / strides) + 1`` in general); map:
    the branch weights ``a`` ``(batch, n, filters)``.

    Args:
        filters: output channels (None: the input's ``C``).
        strides: stride of every branch.
        kernel_size: an odd int >= 3 (two such branches) or a list, one per
            branch; default ``[3, 5]``.
        dilation: dilation of the whole layer.
        groups: groups of each branch convolution (at most ``filters``).
        rd_ratio, rd_divisor: attention width ``make_divisible(filters *
            rd_ratio, rd_divisor)`` (timm's rounding), unless ``rd_channels``.
        rd_channels: attention width.
        keep_3x3: make every kernel 3x3, dilated ``dilation (k - 1) / 2``
            (same receptive field, fewer weights); else kernel ``k`` dilated
            ``dilation``.
        split_input: split the input channels evenly across the branches
            (``C`` divisible by ``n``).
        norm_epsilon: epsilon of the branches' BatchNorms (PyTorch's by
            default).
        attn_norm_epsilon: epsilon of the attention's BatchNorm (None:
            ``norm_epsilon``); timm's is PyTorch's whatever its branches use.
    """

    def __init__(self, filters: int | None = None, strides: int = 1,
                 kernel_size: int | Sequence[int] | None = None, dilation: int = 1,
                 groups: int = 1, rd_ratio: float = 1.0 / 16,
                 rd_channels: int | None = None, rd_divisor: int = 8,
                 keep_3x3: bool = True, split_input: bool = True,
                 norm_epsilon: float = TORCH_BN_EPSILON,
                 attn_norm_epsilon: float | None = None, **kwargs: Any) -> None:
        super().__init__(filters, strides, norm_epsilon, **kwargs)
        self.attn_norm_epsilon = None if attn_norm_epsilon is None else float(
            check_positive("attn_norm_epsilon", attn_norm_epsilon, integer=False))
        self.kernel_size = _kernel_sizes(kernel_size)
        self.dilation = check_positive("dilation", dilation)
        self.groups = check_positive("groups", groups)
        self.rd_ratio = float(check_positive("rd_ratio", rd_ratio, integer=False))
        self.rd_channels = None if rd_channels is None else check_positive(
            "rd_channels", rd_channels)
        self.rd_divisor = check_positive("rd_divisor", rd_divisor)
        self.keep_3x3 = check_bool("keep_3x3", keep_3x3)
        self.split_input = check_bool("split_input", split_input)
        if keep_3x3:
            self.path_kernels = [(3, self.dilation * (k - 1) // 2)
                                 for k in self.kernel_size]
        else:
            self.path_kernels = [(k, self.dilation) for k in self.kernel_size]

    @property
    def num_paths(self) -> int:
        return len(self.path_kernels)

    @property
    def attn_channels(self) -> int:
        return self.rd_channels or make_divisible(
            self.out_channels * self.rd_ratio, self.rd_divisor, round_limit=0.9)

    def branch_kernel(self) -> tuple[int, int]:
        return self.path_kernels[0]

    def padding(self, kernel_size: int, dilation: int) -> int:
        return timm_padding(kernel_size, self.strides, dilation)

    def build_gate(self, input_shape: tuple) -> None:
        n = self.num_paths
        width = self.channels
        if self.split_input:
            if width % n:
                raise InputError(
                    f"{type(self).__name__} layer '{self.name}' splits its input "
                    f"over {n} branches: it expects a channel count divisible by "
                    f"{n}, received shape {_describe(input_shape)}.")
            width //= n
        groups = min(self.out_channels, self.groups)
        self.check_groups(width, self.out_channels, groups, input_shape)
        # One dilated branch subsampled means all: branches summed must have
        # output sizes of one formula, or JAX cannot trace unknown H, W.
        subsample = self.strides > 1 and any(d > 1 for _, d in self.path_kernels)
        self.path_convs = [
            self.branch_conv(self.out_channels, k, d, groups, False, f"path{i}_conv",
                             subsample)
            for i, (k, d) in enumerate(self.path_kernels)]
        self.path_bns = [self.batch_norm(f"path{i}_bn") for i in range(n)]
        for conv, bn in zip(self.path_convs, self.path_bns):
            conv.build((None, None, None, width))
            bn.build((None, None, None, self.out_channels))
        layer = self.gate_sublayer
        hidden = self.attn_channels
        self.fc_reduce = layer(keras.layers.Conv2D, hidden, 1, use_bias=False,
                               name="fc_reduce")
        self.attn_bn = self.batch_norm("attn_bn", gate=True,
                                       epsilon=self.attn_norm_epsilon)
        self.fc_select = layer(keras.layers.Conv2D, self.out_channels * n, 1,
                               use_bias=False, name="fc_select")
        self.fc_reduce.build((None, 1, 1, self.out_channels))
        self.attn_bn.build((None, 1, 1, hidden))
        self.fc_select.build((None, 1, 1, hidden))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        n = self.num_paths
        inputs = ops.split(x, n, axis=-1) if self.split_input else [x] * n
        branches = [ops.relu(bn(self.padded_conv(part, conv), training=training))
                    for part, conv, bn in zip(inputs, self.path_convs, self.path_bns)]
        z = ops.relu(self.attn_bn(self.fc_reduce(self.pooled_sum(branches)),
                                  training=training))
        # timm's fc_select output is branch-major: channel i * filters + c.
        logits = ops.reshape(self.fc_select(z), (-1, n, self.out_channels))
        weights = softmax_over(logits, axis=1)
        return self.mix(branches, weights), weights

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": list(self.kernel_size),
                "dilation": self.dilation, "groups": self.groups,
                "rd_ratio": self.rd_ratio, "rd_channels": self.rd_channels,
                "rd_divisor": self.rd_divisor, "keep_3x3": self.keep_3x3,
                "split_input": self.split_input,
                "attn_norm_epsilon": self.attn_norm_epsilon}
