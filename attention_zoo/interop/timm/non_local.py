"""from_timm converters of timm's non-local attention modules: ``nl``
(``NonLocalAttn``) and ``bat`` (``BatNonLocalAttn``)."""

from __future__ import annotations

import math
from typing import Any

from attention_zoo.interop.timm import build, converts
from attention_zoo.interop.timm.weights import set_batch_norm, set_conv, set_dense
from attention_zoo.layers.non_local import BATNonLocalAttention, NonLocalAttention


def _check_conv(conv: Any, what: str, kernel: tuple[int, int] = (1, 1)) -> None:
    """Refuses a Conv2d the Keras layer would compute differently: another
    kernel size, a stride, padding, dilation or groups."""
    padding = conv.padding
    if padding == "valid" or (padding == "same" and kernel == (1, 1)):
        padding = (0, 0)
    got = {"kernel_size": tuple(conv.kernel_size), "stride": tuple(conv.stride),
           "padding": tuple(padding) if not isinstance(padding, str) else padding,
           # Dilation does nothing to a 1x1 kernel.
           "dilation": tuple(conv.dilation) if kernel != (1, 1) else (1, 1),
           "groups": conv.groups}
    want = {"kernel_size": kernel, "stride": (1, 1), "padding": (0, 0),
            "dilation": (1, 1), "groups": 1}
    for name, value in got.items():
        if value != want[name]:
            raise ValueError(f"from_timm: {what} has {name} {value}; the Keras "
                             f"layer supports {name} {want[name]} only")


def _check_batch_norm(bn: Any, what: str) -> None:
    import torch

    if not isinstance(bn, torch.nn.BatchNorm2d):
        raise ValueError(f"from_timm: {what} is a {type(bn).__name__}; the Keras "
                         f"layer supports BatchNorm2d only")
    if not (bn.affine and bn.track_running_stats):
        raise ValueError(f"from_timm: {what} needs affine=True and "
                         f"track_running_stats=True, received affine={bn.affine}, "
                         f"track_running_stats={bn.track_running_stats}")


def _activation(module: Any, what: str) -> str:
    """The Keras name of a torch activation module."""
    import torch
    from timm.layers import activations

    nn = torch.nn
    if isinstance(module, nn.ReLU):
        return "relu"
    if isinstance(module, nn.SiLU):
        return "silu"
    if isinstance(module, activations.GELU) or (
            isinstance(module, nn.GELU) and module.approximate == "none"):
        return "gelu"
    if isinstance(module, nn.Identity):
        return "linear"
    raise ValueError(f"from_timm: {what} uses the activation {module!r}; the Keras "
                     f"layer supports ReLU, SiLU, exact GELU and none")


def _conv_norm_act(cna: Any, what: str) -> tuple[str, float]:
    """Checks a timm ConvNormAct (1x1 conv, BatchNormAct2d); returns its
    activation's Keras name and the norm's epsilon."""
    import torch

    _check_conv(cna.conv, f"{what}.conv")
    bn = cna.bn
    _check_batch_norm(bn, f"{what}.bn")
    aa = getattr(cna, "aa", None)
    if aa is not None and not isinstance(aa, torch.nn.Identity):
        raise ValueError(f"from_timm: {what} has anti-aliasing "
                         f"({type(aa).__name__}), which the Keras layer does not")
    if not isinstance(getattr(bn, "drop", torch.nn.Identity()), torch.nn.Identity):
        raise ValueError(f"from_timm: {what}.bn has a drop layer "
                         f"({type(bn.drop).__name__}), which the Keras layer does not")
    act = getattr(bn, "act", torch.nn.Identity())
    return _activation(act, f"{what}.bn.act"), bn.eps


def _same(values: dict[str, Any], what: str) -> Any:
    """The one value every entry has; the Keras layer has a single one."""
    distinct = set(values.values())
    if len(distinct) != 1:
        raise ValueError(f"from_timm: the module's {what} differ ({values}); the "
                         f"Keras layer uses one for all its blocks")
    return distinct.pop()


@converts("timm.layers.non_local_attn", "NonLocalAttn")
def non_local(module: Any) -> NonLocalAttention:
    for name in ("t", "p", "g", "z"):
        _check_conv(getattr(module, name), name)
    _check_batch_norm(module.norm, "norm")
    channels, width = module.t.in_channels, module.t.out_channels
    if math.isclose(module.scale, channels ** -0.5):
        use_scale = True
    elif module.scale == 1.0:
        use_scale = False
    else:
        raise ValueError(f"from_timm: NonLocalAttn scale {module.scale} is neither "
                         f"C ** -0.5 = {channels ** -0.5} nor 1 (use_scale=False)")
    layer = build(NonLocalAttention(use_scale=use_scale, rd_channels=width,
                                    norm_epsilon=module.norm.eps), channels)
    set_dense(layer.theta, module.t)
    set_dense(layer.phi, module.p)
    set_dense(layer.g, module.g)
    set_dense(layer.z, module.z)
    set_batch_norm(layer.norm, module.norm)
    return layer


@converts("timm.layers.non_local_attn", "BatNonLocalAttn")
def bat(module: Any) -> BATNonLocalAttention:
    ba = module.ba
    blocks = {"conv1": module.conv1, "ba.conv1": ba.conv1, "ba.conv2": ba.conv2,
              "conv2": module.conv2}
    checked = {name: _conv_norm_act(cna, name) for name, cna in blocks.items()}
    activation = _same({n: act for n, (act, _) in checked.items()}, "activations")
    epsilon = _same({n: eps for n, (_, eps) in checked.items()}, "BatchNorm epsilons")
    k = ba.block_size
    _check_conv(ba.conv_p, "ba.conv_p", (k, 1))
    _check_conv(ba.conv_q, "ba.conv_q", (1, k))
    layer = BATNonLocalAttention(
        block_size=k, groups=ba.groups, rd_channels=module.conv1.conv.out_channels,
        drop_rate=float(module.dropout.p), activation=activation,
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
