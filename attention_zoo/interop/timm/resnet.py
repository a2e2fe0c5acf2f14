"""from_timm converter of timm's ResNet family (``timm.models.resnet.ResNet``:
resnet*, resnext*, seresnet*, seresnext*, ecaresnet*, the b/c/d/e/s/t
variants, and any ``block_args=dict(attn_layer=...)``): an
``AttnResNetImageClassifier`` with the model's weights, whose logits on
NHWC images equal timm's on the same images NCHW.

The structure is read from the modules (block class, blocks per stage,
stem, shortcut, cardinality and widths from the convolutions); each block's
attention module converts through ``from_timm`` and its zoo name and
arguments are the ones whose layer reproduces every converted module (same
weights, same outputs). What the Keras model cannot reproduce is refused
with a ``ValueError`` naming the module.
"""

from __future__ import annotations

from typing import Any, Iterator

import keras

from attention_zoo.interop.timm import converts, from_timm
from attention_zoo.interop.timm.attention_choice import zoo_attention
from attention_zoo.interop.timm.torch_modules import per_channel
from attention_zoo.interop.timm.weights import set_model
from attention_zoo.models.attn_resnet import (IMAGENET_MEAN, IMAGENET_STD,
                                              AttnResNetBackbone,
                                              AttnResNetImageClassifier)

#: What the converter takes, for its error messages.
SUPPORTED = ("timm.models.resnet.ResNet with BasicBlock or Bottleneck blocks, "
             "BatchNorm2d and ReLU, output_stride 32 (no dilation), average "
             "global pooling, and in every block either no attention module or "
             "a feature-map one from_timm converts (se, ese, eca, ecam, ceca, ge, "
             "gc, gca, cbam, lcbam, coord, scoord, ela, strip, nl, bat); not "
             "anti-aliasing (aa_layer), drop_block, other norms or activations")

def _refuse(what: str) -> ValueError:
    return ValueError(f"from_timm cannot convert this ResNet: {what}. It converts "
                      f"{SUPPORTED}.")


def _pair(value: Any) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


# ------------------------------------------------------------- structure --

def _stages(model: Any) -> list[Any]:
    stages, index = [], 1
    while hasattr(model, f"layer{index}"):
        stages.append(getattr(model, f"layer{index}"))
        index += 1
    if not stages or any(len(stage) == 0 for stage in stages):
        raise _refuse("a stage without blocks")
    return stages


def _arguments(model: Any) -> dict[str, Any]:
    """``AttnResNetBackbone``'s arguments (attention aside) read from ``model``."""
    import torch
    from timm.models.resnet import BasicBlock, Bottleneck

    stages = _stages(model)
    blocks = [block for stage in stages for block in stage]
    kinds = {type(block) for block in blocks}
    if kinds not in ({BasicBlock}, {Bottleneck}):
        raise _refuse(f"its blocks are {sorted(k.__name__ for k in kinds)}")
    bottleneck = kinds == {Bottleneck}
    expansion = Bottleneck.expansion if bottleneck else BasicBlock.expansion
    last_norm = "bn3" if bottleneck else "bn2"
    channels = [getattr(stage[0], last_norm).num_features // expansion
                for stage in stages]
    first = blocks[0]
    if bottleneck:
        # The 3x3 convolution has floor(planes * base_width / 64) * cardinality
        # filters; the backbone's kernels (checked on assignment) confirm it.
        cardinality = first.conv2.groups
        base_width = first.conv2.out_channels // cardinality * 64 // channels[0]
        reduce_first = first.conv2.out_channels // first.conv1.out_channels
    else:
        cardinality, base_width = 1, 64
        reduce_first = channels[0] // first.conv1.out_channels
    stem = model.conv1
    if isinstance(stem, torch.nn.Sequential):
        stem_width = stem[3].out_channels
        stem_type = "deep" if stem[0].out_channels == stem_width else "deep_tiered"
        in_channels = stem[0].in_channels
    else:
        stem_type, stem_width, in_channels = "", 64, stem.in_channels
    downsamples = [block.downsample for block in blocks if block.downsample is not None]
    # downsample_avg: (pool or Identity, conv, norm); downsample_conv: (conv, norm).
    avg_down = any(len(d) == 3 for d in downsamples)
    strided = [d[0] for d in downsamples if len(d) == 2 and _pair(d[0].stride)[0] > 1]
    return dict(
        input_shape=(None, None, in_channels),
        block="bottleneck" if bottleneck else "basic",
        layers=[len(stage) for stage in stages], channels=channels,
        cardinality=cardinality, base_width=base_width, stem_type=stem_type,
        stem_width=stem_width,
        replace_stem_pool=isinstance(model.maxpool, torch.nn.Sequential),
        block_reduce_first=reduce_first,
        down_kernel_size=_pair(strided[0].kernel_size)[0] if strided else 1,
        avg_down=avg_down)


def _attention_modules(model: Any) -> dict[str, Any]:
    """Each block's attention module by the block's path (``layer1.0``)."""
    modules = {f"layer{s}.{b}": block.se for s, stage in enumerate(_stages(model), 1)
               for b, block in enumerate(stage)}
    present = {path for path, module in modules.items() if module is not None}
    if present and len(present) != len(modules):
        raise _refuse(f"attention in some blocks only ({', '.join(sorted(present))})")
    return {path: module for path, module in modules.items() if module is not None}


def _block_width(model: Any, path: str) -> int:
    """The output width of the block at ``path`` (its last BatchNorm's)."""
    block = model.get_submodule(path)
    return (block.bn3 if hasattr(block, "bn3") else block.bn2).num_features


# -------------------------------------------------------------- modules --

