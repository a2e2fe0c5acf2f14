"""AttnResNet: timm's ResNet family (ResNet, ResNeXt, SE/ECA-ResNet, the 'd'
variants) with any zoo attention layer in its blocks, laid out as KerasHub
lays out a model: ``AttnResNetBackbone`` (up to the last feature map),
``AttnResNetImageClassifier`` (timm's preprocessing, pooling, classifier)
and ``AttnResNet(...)``, the registered builder of both
(``models.create("attn_resnet", depth=50, attention="se")``).
``interop.from_timm`` converts timm's ``ResNet`` models, weights included."""

from attention_zoo.models.attn_resnet.backbone import (EXPANSION, SELF_NORMALIZED,
                                                       STEM_TYPES, AttnResNetBackbone)
from attention_zoo.models.attn_resnet.image_classifier import (DEPTHS, IMAGENET_MEAN,
                                                               IMAGENET_STD, VARIANTS,
                                                               AttnResNet,
                                                               AttnResNetImageClassifier)

__all__ = ["AttnResNet", "AttnResNetBackbone", "AttnResNetImageClassifier", "DEPTHS",
           "VARIANTS", "EXPANSION", "STEM_TYPES", "SELF_NORMALIZED", "IMAGENET_MEAN",
           "IMAGENET_STD"]
