"""from_timm converters of timm's conv attention modules: ``SelectiveKernel``
(``sk``) and ``SplitAttn`` (``splat``)."""

from __future__ import annotations

from typing import Any

from attention_zoo.interop.timm import build, converts
from attention_zoo.interop.timm.torch_modules import (activation, batch_norm,
                                                      check_conv, conv_norm_act,
                                                      name, same)
from attention_zoo.interop.timm.weights import set_batch_norm, set_conv
from attention_zoo.layers.options import timm_padding
from attention_zoo.layers.selective_kernel import SelectiveKernel
from attention_zoo.layers.split_attention import SplitAttention


@converts("timm.layers.selective_kernel", "SelectiveKernel")
def selective_kernel(module: Any) -> SelectiveKernel:
    what = name(module)
    groups = module.paths[0].conv.groups
    epsilons, kernels, dilations, strides = {}, [], [], {}
    for i, path in enumerate(module.paths):
        epsilons[f"paths.{i}"], _ = conv_norm_act(
            path, f"{what}.paths.{i}", ("relu",), kernel_size=None, stride=None,
            dilation=None, padding=timm_padding, groups=groups)
        if path.conv.bias is not None:
            raise ValueError("from_timm converts bias-free SelectiveKernel branches")
        kernels.append(path.conv.kernel_size[0])
        dilations.append(path.conv.dilation[0])
        strides[f"paths.{i}"] = path.conv.stride[0]
    activation(module.attn.act, f"{what}.attn.act", ("relu",))
    stride = same(what, "strides", strides)
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
        filters=module.out_channels, strides=stride, groups=groups,
        split_input=module.split_input,
        rd_channels=module.attn.fc_reduce.out_channels,
        norm_epsilon=same(what, "BatchNorm epsilons", epsilons),
        attn_norm_epsilon=batch_norm(module.attn.bn, f"{what}.attn.bn"), **shape)
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

    what = name(module)
    radix, conv, groups = module.radix, module.conv, module.fc1.groups
    # The layer keeps ceil(H / strides): it pads d (k - 1) / 2, as ResNeSt
    # does (padding=dilation); timm's default k // 2 shrinks dilated maps.
    kernel_size, stride, dilation = check_conv(
        conv, f"{what}.conv", kernel_size=None, stride=None, dilation=None,
        groups=groups * radix, odd=True)
    activation(module.act0, f"{what}.act0", ("relu",))
    activation(module.act1, f"{what}.act1", ("relu",))
    norms = {"bn0": module.bn0, "bn1": module.bn1}
    identity = [isinstance(n, torch.nn.Identity) for n in norms.values()]
    if any(identity) and not all(identity):
        raise ValueError("from_timm converts SplitAttn with a norm after both its "
                         "convolution and its fc1, or with neither")
    use_batch_norm, epsilon = not identity[0], 1e-5
    if use_batch_norm:
        epsilon = same(what, "BatchNorm epsilons", {
            key: batch_norm(norm, f"{what}.{key}") for key, norm in norms.items()})
    if module.fc1.bias is None or module.fc2.bias is None:
        raise ValueError("from_timm converts SplitAttn whose fc1 and fc2 have biases")
    hidden = module.fc1.out_channels
    # rd_channels is per split; a width the splits do not divide comes back
    # through rd_ratio with rounding to 1.
    width = dict(rd_channels=hidden // radix) if hidden % radix == 0 else dict(
        rd_ratio=hidden / (conv.in_channels * radix), rd_divisor=1)
    layer = SplitAttention(
        filters=conv.out_channels // radix, strides=stride, kernel_size=kernel_size,
        dilation=dilation, groups=groups, use_bias=conv.bias is not None,
        radix=radix, use_batch_norm=use_batch_norm, norm_epsilon=epsilon, **width)
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
