"""ByoaNet: timm's "bring your own attention" ResNets (``byoanet.py``:
BoTNet, HaloNet, Lambda ResNets; and byobnet's attention ResNeXts) as
``ByoaNetBackbone`` and ``ByoaNetImageClassifier``.
``interop.from_timm`` converts timm's ``ByobNet`` models to them, weights
included; ``models.load("timm/botnet26t_256.c1_in1k")`` downloads one."""

from __future__ import annotations

from typing import Any

import keras

from attention_zoo.models.byoanet.backbone import (BLOCK_TYPES, DOWNSAMPLES,
                                                   ByoaNetBackbone)
from attention_zoo.models.image_classifier import ImageClassifier


@keras.saving.register_keras_serializable(package="attention_zoo")
class ByoaNetImageClassifier(ImageClassifier):
    """``ImageClassifier`` on a ``ByoaNetBackbone``: pixels ``(batch, H, W,
    channels)`` to ``(batch, num_classes)`` (see ``ImageClassifier`` for
    the arguments)."""

    backbone_class = ByoaNetBackbone

    def __init__(self, backbone: ByoaNetBackbone, num_classes: int = 1000,
                 name: str = "byoanet", **kwargs: Any) -> None:
        super().__init__(backbone, num_classes, name=name, **kwargs)


__all__ = ["ByoaNetBackbone", "ByoaNetImageClassifier", "BLOCK_TYPES", "DOWNSAMPLES"]
