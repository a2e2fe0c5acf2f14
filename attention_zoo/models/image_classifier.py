"""``ImageClassifier``: the image task of the zoo's timm-style backbones:
timm's preprocessing inside the model (rescale, per-channel mean and std),
the backbone, global average pooling and a linear classifier. Each family
(``AttnResNetImageClassifier``, ``ByoaNetImageClassifier``) is a subclass
that names the backbone class it takes."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from attention_zoo.models.backbone import Backbone
from attention_zoo.models.task import Task

#: timm's ``IMAGENET_DEFAULT_MEAN`` / ``_STD``, for pixels scaled to 0..1.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

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
class ImageClassifier(Task):
    """``(x * rescale - mean) / std`` (timm's preprocessing, in the model)
    -> ``backbone`` -> global average pooling -> [dropout] -> a linear
    classifier -> ``activation``.

    Input ``(batch, H, W, channels)`` pixels, uint8 or float (0..255 with
    the default ``rescale``). Output ``(batch, num_classes)``: probabilities
    with ``activation="softmax"`` (what ``training.fit`` trains), logits with
    None (timm's output); with ``include_top=False`` the pooled features
    ``(batch, C)``.

    Args:
        backbone: a ``Backbone`` from ``(batch, H, W, channels)`` images to
            a feature map (of the subclass's ``backbone_class``).
        num_classes: outputs of the classifier.
        include_top: add the classifier (else the model ends at the pooling).
        activation: ``"softmax"`` or None (logits), in float32.
        rescale: multiplies the pixels first (None: not at all).
        mean, std: per-channel statistics of the rescaled pixels (both None:
            no normalization).
        dropout: rate before the classifier (timm's ``drop_rate``).
    """

    #: What the task accepts as its backbone (subclasses narrow it).
    backbone_class: type = Backbone

    def __init__(self, backbone: Backbone, num_classes: int = 1000,
                 include_top: bool = True, activation: str | None = "softmax",
                 rescale: float | None = 1.0 / 255,
                 mean: Sequence[float] | None = IMAGENET_MEAN,
                 std: Sequence[float] | None = IMAGENET_STD, dropout: float = 0.0,
                 name: str = "image_classifier", **kwargs: Any) -> None:
        if not isinstance(backbone, self.backbone_class):
            raise TypeError(f"backbone must be a {self.backbone_class.__name__}, "
                            f"received {type(backbone).__name__}")
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
