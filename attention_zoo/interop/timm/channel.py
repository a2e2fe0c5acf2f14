"""from_timm converters of timm's channel and context attention modules:
``SEModule`` (se), ``EffectiveSEModule`` (ese), ``EcaModule`` (eca, ecam),
``CecaModule`` (ceca), ``GatherExcite`` (ge), ``GlobalContext`` (gc, gca),
``CbamModule`` (cbam), ``LightCbamModule`` (lcbam), and CBAM's halves.

Each reads the module's hyperparameters from its submodules and refuses
(``ValueError``) a setting the zoo layer cannot reproduce. timm's
``EcaModule``, ``CecaModule``, parameter-free ``GatherExcite`` and CBAM's
``SpatialAttn`` do not record their channel count (their weights do not
depend on it): their layers come back unbuilt and take the module's weights
when they are built, on their first call.
"""

from __future__ import annotations

from typing import Any, Callable

import keras

from attention_zoo.interop.timm import build, converts
from attention_zoo.interop.timm.weights import (assign, numpy, set_batch_norm,
                                                set_conv, set_dense)
from attention_zoo.layers.channel import (ChannelAttention,
                                          EffectiveSqueezeExcite,
                                          EfficientChannelAttention,
                                          SqueezeExcite)
from attention_zoo.layers.context import GlobalContext
from attention_zoo.layers.gather_excite import GatherExcite
from attention_zoo.layers.spatial import CBAM, SpatialAttention

Setter = Callable[[keras.layers.Layer], None]


def _name(module: Any) -> str:
    return type(module).__name__


def _gate(module: Any, what: str) -> str:
    """The zoo's gate name for a timm gate module."""
    import torch
    from timm.layers import activations

    sigmoids = (torch.nn.Sigmoid, activations.Sigmoid)
    hard_sigmoids = (torch.nn.Hardsigmoid, activations.HardSigmoid)
    try:
        from timm.layers.activations_me import HardSigmoidMe
        hard_sigmoids += (HardSigmoidMe,)
    except ImportError:  # older timm
        pass
    if isinstance(module, sigmoids):
        return "sigmoid"
    if isinstance(module, hard_sigmoids):
        return "hard_sigmoid"
    raise ValueError(f"{what}: the gate {_name(module)} is not supported; the "
                     f"zoo layer gates with Sigmoid or Hardsigmoid")


def _expect_relu(module: Any, what: str) -> None:
    import torch

    if not isinstance(module, torch.nn.ReLU):
        raise ValueError(f"{what}: the activation {_name(module)} is not "
                         f"supported; the zoo layer uses ReLU")


def _expect_identity(module: Any, what: str) -> None:
    import torch

    if module is not None and not isinstance(module, torch.nn.Identity):
        raise ValueError(f"{what}: {_name(module)} is not supported; the zoo "
                         f"layer has none there")


