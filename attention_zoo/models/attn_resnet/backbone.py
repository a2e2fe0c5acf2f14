"""AttnResNetBackbone: timm's ResNet family (``timm.models.resnet.ResNet``,
timm 1.0.31) in Keras, channels-last, with any zoo attention layer in its
blocks, up to the last feature map."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from attention_zoo import layers as zoo_layers
from attention_zoo.layers.registry import CONV, FEATURE_MAP, LAYERS
from attention_zoo.models.backbone import Backbone
from attention_zoo.models.torch_style import (average_pool_2x2, batch_norm, conv2d,
                                              max_pool_3x3)

#: Residual blocks and the factor from a stage's ``planes`` to its output width.
EXPANSION = {"basic": 1, "bottleneck": 4}
#: timm's ``stem_type`` values: one 7x7 convolution, or three 3x3 ones.
STEM_TYPES = ("", "deep", "deep_tiered")

#: Conv-kind attention that normalizes and activates its own output, as
#: timm's skresnet (``SelectiveKernel``) and ResNeSt (``SplitAttn`` with its
#: ``norm_layer``) blocks use it, so the block adds no BatchNorm and ReLU
#: after it; with the arguments a block gives it (``groups`` is the block's
#: cardinality). Other conv kinds (lambda, bottleneck, halo) are followed by
#: BatchNorm and ReLU, as in timm's byoanet blocks.
SELF_NORMALIZED = {"sk": {}, "splat": {"use_batch_norm": True}}


def attention_kind(name: str | None) -> str | None:
    """``"feature_map"`` or ``"conv"`` for a zoo layer name, None for None;
    ``ValueError`` for anything else."""
    if name is None:
        return None
    usable = zoo_layers.names(FEATURE_MAP) + zoo_layers.names(CONV)
    if not isinstance(name, str) or name not in LAYERS or \
            LAYERS.entry(name).kind not in (FEATURE_MAP, CONV):
        raise ValueError(f"attention must be None or a feature-map or conv layer "
                         f"name ({', '.join(usable)}), received {name!r}")
    return LAYERS.entry(name).kind


def _positive_ints(name: str, values: Any) -> tuple[int, ...]:
    values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                         for v in values):
        raise ValueError(f"{name} must be a non-empty list of positive ints, "
                         f"received {values!r}")
    return values


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, received {value!r}")
    return value


@keras.saving.register_keras_serializable(package="attention_zoo")
class AttnResNetBackbone(Backbone):
    """timm's ResNet / ResNeXt / SE-ResNet (``timm.models.resnet.ResNet``)
    without its head: a stem (a 7x7 stride-2 convolution, or three 3x3 ones
    with ``stem_type="deep"``), BatchNorm, ReLU, a 3x3 stride-2 max pool (or
    a stride-2 conv-BN-ReLU with ``replace_stem_pool``), then stages of
    residual blocks, the first block of each stage after the first strided
    by 2. Layers are named after timm's modules (``conv1``, ``layer1_0_conv2``,
    ``layer2_0_downsample_1``...), BatchNorms take PyTorch's epsilon, and
    strided convolutions and the max pool pad as PyTorch does, so timm's
    weights load unchanged (``interop.from_timm``).

    ``"basic"`` blocks: ``conv3x3(stride)-BN-ReLU, conv3x3-BN``;
    ``"bottleneck"``: ``conv1x1-BN-ReLU, conv3x3(stride, cardinality
    groups)-BN-ReLU, conv1x1-BN``; each then ``[attention] + shortcut`` and
    ReLU. The shortcut is a strided 1x1 (``down_kernel_size``) conv-BN where
    the shape changes, or with ``avg_down`` (timm's 'd' variants) a 2x2
    average pool and a 1x1 conv-BN.

    Attention: a feature-map layer (``attention_zoo.layers.names(
    "feature_map")``) goes where timm's ``create_attn(attn_layer, outplanes)``
    goes, after the block's last BatchNorm and before the residual sum; a
    conv layer (``layers.names("conv")``: sk, splat, lambda, bottleneck,
    halo) replaces the block's strided 3x3 convolution, taking its width and
    stride, as timm's skresnet, ResNeSt and byoanet blocks do (sk and splat
    with the block's cardinality as groups and their own BatchNorm and ReLU;
    ``SELF_NORMALIZED``). ``attention_kwargs`` go to every attention layer.

    Args:
        input_shape: ``(H, W, channels)``; H and W may be None (conv
            attention such as ``bottleneck`` and ``lambda`` needs them).
            Inputs are normalized images (the task normalizes raw pixels).
        block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50+).
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)``.
        channels: ``planes`` per stage (a stage outputs ``planes`` x 1 or 4
            for bottlenecks), one per entry of ``layers``.
        cardinality: groups of the bottleneck's 3x3 convolution (ResNeXt).
        base_width: bottleneck width per group: the 3x3 convolution has
            ``floor(planes * base_width / 64) * cardinality`` filters.
        stem_type: ``""``, ``"deep"`` (3x3 convolutions of ``stem_width``,
            ``stem_width``, ``2 stem_width`` filters) or ``"deep_tiered"``
            (``3 (stem_width // 4)``, ``stem_width``, ``2 stem_width``).
        stem_width: see ``stem_type``; the 7x7 stem has 64 filters, as timm's.
        replace_stem_pool: a 3x3 stride-2 conv-BN-ReLU instead of the max pool.
        block_reduce_first: divides the width of each block's first
            convolution (SENet-154's 2).
        down_kernel_size: kernel of the strided shortcut convolution.
        avg_down: the shortcut average-pools, then convolves 1x1.
        attention: None or a zoo layer name (see above).
        attention_kwargs: arguments of every attention layer.
        zero_init_last: each block's last BatchNorm starts with a zero
            scale (timm's default), so blocks start as identities.

    Input ``(batch, H, W, channels)``; output ``(batch, H / 32, W / 32,
    channels[-1] * expansion)`` for four stages (``ceil`` at every stride
    for odd sizes, as PyTorch's padding gives), e.g. ``(batch, 7, 7, 2048)``
    for ResNet-50 at 224x224.
    """

    def __init__(self, input_shape: Sequence[int | None] = (224, 224, 3),
                 block: str = "bottleneck", layers: Sequence[int] = (3, 4, 6, 3),
                 channels: Sequence[int] = (64, 128, 256, 512),
                 cardinality: int = 1, base_width: int = 64, stem_type: str = "",
                 stem_width: int = 64, replace_stem_pool: bool = False,
                 block_reduce_first: int = 1, down_kernel_size: int = 1,
                 avg_down: bool = False, attention: str | None = None,
                 attention_kwargs: dict[str, Any] | None = None,
                 zero_init_last: bool = True, name: str = "attn_resnet_backbone",
                 **kwargs: Any) -> None:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3 or any(
                d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 1)
                for d in input_shape) or input_shape[-1] is None:
            raise ValueError(f"input_shape must be (H, W, channels) with H and W "
                             f"positive ints or None, received {input_shape!r}")
        if block not in EXPANSION:
            raise ValueError(f"block must be one of {', '.join(EXPANSION)}, "
                             f"received {block!r}")
        layers = _positive_ints("layers", layers)
        channels = _positive_ints("channels", channels)
        if len(channels) != len(layers):
            raise ValueError(f"channels needs one entry per stage of layers "
                             f"({len(layers)}), received {channels!r}")
        for what, value in (("cardinality", cardinality), ("base_width", base_width),
                            ("stem_width", stem_width),
                            ("block_reduce_first", block_reduce_first),
                            ("down_kernel_size", down_kernel_size)):
            _positive_int(what, value)
        if block == "basic" and (cardinality, base_width) != (1, 64):
            raise ValueError(f"basic blocks take cardinality=1 and base_width=64 "
                             f"(as timm's), received {cardinality} and {base_width}")
        if stem_type not in STEM_TYPES:
            raise ValueError(f"stem_type must be one of {STEM_TYPES}, received "
                             f"{stem_type!r}")
        for what, value in (("replace_stem_pool", replace_stem_pool),
                            ("avg_down", avg_down), ("zero_init_last", zero_init_last)):
            if not isinstance(value, bool):
                raise ValueError(f"{what} must be a bool, received {value!r}")
        kind = attention_kind(attention)
        if attention_kwargs is not None and not isinstance(attention_kwargs, dict):
            raise ValueError(f"attention_kwargs must be a dict or None, received "
                             f"{attention_kwargs!r}")
        if attention_kwargs and attention is None:
            raise ValueError(f"attention_kwargs ({attention_kwargs}) need an attention")
        owned = {"name", "filters", "strides"}.intersection(attention_kwargs or {})
        if owned:
            raise ValueError(f"attention_kwargs must not set {sorted(owned)}: the "
                             f"backbone names its layers and gives conv attention "
                             f"the width and stride of the convolution it replaces")

        def norm(x: Any, name: str, last: bool = False) -> Any:
            return batch_norm(x, name, zero=last and zero_init_last)

        def relu(x: Any, name: str) -> Any:
            return keras.layers.ReLU(name=name)(x)

        def conv_attention(x: Any, filters: int, strides: int,
                           name: str) -> tuple[Any, bool]:
            """The conv-kind attention in a 3x3 convolution's place, and
            whether it normalizes its own output (else BatchNorm-ReLU follow)."""
            own = SELF_NORMALIZED.get(LAYERS.entry(attention).name)
            defaults = {} if own is None else {"groups": cardinality, **own}
            x = zoo_layers.get(attention, filters=filters, strides=strides, name=name,
                               **{**defaults, **(attention_kwargs or {})})(x)
            return x, own is not None

        def shortcut(x: Any, filters: int, strides: int, name: str) -> Any:
            if avg_down:
                if strides > 1:
                    x = average_pool_2x2(x, f"{name}_0")
                x = conv2d(x, filters, 1, f"{name}_1")
                return norm(x, f"{name}_2")
            kernel_size = down_kernel_size if strides > 1 else 1
            x = conv2d(x, filters, kernel_size, f"{name}_0", strides)
            return norm(x, f"{name}_1")

        def residual_block(x: Any, planes: int, strides: int, name: str,
                           project: bool) -> Any:
            out_width = planes * EXPANSION[block]
            if block == "basic":
                widths = [planes // block_reduce_first, out_width]
                steps = [(3, strides, 1), (3, 1, 1)]
            else:
                width = (planes * base_width // 64) * cardinality
                widths = [width // block_reduce_first, width, out_width]
                steps = [(1, 1, 1), (3, strides, cardinality), (1, 1, 1)]
            strided = 1 if block == "basic" else 2  # the 3x3 conv that strides
            y = x
            for i, (filters, (kernel_size, stride, groups)) in enumerate(
                    zip(widths, steps), start=1):
                last = i == len(steps)
                if kind == CONV and i == strided:
                    y, normalized = conv_attention(y, filters, stride, f"{name}_conv{i}")
                    if normalized:
                        continue
                else:
                    y = conv2d(y, filters, kernel_size, f"{name}_conv{i}", stride, groups)
                y = norm(y, f"{name}_bn{i}", last=last)
                if not last:
                    y = relu(y, f"{name}_act{i}")
            if kind == FEATURE_MAP:
                y = zoo_layers.get(attention, name=f"{name}_se",
                                   **(attention_kwargs or {}))(y)
            if project:
                x = shortcut(x, out_width, strides, f"{name}_downsample")
            y = keras.layers.Add(name=f"{name}_add")([y, x])
            return relu(y, f"{name}_act{len(steps)}")

        inputs = keras.Input(input_shape, name="image")
        if stem_type:
            first = 3 * (stem_width // 4) if stem_type == "deep_tiered" else stem_width
            inplanes = 2 * stem_width
            x = conv2d(inputs, first, 3, "conv1_0", strides=2)
            x = relu(norm(x, "conv1_1"), "conv1_2")
            x = conv2d(x, stem_width, 3, "conv1_3")
            x = relu(norm(x, "conv1_4"), "conv1_5")
            x = conv2d(x, inplanes, 3, "conv1_6")
        else:
            inplanes = 64
            x = conv2d(inputs, inplanes, 7, "conv1", strides=2)
        x = relu(norm(x, "bn1"), "act1")
        if replace_stem_pool:
            x = conv2d(x, inplanes, 3, "maxpool_0", strides=2)
            x = relu(norm(x, "maxpool_1"), "maxpool_2")
        else:
            x = max_pool_3x3(x, "maxpool")
        for stage, (planes, blocks) in enumerate(zip(channels, layers), start=1):
            strides = 1 if stage == 1 else 2
            for index in range(blocks):
                project = index == 0 and (strides > 1 or
                                          inplanes != planes * EXPANSION[block])
                x = residual_block(x, planes, strides if index == 0 else 1,
                                   f"layer{stage}_{index}", project)
                inplanes = planes * EXPANSION[block]
        super().__init__(inputs=inputs, outputs=x, name=name, **kwargs)
        self._arguments = {
            "input_shape": list(input_shape), "block": block, "layers": list(layers),
            "channels": list(channels), "cardinality": cardinality,
            "base_width": base_width, "stem_type": stem_type, "stem_width": stem_width,
            "replace_stem_pool": replace_stem_pool,
            "block_reduce_first": block_reduce_first,
            "down_kernel_size": down_kernel_size, "avg_down": avg_down,
            "attention": attention, "attention_kwargs": attention_kwargs,
            "zero_init_last": zero_init_last}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._arguments}
