"""ByoaNetBackbone: timm's "bring your own attention" networks
(``timm.models.byobnet.ByobNet`` with the block configurations of
``byoanet.py``: BoTNet, HaloNet, Lambda ResNets, and byobnet's attention
ResNeXts such as ``seresnext26ts``) in Keras, channels-last, up to the last
feature map."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras

from attention_zoo import layers as zoo_layers
from attention_zoo.layers.options import make_divisible
from attention_zoo.layers.registry import CONV, FEATURE_MAP, LAYERS
from attention_zoo.models.backbone import Backbone
from attention_zoo.models.torch_style import (TorchMaxPooling2D, average_pool_2x2,
                                              batch_norm, conv2d)

#: Block types: timm's ``BottleneckBlock`` and ``SelfAttnBlock``.
BLOCK_TYPES = ("bottle", "self_attn")
#: Shortcuts where a block changes shape: timm's ``downsample`` values.
DOWNSAMPLES = ("conv1x1", "avg")
ACTIVATIONS = ("relu", "silu")
STEM_POOLS = ("", "maxpool")
#: A stage's keys and their defaults (``None``: required).
STAGE_DEFAULTS: dict[str, Any] = {
    "blocks": None, "channels": None, "strides": 2, "group_size": 0,
    "bottle_ratio": 1.0, "self_attention": None, "self_attention_kwargs": None}


def _positive_int(name: str, value: Any, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, received {value!r}")
    return value


def _layer_name(name: Any, kind: str, what: str) -> str:
    entry = LAYERS.entry(name) if isinstance(name, str) and name in LAYERS else None
    if entry is None or entry.kind != kind:
        raise ValueError(f"{what} must be a {kind} layer name "
                         f"({', '.join(zoo_layers.names(kind))}), received {name!r}")
    return name


def _kwargs(name: str, value: Any, owned: Sequence[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict or None, received {value!r}")
    taken = sorted(set(owned).intersection(value))
    if taken:
        raise ValueError(f"{name} must not set {taken}: the backbone sets them")
    return dict(value)


def check_stage(index: int, stage: Any) -> dict[str, Any]:
    """A stage's description with its defaults filled in; ``ValueError``
    naming the stage and key for anything malformed."""
    where = f"stages[{index}]"
    if not isinstance(stage, Mapping):
        raise ValueError(f"{where} must be a dict with keys {sorted(STAGE_DEFAULTS)}, "
                         f"received {stage!r}")
    unknown = sorted(set(stage) - set(STAGE_DEFAULTS))
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}; its keys are "
                         f"{sorted(STAGE_DEFAULTS)}")
    stage = {**STAGE_DEFAULTS, **stage}
    blocks = stage["blocks"]
    if not isinstance(blocks, (list, tuple)) or not blocks or \
            any(b not in BLOCK_TYPES for b in blocks):
        raise ValueError(f"{where}['blocks'] must be a non-empty list of "
                         f"{BLOCK_TYPES}, received {blocks!r}")
    _positive_int(f"{where}['channels']", stage["channels"])
    _positive_int(f"{where}['strides']", stage["strides"])
    _positive_int(f"{where}['group_size']", stage["group_size"], least=0)
    ratio = stage["bottle_ratio"]
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
        raise ValueError(f"{where}['bottle_ratio'] must be a positive number, "
                         f"received {ratio!r}")
    if "self_attn" in blocks:
        _layer_name(stage["self_attention"], CONV, f"{where}['self_attention']")
    elif stage["self_attention"] is not None:
        raise ValueError(f"{where} names a self_attention but has no self_attn block")
    kwargs = _kwargs(f"{where}['self_attention_kwargs']", stage["self_attention_kwargs"],
                     ("name", "filters", "strides"))
    return {**stage, "blocks": list(blocks), "bottle_ratio": float(ratio),
            "self_attention_kwargs": kwargs or None}


@keras.saving.register_keras_serializable(package="attention_zoo")
class ByoaNetBackbone(Backbone):
    """timm's ``ByobNet`` with bottleneck and self-attention blocks, as
    ``byoanet.py`` configures it (``botnet26t``, ``halonet26t``,
    ``lambda_resnet26t``, ``sebotnet33ts``, ``eca_halonext26ts``...), without
    its head. Layers are named after timm's modules (``stem_conv1_conv``,
    ``stages_2_1_self_attn``...), BatchNorms take PyTorch's epsilon and
    convolutions and pools pad as PyTorch does, so timm's weights load
    unchanged (``interop.from_timm``).

    Stem: 3x3 (or ``stem_kernel_size``) conv-BN-act layers of
    ``stem_widths``, the first strided by 2, then a 3x3 stride-2 max pool
    (``stem_pool="maxpool"``), or without the pool the last convolution of
    a multi-layer stem strided too.

    Blocks (in each, ``mid = make_divisible(channels * bottle_ratio, 8)``):
    ``"bottle"``: ``conv1x1(mid)-BN-act, conv3x3(mid, stride, mid /
    group_size groups)-BN-act, [attention], conv1x1(channels)-BN``;
    ``"self_attn"``: ``conv1x1(mid)-BN-act, self_attention(stride)-BN-act,
    conv1x1(channels)-BN``; each then ``+ shortcut`` and act. The shortcut
    is the identity where the shape holds, else a strided 1x1 conv-BN
    (``downsample="conv1x1"``) or a 2x2 average pool and a 1x1 conv-BN
    (``"avg"``). Then a 1x1 conv-BN-act of ``num_features`` (if > 0).

    Args:
        stages: one dict per stage: ``blocks`` (list of ``"bottle"`` /
            ``"self_attn"``), ``channels`` (output width), ``strides`` of
            its first block (default 2), ``group_size`` (channels per group
            of the 3x3 convolution; 0: one group), ``bottle_ratio`` (default
            1.0), ``self_attention`` (a conv-kind layer name: ``bottleneck``,
            ``halo``, ``lambda``...; required with self_attn blocks) and
            ``self_attention_kwargs``.
        input_shape: ``(H, W, channels)``; H and W may be None only
            without ``"self_attn"`` blocks (the self-attention layers are
            built for one feature-map size).
        stem_widths: widths of the stem's convolutions.
        stem_kernel_size: their kernel size (timm: 3, or 7 for ``7x7``).
        stem_pool: ``"maxpool"`` or ``""``.
        downsample: ``"conv1x1"`` or ``"avg"``.
        activation: ``"relu"`` or ``"silu"``.
        attention: None or a feature-map layer name in every bottleneck
            block, after its 3x3 convolution (timm's ``attn_layer``).
        attention_kwargs: arguments of those layers.
        num_features: width of the final 1x1 conv-BN-act (0: none).
        zero_init_last: each block's last BatchNorm starts with a zero scale.

    Input ``(batch, H, W, channels)`` normalized images; output ``(batch,
    H / 32, W / 32, C)`` for four stride-2 steps after a stride-4 stem.
    """

    def __init__(self, stages: Sequence[Mapping[str, Any]],
                 input_shape: Sequence[int | None] = (224, 224, 3),
                 stem_widths: Sequence[int] = (24, 32, 64), stem_kernel_size: int = 3,
                 stem_pool: str = "maxpool", downsample: str = "conv1x1",
                 activation: str = "relu", attention: str | None = None,
                 attention_kwargs: dict[str, Any] | None = None, num_features: int = 0,
                 zero_init_last: bool = True, name: str = "byoanet_backbone",
                 **kwargs: Any) -> None:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3 or input_shape[-1] is None or any(
                d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 1)
                for d in input_shape):
            raise ValueError(f"input_shape must be (H, W, channels) with H and W "
                             f"positive ints or None, received {input_shape!r}")
        if not isinstance(stages, (list, tuple)) or not stages:
            raise ValueError(f"stages must be a non-empty list of dicts, received "
                             f"{stages!r}")
        stages = [check_stage(i, stage) for i, stage in enumerate(stages)]
        stem_widths = list(stem_widths) if isinstance(stem_widths, (list, tuple)) \
            else [stem_widths]
        for i, width in enumerate(stem_widths):
            _positive_int(f"stem_widths[{i}]", width)
        if not stem_widths:
            raise ValueError("stem_widths must name at least one width")
        _positive_int("stem_kernel_size", stem_kernel_size)
        for what, value, choices in (("stem_pool", stem_pool, STEM_POOLS),
                                     ("downsample", downsample, DOWNSAMPLES),
                                     ("activation", activation, ACTIVATIONS)):
            if value not in choices:
                raise ValueError(f"{what} must be one of {choices}, received {value!r}")
        if attention is not None:
            _layer_name(attention, FEATURE_MAP, "attention")
        attention_kwargs = _kwargs("attention_kwargs", attention_kwargs, ("name",))
        if attention_kwargs and attention is None:
            raise ValueError(f"attention_kwargs ({attention_kwargs}) need an attention")
        _positive_int("num_features", num_features, least=0)
        if not isinstance(zero_init_last, bool):
            raise ValueError(f"zero_init_last must be a bool, received {zero_init_last!r}")

        def act(x: Any, name: str) -> Any:
            return keras.layers.Activation(activation, name=name)(x)

        def conv_norm_act(x: Any, filters: int, kernel_size: int, name: str,
                          strides: int = 1, groups: int = 1, apply_act: bool = True,
                          zero: bool = False) -> Any:
            """timm's ``ConvNormAct``: modules ``conv`` and ``bn``."""
            x = conv2d(x, filters, kernel_size, f"{name}_conv", strides, groups)
            x = batch_norm(x, f"{name}_bn", zero=zero)
            return act(x, f"{name}_bn_act") if apply_act else x

        def shortcut(x: Any, filters: int, strides: int, name: str) -> Any:
            if x.shape[-1] == filters and strides == 1:
                return x
            if downsample == "avg":
                if strides > 1:
                    x = average_pool_2x2(x, f"{name}_pool")
                return conv_norm_act(x, filters, 1, f"{name}_conv", apply_act=False)
            return conv_norm_act(x, filters, 1, name, strides, apply_act=False)

        def block(x: Any, kind: str, stage: dict[str, Any], strides: int,
                  name: str) -> Any:
            filters = stage["channels"]
            mid = make_divisible(filters * stage["bottle_ratio"], 8)
            size = stage["group_size"]
            if size and mid % size:
                raise ValueError(f"{name}: group_size {size} does not divide the "
                                 f"block's {mid} channels")
            y = conv_norm_act(x, mid, 1, f"{name}_conv1_1x1")
            if kind == "bottle":
                y = conv_norm_act(y, mid, 3, f"{name}_conv2_kxk", strides,
                                  groups=mid // size if size else 1)
                if attention is not None:
                    y = zoo_layers.get(attention, name=f"{name}_attn",
                                       **attention_kwargs)(y)
            else:
                y = zoo_layers.get(stage["self_attention"], strides=strides,
                                   name=f"{name}_self_attn",
                                   **(stage["self_attention_kwargs"] or {}))(y)
                y = act(batch_norm(y, f"{name}_post_attn"), f"{name}_post_attn_act")
            y = conv_norm_act(y, filters, 1, f"{name}_conv3_1x1", apply_act=False,
                              zero=zero_init_last)
            y = keras.layers.Add(name=f"{name}_add")(
                [y, shortcut(x, filters, strides, f"{name}_shortcut")])
            return act(y, f"{name}_act")

        inputs = keras.Input(input_shape, name="image")
        x = inputs
        if len(stem_widths) == 1 and not stem_pool:
            x = conv_norm_act(x, stem_widths[0], stem_kernel_size, "stem", strides=2)
        else:
            strides = [2] + [1] * (len(stem_widths) - 1)
            if not stem_pool and len(stem_widths) > 1:
                strides[-1] = 2  # timm's Stem: a stride-4 stem strides its last conv
            for i, (width, stride) in enumerate(zip(stem_widths, strides), start=1):
                x = conv_norm_act(x, width, stem_kernel_size, f"stem_conv{i}", stride)
            if stem_pool:
                x = TorchMaxPooling2D(3, 2, 1, name="stem_pool")(x)
        for s, stage in enumerate(stages):
            for b, kind in enumerate(stage["blocks"]):
                x = block(x, kind, stage, stage["strides"] if b == 0 else 1,
                          f"stages_{s}_{b}")
        if num_features:
            x = conv_norm_act(x, num_features, 1, "final_conv")
        super().__init__(inputs=inputs, outputs=x, name=name, **kwargs)
        self._arguments = {
            "stages": stages, "input_shape": list(input_shape),
            "stem_widths": stem_widths, "stem_kernel_size": stem_kernel_size,
            "stem_pool": stem_pool, "downsample": downsample, "activation": activation,
            "attention": attention, "attention_kwargs": attention_kwargs or None,
            "num_features": num_features, "zero_init_last": zero_init_last}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._arguments}
