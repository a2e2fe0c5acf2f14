"""The model zoo: ``AttnCNN``, ``create(name)``, ``names()``, ``pretrained()``,
``load(name)``."""

from attention_zoo.models.attn_cnn import AttnCNN
from attention_zoo.models.registry import (card, create, load, names,
                                           pretrained, register_model)

__all__ = ["AttnCNN", "card", "create", "load", "names", "pretrained",
           "register_model"]
