"""Lambda layers: linear functions of the context in place of attention maps."""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from keras import ops

from attention_zoo.layers.base import float32_weight
from attention_zoo.layers.options import check_odd
from attention_zoo.layers.registry import CONV, register
from attention_zoo.layers.self_attention_2d import (MultiHeadConvAttention, check_size,
                                                    refuse_shape)


def relative_position_index(height: int, width: int) -> np.ndarray:
    """``(H W) * (H W)`` flat indices into a ``(2H - 1, 2W - 1)`` table of
    relative offsets: entry ``[n, m]`` is the offset of position ``m`` seen
    from position ``n`` (both row-major)."""
    rows, cols = np.divmod(np.arange(height * width), width)
    dr = rows[None, :] - rows[:, None] + height - 1
    dc = cols[None, :] - cols[:, None] + width - 1
    return (dr * (2 * width - 1) + dc).reshape(-1)


@register("lambda", CONV)
class LambdaLayer(MultiHeadConvAttention):
    """Lambda layer (Bello, 2021, arXiv:2102.08602), as timm's
    ``LambdaLayer`` (intra-depth ``u = 1``): replaces a convolution; takes
    ``filters`` and ``strides`` like a ``Conv2D``.

    Queries ``q = BN(x W_q)`` (``heads x k`` wide), keys ``x W_k`` (``k``),
    values ``v = BN(x W_v)`` (``filters / heads``). The content lambda
    ``lambda_c = softmax_N(K)^T V`` (``k x v``, keys normalised over all
    ``N = H W`` positions) is shared by every position; the position lambda
    ``lambda_n`` of position ``n`` is either a local one, a ``r x r``
    convolution of each value channel into ``k`` channels (timm's Conv3d
    with kernel ``(r, r, 1)``), or, with ``r=None``, ``sum_m E[n - m]^T v_m``
    with learned relative embeddings ``E`` over a fixed ``feat_size``. Output
    per head ``y_n = q_n (lambda_c + lambda_n)``, heads concatenated, then a
    2x2 average pool when ``strides=2``.

    Args:
        filters: output channels (timm's ``dim_out``; None: the input's),
            divisible by ``num_heads``.
        strides: 1, or 2 for an average pool after the layer.
        feat_size: ``(H, W)`` (or an int) for the relative position lambda
            (``r=None``); None: the size the layer is built on.
        num_heads: query heads sharing the keys and values.
        dim_head: key width ``k`` (16); None:
            ``make_divisible(filters * qk_ratio, 8) // num_heads``.
        r: local context size of the position lambda, odd; None for the
            relative-embedding lambda, which needs a fixed input size.
        qk_ratio: see ``dim_head``.
        qkv_bias: biases in the q, k, v projections.

    Input ``(batch, H, W, C)`` of a known height and width (any with ``r``,
    the fixed ``feat_size`` without); output ``(batch, ceil(H / strides),
    ceil(W / strides), filters)``; map: the key softmax over positions
    ``(batch, H, W, k)``. Computed in float32 throughout (``q lambda`` sums
    products of unbounded activations), output cast to the compute dtype.
    """

    def __init__(self, filters: int | None = None, strides: int = 1,
                 feat_size: int | Sequence[int] | None = None, num_heads: int = 4,
                 dim_head: int | None = 16, r: int | None = 9,
                 qk_ratio: float = 1.0, qkv_bias: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(filters, strides, num_heads, dim_head, qk_ratio,
                         qkv_bias, **kwargs)
        self.feat_size = check_size("feat_size", feat_size)
        self.r = None if r is None else check_odd("r", r)

    def build_gate(self, input_shape: tuple) -> None:
        size = tuple(input_shape[1:3])
        self.size = None
        if self.r is None:
            if self.feat_size is None and None in size:
                refuse_shape(self, input_shape, "of a known height and width (or "
                             "feat_size) for the relative position lambda")
            self.size = self.feat_size or size
            if None not in size and size != self.size:
                refuse_shape(self, input_shape, "of height and width "
                             f"{self.size} (feat_size)")
        self.build_heads()
        k, heads = self.key_width, self.num_heads
        self.qkv = self.projection(heads * k + k + self.value_width, "qkv", score=True)
        # torch's BatchNorm2d: eps 1e-5, running averages updated by 0.1.
        norm = {"epsilon": 1e-5, "momentum": 0.9}
        self.norm_q = self.gate_sublayer(keras.layers.BatchNormalization,
                                         name="norm_q", **norm)
        self.norm_v = self.gate_sublayer(keras.layers.BatchNormalization,
                                         name="norm_v", **norm)
        self.norm_q.build((None, None, None, heads * k))
        self.norm_v.build((None, None, None, self.value_width))
        if self.r is None:
            height, width = self.size
            self.pos_emb = float32_weight(
                self, "pos_emb", (2 * height - 1, 2 * width - 1, k),
                keras.initializers.TruncatedNormal(stddev=0.02))
        else:
            self.conv_lambda = self.gate_sublayer(
                keras.layers.Conv2D, k, self.r, padding="same", name="conv_lambda",
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=k ** -0.5))
            self.conv_lambda.build((None, None, None, 1))

    def position_lambda(self, v: Any, height: int, width: int) -> Any:
        """``lambda_n`` of every position, ``(b, N, k, dv)``, from values
        ``v`` ``(b, N, dv)``."""
        k, dv, n = self.key_width, self.value_width, height * width
        if self.r is None:
            table = ops.reshape(self.pos_emb, (-1, k))
            embeddings = ops.take(table, relative_position_index(height, width), axis=0)
            embeddings = ops.transpose(ops.reshape(embeddings, (n, n, k)), (0, 2, 1))
            lam = ops.matmul(ops.reshape(embeddings, (n * k, n)), v)
            return ops.reshape(lam, (-1, n, k, dv))
        # The Conv3d over (H, W, dv) with a (r, r, 1) kernel is one 2-D
        # convolution per value channel: move the channels into the batch.
        per_channel = ops.reshape(ops.transpose(v, (0, 2, 1)), (-1, height, width, 1))
        lam = ops.reshape(self.conv_lambda(per_channel), (-1, dv, n, k))
        return ops.transpose(lam, (0, 2, 3, 1))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        height, width = x.shape[1], x.shape[2]
        if height is None or width is None or (
                self.size is not None and (height, width) != self.size):
            want = "of a known height and width" if self.size is None else \
                f"of height and width {self.size} (feat_size)"
            refuse_shape(self, x.shape, want)
        k, dv, heads, n = self.key_width, self.value_width, self.num_heads, height * width
        q, keys, v = ops.split(self.qkv(x32), [heads * k, heads * k + k], axis=-1)
        q = ops.reshape(self.norm_q(q, training=training), (-1, n, heads, k))
        v = ops.reshape(self.norm_v(v, training=training), (-1, n, dv))
        # Softmax over positions, on the last axis (what TFLite's SOFTMAX takes).
        keys = ops.softmax(ops.transpose(ops.reshape(keys, (-1, n, k)), (0, 2, 1)), axis=-1)
        content = ops.expand_dims(ops.matmul(keys, v), 1)  # (b, 1, k, dv)
        lam = content + self.position_lambda(v, height, width)  # (b, N, k, dv)
        out = ops.reshape(ops.matmul(q, lam), (-1, height, width, self.out_channels))
        if self.strides == 2:
            out = self.downsample(out)
        maps = ops.reshape(ops.transpose(keys, (0, 2, 1)), (-1, height, width, k))
        return ops.cast(out, x.dtype), maps

    def get_config(self) -> dict[str, Any]:
        size = None if self.feat_size is None else list(self.feat_size)
        return {**super().get_config(), "feat_size": size, "r": self.r}
