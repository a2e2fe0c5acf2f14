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
from attention_zoo.interop.timm.torch_modules import (GATES, absent, activation,
                                                      batch_norm, check_conv,
                                                      conv_norm_act, name, refusal,
                                                      same)
from attention_zoo.interop.timm.weights import (set_batch_norm, set_conv,
                                                set_dense, set_depthwise, set_norm)
from attention_zoo.layers.channel import (ChannelAttention,
                                          EffectiveSqueezeExcite,
                                          EfficientChannelAttention,
                                          SqueezeExcite)
from attention_zoo.layers.context import GlobalContext
from attention_zoo.layers.gather_excite import GatherExcite
from attention_zoo.layers.spatial import CBAM, SpatialAttention

Setter = Callable[[keras.layers.Layer], None]


def _bias(what: str, **convs: Any) -> bool:
    """Whether the convolutions have biases (all of them, or none)."""
    return same(what, "biases", {key: conv.bias is not None
                                 for key, conv in convs.items()})


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
    what = name(module)
    absent(module.bn, f"{what}.bn (norm_layer)")
    activation(module.act, f"{what}.act", ("relu",))
    check_conv(module.fc1, f"{what}.fc1")
    check_conv(module.fc2, f"{what}.fc2")
    layer = SqueezeExcite(hidden_units=module.fc1.out_channels,
                          use_bias=_bias(what, fc1=module.fc1, fc2=module.fc2),
                          add_maxpool=bool(module.add_maxpool),
                          gate=activation(module.gate, f"{what}.gate", GATES))

    def weights(layer: SqueezeExcite) -> None:
        set_dense(layer.fc1, module.fc1)
        set_dense(layer.fc2, module.fc2)

    return _finish(layer, module.fc1.in_channels, weights)


@converts("timm.layers.squeeze_excite", "EffectiveSEModule")
def effective_se_module(module: Any) -> EffectiveSqueezeExcite:
    what = name(module)
    check_conv(module.fc, f"{what}.fc")
    if module.fc.bias is None:
        raise ValueError(f"{what}.fc has no bias; the zoo layer has one")
    layer = EffectiveSqueezeExcite(add_maxpool=bool(module.add_maxpool),
                                   gate=activation(module.gate, f"{what}.gate", GATES))
    return _finish(layer, module.fc.in_channels,
                   lambda layer: set_dense(layer.fc, module.fc))


# ---------------------------------------------------------------------- ECA --

@converts("timm.layers.eca", "EcaModule")
def eca_module(module: Any) -> EfficientChannelAttention:
    """Both modes: the plain convolution (``eca``) and the MLP (``ecam``).
    The kernel size is read from the weights (whatever rule chose it)."""
    what = name(module)
    gate = activation(module.gate, f"{what}.gate", GATES)
    if module.conv2 is None:
        k, _, _ = check_conv(module.conv, f"{what}.conv", kernel_size=None, odd=True)
        if module.conv.bias is not None:
            raise ValueError(f"{what}.conv has a bias; the zoo layer's plain "
                             f"convolution has none")
        layer = EfficientChannelAttention(kernel_size=k, gate=gate)
        return _finish(layer, None, lambda layer: set_conv(layer.conv, module.conv))
    activation(module.act, f"{what}.act", ("relu",))
    check_conv(module.conv, f"{what}.conv")
    k, _, _ = check_conv(module.conv2, f"{what}.conv2", kernel_size=None, odd=True)
    if not _bias(what, conv=module.conv, conv2=module.conv2):
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
    what = name(module)
    k, _, _ = check_conv(module.conv, f"{what}.conv", kernel_size=None, padding=0,
                         odd=True)
    if module.padding != k // 2:
        raise ValueError(f"{what}: circular padding {module.padding} for kernel "
                         f"{k} is not supported; the zoo layer pads {k // 2}")
    if module.conv.bias is not None:
        # timm gives the convolution a bias when act_layer is set (and then
        # applies no activation).
        raise ValueError(f"{what}.conv has a bias (act_layer set); the zoo "
                         f"layer's convolution has none")
    layer = EfficientChannelAttention(kernel_size=k, padding="circular",
                                      gate=activation(module.gate, f"{what}.gate", GATES))
    return _finish(layer, None, lambda layer: set_conv(layer.conv, module.conv))


# ------------------------------------------------------------ gather-excite --

def _conv_mlp(mlp: Any, what: str, norm: bool) -> tuple[int, int, float | None]:
    """Checks a timm ConvMlp (``fc1 -> norm -> ReLU -> fc2``, biases);
    returns (channels, hidden width, the LayerNorm's epsilon or None)."""
    import torch
    from timm.layers.mlp import ConvMlp

    if type(mlp) is not ConvMlp:
        raise refusal(what, name(mlp), "timm's ConvMlp")
    check_conv(mlp.fc1, f"{what}.fc1")
    check_conv(mlp.fc2, f"{what}.fc2")
    activation(mlp.act, f"{what}.act", ("relu",))
    if not _bias(what, fc1=mlp.fc1, fc2=mlp.fc2):
        raise ValueError(f"{what}: the MLP has no biases; the zoo layer's has")
    hidden = mlp.fc1.out_channels
    if not norm:
        absent(mlp.norm, f"{what}.norm")
        return mlp.fc1.in_channels, hidden, None
    if (not isinstance(mlp.norm, torch.nn.LayerNorm)
            or tuple(mlp.norm.normalized_shape) != (hidden,)
            or mlp.norm.weight is None or mlp.norm.bias is None):
        raise refusal(f"{what}.norm", repr(mlp.norm), "a LayerNorm over the "
                      "channels with scale and offset")
    return mlp.fc1.in_channels, hidden, mlp.norm.eps


