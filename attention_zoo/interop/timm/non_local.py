"""from_timm converters of timm's non-local attention modules: ``nl``
(``NonLocalAttn``) and ``bat`` (``BatNonLocalAttn``)."""

from __future__ import annotations

import math
from typing import Any

from attention_zoo.interop.timm import build, converts
from attention_zoo.interop.timm.torch_modules import (batch_norm, check_conv,
                                                      conv_norm_act, name, same)
from attention_zoo.interop.timm.weights import set_batch_norm, set_conv, set_dense
from attention_zoo.layers.non_local import BATNonLocalAttention, NonLocalAttention

_ACTIVATIONS = ("relu", "silu", "gelu", None)


@converts("timm.layers.non_local_attn", "NonLocalAttn")
def non_local(module: Any) -> NonLocalAttention:
    what = name(module)
    for key in ("t", "p", "g", "z"):
        check_conv(getattr(module, key), f"{what}.{key}")
    epsilon = batch_norm(module.norm, f"{what}.norm")
    channels, width = module.t.in_channels, module.t.out_channels
    if math.isclose(module.scale, channels ** -0.5):
        use_scale = True
    elif module.scale == 1.0:
        use_scale = False
    else:
        raise ValueError(f"from_timm: NonLocalAttn scale {module.scale} is neither "
                         f"C ** -0.5 = {channels ** -0.5} nor 1 (use_scale=False)")
    layer = build(NonLocalAttention(use_scale=use_scale, rd_channels=width,
                                    norm_epsilon=epsilon), channels)
    set_dense(layer.theta, module.t)
    set_dense(layer.phi, module.p)
    set_dense(layer.g, module.g)
    set_dense(layer.z, module.z)
    set_batch_norm(layer.norm, module.norm)
    return layer


@converts("timm.layers.non_local_attn", "BatNonLocalAttn")
def bat(module: Any) -> BATNonLocalAttention:
    what, ba = name(module), module.ba
    blocks = {"conv1": module.conv1, "ba.conv1": ba.conv1, "ba.conv2": ba.conv2,
              "conv2": module.conv2}
    checked = {key: conv_norm_act(block, f"{what}.{key}", _ACTIVATIONS)
               for key, block in blocks.items()}
    epsilon = same(what, "BatchNorm epsilons", {n: eps for n, (eps, _) in checked.items()})
    activation = same(what, "activations", {n: act for n, (_, act) in checked.items()})
    k = ba.block_size
    check_conv(ba.conv_p, f"{what}.ba.conv_p", kernel_size=(k, 1), padding=0)
    check_conv(ba.conv_q, f"{what}.ba.conv_q", kernel_size=(1, k), padding=0)
    layer = BATNonLocalAttention(
        block_size=k, groups=ba.groups, rd_channels=module.conv1.conv.out_channels,
        # Keras calls no activation "linear".
        drop_rate=float(module.dropout.p), activation=activation or "linear",
        norm_epsilon=epsilon)
    build(layer, module.conv1.conv.in_channels)
    pairs = [(layer.conv1, layer.bn1, module.conv1),
             (layer.ba_conv1, layer.ba_bn1, ba.conv1),
             (layer.ba_conv2, layer.ba_bn2, ba.conv2),
             (layer.conv2, layer.bn2, module.conv2)]
    for conv, norm, cna in pairs:
        set_dense(conv, cna.conv)
        set_batch_norm(norm, cna.bn)
    set_conv(layer.conv_p, ba.conv_p)
    set_conv(layer.conv_q, ba.conv_q)
    return layer
