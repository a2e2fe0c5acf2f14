"""from_timm converters of timm's conv attention modules: ``SelectiveKernel``
(``sk``) and ``SplitAttn`` (``splat``)."""

from __future__ import annotations

from typing import Any, Callable

from attention_zoo.interop.timm import build, converts
from attention_zoo.interop.timm.weights import set_batch_norm, set_conv
from attention_zoo.layers.options import timm_padding
from attention_zoo.layers.selective_kernel import SelectiveKernel
from attention_zoo.layers.split_attention import SplitAttention


def _square(conv: Any, attribute: str) -> int:
    value = getattr(conv, attribute)
    if value[0] != value[1]:
        raise ValueError(f"from_timm converts square convolutions only, received "
                         f"{attribute}={tuple(value)}")
    return int(value[0])


def _conv(conv: Any, padding: Callable[[int, int, int], int]) -> tuple[int, int, int]:
    """``(kernel_size, stride, dilation)`` of a plain torch Conv2d, refused
    unless zero-padded ``padding(kernel_size, stride, dilation)`` on every
    side (what the Keras layer pads)."""
    import torch

    if type(conv) is not torch.nn.Conv2d:
        # timm's Conv2dSame pads dynamically, TF-style; the layers pad as
        # nn.Conv2d does.
        raise ValueError(f"from_timm converts torch.nn.Conv2d branch convolutions, "
                         f"received {type(conv).__name__}")
    if conv.padding_mode != "zeros":
        raise ValueError(f"from_timm converts zero-padded convolutions, received "
                         f"padding_mode={conv.padding_mode!r}")
    kernel_size, stride, dilation = (_square(conv, a) for a in
                                     ("kernel_size", "stride", "dilation"))
    pad = padding(kernel_size, stride, dilation)
    if tuple(conv.padding) != (pad, pad):
        raise ValueError(
            f"from_timm converts a {kernel_size}x{kernel_size} convolution of "
            f"stride {stride} and dilation {dilation} padded {pad} on every "
            f"side, received padding={tuple(conv.padding)}")
    return kernel_size, stride, dilation


def _batch_norm_eps(norm: Any, what: str) -> float:
    import torch

    if not isinstance(norm, torch.nn.BatchNorm2d) or not norm.affine \
            or not norm.track_running_stats:
        raise ValueError(f"from_timm converts {what} as an affine BatchNorm2d with "
                         f"running statistics, received {norm!r}")
    return float(norm.eps)


def _relu(act: Any, what: str) -> None:
    import torch

    if not isinstance(act, torch.nn.ReLU):
        raise ValueError(f"from_timm converts {what} with ReLU only, received "
                         f"{type(act).__name__}")


def _one_epsilon(epsilons: list[float]) -> float:
    if len(set(epsilons)) > 1:
        raise ValueError(f"from_timm converts BatchNorms of one epsilon, received "
                         f"{sorted(set(epsilons))}")
    return epsilons[0]