def _expect_conv(conv: Any, what: str, kernel: int | None = None,
                 stride: int = 1, padding: int | None = None,
                 groups: int = 1) -> int:
    """Checks a torch convolution's geometry; returns its (square) kernel
    size. ``padding`` None: ``kernel // 2`` on every side."""
    import torch

    if type(conv) not in (torch.nn.Conv1d, torch.nn.Conv2d):
        raise ValueError(f"{what}: {_name(conv)} is not supported; the zoo layer "
                         f"converts plain Conv1d / Conv2d")
    size = conv.kernel_size[0]
    want_kernel = (kernel or size,) * len(conv.kernel_size)
    want_padding = (size // 2 if padding is None else padding,) * len(conv.kernel_size)
    if (conv.kernel_size != want_kernel or size % 2 == 0
            or tuple(conv.stride) != (stride,) * len(conv.stride)
            or tuple(conv.padding) != want_padding or conv.groups != groups
            or any(d != 1 for d in conv.dilation)):
        raise ValueError(
            f"{what}: kernel {tuple(conv.kernel_size)}, stride {tuple(conv.stride)}, "
            f"padding {conv.padding}, dilation {tuple(conv.dilation)}, groups "
            f"{conv.groups} is not supported; the zoo layer has an odd square "
            f"kernel{'' if kernel is None else f' of {kernel}'}, stride {stride}, "
            f"padding {want_padding[0]}, no dilation, {groups} group(s)")
    return size


def _bias(*convs: Any, what: str) -> bool:
    """Whether the convolutions have biases (all of them, or none)."""
    biased = {conv.bias is not None for conv in convs}
    if len(biased) > 1:
        raise ValueError(f"{what}: some layers have biases and some not; the zoo "
                         f"layer has them in all or none")
    return biased.pop()


def _set_layer_norm(layer: keras.layers.LayerNormalization, norm: Any) -> None:
    assign(layer.gamma, numpy(norm.weight), f"{layer.name} gamma")
    assign(layer.beta, numpy(norm.bias), f"{layer.name} beta")


def _finish(layer: keras.layers.Layer, channels: int | None,
            setter: Setter) -> keras.layers.Layer:
    """Built for ``channels`` with the weights ``setter`` assigns; with
    ``channels`` unknown, unbuilt, and ``setter`` runs right after the build
    (the layers that come here have weights independent of ``channels``)."""
    if channels is not None:
        build(layer, channels)
        setter(layer)
        return layer
    built = layer.build

    # Keras passes build() its input shape by the parameter's name.
    def build_then_assign(input_shape: Any) -> None:
        built(input_shape)
        setter(layer)

    layer.build = build_then_assign
    return layer


# ----------------------------------------------------------- squeeze-excite --

@converts("timm.layers.squeeze_excite", "SEModule")
def se_module(module: Any) -> SqueezeExcite:
    """``create_attn("se", C)`` and its variants: the MLP's width read from
    ``fc1``; ``norm_layer`` and activations other than ReLU are refused."""
    what = _name(module)
    _expect_identity(module.bn, f"{what}.bn (norm_layer)")
    _expect_relu(module.act, f"{what}.act")
    for conv in (module.fc1, module.fc2):
        _expect_conv(conv, f"{what}.fc", kernel=1)
    layer = SqueezeExcite(hidden_units=module.fc1.out_channels,
                          use_bias=_bias(module.fc1, module.fc2, what=what),
                          add_maxpool=bool(module.add_maxpool),
                          gate=_gate(module.gate, f"{what}.gate"))

    def weights(layer: SqueezeExcite) -> None:
        set_dense(layer.fc1, module.fc1)
        set_dense(layer.fc2, module.fc2)

    return _finish(layer, module.fc1.in_channels, weights)


@converts("timm.layers.squeeze_excite", "EffectiveSEModule")
def effective_se_module(module: Any) -> EffectiveSqueezeExcite:
    what = _name(module)
    _expect_conv(module.fc, f"{what}.fc", kernel=1)
    if module.fc.bias is None:
        raise ValueError(f"{what}.fc has no bias; the zoo layer has one")
    layer = EffectiveSqueezeExcite(add_maxpool=bool(module.add_maxpool),
                                   gate=_gate(module.gate, f"{what}.gate"))
    return _finish(layer, module.fc.in_channels,
                   lambda layer: set_dense(layer.fc, module.fc))


# ---------------------------------------------------------------------- ECA --

@converts("timm.layers.eca", "EcaModule")
def eca_module(module: Any) -> EfficientChannelAttention:
    """Both modes: the plain convolution (``eca``) and the MLP (``ecam``).
    The kernel size is read from the weights (whatever rule chose it)."""
    what = _name(module)
    gate = _gate(module.gate, f"{what}.gate")
    if module.conv2 is None:
        k = _expect_conv(module.conv, f"{what}.conv")
        if module.conv.bias is not None:
            raise ValueError(f"{what}.conv has a bias; the zoo layer's plain "
                             f"convolution has none")
        layer = EfficientChannelAttention(kernel_size=k, gate=gate)
        return _finish(layer, None, lambda layer: set_conv(layer.conv, module.conv))
    _expect_relu(module.act, f"{what}.act")
    _expect_conv(module.conv, f"{what}.conv", kernel=1)
    k = _expect_conv(module.conv2, f"{what}.conv2")
    if not _bias(module.conv, module.conv2, what=what):
        raise ValueError(f"{what}: the MLP convolutions have no biases; the zoo "
                         f"layer's have")
    layer = EfficientChannelAttention(kernel_size=k, use_mlp=True, gate=gate,
                                      hidden_units=module.conv.out_channels)

    def weights(layer: EfficientChannelAttention) -> None:
        set_conv(layer.conv, module.conv)
        set_conv(layer.conv2, module.conv2)

    return _finish(layer, None, weights)


@converts("timm.layers.eca", "CecaModule")
def ceca_module(module: Any) -> EfficientChannelAttention:
    what = _name(module)
    k = _expect_conv(module.conv, f"{what}.conv", padding=0)
    if module.padding != k // 2:
        raise ValueError(f"{what}: circular padding {module.padding} for kernel "
                         f"{k} is not supported; the zoo layer pads {k // 2}")
    if module.conv.bias is not None:
        # timm gives the convolution a bias when act_layer is set (and then
        # applies no activation).
        raise ValueError(f"{what}.conv has a bias (act_layer set); the zoo "
                         f"layer's convolution has none")
    layer = EfficientChannelAttention(kernel_size=k, padding="circular",
                                      gate=_gate(module.gate, f"{what}.gate"))
    return _finish(layer, None, lambda layer: set_conv(layer.conv, module.conv))


# ------------------------------------------------------------ gather-excite --

def _conv_mlp(mlp: Any, what: str, norm: bool) -> tuple[int, int, float | None]:
    """Checks a timm ConvMlp (``fc1 -> norm -> ReLU -> fc2``, biases);
    returns (channels, hidden width, the LayerNorm's epsilon or None)."""
    import torch
    from timm.layers.mlp import ConvMlp

    if type(mlp) is not ConvMlp:
        raise ValueError(f"{what}: {_name(mlp)} is not supported; the zoo layer "
                         f"converts timm's ConvMlp")
    _expect_conv(mlp.fc1, f"{what}.fc1", kernel=1)
    _expect_conv(mlp.fc2, f"{what}.fc2", kernel=1)
    _expect_relu(mlp.act, f"{what}.act")
    if not _bias(mlp.fc1, mlp.fc2, what=what):
        raise ValueError(f"{what}: the MLP has no biases; the zoo layer's has")
    hidden = mlp.fc1.out_channels
    if not norm:
        _expect_identity(mlp.norm, f"{what}.norm")
        return mlp.fc1.in_channels, hidden, None
    if (not isinstance(mlp.norm, torch.nn.LayerNorm)
            or tuple(mlp.norm.normalized_shape) != (hidden,)
            or mlp.norm.weight is None or mlp.norm.bias is None):
        raise ValueError(f"{what}.norm: {mlp.norm!r} is not supported; the zoo "
                         f"layer has a LayerNorm over the channels with scale "
                         f"and offset")
    return mlp.fc1.in_channels, hidden, mlp.norm.eps


def _gather(gather: Any, extent: int, what: str) -> tuple[list, list, float]:
    """The depthwise convolutions and BatchNorms of GE-theta's gather."""
    import torch

    convs = [m for n, m in gather.named_children() if n.startswith("conv")]
    norms = [m for n, m in gather.named_children() if n.startswith("norm")]
    acts = [m for n, m in gather.named_children() if n.startswith("act")]
    if extent == 0:
        raise ValueError(f"{what}: the global learned gather (extent=0, "
                         f"extra_params=True) is not supported")
    if len(norms) != len(convs) or not all(
            isinstance(n, torch.nn.BatchNorm2d) for n in norms):
        raise ValueError(f"{what}: a gather without BatchNorm2d after each "
                         f"convolution (norm_layer=None) is not supported")
    for i, conv in enumerate(convs):
        _expect_conv(conv, f"{what}.gather.conv{i + 1}", kernel=3, stride=2,
                     padding=1, groups=conv.in_channels)
        if conv.bias is not None or conv.out_channels != conv.in_channels:
            raise ValueError(f"{what}.gather.conv{i + 1}: a bias or a channel "
                             f"multiplier is not supported")
    for i, act in enumerate(acts):
        _expect_relu(act, f"{what}.gather.act{i + 1}")
    if len({n.eps for n in norms}) > 1:
        raise ValueError(f"{what}: the gather's BatchNorms have different epsilons")
    return convs, norms, norms[0].eps


@converts("timm.layers.gather_excite", "GatherExcite")
def gather_excite(module: Any) -> GatherExcite:
    """Global and local extents, with and without the learned gather and
    the MLP. (timm 1.0.31 builds neither the MLP nor the learned gather: its
    ``*dd`` positional bug; modules built otherwise convert.)"""
    import torch

    what = _name(module)
    kwargs: dict[str, Any] = dict(extent=module.extent, use_mlp=False,
                                  gate=_gate(module.gate, f"{what}.gate"))
    channels = convs = norms = None
    if module.gather is not None:
        convs, norms, epsilon = _gather(module.gather, module.extent, what)
        channels = convs[0].in_channels
        kwargs.update(extra_params=True, epsilon=epsilon)
    else:
        kwargs["add_maxpool"] = bool(module.add_maxpool)
    mlp = module.mlp
    if not isinstance(mlp, torch.nn.Identity):
        channels, hidden, _ = _conv_mlp(mlp, f"{what}.mlp", norm=False)
        kwargs.update(use_mlp=True, hidden_units=hidden)
    layer = GatherExcite(**kwargs)

    def weights(layer: GatherExcite) -> None:
        for keras_conv, conv in zip(layer.gather_convs, convs or []):
            # torch's depthwise (C, 1, kh, kw) is Keras's (kh, kw, C, 1).
            assign(keras_conv.kernel, numpy(conv.weight).transpose(2, 3, 0, 1),
                   f"{keras_conv.name} kernel")
        for keras_norm, norm in zip(layer.gather_norms, norms or []):
            set_batch_norm(keras_norm, norm)
        if layer.use_mlp:
            set_dense(layer.fc1, mlp.fc1)
            set_dense(layer.fc2, mlp.fc2)

    return _finish(layer, channels, weights)


# ----------------------------------------------------------- global context --

@converts("timm.layers.global_context", "GlobalContext")
def global_context(module: Any) -> GlobalContext:
    """``gc`` (scale fusion), ``gca`` (add fusion), both, and ``use_attn``."""
    what = _name(module)
    mlps = {"add": module.mlp_add, "scale": module.mlp_scale}
    shapes = {name: _conv_mlp(mlp, f"{what}.mlp_{name}", norm=True)
              for name, mlp in mlps.items() if mlp is not None}
    if not shapes:
        raise ValueError(f"{what} with neither fuse_add nor fuse_scale (the "
                         f"identity) is not supported")
    if len(set(shapes.values())) > 1:
        raise ValueError(f"{what}: mlp_add and mlp_scale differ in width or "
                         f"epsilon; the zoo layer's transforms share them")
    channels, hidden, epsilon = next(iter(shapes.values()))
    attn = module.conv_attn
    if attn is not None:
        _expect_conv(attn, f"{what}.conv_attn", kernel=1)
        if attn.bias is None:
            raise ValueError(f"{what}.conv_attn has no bias; the zoo layer's has")
    fuse_scale = module.mlp_scale is not None
    layer = GlobalContext(
        use_attn=attn is not None, fuse_add=module.mlp_add is not None,
        fuse_scale=fuse_scale, hidden_units=hidden, epsilon=epsilon,
        gate=_gate(module.gate, f"{what}.gate") if fuse_scale else "sigmoid")

    def weights(layer: GlobalContext) -> None:
        if attn is not None:
            set_dense(layer.attention_logits, attn)
        for prefix, mlp in (("transform", module.mlp_add),
                            ("scale", module.mlp_scale)):
            if mlp is not None:
                set_dense(getattr(layer, f"{prefix}_fc1"), mlp.fc1)
                _set_layer_norm(getattr(layer, f"{prefix}_norm"), mlp.norm)
                set_dense(getattr(layer, f"{prefix}_fc2"), mlp.fc2)

    return _finish(layer, channels, weights)


# --------------------------------------------------------------------- CBAM --

def _channel_args(module: Any) -> dict[str, Any]:
    from timm.layers.cbam import LightChannelAttn

    what = _name(module)
    light = isinstance(module, LightChannelAttn)
    if not light:  # LightChannelAttn applies sigmoid whatever its gate
        if _gate(module.gate, f"{what}.gate") != "sigmoid":
            raise ValueError(f"{what}.gate: only Sigmoid is supported")
    _expect_relu(module.act, f"{what}.act")
    for conv in (module.fc1, module.fc2):
        _expect_conv(conv, f"{what}.fc", kernel=1)
    return dict(light=light, use_bias=_bias(module.fc1, module.fc2, what=what),
                hidden_units=module.fc1.out_channels)


def _spatial_args(module: Any) -> dict[str, Any]:
    import torch
    from timm.layers.cbam import LightSpatialAttn

    what = _name(module)
    light = isinstance(module, LightSpatialAttn)
    conv, norm = module.conv.conv, module.conv.bn
    k = _expect_conv(conv, f"{what}.conv.conv")
    if conv.in_channels != (1 if light else 2) or conv.bias is not None:
        raise ValueError(f"{what}.conv.conv: a bias or {conv.in_channels} input "
                         f"maps is not supported")
    if not isinstance(norm, torch.nn.BatchNorm2d):
        raise ValueError(f"{what}.conv.bn: {_name(norm)} is not supported; the "
                         f"zoo layer has a BatchNorm2d")
    for part in ("act", "drop"):
        _expect_identity(getattr(norm, part, None), f"{what}.conv.bn.{part}")
    _expect_identity(getattr(module.conv, "aa", None), f"{what}.conv.aa")
    if _gate(module.gate, f"{what}.gate") != "sigmoid":
        raise ValueError(f"{what}.gate: only Sigmoid is supported")
    return dict(kernel_size=k, batch_norm=True, epsilon=norm.eps, light=light)


def _set_channel(layer: ChannelAttention, module: Any) -> None:
    set_dense(layer.fc1, module.fc1)
    set_dense(layer.fc2, module.fc2)


def _set_spatial(layer: SpatialAttention, module: Any) -> None:
    set_conv(layer.conv, module.conv.conv)
    set_batch_norm(layer.bn, module.conv.bn)


@converts("timm.layers.cbam", "ChannelAttn")
def channel_attn(module: Any) -> ChannelAttention:
    """CBAM's channel half (and ``LightChannelAttn``)."""
    return _finish(ChannelAttention(**_channel_args(module)),
                   module.fc1.in_channels, lambda layer: _set_channel(layer, module))


@converts("timm.layers.cbam", "SpatialAttn")
@converts("timm.layers.cbam", "LightSpatialAttn")
def spatial_attn(module: Any) -> SpatialAttention:
    """CBAM's spatial half (light or not)."""
    return _finish(SpatialAttention(**_spatial_args(module)), None,
                   lambda layer: _set_spatial(layer, module))


@converts("timm.layers.cbam", "CbamModule")
@converts("timm.layers.cbam", "LightCbamModule")
def cbam_module(module: Any) -> CBAM:
    """``cbam`` and ``lcbam``."""
    channel, spatial = _channel_args(module.channel), _spatial_args(module.spatial)
    if channel["light"] != spatial.pop("light"):
        raise ValueError(f"{_name(module)}: a light half with a plain one is not "
                         f"supported")
    layer = CBAM(**channel, **spatial)

    def weights(layer: CBAM) -> None:
        _set_channel(layer.channel, module.channel)
        _set_spatial(layer.spatial, module.spatial)

    return _finish(layer, module.channel.fc1.in_channels, weights)
