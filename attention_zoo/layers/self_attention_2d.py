"""2-D multi-head self-attention that replaces a convolution: BoTNet's
bottleneck attention (global, relative positions over the whole map) and
HaloNet's halo attention (blocked local windows).

Both follow timm's ``BottleneckAttn`` and ``HaloAttn`` (timm 1.0): the same
defaults, channel layouts, scaling and relative-position logits, so weights
convert one to one (``attention_zoo.interop.from_timm``).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from keras import ops

from attention_zoo.layers.base import (ConvAttention, InputError, _describe,
                                       check_positive, float32_weight)
from attention_zoo.layers.options import check_bool, make_divisible
from attention_zoo.layers.registry import CONV, register

# ----------------------------------------------------------- shared helpers --


def check_strides(layer: keras.layers.Layer, strides: int) -> int:
    """timm downsamples these layers by 2 (average pooling or strided query
    blocks) or not at all; other strides it ignores silently, so refuse them."""
    if strides not in (1, 2):
        raise ValueError(f"{type(layer).__name__} supports strides 1 or 2, "
                         f"received {strides!r}")
    return strides


def check_size(name: str, value: Any) -> tuple[int, int] | None:
    """None, an int or a pair of positive ints, as ``(height, width)``."""
    if value is None:
        return None
    pair = (value, value) if isinstance(value, int) else value
    if isinstance(value, bool) or not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{name} must be None, an int or a pair of ints, "
                         f"received {value!r}")
    for v in pair:
        check_positive(name, v)
    return int(pair[0]), int(pair[1])


def qk_head_width(layer: keras.layers.Layer, dim_out: int, num_heads: int,
                  dim_head: int | None, qk_ratio: float) -> int:
    """timm's query/key width per head: ``dim_head``, else
    ``make_divisible(dim_out * qk_ratio, 8) // num_heads``; refuses an output
    width that the heads do not divide (each head's values are
    ``dim_out / num_heads`` wide)."""
    if dim_out % num_heads:
        raise InputError(
            f"{type(layer).__name__} layer '{layer.name}' expects an output "
            f"width divisible by num_heads={num_heads}, received {dim_out}")
    width = dim_head or make_divisible(dim_out * qk_ratio, 8, round_limit=0.9) // num_heads
    if width < 1:
        raise InputError(
            f"{type(layer).__name__} layer '{layer.name}' expects qk_ratio * "
            f"filters to give at least one query/key channel per head, received "
            f"{dim_out} filters, qk_ratio={qk_ratio} and {num_heads} heads")
    return width


def refuse_shape(layer: keras.layers.Layer, shape: Sequence[int | None],
                 expects: str) -> None:
    """Raises InputError: ``layer`` expects inputs ``expects``."""
    raise InputError(f"{type(layer).__name__} layer '{layer.name}' expects "
                     f"inputs {expects}, received shape {_describe(tuple(shape))}.")


def relative_logits_1d(q: Any, rel: Any, window: int) -> Any:
    """Relative logits along the last spatial axis of ``q``.

    ``q``: ``(n, rows, cols, d)``; ``rel``: ``(2 * window - 1, d)``, one
    embedding per offset ``-(window - 1) .. window - 1``. Returns
    ``(n, rows, cols, window)`` with ``[.., i, j] = q_i . rel[window - 1 + j - i]``
    for keys ``j`` of a window of ``window >= cols`` positions: the
    relative-to-absolute shift of attention-augmented convolutions (Bello et
    al., 2019, arXiv:1904.09925), as timm and the BoTNet gist compute it.

    Padding and reshaping rather than a gather: the logits ``q . rel`` of all
    offsets, laid out with one extra column per row, become the absolute ones
    when read with a row length one shorter.
    """
    cols = q.shape[2]
    size = 2 * window - 1
    x = ops.reshape(ops.matmul(q, ops.transpose(rel)), (-1, cols, size))
    x = ops.pad(x, [[0, 0], [0, 0], [0, 1]])
    x = ops.reshape(x, (-1, cols * (size + 1)))
    x = ops.pad(x, [[0, 0], [0, size - cols]])
    x = ops.reshape(x, (-1, cols + 1, size))[:, :cols, window - 1:]
    return ops.reshape(x, (-1, q.shape[1], cols, window))


def relative_logits_2d(q: Any, height_rel: Any, width_rel: Any,
                       window: tuple[int, int]) -> Any:
    """Relative logits of queries ``q`` ``(n, qh, qw, d)`` on a key window of
    ``window = (kh, kw)`` positions: ``q_ij . (height_rel[kh - 1 + r - i] +
    width_rel[kw - 1 + s - j])`` for key ``(r, s)``. Returns
    ``(n, qh * qw, kh * kw)``, keys row-major."""
    qh, qw = q.shape[1], q.shape[2]
    kh, kw = window
    width = relative_logits_1d(q, width_rel, kw)  # (n, qh, qw, kw)
    height = relative_logits_1d(ops.transpose(q, (0, 2, 1, 3)), height_rel, kh)
    height = ops.transpose(height, (0, 2, 1, 3))  # (n, qh, qw, kh)
    # Broadcast over 4 axes (not 5): what TFLite's ADD takes everywhere.
    logits = (ops.reshape(height, (-1, qh * qw, kh, 1))
              + ops.reshape(width, (-1, qh * qw, 1, kw)))
    return ops.reshape(logits, (-1, qh * qw, kh * kw))


def heads_first(x: Any, positions: int, heads: int) -> Any:
    """``(b, ..., heads * d)`` with ``positions`` positions as
    ``(b, heads, positions, d)``."""
    x = ops.reshape(x, (-1, positions, heads, x.shape[-1] // heads))
    return ops.transpose(x, (0, 2, 1, 3))


class MultiHeadConvAttention(ConvAttention):
    """What the lambda, bottleneck and halo layers share: heads, timm's
    query/key width per head, 1x1 projections, 2x2 average-pool striding."""

    def __init__(self, filters: int | None = None, strides: int = 1,
                 num_heads: int = 4, dim_head: int | None = None,
                 qk_ratio: float = 1.0, qkv_bias: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(filters=filters, strides=strides, **kwargs)
        check_strides(self, strides)
        self.num_heads = check_positive("num_heads", num_heads)
        self.dim_head = None if dim_head is None else check_positive("dim_head", dim_head)
        self.qk_ratio = check_positive("qk_ratio", qk_ratio, integer=False)
        self.qkv_bias = check_bool("qkv_bias", qkv_bias)
        if filters is not None and filters % num_heads:
            raise ValueError(f"filters must be divisible by num_heads, received "
                             f"filters={filters} and num_heads={num_heads}")

    def build_heads(self) -> None:
        self.key_width = qk_head_width(self, self.out_channels, self.num_heads,
                                       self.dim_head, self.qk_ratio)
        self.value_width = self.out_channels // self.num_heads
        self.scale = self.key_width ** -0.5

    def projection(self, units: int, name: str, score: bool) -> keras.layers.Layer:
        """A built 1x1 convolution of the input: float32 for what feeds
        scores (``score``), the layer's policy otherwise."""
        kwargs = {"use_bias": self.qkv_bias, "name": name,
                  # timm: truncated normal, std fan_in ** -0.5
                  "kernel_initializer": "lecun_normal"}
        layer = (self.gate_sublayer(keras.layers.Dense, units, **kwargs) if score
                 else keras.layers.Dense(units, dtype=self.dtype_policy, **kwargs))
        layer.build((None, None, None, self.channels))
        return layer

    def values(self, x: Any) -> Any:
        """The value projection of ``x``, in ``x``'s dtype: PyTorch's
        symbolic trace (``keras.Input``) reads the kernel uncast, which would
        promote a float16 result to float32."""
        return ops.cast(self.value(x), x.dtype)

    def downsample(self, x: Any) -> Any:
        # 'same' pooling, so odd sizes give ceil(size / 2) (timm floors them).
        return ops.average_pool(x, 2, 2, padding="same")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_heads": self.num_heads,
                "dim_head": self.dim_head, "qk_ratio": self.qk_ratio,
                "qkv_bias": self.qkv_bias}


