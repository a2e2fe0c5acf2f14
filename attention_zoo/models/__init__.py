"""The model zoo: ``AttnCNN``, ``AttnTextClassifier``, ``NBTextClassifier``, ``ensemble(models)``,
``create(name)``, ``names()``, ``pretrained()``, ``load(name)``,
``with_tta(model)``."""

from attention_zoo.models.attn_cnn import AttnCNN
from attention_zoo.models.text import AttnTextClassifier
from attention_zoo.models.naive_bayes import (NBTextClassifier, adapt_naive_bayes)
from attention_zoo.models.ensemble import ensemble, ensemble_members
from attention_zoo.models.registry import (card, create, load, names,
                                           pretrained, register_model)
from attention_zoo.models.tta import ImageView, WeightedMean, with_tta
from attention_zoo.models.whitening import Dirac, PatchWhitening, adapt_whitening

__all__ = ["AttnCNN", "AttnTextClassifier", "NBTextClassifier", "adapt_naive_bayes", "ensemble", "ensemble_members", "card",
           "create", "load", "names", "pretrained", "register_model", "PatchWhitening", "Dirac",
           "adapt_whitening", "with_tta", "ImageView", "WeightedMean"]
