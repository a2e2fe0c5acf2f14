"""from_timm converters of timm's coordinate attention modules
(``timm.layers.coord_attn``: CoordAttn, SimpleCoordAttn, EfficientLocalAttn,
StripAttn)."""

from __future__ import annotations

from typing import Any

import keras

from attention_zoo.interop.timm import build, converts
from attention_zoo.interop.timm.weights import (assign, numpy, set_batch_norm,
                                                set_conv, set_dense)
from attention_zoo.layers.registry import get

_MODULE = "timm.layers.coord_attn"

# By qualified class name, so that importing this needs neither torch nor timm.
_ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": None,
    "torch.nn.modules.activation.ReLU": "relu",
    "torch.nn.modules.activation.SiLU": "silu",
    "timm.layers.activations.Swish": "silu",
    "timm.layers.activations_me.SwishMe": "silu",
    "torch.nn.modules.activation.Hardswish": "hard_swish",
    "timm.layers.activations.HardSwish": "hard_swish",
    "timm.layers.activations_me.HardSwishMe": "hard_swish",
}
_GATES = {
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
    "timm.layers.activations.Sigmoid": "sigmoid",
    "torch.nn.modules.activation.Hardsigmoid": "hard_sigmoid",
    "timm.layers.activations.HardSigmoid": "hard_sigmoid",
    "timm.layers.activations_me.HardSigmoidMe": "hard_sigmoid",
}


def _qualified(module: Any) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def _lookup(owner: Any, attr: str, table: dict[str, str | None]) -> str | None:
    """The zoo name of ``owner.attr``'s activation class."""
    module = getattr(owner, attr)
    try:
        return table[_qualified(module)]
    except KeyError:
        known = ", ".join(sorted({k.rsplit(".", 1)[1] for k in table}))
        raise ValueError(f"from_timm cannot convert {type(owner).__name__}.{attr} "
                         f"= {type(module).__name__}; supported: {known}") from None


def _common(module: Any) -> dict[str, Any]:
    return {"gate": _lookup(module, "gate", _GATES), "residual": bool(module.has_skip)}


def _batch_norm(module: Any) -> dict[str, Any]:
    """``CoordinateAttention``'s norm arguments for ``module.bn1``."""
    import torch

    bn = module.bn1
    if isinstance(bn, torch.nn.Identity):
        return {"batch_norm": False}
    if type(bn) is not torch.nn.BatchNorm2d or not bn.affine \
            or not bn.track_running_stats:
        raise ValueError(f"from_timm cannot convert CoordAttn.bn1 = {bn!r}; "
                         "supported: BatchNorm2d (affine, with running "
                         "statistics) or Identity")
    momentum = {} if bn.momentum is None else {"momentum": 1.0 - bn.momentum}
    return {"batch_norm": True, "epsilon": bn.eps, **momentum}


def _strip_kernel_size(module: Any) -> int:
    """The size ``k`` of ``module``'s depthwise ``(k, 1)`` and ``(1, k)``
    convolutions, checking they are what the zoo's layers compute."""
    conv_h, conv_w = module.conv_h, module.conv_w
    k = conv_h.kernel_size[0]
    channels = conv_h.in_channels
    expected = {"conv_h": ((k, 1), (k // 2, 0)), "conv_w": ((1, k), (0, k // 2))}
    for name, conv in (("conv_h", conv_h), ("conv_w", conv_w)):
        kernel, padding = expected[name]
        setting = {"kernel_size": conv.kernel_size, "padding": conv.padding,
                   "stride": conv.stride, "dilation": conv.dilation,
                   "groups": conv.groups, "out_channels": conv.out_channels,
                   "padding_mode": conv.padding_mode}
        want = {"kernel_size": kernel, "padding": padding, "stride": (1, 1),
                "dilation": (1, 1), "groups": channels, "out_channels": channels,
                "padding_mode": "zeros"}
        if k % 2 == 0 or setting != want:
            raise ValueError(
                f"from_timm cannot convert {type(module).__name__}.{name} with "
                f"{setting}; supported: an odd-sized depthwise strip convolution "
                f"{want}")
    return k


def _set_depthwise(layer: keras.layers.Layer, conv: Any) -> None:
    """A Keras DepthwiseConv2D from a torch depthwise Conv2d: the weight
    ``(C, 1, kh, kw)`` becomes ``(kh, kw, C, 1)``."""
    assign(layer.kernel, numpy(conv.weight).transpose(2, 3, 0, 1),
           f"{layer.name} kernel")
    if (conv.bias is not None) != layer.use_bias:
        raise ValueError(f"{layer.name}: the torch conv and the Keras layer "
                         "disagree on the bias")
    if conv.bias is not None:
        assign(layer.bias, numpy(conv.bias), f"{layer.name} bias")


@converts(_MODULE, "CoordAttn")
def coord_attn(module: Any) -> keras.layers.Layer:
    """timm's CoordAttn as the zoo's ``coord`` (CoordinateAttention)."""
    conv1 = module.conv1
    layer = build(get("coord", units=conv1.out_channels,
                      activation=_lookup(module, "act", _ACTIVATIONS),
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
                      activation=_lookup(module, "act", _ACTIVATIONS),
                      use_bias=fc1.bias is not None, **_common(module)),
                  fc1.in_features)
    for name in ("fc1", "fc_h", "fc_w"):
        set_dense(getattr(layer, name), getattr(module, name))
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
                      activation=_lookup(module, "act", _ACTIVATIONS),
                      use_bias=conv_h.bias is not None, **norm_args,
                      **_common(module)),
                  conv_h.in_channels)
    _set_depthwise(layer.conv_h, conv_h)
    _set_depthwise(layer.conv_w, module.conv_w)
    if layer.norm_h is not None:
        for keras_norm, norm in ((layer.norm_h, module.norm_h),
                                 (layer.norm_w, module.norm_w)):
            assign(keras_norm.gamma, numpy(norm.weight), f"{keras_norm.name} gamma")
            assign(keras_norm.beta, numpy(norm.bias), f"{keras_norm.name} beta")
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
    _set_depthwise(layer.conv_h, conv_h)
    _set_depthwise(layer.conv_w, module.conv_w)
    return layer
