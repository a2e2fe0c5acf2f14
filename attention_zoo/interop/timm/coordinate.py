"""from_timm converters of timm's coordinate attention modules
(``timm.layers.coord_attn``: CoordAttn, SimpleCoordAttn, EfficientLocalAttn,
StripAttn)."""

from __future__ import annotations

from typing import Any

import keras

from attention_zoo.interop.timm import build, converts
from attention_zoo.interop.timm.torch_modules import (GATES, activation, batch_norm,
                                                      check_conv, name)
from attention_zoo.interop.timm.weights import (set_batch_norm, set_conv, set_dense,
                                                set_depthwise, set_norm)
from attention_zoo.layers.registry import get

_MODULE = "timm.layers.coord_attn"
_ACTIVATIONS = (None, "relu", "silu", "hard_swish")


def _activation(module: Any) -> str | None:
    return activation(module.act, f"{name(module)}.act", _ACTIVATIONS)


def _common(module: Any) -> dict[str, Any]:
    return {"gate": activation(module.gate, f"{name(module)}.gate", GATES),
            "residual": bool(module.has_skip)}


def _batch_norm(module: Any) -> dict[str, Any]:
    """``CoordinateAttention``'s norm arguments for ``module.bn1``."""
    import torch

    bn = module.bn1
    if isinstance(bn, torch.nn.Identity):
        return {"batch_norm": False}
    epsilon = batch_norm(bn, f"{name(module)}.bn1")
    momentum = {} if bn.momentum is None else {"momentum": 1.0 - bn.momentum}
    return {"batch_norm": True, "epsilon": epsilon, **momentum}


def _strip_kernel_size(module: Any) -> int:
    """The size ``k`` of ``module``'s depthwise ``(k, 1)`` and ``(1, k)``
    convolutions, checking they are what the zoo's layers compute."""
    k = module.conv_h.kernel_size[0]
    for key, kernel_size in (("conv_h", (k, 1)), ("conv_w", (1, k))):
        check_conv(getattr(module, key), f"{name(module)}.{key}",
                   kernel_size=kernel_size, depthwise=True, odd=True)
    return k


@converts(_MODULE, "CoordAttn")
def coord_attn(module: Any) -> keras.layers.Layer:
    """timm's CoordAttn as the zoo's ``coord`` (CoordinateAttention)."""
    conv1 = module.conv1
    layer = build(get("coord", units=conv1.out_channels,
                      activation=_activation(module),
                      use_bias=conv1.bias is not None,
                      **_batch_norm(module), **_common(module)),
                  conv1.in_channels)
    set_conv(layer.conv, conv1)
    if layer.bn is not None:
        set_batch_norm(layer.bn, module.bn1)
    set_conv(layer.conv_h, module.conv_h)
    set_conv(layer.conv_w, module.conv_w)
    return layer


@converts(_MODULE, "SimpleCoordAttn")
def simple_coord_attn(module: Any) -> keras.layers.Layer:
    """timm's SimpleCoordAttn as the zoo's ``scoord``."""
    fc1 = module.fc1
    layer = build(get("scoord", units=fc1.out_features,
                      activation=_activation(module),
                      use_bias=fc1.bias is not None, **_common(module)),
                  fc1.in_features)
    for key in ("fc1", "fc_h", "fc_w"):
        set_dense(getattr(layer, key), getattr(module, key))
    return layer


@converts(_MODULE, "EfficientLocalAttn")
def efficient_local_attn(module: Any) -> keras.layers.Layer:
    """timm's EfficientLocalAttn as the zoo's ``ela``."""
    import torch

    norms = (module.norm_h, module.norm_w)
    if all(isinstance(n, torch.nn.Identity) for n in norms):
        norm_args: dict[str, Any] = {"groups": None}
    elif all(isinstance(n, torch.nn.GroupNorm) and n.affine for n in norms) \
            and norms[0].num_groups == norms[1].num_groups \
            and norms[0].eps == norms[1].eps:
        norm_args = {"groups": norms[0].num_groups, "epsilon": norms[0].eps}
    else:
        raise ValueError(f"from_timm cannot convert EfficientLocalAttn norms "
                         f"{norms[0]!r}, {norms[1]!r}; supported: affine "
                         "GroupNorm (same groups and eps) or Identity")
    conv_h = module.conv_h
    layer = build(get("ela", kernel_size=_strip_kernel_size(module),
                      activation=_activation(module),
                      use_bias=conv_h.bias is not None, **norm_args,
                      **_common(module)),
                  conv_h.in_channels)
    set_depthwise(layer.conv_h, conv_h)
    set_depthwise(layer.conv_w, module.conv_w)
    if layer.norm_h is not None:
        for keras_norm, norm in ((layer.norm_h, module.norm_h),
                                 (layer.norm_w, module.norm_w)):
            set_norm(keras_norm, norm)
    return layer


@converts(_MODULE, "StripAttn")
def strip_attn(module: Any) -> keras.layers.Layer:
    """timm's StripAttn as the zoo's ``strip``; a module without
    convolutions (``use_conv=False``) has no weights and needs its channel
    count from the caller: it converts unbuilt."""
    if not module.use_conv:
        return get("strip", use_conv=False, **_common(module))
    conv_h = module.conv_h
    layer = build(get("strip", kernel_size=_strip_kernel_size(module),
                      use_bias=conv_h.bias is not None, **_common(module)),
                  conv_h.in_channels)
    set_depthwise(layer.conv_h, conv_h)
    set_depthwise(layer.conv_w, module.conv_w)
    return layer
