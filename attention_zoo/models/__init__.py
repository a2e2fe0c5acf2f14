"""The model zoo: ``AttnCNN``, ``AttnTextClassifier``, ``create(name)``, ``names()``, ``pretrained()``,
``load(name)``."""

from attention_zoo.models.attn_cnn import AttnCNN
from attention_zoo.models.text import AttnTextClassifier
from attention_zoo.models.registry import (card, create, load, names,
                                           pretrained, register_model)

__all__ = ["AttnCNN", "AttnTextClassifier", "card", "create", "load", "names", "pretrained",
           "register_model"]
