"""from_timm converters of timm's 2-D self-attention modules, which replace a
convolution: ``LambdaLayer`` (lambda), ``BottleneckAttn`` (bottleneck) and
``HaloAttn`` (halo)."""

from __future__ import annotations

from typing import Any

import numpy as np

from attention_zoo.interop.timm import build, converts
from attention_zoo.interop.timm.torch_modules import check_conv, name
from attention_zoo.interop.timm.weights import (assign, dense_kernel, numpy,
                                                set_batch_norm)
from attention_zoo.layers.lambda_layer import LambdaLayer
from attention_zoo.layers.self_attention_2d import (BottleneckSelfAttention,
                                                    HaloAttention)


def _refuse(module: Any, what: str) -> None:
    raise ValueError(f"from_timm cannot convert this {type(module).__name__}: {what}")


def _strided(module: Any) -> bool:
    """True when ``module.pool`` is timm's 2x2 average pool, False for an
    identity; anything else is refused."""
    import torch

    pool = module.pool
    if isinstance(pool, torch.nn.Identity):
        return False
    if (isinstance(pool, torch.nn.AvgPool2d) and pool.kernel_size in (2, (2, 2))
            and pool.stride in (2, (2, 2)) and pool.padding in (0, (0, 0))
            and not pool.ceil_mode):
        return True
    _refuse(module, f"its pool is {pool!r}, not AvgPool2d(2, 2) or Identity")


def _projection(module: Any, key: str,
                stride: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """A 1x1 Conv2d's weight as a Dense kernel ``(in, out)`` and its bias."""
    conv = getattr(module, key)
    check_conv(conv, f"{name(module)}.{key}", stride=stride)
    bias = None if conv.bias is None else numpy(conv.bias)
    return dense_kernel(conv.weight), bias


def _set_projection(layer: Any, kernel: np.ndarray, bias: np.ndarray | None) -> None:
    assign(layer.kernel, kernel, f"{layer.name} kernel")
    if bias is not None:
        assign(layer.bias, bias, f"{layer.name} bias")


def _filters(dim: int, dim_out: int) -> int | None:
    return None if dim_out == dim else dim_out


@converts("timm.layers.bottleneck_attn", "BottleneckAttn")
def bottleneck_attn(module: Any) -> BottleneckSelfAttention:
    heads, dk, dv = module.num_heads, module.dim_head_qk, module.dim_head_v
    kernel, bias = _projection(module, "qkv")
    dim = kernel.shape[0]
    pos = module.pos_embed
    layer = build(BottleneckSelfAttention(
        filters=_filters(dim, heads * dv), strides=2 if _strided(module) else 1,
        feat_size=(pos.height, pos.width), num_heads=heads, dim_head=dk,
        qkv_bias=bias is not None, scale_pos_embed=bool(module.scale_pos_embed)),
        dim, (pos.height, pos.width))
    # timm's qkv channels: queries, keys (heads x dim_head each), values.
    qk = 2 * heads * dk
    _set_projection(layer.query_key, kernel[:, :qk], None if bias is None else bias[:qk])
    _set_projection(layer.value, kernel[:, qk:], None if bias is None else bias[qk:])
    assign(layer.height_rel, numpy(pos.height_rel), "height_rel")
    assign(layer.width_rel, numpy(pos.width_rel), "width_rel")
    return layer


@converts("timm.layers.halo_attn", "HaloAttn")
def halo_attn(module: Any) -> HaloAttention:
    heads, dk, dv = module.num_heads, module.dim_head_qk, module.dim_head_v
    avg_pool = _strided(module)
    q_kernel, q_bias = _projection(module, "q", stride=module.block_stride)
    kv_kernel, kv_bias = _projection(module, "kv")
    dim = q_kernel.shape[0]
    strides = 2 if avg_pool or module.block_stride == 2 else 1
    layer = HaloAttention(
        filters=_filters(dim, heads * dv), strides=strides, num_heads=heads,
        dim_head=dk, block_size=module.block_size, halo_size=module.halo_size,
        qkv_bias=q_bias is not None, avg_down=avg_pool,
        scale_pos_embed=bool(module.scale_pos_embed))
    if (layer.query_stride, layer.window) != (module.block_stride, module.win_size):
        _refuse(module, f"block stride {module.block_stride} and window "
                f"{module.win_size} are not what stride 2 gives")
    build(layer, dim)
    # timm's kv channels are per head: dim_head keys, then dim_head_v values.
    kv_kernel = kv_kernel.reshape(dim, heads, dk + dv)
    k_kernel = kv_kernel[..., :dk].reshape(dim, heads * dk)
    v_kernel = kv_kernel[..., dk:].reshape(dim, heads * dv)
    k_bias = v_bias = None
    if kv_bias is not None:
        kv_bias = kv_bias.reshape(heads, dk + dv)
        k_bias, v_bias = kv_bias[:, :dk].reshape(-1), kv_bias[:, dk:].reshape(-1)
    _set_projection(layer.query, q_kernel, q_bias)
    _set_projection(layer.key, k_kernel, k_bias)
    _set_projection(layer.value, v_kernel, v_bias)
    assign(layer.height_rel, numpy(module.pos_embed.height_rel), "height_rel")
    assign(layer.width_rel, numpy(module.pos_embed.width_rel), "width_rel")
    return layer


@converts("timm.layers.lambda_layer", "LambdaLayer")
def lambda_layer(module: Any) -> LambdaLayer:
    heads, dk, dv = module.num_heads, module.dim_qk, module.dim_v
    kernel, bias = _projection(module, "qkv")
    dim = kernel.shape[0]
    conv = module.conv_lambda
    r = None
    if conv is not None:
        r = conv.kernel_size[0]
        check_conv(conv, f"{name(module)}.conv_lambda", kernel_size=(r, r, 1), odd=True)
        if conv.in_channels != 1 or conv.bias is None:
            _refuse(module, f"its position lambda {conv!r} is not timm's "
                    "Conv3d(1, k, (r, r, 1)) with a bias")
    feat_size = None if module.feat_size is None else tuple(module.feat_size)
    if heads * dv != dim:
        # timm reshapes the output to the input's channel count.
        _refuse(module, f"dim_out {heads * dv} differs from dim {dim}, which "
                "timm's forward cannot run")
    layer = build(LambdaLayer(
        strides=2 if _strided(module) else 1, feat_size=feat_size, num_heads=heads,
        dim_head=dk, r=r, qkv_bias=bias is not None), dim, feat_size or (None, None))
    _set_projection(layer.qkv, kernel, bias)
    set_batch_norm(layer.norm_q, module.norm_q)
    set_batch_norm(layer.norm_v, module.norm_v)
    if conv is None:
        assign(layer.pos_emb, numpy(module.pos_emb), "pos_emb")
    else:
        # Conv3d (k, 1, r, r, 1) -> Conv2D (r, r, 1, k) over one value channel.
        assign(layer.conv_lambda.kernel,
               numpy(conv.weight)[:, 0, :, :, 0].transpose(1, 2, 0)[:, :, None, :],
               "conv_lambda kernel")
        assign(layer.conv_lambda.bias, numpy(conv.bias), "conv_lambda bias")
    return layer