def _attention_paths(model: Any) -> set[str]:
    """Paths of the blocks' attention modules (``layer1.0.se``), which
    ``from_timm`` converts on their own."""
    from timm.models.resnet import BasicBlock, Bottleneck

    return {f"{path}.se" for path, module in model.named_modules()
            if type(module) in (BasicBlock, Bottleneck) and module.se is not None}


def _modules(model: Any) -> Iterator[tuple[str, Any]]:
    """``(path, module)`` of ``model`` outside the blocks' attention modules."""
    skip = _attention_paths(model)
    for path, module in model.named_modules():
        if not any(path == s or path.startswith(f"{s}.") for s in skip):
            yield path, module


def _check_pool(module: Any, path: str, kernel: int, stride: int, padding: int,
                ceil_mode: bool) -> None:
    extra = (getattr(module, "count_include_pad", False)
             or _pair(getattr(module, "dilation", 1)) != (1, 1))
    if (_pair(module.kernel_size) != (kernel, kernel)
            or _pair(module.stride) != (stride, stride)
            or _pair(module.padding) != (padding, padding)
            or module.ceil_mode != ceil_mode or extra):
        raise _refuse(f"{path} is {module!r}")


def _check_modules(model: Any) -> None:
    """Refuses any module outside the attention modules that the Keras model
    does not compute the same way: checked before the structure is read,
    so an unsupported model fails with the module's name."""
    import torch
    from timm.layers import DropPath, SelectAdaptivePool2d
    from timm.layers.linear import Linear
    from timm.models.resnet import BasicBlock, Bottleneck, ResNet

    nn = torch.nn
    # No eval-time work of their own (DropPath and dropout are training-only;
    # timm's Linear is nn.Linear for torchscript, the same product).
    passive = (ResNet, BasicBlock, Bottleneck, nn.Sequential, nn.ReLU, nn.Identity,
               nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear, Linear, DropPath)
    for path, module in _modules(model):
        kind = type(module)
        if kind is nn.Conv2d:
            kernel, stride = _pair(module.kernel_size), _pair(module.stride)
            pad = ((stride[0] - 1) + (kernel[0] - 1)) // 2  # what the backbone pads
            if (kernel[0] != kernel[1] or stride[0] != stride[1]
                    or _pair(module.dilation) != (1, 1) or module.padding_mode != "zeros"
                    or _pair(module.padding) != (pad, pad)):
                raise _refuse(f"{path} is {module!r} (dilated, or padded otherwise "
                              f"than {pad} on every side)")
        elif kind is nn.BatchNorm2d:
            if not (module.affine and module.track_running_stats):
                raise _refuse(f"{path} is a BatchNorm2d without affine weights or "
                              f"running statistics")
        elif kind is nn.MaxPool2d:
            _check_pool(module, path, 3, 2, 1, ceil_mode=False)
        elif kind is nn.AvgPool2d:
            # downsample_avg's pool, which the backbone pools 'same'.
            _check_pool(module, path, 2, 2, 0, ceil_mode=True)
        elif kind is SelectAdaptivePool2d:
            if module.pool_type != "avg" or not isinstance(module.flatten, nn.Flatten):
                raise _refuse(f"its global pooling is {module.pool_type!r}, not 'avg'")
        elif kind not in passive:
            raise _refuse(f"{path or 'the model'} is a {kind.__module__}.{kind.__name__}")


# --------------------------------------------------------------- weights --

@converts("timm.models.resnet", "ResNet")
def resnet(model: Any) -> AttnResNetImageClassifier:
    """A timm ``ResNet`` as an ``AttnResNetImageClassifier`` with its weights
    (inference behaviour: BatchNorm running statistics, no dropout or drop
    path). The classifier outputs logits (``activation=None``), as timm's;
    ``rescale=1/255`` and the model's ``pretrained_cfg`` mean and std
    (ImageNet's without one) normalize inside, so it takes pixels 0..255
    ``(batch, H, W, C)`` of any size; timm takes the normalized images
    ``(batch, C, H, W)``. No resizing or cropping."""
    import torch

    _check_modules(model)
    arguments = _arguments(model)
    attention = _attention_modules(model)
    converted = {path: from_timm(module) for path, module in attention.items()}
    cfg = getattr(model, "pretrained_cfg", None) or {}
    size = _pair(cfg.get("input_size", (3, 224, 224))[-2:])
    name, kwargs = None, None
    if converted:
        shapes = {}
        for path, layer in converted.items():
            stage = int(path.split(".")[0][len("layer"):])
            channels = _block_width(model, path)
            # The feature map a block sees at the model's input size.
            shapes[path] = (*(max(1, s // 2 ** (stage + 1)) for s in size), channels)
            if not layer.built:  # modules whose weights do not depend on the width
                layer.build((None, None, None, channels))
        try:
            name, kwargs = zoo_attention(converted, shapes)
        except ValueError as error:
            raise _refuse(str(error)) from None
    backbone = AttnResNetBackbone(**arguments, attention=name, attention_kwargs=kwargs or None,
                                  name="attn_resnet_backbone")
    head = isinstance(model.fc, torch.nn.Linear)
    in_channels = arguments["input_shape"][-1]
    task = AttnResNetImageClassifier(
        backbone, num_classes=model.fc.out_features if head else 1000,
        include_top=head, activation=None, rescale=1.0 / 255,
        mean=per_channel(cfg.get("mean", IMAGENET_MEAN), in_channels),
        std=per_channel(cfg.get("std", IMAGENET_STD), in_channels),
        dropout=float(getattr(model, "drop_rate", 0.0) or 0.0), name="attn_resnet")
    try:
        set_model(model, {f"{path}.se": layer for path, layer in converted.items()},
                  backbone, task)
    except ValueError as error:
        raise _refuse(str(error)) from None
    return task
