"""AttnResNet's image classifier task: timm's preprocessing, the backbone,
global average pooling and a linear classifier; ``AttnResNet(...)`` builds
it by depth and attention name."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from attention_zoo.models.attn_resnet.backbone import AttnResNetBackbone, attention_kind
from attention_zoo.models.image_classifier import IMAGENET_MEAN, IMAGENET_STD, ImageClassifier
from attention_zoo.models.registry import register_model

#: timm's ResNet depths: ``(block, blocks per stage)``.
DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    10: ("basic", (1, 1, 1, 1)), 14: ("bottleneck", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)), 26: ("bottleneck", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}

#: timm's (Gluon's) variant letters: stem and shortcut of ``resnet50d`` etc.
VARIANTS: dict[str, dict[str, Any]] = {
    "": {}, "b": {},
    "c": dict(stem_type="deep", stem_width=32),
    "d": dict(stem_type="deep", stem_width=32, avg_down=True),
    "e": dict(stem_type="deep", stem_width=64, avg_down=True),
    "s": dict(stem_type="deep", stem_width=64),
    "t": dict(stem_type="deep_tiered", stem_width=32, avg_down=True),
}


@keras.saving.register_keras_serializable(package="attention_zoo")
class AttnResNetImageClassifier(ImageClassifier):
    """``ImageClassifier`` on an ``AttnResNetBackbone`` (see there for the
    arguments): pixels ``(batch, H, W, channels)`` to ``(batch,
    num_classes)``."""

    backbone_class = AttnResNetBackbone

    def __init__(self, backbone: AttnResNetBackbone, num_classes: int = 1000,
                 name: str = "attn_resnet", **kwargs: Any) -> None:
        super().__init__(backbone, num_classes, name=name, **kwargs)


@register_model("attn_resnet")
def AttnResNet(depth: int = 50, attention: str | None = None, num_classes: int = 1000,
               input_shape: Sequence[int | None] = (224, 224, 3), variant: str = "",
               cardinality: int = 1, base_width: int = 64,
               channels: Sequence[int] = (64, 128, 256, 512),
               attention_kwargs: dict[str, Any] | None = None,
               include_top: bool = True, activation: str | None = "softmax",
               rescale: float | None = 1.0 / 255,
               mean: Sequence[float] | None = IMAGENET_MEAN,
               std: Sequence[float] | None = IMAGENET_STD, dropout: float = 0.0,
               name: str = "attn_resnet") -> AttnResNetImageClassifier:
    """timm's ResNet of ``depth`` with a zoo attention layer in every block,
    untrained (``interop.from_timm`` converts timm's trained ones).

    ``AttnResNet(50, "se")`` is timm's ``seresnet50``, ``AttnResNet(50,
    "eca", variant="d")`` its ``ecaresnet50d``, ``AttnResNet(26, "se",
    variant="d", cardinality=32, base_width=4)`` its ``seresnext26d_32x4d``
    (up to timm's choice of widths inside the attention layers).

    Args:
        depth: 10, 14, 18, 26, 34, 50, 101, 152 or 200 (``DEPTHS``: 10, 18
            and 34 take basic blocks).
        attention: None, a feature-map layer name (after each block's last
            BatchNorm, as timm's ``attn_layer``) or a conv layer name (sk,
            splat, lambda, bottleneck, halo: in place of each block's
            strided 3x3 convolution); see ``AttnResNetBackbone``.
        num_classes: outputs of the classifier.
        input_shape: ``(H, W, channels)``; H and W may be None.
        variant: timm's letter: ``""``/``"b"`` (7x7 stem), ``"c"``, ``"s"``
            (deep stem), ``"d"``, ``"e"``, ``"t"`` (deep stem, average-pool
            shortcut); ``VARIANTS``.
        cardinality, base_width: ResNeXt's groups and width per group
            (bottleneck depths).
        channels: ``planes`` of the four stages.
        attention_kwargs: arguments of every attention layer.
        include_top, activation, rescale, mean, std, dropout: the task's
            (``AttnResNetImageClassifier``).

    Returns an ``AttnResNetImageClassifier`` from ``(batch, H, W, channels)``
    pixels to ``(batch, num_classes)`` probabilities (logits with
    ``activation=None``).
    """
    if isinstance(depth, bool) or depth not in DEPTHS:
        raise ValueError(f"depth must be one of {', '.join(map(str, DEPTHS))}, "
                         f"received {depth!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(map(repr, VARIANTS))}, "
                         f"received {variant!r}")
    attention_kind(attention)
    block, layers = DEPTHS[depth]
    backbone = AttnResNetBackbone(
        input_shape=input_shape, block=block, layers=layers, channels=channels,
        cardinality=cardinality, base_width=base_width, attention=attention,
        attention_kwargs=attention_kwargs, name=f"{name}_backbone", **VARIANTS[variant])
    return AttnResNetImageClassifier(
        backbone, num_classes, include_top=include_top, activation=activation,
        rescale=rescale, mean=mean, std=std, dropout=dropout, name=name)
