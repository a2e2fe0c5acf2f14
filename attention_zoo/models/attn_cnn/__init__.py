"""AttnCNN: a fast CIFAR-10 convnet with a pluggable attention layer per
stage, laid out as KerasHub lays out a model: ``AttnCNNBackbone`` (up to the
last feature map), ``AttnCNNImageClassifier`` (the task: pooling, classifier),
and ``AttnCNN(...)``, the registered builder of both. Image normalization is
inside the backbone, so there is no preprocessor; the shipped preset is
``attn_cnn_cifar10`` (``models.presets``)."""

from attention_zoo.models.attn_cnn.backbone import (ACTIVATIONS, CIFAR10_MEAN, CIFAR10_STD,
                                                    Attention, AttnCNNBackbone,
                                                    PixelNormalization)
from attention_zoo.models.attn_cnn.image_classifier import (DEFAULT_RECIPE, LOGIT_SCALE,
                                                            SELECTION_PROXY_WIDTH, AttnCNN,
                                                            AttnCNNImageClassifier,
                                                            selection_proxy)

__all__ = ["AttnCNN", "AttnCNNBackbone", "AttnCNNImageClassifier", "PixelNormalization",
           "selection_proxy", "DEFAULT_RECIPE", "LOGIT_SCALE", "SELECTION_PROXY_WIDTH",
           "CIFAR10_MEAN", "CIFAR10_STD", "ACTIVATIONS", "Attention"]
