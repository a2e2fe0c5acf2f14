"""AttnResNet's image classifier task: timm's preprocessing, the backbone,
global average pooling and a linear classifier; ``AttnResNet(...)`` builds
it by depth and attention name."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from attention_zoo.models.attn_resnet.backbone import AttnResNetBackbone, attention_kind
from attention_zoo.models.registry import register_model
from attention_zoo.models.task import Task

#: timm's ``IMAGENET_DEFAULT_MEAN`` / ``_STD``, for pixels scaled to 0..1.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

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


def _channel_stats(name: str, values: Any, channels: int) -> list[float]:
    try:
        stats = [float(v) for v in values]
    except (TypeError, ValueError):
        stats = []
    if len(stats) != channels or (name == "std" and min(stats) <= 0):
        raise ValueError(f"{name} needs one {'positive ' if name == 'std' else ''}"
                         f"number per input channel ({channels}), received {values!r}")
    return stats


@keras.saving.register_keras_serializable(package="attention_zoo")
class AttnResNetImageClassifier(Task):
    """``(x * rescale - mean) / std`` (timm's preprocessing, in the model)
    -> ``backbone`` -> global average pooling -> [dropout] -> a linear
    classifier -> ``activation``.

    Input ``(batch, H, W, channels)`` pixels, uint8 or float (0..255 with
    the default ``rescale``). Output ``(batch, num_classes)``: probabilities
    with ``activation="softmax"`` (what ``training.fit`` trains), logits with
    None (timm's output); with ``include_top=False`` the pooled features
    ``(batch, C)``.

    Args:
        backbone: an ``AttnResNetBackbone``.
        num_classes: outputs of the classifier.
        include_top: add the classifier (else the model ends at the pooling).
        activation: ``"softmax"`` or None (logits), in float32.
        rescale: multiplies the pixels first (None: not at all).
        mean, std: per-channel statistics of the rescaled pixels (both None:
            no normalization).
        dropout: rate before the classifier (timm's ``drop_rate``).
    """

    def __init__(self, backbone: AttnResNetBackbone, num_classes: int = 1000,
                 include_top: bool = True, activation: str | None = "softmax",
                 rescale: float | None = 1.0 / 255,
                 mean: Sequence[float] | None = IMAGENET_MEAN,
                 std: Sequence[float] | None = IMAGENET_STD, dropout: float = 0.0,
                 name: str = "attn_resnet", **kwargs: Any) -> None:
        if not isinstance(backbone, AttnResNetBackbone):
            raise TypeError(f"backbone must be an AttnResNetBackbone, received "
                            f"{type(backbone).__name__}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) \
                or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, received "
                             f"{num_classes!r}")
        if not isinstance(include_top, bool):
            raise ValueError(f"include_top must be a bool, received {include_top!r}")
        if activation not in ("softmax", None):
            raise ValueError(f"activation must be 'softmax' or None, received "
                             f"{activation!r}")
        if rescale is not None and (isinstance(rescale, bool)
                                    or not isinstance(rescale, (int, float))):
            raise ValueError(f"rescale must be a number or None, received {rescale!r}")
        if (mean is None) != (std is None):
            raise ValueError("mean and std go together: pass both or neither")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), received {dropout!r}")
        channels = backbone.input_shape[-1]
        if mean is not None:
            mean = _channel_stats("mean", mean, channels)
            std = _channel_stats("std", std, channels)
        self.backbone = backbone
        inputs = keras.Input(backbone.input_shape[1:], name="image")
        x = inputs
        if rescale is not None:
            x = keras.layers.Rescaling(rescale, name="rescale")(x)
        if mean is not None:
            x = keras.layers.Normalization(mean=mean, variance=[s * s for s in std],
                                           name="normalize")(x)
        x = backbone(x)
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        if include_top:
            if dropout:
                x = keras.layers.Dropout(dropout, name="dropout")(x)
            x = keras.layers.Dense(num_classes, name="fc")(x)
            if activation is not None:
                x = keras.layers.Activation(activation, dtype="float32",
                                            name="predictions")(x)
        super().__init__(inputs=inputs, outputs=x, name=name, **kwargs)
        self.num_classes, self.include_top, self.activation = (
            num_classes, include_top, activation)
        self.rescale, self.mean, self.std, self.dropout = (
            None if rescale is None else float(rescale), mean, std, float(dropout))

    def arguments(self) -> dict[str, Any]:
        return {"backbone": self.backbone, "num_classes": self.num_classes,
                "include_top": self.include_top, "activation": self.activation,
                "rescale": self.rescale, "mean": self.mean, "std": self.std,
                "dropout": self.dropout}


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
