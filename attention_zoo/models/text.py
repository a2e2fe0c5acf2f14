"""Where the text classifier's parts were importable from before
``models.attn_text``; the names stay importable here.

``TextClassifierModel`` stays registered so that string-input ``.keras`` files
written before text tasks had preprocessors still load (on TensorFlow).
"""

from __future__ import annotations

from typing import Any

import keras

from attention_zoo.models.attn_text import (ENCODERS, POOLINGS, AttnTextBackbone,  # noqa: F401
                                            AttnTextClassifier, LearnedQuery, TextClassifier,
                                            TextPreprocessor, TokenVectorization,
                                            as_text_tensor, vocabulary_list)


@keras.saving.register_keras_serializable(package="attention_zoo")
class TextClassifierModel(keras.Model):
    """A functional string-input model whose ``predict`` also takes Python
    strings (TensorFlow only: other backends hold no strings)."""

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        if not hasattr(x, "element_spec"):  # tf.data datasets pass through
            x = as_text_tensor(x)
        return super().predict(x, *args, **kwargs)