@converts("timm.layers.selective_kernel", "SelectiveKernel")
def selective_kernel(module: Any) -> SelectiveKernel:
    epsilons = []
    kernels, dilations, strides = [], [], []
    for i, path in enumerate(module.paths):
        if getattr(path, "aa", None) is not None:
            raise ValueError("from_timm converts SelectiveKernel without "
                             "anti-aliasing (aa_layer)")
        kernel_size, stride, dilation = _conv(path.conv, timm_padding)
        if path.conv.bias is not None:
            raise ValueError("from_timm converts bias-free SelectiveKernel branches")
        epsilons.append(_batch_norm_eps(path.bn, f"SelectiveKernel path {i}'s norm"))
        _relu(getattr(path.bn, "act", None), f"SelectiveKernel path {i}")
        kernels.append(kernel_size)
        dilations.append(dilation)
        strides.append(stride)
    _relu(module.attn.act, "SelectiveKernel's attention")
    if len(set(strides)) > 1:
        raise ValueError(f"from_timm converts SelectiveKernel branches of one "
                         f"stride, received {strides}")
    # Rebuild the branches from what the module holds: 3x3 kernels dilated
    # d_i are keep_3x3 branches of kernel 2 d_i + 1; equal dilations are
    # plain kernels.
    if all(k == 3 for k in kernels):
        shape = dict(kernel_size=[2 * d + 1 for d in dilations], dilation=1,
                     keep_3x3=True)
    elif len(set(dilations)) == 1:
        shape = dict(kernel_size=kernels, dilation=dilations[0], keep_3x3=False)
    else:
        raise ValueError(f"from_timm converts SelectiveKernel branches of 3x3 "
                         f"kernels or of one dilation, received kernels {kernels} "
                         f"with dilations {dilations}")
    layer = SelectiveKernel(
        filters=module.out_channels, strides=strides[0],
        groups=module.paths[0].conv.groups, split_input=module.split_input,
        rd_channels=module.attn.fc_reduce.out_channels,
        norm_epsilon=_one_epsilon(epsilons),
        attn_norm_epsilon=_batch_norm_eps(module.attn.bn,
                                          "SelectiveKernel's attention norm"),
        **shape)
    build(layer, module.in_channels)
    for conv, bn, path in zip(layer.path_convs, layer.path_bns, module.paths):
        set_conv(conv, path.conv)
        set_batch_norm(bn, path.bn)
    set_conv(layer.fc_reduce, module.attn.fc_reduce)
    set_batch_norm(layer.attn_bn, module.attn.bn)
    set_conv(layer.fc_select, module.attn.fc_select)
    return layer


@converts("timm.layers.split_attn", "SplitAttn")
def split_attn(module: Any) -> SplitAttention:
    import torch

    radix, conv = module.radix, module.conv
    if conv.kernel_size[0] % 2 == 0:
        raise ValueError(f"from_timm converts SplitAttn of odd kernel sizes, "
                         f"received {tuple(conv.kernel_size)}")
    # The layer keeps ceil(H / strides): it pads d (k - 1) / 2, as ResNeSt
    # does (padding=dilation); timm's default k // 2 shrinks dilated maps.
    kernel_size, stride, dilation = _conv(
        conv, lambda k, s, d: timm_padding(k, 1, d))
    _relu(module.act0, "SplitAttn")
    _relu(module.act1, "SplitAttn's attention")
    norms = [module.bn0, module.bn1]
    identity = [isinstance(n, torch.nn.Identity) for n in norms]
    if any(identity) and not all(identity):
        raise ValueError("from_timm converts SplitAttn with a norm after both its "
                         "convolution and its fc1, or with neither")
    use_batch_norm = not identity[0]
    epsilons = [_batch_norm_eps(n, "SplitAttn's norms") for n in norms] \
        if use_batch_norm else [1e-5]
    if module.fc1.bias is None or module.fc2.bias is None:
        raise ValueError("from_timm converts SplitAttn whose fc1 and fc2 have biases")
    hidden = module.fc1.out_channels
    groups = module.fc1.groups
    if conv.groups != groups * radix:
        raise ValueError(f"from_timm converts SplitAttn whose convolution has "
                         f"groups * radix = {groups * radix} groups, received "
                         f"{conv.groups}")
    # rd_channels is per split; a width the splits do not divide comes back
    # through rd_ratio with rounding to 1.
    width = dict(rd_channels=hidden // radix) if hidden % radix == 0 else dict(
        rd_ratio=hidden / (conv.in_channels * radix), rd_divisor=1)
    layer = SplitAttention(
        filters=conv.out_channels // radix, strides=stride, kernel_size=kernel_size,
        dilation=dilation, groups=groups, use_bias=conv.bias is not None,
        radix=radix, use_batch_norm=use_batch_norm,
        norm_epsilon=_one_epsilon(epsilons), **width)
    build(layer, conv.in_channels)
    if layer.attn_channels != hidden:
        raise ValueError(f"from_timm cannot express SplitAttn's attention width "
                         f"{hidden} (radix {radix})")
    set_conv(layer.conv, conv)
    set_conv(layer.fc1, module.fc1)
    set_conv(layer.fc2, module.fc2)
    if use_batch_norm:
        set_batch_norm(layer.bn0, module.bn0)
        set_batch_norm(layer.bn1, module.bn1)
    return layer
