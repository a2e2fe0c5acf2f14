"""from_timm converter of timm's ``ByobNet`` built of bottleneck and
self-attention blocks: the BoTNet, HaloNet and Lambda ResNets of
``byoanet.py`` (``botnet26t_256``, ``halonet26t``, ``lambda_resnet26t``,
``sebotnet33ts_256``, ``eca_halonext26ts``...) and byobnet's attention
ResNeXts (``seresnext26ts``, ``eca_resnext26ts``, ``gcresnext26ts``...), as a
``ByoaNetImageClassifier`` whose logits on NHWC images equal timm's on the
same images NCHW.

The structure is read from the modules (stem, each block's type, widths,
stride, groups, shortcut, activation); attention modules convert through
``from_timm``. What the Keras model cannot reproduce is refused with a
``ValueError`` naming the module.
"""

from __future__ import annotations

from typing import Any

import keras

from attention_zoo.interop.timm import converts, from_timm
from attention_zoo.interop.timm.attention_choice import settings, zoo_attention
from attention_zoo.interop.timm.torch_modules import (absent, activation,
                                                      conv_norm_act, norm_act,
                                                      per_channel)
from attention_zoo.interop.timm.weights import set_model
from attention_zoo.layers.options import timm_padding
from attention_zoo.layers.registry import CONV, LAYERS
from attention_zoo.models.byoanet import ByoaNetBackbone, ByoaNetImageClassifier
from attention_zoo.models.image_classifier import IMAGENET_MEAN, IMAGENET_STD

#: What the converter takes, for its error messages.
SUPPORTED = ("timm.models.byobnet.ByobNet of 'bottle' and 'self_attn' blocks "
             "(byoanet's botnet/halonet/lambda_resnet models, byobnet's "
             "*resnext26ts/*resnet33ts): a 3x3 or 7x7 conv stem with or without "
             "a max pool, BatchNorm with ReLU or SiLU, 'conv1x1' or 'avg' "
             "shortcuts, feature-map attention after the 3x3 convolution "
             "(attn_layer), bottleneck/halo/lambda self-attention, a final 1x1 "
             "conv or none, an average-pooling ClassifierHead; not extra_conv, "
             "attn_last, linear_out, bottle_in, dilation or other heads")
ACTIVATIONS = ("relu", "silu")
#: Settings of a self-attention layer that the backbone gives each block.
_PER_BLOCK = ("filters", "strides", "feat_size")


def _refuse(what: str) -> ValueError:
    return ValueError(f"from_timm cannot convert this ByobNet: {what}. It converts "
                      f"{SUPPORTED}.")


def _conv_norm_act(module: Any, path: str, activations: tuple, **geometry: Any
                   ) -> tuple[int, str | None]:
    """Checks a ConvNormAct (timm's padding); its width and activation."""
    from timm.layers import ConvNormAct

    if type(module) is not ConvNormAct:
        raise _refuse(f"{path} is a {type(module).__name__}, not a ConvNormAct")
    _, act = conv_norm_act(module, path, activations, padding=timm_padding,
                           **{"kernel_size": None, "stride": None, **geometry})
    return module.conv.out_channels, act


def _stem(stem: Any, acts: set) -> dict[str, Any]:
    import torch
    from timm.models.byobnet import Stem

    if isinstance(stem, Stem):
        convs = [(n, m) for n, m in stem.named_children() if n != "pool"]
        pool = getattr(stem, "pool", None)
        if pool is not None and not (
                type(pool) is torch.nn.MaxPool2d and
                (pool.kernel_size, pool.stride, pool.padding, pool.dilation,
                 pool.ceil_mode) in ((3, 2, 1, 1, False), ((3, 3), (2, 2), (1, 1), (1, 1),
                                                           False))):
            raise _refuse(f"stem.pool is {pool!r}, not MaxPool2d(3, 2, padding=1)")
    else:
        convs, pool = [("", stem)], None
    widths, kernels, strides = [], set(), []
    for child, module in convs:
        path = f"stem.{child}" if child else "stem"
        width, act = _conv_norm_act(module, path, ACTIVATIONS)
        acts.add(act)
        widths.append(width)
        kernels.add(module.conv.kernel_size[0])
        strides.append(module.conv.stride[0])
    arguments = dict(stem_widths=widths, stem_kernel_size=kernels.pop() if len(kernels) == 1
                     else -1, stem_pool="maxpool" if pool is not None else "")
    # The backbone's stem strides its first convolution, and its last too
    # without a pool in a multi-convolution stem (timm's Stem rule).
    want = [2] + [1] * (len(widths) - 1)
    if pool is None and len(widths) > 1:
        want[-1] = 2
    if arguments["stem_kernel_size"] < 0 or strides != want:
        raise _refuse(f"its stem's kernel sizes or strides ({strides}) are not one "
                      f"kernel size with strides {want}")
    return arguments