class _SelfAttention2D(MultiHeadConvAttention):
    """Multi-head softmax attention with learned relative-position logits
    (BoTNet, HaloNet): scaling ``dim_head ** -0.5``, queries and keys
    projected from the float32 input by float32 1x1 convolutions (no bias by
    default), scores and softmax in float32; values in the compute dtype.
    """

    def __init__(self, filters: int | None = None, strides: int = 1,
                 num_heads: int = 4, dim_head: int | None = None,
                 qk_ratio: float = 1.0, qkv_bias: bool = False,
                 scale_pos_embed: bool = False, **kwargs: Any) -> None:
        super().__init__(filters, strides, num_heads, dim_head, qk_ratio,
                         qkv_bias, **kwargs)
        self.scale_pos_embed = check_bool("scale_pos_embed", scale_pos_embed)

    def position_embeddings(self, window: tuple[int, int]) -> None:
        """``height_rel`` ``(2 kh - 1, dim_head)`` and ``width_rel``
        ``(2 kw - 1, dim_head)``: one embedding per relative offset."""
        init = keras.initializers.TruncatedNormal(stddev=self.scale)
        self.height_rel = float32_weight(self, "height_rel",
                                         (2 * window[0] - 1, self.key_width), init)
        self.width_rel = float32_weight(self, "width_rel",
                                        (2 * window[1] - 1, self.key_width), init)

    def attention(self, q: Any, k: Any, query_block: tuple[int, int],
                  window: tuple[int, int]) -> Any:
        """Softmax weights (float32) of queries ``q`` ``(b, g, P, d)`` on keys
        ``k`` ``(b, g, K, d)``, ``P`` queries of a ``query_block`` grid and
        ``K`` keys of a ``window`` grid (``g``: heads, or heads x blocks):
        ``softmax(q k^T * scale + rel(q))``, or ``(q k^T + rel(q)) * scale``
        with ``scale_pos_embed``."""
        groups, positions = q.shape[1], q.shape[2]
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        grid = ops.reshape(q, (-1, *query_block, self.key_width))
        rel = relative_logits_2d(grid, self.height_rel, self.width_rel, window)
        rel = ops.reshape(rel, (-1, groups, positions, window[0] * window[1]))
        if self.scale_pos_embed:
            scores = (scores + rel) * self.scale
        else:
            scores = scores * self.scale + rel
        return ops.softmax(scores, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale_pos_embed": self.scale_pos_embed}


@register("bottleneck", CONV)
class BottleneckSelfAttention(_SelfAttention2D):
    """BoTNet's multi-head self-attention (Srinivas et al., 2021,
    arXiv:2101.11605), as timm's ``BottleneckAttn``: replaces the 3x3
    convolution of a ResNet bottleneck; takes ``filters`` and ``strides``
    like a ``Conv2D``.

    Over all ``N = H * W`` positions, per head:
    ``a = softmax(q k^T / sqrt(d) + q r^T)``, output ``a v`` (heads
    concatenated), then a 2x2 average pool when ``strides=2``. ``q, k, v``
    are 1x1 convolutions of the input; the relative-position logit of query
    ``(i, j)`` and key ``(r, s)`` is ``q . (height_rel[H - 1 + r - i] +
    width_rel[W - 1 + s - j])``, so the layer needs a fixed feature size.

    Args:
        filters: output channels (timm's ``dim_out``; None: the input's),
            divisible by ``num_heads``; each head's values are
            ``filters / num_heads`` wide.
        strides: 1, or 2 for an average pool after attention.
        feat_size: ``(H, W)`` (or an int) of the input; None: the size the
            layer is built on. Inputs of another size are refused.
        num_heads: attention heads.
        dim_head: query/key width per head; None:
            ``make_divisible(filters * qk_ratio, 8) // num_heads``.
        qk_ratio: see ``dim_head``.
        qkv_bias: biases in the q, k, v projections.
        scale_pos_embed: scale the position logits too:
            ``(q k^T + q r^T) / sqrt(d)``.

    Input ``(batch, H, W, C)``; output ``(batch, ceil(H / strides),
    ceil(W / strides), filters)`` (timm floors odd sizes); map: the attention
    weights ``(batch, heads, H * W, H * W)``, keys and queries row-major.
    """

    def __init__(self, filters: int | None = None, strides: int = 1,
                 feat_size: int | Sequence[int] | None = None, num_heads: int = 4,
                 dim_head: int | None = None, qk_ratio: float = 1.0,
                 qkv_bias: bool = False, scale_pos_embed: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(filters, strides, num_heads, dim_head, qk_ratio,
                         qkv_bias, scale_pos_embed, **kwargs)
        self.feat_size = check_size("feat_size", feat_size)

    def build_gate(self, input_shape: tuple) -> None:
        size = tuple(input_shape[1:3])
        if self.feat_size is None and None in size:
            refuse_shape(self, input_shape, "of a known height and width (or "
                         "feat_size) for the relative positions")
        self.size = self.feat_size or size
        if None not in size and size != self.size:
            refuse_shape(self, input_shape, f"of shape {_describe((None, *self.size, None))}"
                         " (feat_size)")
        self.build_heads()
        qk_units = self.num_heads * self.key_width
        self.query_key = self.projection(2 * qk_units, "query_key", score=True)
        self.value = self.projection(self.out_channels, "value", score=False)
        self.position_embeddings(self.size)

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        height, width = self.size
        if tuple(x.shape[1:3]) != self.size:
            refuse_shape(self, x.shape, "of shape "
                         f"{_describe((None, height, width, self.channels))}")
        n, heads = height * width, self.num_heads
        q, k = ops.split(self.query_key(x32), 2, axis=-1)
        weights = self.attention(heads_first(q, n, heads), heads_first(k, n, heads),
                                 self.size, self.size)
        v = heads_first(self.values(x), n, heads)
        out = ops.matmul(ops.cast(weights, v.dtype), v)  # (b, heads, N, dv)
        out = ops.reshape(ops.transpose(out, (0, 2, 1, 3)),
                          (-1, height, width, self.out_channels))
        if self.strides == 2:
            out = self.downsample(out)
        return out, weights

    def get_config(self) -> dict[str, Any]:
        size = None if self.feat_size is None else list(self.feat_size)
        return {**super().get_config(), "feat_size": size}


def unfold(x: Any, blocks: tuple[int, int], size: int, step: int,
           heads: int) -> Any:
    """Windows of ``size x size`` positions every ``step`` of ``x``
    ``(b, H', W', heads * d)`` (already padded), ``blocks`` = (rows,
    columns) of windows, as ``(b, heads * blocks, size * size, d)``: heads
    outer, blocks row-major, positions row-major."""
    rows, cols = blocks
    channels = x.shape[-1]
    if size != step:
        # Windows overlap (the halo), so no reshape cuts them: gather each
        # window's rows, then its columns (TFLite GATHER, static indices).
        def starts(count: int) -> np.ndarray:
            return (np.arange(count)[:, None] * step + np.arange(size)).reshape(-1)

        x = ops.take(x, starts(rows), axis=1)
        x = ops.take(x, starts(cols), axis=2)
    x = ops.reshape(x, (-1, size, cols, size, channels))  # batch x rows first
    x = ops.transpose(x, (0, 2, 1, 3, 4))
    x = ops.reshape(x, (-1, rows * cols, size * size, heads, channels // heads))
    x = ops.transpose(x, (0, 3, 1, 2, 4))
    return ops.reshape(x, (-1, heads * rows * cols, size * size, channels // heads))


@register("halo", CONV)
class HaloAttention(_SelfAttention2D):
    """HaloNet's blocked local self-attention (Vaswani et al., 2021,
    arXiv:2103.12731), as timm's ``HaloAttn``: replaces a convolution; takes
    ``filters`` and ``strides`` like a ``Conv2D``.

    The map is cut into ``block_size x block_size`` query blocks; each
    attends, per head, to its window of ``w = block_size + 2 * halo_size``
    positions (the block and a halo around it; keys and values are projected,
    then zero-padded at the borders): ``a = softmax(q k^T / sqrt(d) +
    q r^T)``, output ``a v``. The relative-position logit of query ``(i, j)``
    of a block and key ``(r, s)`` of its window is ``q . (height_rel[w - 1 +
    r - i] + width_rel[w - 1 + s - j])``. With ``strides=2`` the queries are
    the even positions (blocks of ``block_size / 2``) when ``block_size`` is
    even, else (or with ``avg_down``) the output is 2x2 average pooled.

    Args:
        filters: output channels (timm's ``dim_out``; None: the input's),
            divisible by ``num_heads``.
        strides: 1 or 2.
        num_heads: attention heads.
        dim_head: query/key width per head; None:
            ``make_divisible(filters * qk_ratio, 8) // num_heads``.
        block_size: query block side; H and W must be multiples of it.
        halo_size: halo width around each block.
        qk_ratio: see ``dim_head``.
        qkv_bias: biases in the q, k, v projections.
        avg_down: with ``strides=2``, average pool rather than strided queries.
        scale_pos_embed: scale the position logits too.

    Input ``(batch, H, W, C)``; output ``(batch, H / strides, W / strides,
    filters)``; map: the attention weights ``(batch, heads, blocks,
    q * q, w * w)``, ``q`` the (strided) block side, blocks and positions
    row-major.
    """

    def __init__(self, filters: int | None = None, strides: int = 1,
                 num_heads: int = 8, dim_head: int | None = None,
                 block_size: int = 8, halo_size: int = 3, qk_ratio: float = 1.0,
                 qkv_bias: bool = False, avg_down: bool = False,
                 scale_pos_embed: bool = False, **kwargs: Any) -> None:
        super().__init__(filters, strides, num_heads, dim_head, qk_ratio,
                         qkv_bias, scale_pos_embed, **kwargs)
        self.block_size = check_positive("block_size", block_size)
        if isinstance(halo_size, bool) or not isinstance(halo_size, int) or halo_size < 0:
            raise ValueError(f"halo_size must be a non-negative int, received {halo_size!r}")
        self.halo_size = halo_size
        self.avg_down = check_bool("avg_down", avg_down)
        self.window = block_size + 2 * halo_size
        self.use_avg_pool = strides > 1 and (avg_down or block_size % strides != 0)
        self.query_stride = 1 if self.use_avg_pool else strides
        self.query_block = block_size // self.query_stride

    def check_blocks(self, shape: Sequence[int | None]) -> None:
        if any(d is not None and d % self.block_size for d in shape[1:3]):
            refuse_shape(self, shape, "with height and width divisible by "
                         f"block_size={self.block_size}")

    def build_gate(self, input_shape: tuple) -> None:
        self.check_blocks(input_shape)
        self.build_heads()
        units = self.num_heads * self.key_width
        self.query = self.projection(units, "query", score=True)
        self.key = self.projection(units, "key", score=True)
        self.value = self.projection(self.out_channels, "value", score=False)
        self.position_embeddings((self.window, self.window))

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        self.check_blocks(x.shape)
        height, width = x.shape[1], x.shape[2]
        if height is None or width is None:
            refuse_shape(self, x.shape, "of a known height and width")
        blocks = (height // self.block_size, width // self.block_size)
        heads, stride, halo = self.num_heads, self.query_stride, self.halo_size
        q = self.query(x32[:, ::stride, ::stride] if stride > 1 else x32)
        q = unfold(q, blocks, self.query_block, self.query_block, heads)
        padding = [[0, 0], [halo, halo], [halo, halo], [0, 0]]

        def window(t: Any) -> Any:
            return unfold(ops.pad(t, padding), blocks, self.window, self.block_size,
                          heads)

        block, win = (self.query_block,) * 2, (self.window,) * 2
        weights = self.attention(q, window(self.key(x32)), block, win)
        v = window(self.values(x))
        out = ops.matmul(ops.cast(weights, v.dtype), v)  # (b, heads*blocks, q*q, dv)
        # Fold the blocks back: (b, heads, rows, cols, q, q, dv) -> (b, H, W, C).
        out = ops.reshape(out, (-1, heads, blocks[0] * blocks[1],
                                self.query_block ** 2, self.value_width))
        out = ops.transpose(out, (0, 2, 3, 1, 4))
        out = ops.reshape(out, (-1, blocks[1], self.query_block, self.query_block,
                                self.out_channels))
        out = ops.transpose(out, (0, 2, 1, 3, 4))
        out = ops.reshape(out, (-1, height // stride, width // stride,
                                self.out_channels))
        if self.use_avg_pool:
            out = self.downsample(out)
        maps = ops.reshape(weights, (-1, heads, blocks[0] * blocks[1],
                                     self.query_block ** 2, self.window ** 2))
        return out, maps

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "block_size": self.block_size,
                "halo_size": self.halo_size, "avg_down": self.avg_down}
