"""The attention text classifier, laid out as KerasHub lays out a model:
``TextPreprocessor`` (raw strings to token ids, in ``tf.data``),
``AttnTextBackbone`` (ids to pooled features), ``TextClassifier`` (the task),
and ``AttnTextClassifier(...)``, the registered builder (``"attn_text"``)."""

from attention_zoo.models.attn_text.backbone import (ENCODERS, POOLINGS, AttnTextBackbone,
                                                     LearnedQuery)
from attention_zoo.models.attn_text.preprocessor import (TextPreprocessor, TokenVectorization,
                                                         as_text_tensor, vocabulary_list)
from attention_zoo.models.attn_text.text_classifier import AttnTextClassifier, TextClassifier

__all__ = ["AttnTextClassifier", "TextClassifier", "AttnTextBackbone", "TextPreprocessor",
           "TokenVectorization", "LearnedQuery", "as_text_tensor", "vocabulary_list",
           "ENCODERS", "POOLINGS"]