def _shortcut(block: Any, path: str) -> str | None:
    """The block's downsample kind (``"avg"``, ``"conv1x1"``), None for an
    identity shortcut."""
    import torch
    from timm.layers import ConvNormAct
    from timm.models.byobnet import DownsampleAvg

    shortcut = block.shortcut
    if isinstance(shortcut, torch.nn.Identity):
        return None
    if type(shortcut) is DownsampleAvg:
        pool = shortcut.pool
        if not isinstance(pool, torch.nn.Identity) and not (
                type(pool) is torch.nn.AvgPool2d and pool.kernel_size == 2
                and pool.stride == 2 and pool.padding == 0 and pool.ceil_mode
                and not pool.count_include_pad):
            raise _refuse(f"{path}.shortcut.pool is {pool!r}")
        _conv_norm_act(shortcut.conv, f"{path}.shortcut.conv", (None,), kernel_size=1,
                       stride=1)
        return "avg"
    if type(shortcut) is ConvNormAct:
        _conv_norm_act(shortcut, f"{path}.shortcut", (None,), kernel_size=1)
        return "conv1x1"
    raise _refuse(f"{path}.shortcut is {type(shortcut).__name__} (no shortcut, or "
                  f"one the backbone does not have)")


def _self_attention(layers: list[Any], path: str) -> tuple[str, dict[str, Any]]:
    """The zoo name and the stage's shared arguments of converted
    self-attention layers."""
    cls = type(layers[0])
    configs = [{k: v for k, v in settings(layer).items() if k not in _PER_BLOCK}
               for layer in layers]
    if any(type(layer) is not cls for layer in layers) or \
            any(config != configs[0] for config in configs):
        raise _refuse(f"the self-attention of {path} differs between blocks")
    if any(layer.filters is not None for layer in layers):
        raise _refuse(f"a self-attention layer of {path} changes the width")
    name = next((e.name for e in LAYERS if e.target is cls and e.kind == CONV), None)
    if name is None:
        raise _refuse(f"{path} holds a {cls.__name__}, not a conv-kind zoo layer")
    return name, configs[0]


