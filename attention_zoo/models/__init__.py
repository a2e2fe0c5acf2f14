"""The model zoo, laid out as KerasHub lays out models: per model a backbone,
a task and (for text) a preprocessor; presets are the shipped models.

``AttnCNN``, ``AttnResNet``, ``ByoaNetImageClassifier``, ``AttnTextClassifier``, ``NBTextClassifier``
and ``ensemble`` build tasks; ``create(name)``, ``names()``, ``load(name)``, ``pretrained()``
and ``load_preset(name_or_folder)`` (as ``Task.from_preset``) reach them by
name; ``with_tta(model)`` adds test-time augmentation.
"""

from attention_zoo.models.attn_cnn import (AttnCNN, AttnCNNBackbone,
                                           AttnCNNImageClassifier)
from attention_zoo.models.attn_resnet import (AttnResNet, AttnResNetBackbone,
                                              AttnResNetImageClassifier)
from attention_zoo.models.attn_text import (AttnTextBackbone, AttnTextClassifier,
                                            TextClassifier, TextPreprocessor)
from attention_zoo.models.backbone import Backbone
from attention_zoo.models.byoanet import ByoaNetBackbone, ByoaNetImageClassifier
from attention_zoo.models.image_classifier import ImageClassifier
from attention_zoo.models.ensemble import (EnsembleClassifier, ensemble,
                                           ensemble_members)
from attention_zoo.models.naive_bayes import (NaiveBayesClassifier, NBTextClassifier,
                                              adapt_naive_bayes)
from attention_zoo.models.presets import card, load, load_preset, pretrained
from attention_zoo.models.registry import create, names, register_model
from attention_zoo.models.task import Task, takes_text
from attention_zoo.models.tta import ImageView, WeightedMean, with_tta
from attention_zoo.models.whitening import Dirac, PatchWhitening, adapt_whitening

__all__ = ["AttnCNN", "AttnCNNBackbone", "AttnCNNImageClassifier", "AttnResNet",
           "AttnResNetBackbone", "AttnResNetImageClassifier", "AttnTextClassifier",
           "AttnTextBackbone", "ByoaNetBackbone", "ByoaNetImageClassifier",
           "ImageClassifier", "TextClassifier", "TextPreprocessor", "NBTextClassifier",
           "NaiveBayesClassifier", "adapt_naive_bayes", "Backbone", "Task", "takes_text",
           "EnsembleClassifier", "ensemble", "ensemble_members", "card", "create", "load",
           "load_preset", "names", "pretrained", "register_model", "PatchWhitening", "Dirac",
           "adapt_whitening", "with_tta", "ImageView", "WeightedMean"]