def _gather(gather: Any, extent: int, what: str) -> tuple[list, list, float]:
    """The depthwise convolutions and BatchNorms of GE-theta's gather."""
    convs = [m for n, m in gather.named_children() if n.startswith("conv")]
    norms = [m for n, m in gather.named_children() if n.startswith("norm")]
    acts = [m for n, m in gather.named_children() if n.startswith("act")]
    if extent == 0:
        raise ValueError(f"{what}: the global learned gather (extent=0, "
                         f"extra_params=True) is not supported")
    if len(norms) != len(convs):
        raise ValueError(f"{what}: a gather without BatchNorm2d after each "
                         f"convolution (norm_layer=None) is not supported")
    for i, conv in enumerate(convs):
        check_conv(conv, f"{what}.gather.conv{i + 1}", kernel_size=3, stride=2,
                   depthwise=True)
        if conv.bias is not None:
            raise refusal(f"{what}.gather.conv{i + 1}", "a bias", "none")
    for i, act in enumerate(acts):
        activation(act, f"{what}.gather.act{i + 1}", ("relu",))
    epsilon = same(f"{what}.gather", "BatchNorm epsilons", {
        f"norm{i + 1}": batch_norm(norm, f"{what}.gather.norm{i + 1}")
        for i, norm in enumerate(norms)})
    return convs, norms, epsilon


@converts("timm.layers.gather_excite", "GatherExcite")
def gather_excite(module: Any) -> GatherExcite:
    """Global and local extents, with and without the learned gather and
    the MLP. (timm 1.0.31 builds neither the MLP nor the learned gather: its
    ``*dd`` positional bug; modules built otherwise convert.)"""
    import torch

    what = name(module)
    kwargs: dict[str, Any] = dict(extent=module.extent, use_mlp=False,
                                  gate=activation(module.gate, f"{what}.gate", GATES))
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
            set_depthwise(keras_conv, conv)
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
    what = name(module)
    mlps = {"mlp_add": module.mlp_add, "mlp_scale": module.mlp_scale}
    shapes = {key: _conv_mlp(mlp, f"{what}.{key}", norm=True)
              for key, mlp in mlps.items() if mlp is not None}
    if not shapes:
        raise ValueError(f"{what} with neither fuse_add nor fuse_scale (the "
                         f"identity) is not supported")
    channels, hidden, epsilon = same(
        what, "the MLPs' (channels, width, LayerNorm epsilon)", shapes)
    attn = module.conv_attn
    if attn is not None:
        check_conv(attn, f"{what}.conv_attn")
        if attn.bias is None:
            raise ValueError(f"{what}.conv_attn has no bias; the zoo layer's has")
    fuse_scale = module.mlp_scale is not None
    layer = GlobalContext(
        use_attn=attn is not None, fuse_add=module.mlp_add is not None,
        fuse_scale=fuse_scale, hidden_units=hidden, epsilon=epsilon,
        gate=activation(module.gate, f"{what}.gate", GATES) if fuse_scale else "sigmoid")

    def weights(layer: GlobalContext) -> None:
        if attn is not None:
            set_dense(layer.attention_logits, attn)
        for prefix, mlp in (("transform", module.mlp_add),
                            ("scale", module.mlp_scale)):
            if mlp is not None:
                set_dense(getattr(layer, f"{prefix}_fc1"), mlp.fc1)
                set_norm(getattr(layer, f"{prefix}_norm"), mlp.norm)
                set_dense(getattr(layer, f"{prefix}_fc2"), mlp.fc2)

    return _finish(layer, channels, weights)


# --------------------------------------------------------------------- CBAM --

def _channel_args(module: Any) -> dict[str, Any]:
    from timm.layers.cbam import LightChannelAttn

    what = name(module)
    light = isinstance(module, LightChannelAttn)
    if not light:  # LightChannelAttn applies sigmoid whatever its gate
        activation(module.gate, f"{what}.gate", ("sigmoid",))
    activation(module.act, f"{what}.act", ("relu",))
    check_conv(module.fc1, f"{what}.fc1")
    check_conv(module.fc2, f"{what}.fc2")
    return dict(light=light, use_bias=_bias(what, fc1=module.fc1, fc2=module.fc2),
                hidden_units=module.fc1.out_channels)


def _spatial_args(module: Any) -> dict[str, Any]:
    from timm.layers.cbam import LightSpatialAttn

    what = name(module)
    light = isinstance(module, LightSpatialAttn)
    epsilon, _ = conv_norm_act(module.conv, f"{what}.conv", (None,),
                               kernel_size=None, odd=True)
    conv = module.conv.conv
    if conv.in_channels != (1 if light else 2) or conv.bias is not None:
        raise ValueError(f"{what}.conv.conv: a bias or {conv.in_channels} input "
                         f"maps is not supported")
    activation(module.gate, f"{what}.gate", ("sigmoid",))
    return dict(kernel_size=conv.kernel_size[0], batch_norm=True, epsilon=epsilon,
                light=light)


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
        raise ValueError(f"{name(module)}: a light half with a plain one is not "
                         f"supported")
    layer = CBAM(**channel, **spatial)

    def weights(layer: CBAM) -> None:
        _set_channel(layer.channel, module.channel)
        _set_spatial(layer.spatial, module.spatial)

    return _finish(layer, module.channel.fc1.in_channels, weights)