def _structure(model: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, tuple],
                                    dict[str, Any]]:
    """The backbone's arguments (attention aside), the blocks' feature-map
    attention modules and the shapes they see, and the converted
    self-attention layers, by module path."""
    import torch
    from timm.models.byobnet import BottleneckBlock, SelfAttnBlock

    acts: set = set()
    arguments = _stem(model.stem, acts)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    size = tuple(cfg.get("input_size", (3, 224, 224))[-2:])
    reduction = 4 if arguments["stem_pool"] or len(arguments["stem_widths"]) > 1 else 2
    attention, reductions, self_attention, stages, downsamples = {}, {}, {}, [], set()
    fixed: set[tuple[int, ...]] = set()
    needs_size = False
    for s, stage in enumerate(model.stages):
        blocks, ratios, groups, converted = [], set(), set(), []
        channels = strides = None
        for b, block in enumerate(stage):
            path = f"stages.{s}.{b}"
            if type(block) not in (BottleneckBlock, SelfAttnBlock):
                raise _refuse(f"{path} is a {type(block).__name__}")
            mid, act = _conv_norm_act(block.conv1_1x1, f"{path}.conv1_1x1", ACTIVATIONS,
                                      kernel_size=1, stride=1)
            acts.add(act)
            out, _ = _conv_norm_act(block.conv3_1x1, f"{path}.conv3_1x1", (None,),
                                    kernel_size=1, stride=1)
            acts.add(activation(block.act, f"{path}.act", ACTIVATIONS))
            if type(block) is BottleneckBlock:
                blocks.append("bottle")
                conv = block.conv2_kxk.conv
                _, act = _conv_norm_act(block.conv2_kxk, f"{path}.conv2_kxk", ACTIVATIONS,
                                        kernel_size=3, groups=conv.groups)
                acts.add(act)
                absent(block.conv2b_kxk, f"{path}.conv2b_kxk")
                absent(block.attn_last, f"{path}.attn_last")
                stride = conv.stride[0]
                groups.add(mid // conv.groups if conv.groups > 1 else 0)
                if not isinstance(block.attn, torch.nn.Identity):
                    attention[f"{path}.attn"] = block.attn
                    reductions[f"{path}.attn"] = (reduction * stride, mid)
            else:
                blocks.append("self_attn")
                absent(block.conv2_kxk, f"{path}.conv2_kxk")
                layer = from_timm(block.self_attn)
                if getattr(layer, "feat_size", None) is not None:
                    # Its relative positions fix the image size.
                    fixed.add(tuple(n * reduction for n in layer.feat_size))
                needs_size = needs_size or not _any_size(layer)
                self_attention[f"{path}.self_attn"] = layer
                converted.append(layer)
                stride = layer.strides
                acts.add(norm_act(block.post_attn, f"{path}.post_attn", ACTIVATIONS)[1])
            kind = _shortcut(block, path)
            if kind:
                downsamples.add(kind)
            if b == 0:
                channels, strides = out, stride
                reduction *= stride
            elif (out, stride) != (channels, 1):
                raise _refuse(f"{path} has {out} channels and stride {stride}, its "
                              f"stage's later blocks {channels} and 1")
            ratios.add(mid / out)
        if len(ratios) != 1 or len(groups) > 1:
            raise _refuse(f"stage {s} has blocks of different widths or groups")
        description = {"blocks": blocks, "channels": channels, "strides": strides,
                       "group_size": groups.pop() if groups else 0,
                       "bottle_ratio": ratios.pop()}
        if converted:
            name, kwargs = _self_attention(converted, f"stages.{s}")
            description.update(self_attention=name, self_attention_kwargs=kwargs or None)
        stages.append(description)
    if isinstance(model.final_conv, torch.nn.Identity):
        num_features = 0
    else:
        num_features, act = _conv_norm_act(model.final_conv, "final_conv", ACTIVATIONS,
                                           kernel_size=1, stride=1)
        acts.add(act)
    acts.discard(None)
    if len(acts) != 1 or len(downsamples) > 1:
        raise _refuse(f"it mixes activations {sorted(acts)} or shortcuts "
                      f"{sorted(downsamples)}")
    if len(fixed) > 1:
        raise _refuse(f"its self-attention layers are sized for different images "
                      f"({sorted(fixed)})")
    if fixed:
        size = fixed.pop()
    arguments.update(
        stages=stages, activation=acts.pop(), num_features=num_features,
        downsample=downsamples.pop() if downsamples else "conv1x1",
        input_shape=(*(size if needs_size else (None, None)),
                     _first_conv(model).in_channels))
    # The feature map each attention module sees at that size.
    shapes = {path: (*(max(1, -(-n // r)) for n in size), width)
              for path, (r, width) in reductions.items()}
    return arguments, attention, shapes, self_attention


def _any_size(layer: Any) -> bool:
    """Whether the backbone's copy of a converted self-attention layer (its
    arguments, the size left to the input) runs on maps of unknown size."""
    config = {k: v for k, v in layer.get_config().items() if k != "feat_size"}
    try:
        type(layer).from_config(config)(keras.Input((None, None, layer.channels)))
    except ValueError:
        return False
    return True


def _first_conv(model: Any) -> Any:
    import torch

    return next(m for m in model.stem.modules() if isinstance(m, torch.nn.Conv2d))


def _check_head(model: Any) -> bool:
    """Whether the model has a classifier (``fc``); refuses other heads."""
    import torch
    from timm.layers import ClassifierHead, SelectAdaptivePool2d

    head = model.head
    if type(head) is not ClassifierHead or type(head.global_pool) is not \
            SelectAdaptivePool2d or head.global_pool.pool_type != "avg":
        pool = getattr(getattr(head, "global_pool", None), "pool_type", None)
        raise _refuse(f"its head is {type(head).__name__}"
                      f"{f' ({pool} pooling)' if pool else ''}, not a ClassifierHead "
                      f"with average pooling")
    if not isinstance(head.flatten, torch.nn.Identity) or type(head.fc) not in (
            torch.nn.Linear, torch.nn.Identity):
        raise _refuse(f"its head's classifier is {head.fc!r}")
    return type(head.fc) is torch.nn.Linear


@converts("timm.models.byobnet", "ByobNet")
def byobnet(model: Any) -> ByoaNetImageClassifier:
    """A timm ``ByobNet`` of bottleneck and self-attention blocks as a
    ``ByoaNetImageClassifier`` with its weights (inference behaviour:
    BatchNorm running statistics, no dropout or drop path). It outputs
    logits, as timm; ``rescale=1/255`` and the ``pretrained_cfg`` mean and
    std normalize inside, so it takes pixels 0..255 ``(batch, H, W, C)``: of
    the model's ``input_size`` where a layer needs a fixed size
    (``bottleneck``, ``lambda`` without ``r``), else of any size. No
    resizing or cropping."""
    head = _check_head(model)
    arguments, attention, shapes, self_attention = _structure(model)
    name, kwargs = None, None
    if attention:
        converted = {path: from_timm(module) for path, module in attention.items()}
        for path, layer in converted.items():
            if not layer.built:  # modules whose weights do not depend on the width
                layer.build((None, None, None, shapes[path][-1]))
        try:
            name, kwargs = zoo_attention(converted, shapes)
        except ValueError as error:
            raise _refuse(str(error)) from None
        self_attention.update(converted)
    backbone = ByoaNetBackbone(**arguments, attention=name, attention_kwargs=kwargs or None,
                               name="byoanet_backbone")
    cfg = getattr(model, "pretrained_cfg", None) or {}
    channels = arguments["input_shape"][-1]
    task = ByoaNetImageClassifier(
        backbone, num_classes=model.head.fc.out_features if head else 1000,
        include_top=head, activation=None, rescale=1.0 / 255,
        mean=per_channel(cfg.get("mean", IMAGENET_MEAN), channels),
        std=per_channel(cfg.get("std", IMAGENET_STD), channels),
        dropout=float(getattr(model, "drop_rate", 0.0) or 0.0), name="byoanet")
    try:
        set_model(model, self_attention, backbone, task, names={"head.fc": "fc"})
    except ValueError as error:
        raise _refuse(str(error)) from None
    return task
