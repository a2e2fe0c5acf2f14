"""The text classifier task: a text backbone, dropout and a softmax layer,
with the preprocessor that turns raw strings into its token ids."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from attention_zoo.data.tokenizer import TRUNCATIONS
from attention_zoo.models.attn_text.backbone import AttnTextBackbone
from attention_zoo.models.attn_text.preprocessor import TextPreprocessor, vocabulary_list
from attention_zoo.models.registry import register_model
from attention_zoo.models.task import Task


@keras.saving.register_keras_serializable(package="attention_zoo")
class TextClassifier(Task):
    """``backbone`` (ids -> pooled features) -> dropout -> dense -> softmax.

    With a ``preprocessor`` (``TextPreprocessor``), ``fit``, ``evaluate`` and
    ``predict`` take raw strings on every backend:
    ``model.predict(["a gripping, beautifully acted film"])``.

    Input ``(batch, T)`` int32 ids (0 = padding); output ``(batch,
    num_classes)`` float32 probabilities.
    """

    def __init__(self, backbone: keras.Model, num_classes: int = 2,
                 preprocessor: TextPreprocessor | None = None, dropout: float = 0.3,
                 name: str = "attn_text", **kwargs: Any) -> None:
        if not isinstance(backbone, keras.Model):
            raise TypeError(f"backbone must be a keras.Model, received "
                            f"{type(backbone).__name__}")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, received {num_classes!r}")
        self.backbone, self.preprocessor = backbone, preprocessor
        inputs = backbone.input
        x = backbone(inputs)
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
        x = keras.layers.Dense(num_classes, name="logits")(x)
        outputs = keras.layers.Activation("softmax", dtype="float32",
                                          name="probabilities")(x)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.num_classes, self.dropout = num_classes, dropout

    def arguments(self) -> dict[str, Any]:
        return {"backbone": self.backbone, "num_classes": self.num_classes,
                "dropout": self.dropout, "preprocessor": self.preprocessor}


@register_model("attn_text")
def AttnTextClassifier(num_classes: int = 2, vocabulary: Sequence[str] | str | None = None,
                       vocab_size: int | None = None, max_length: int = 128,
                       ngrams: int | None = None, truncating: str = "post",
                       encoder: str = "bigru",
                       attention: str = "additive", embed_dim: int = 128,
                       hidden: int = 64, num_heads: int = 4, num_layers: int = 1,
                       dropout: float = 0.3, string_input: bool = True,
                       split_contractions: bool = False,
                       name: str = "attn_text") -> TextClassifier:
    """An attention text classifier: ``TextPreprocessor`` (with
    ``string_input``) -> ``AttnTextBackbone`` (embedding -> encoder ->
    attention pooling over tokens) -> softmax, as a ``TextClassifier`` task.
    Padding is masked throughout; ``model.predict(["a gripping film"])``
    works on every backend, and a SavedModel export takes raw strings.

    Args:
        num_classes: outputs of the softmax.
        vocabulary: tokens (most frequent first, without padding and OOV), or a
            path to a file with one per line. Needed for ``string_input``.
        vocab_size: embedding rows for ``string_input=False`` (default:
            ``len(vocabulary) + 2``).
        max_length: tokens kept per text (longer texts are truncated); a
            batch is padded only to its longest text.
        ngrams: also use n-grams up to this n (``TextVectorization``'s).
        truncating: ``"post"`` keeps the first ``max_length`` tokens of a
            longer text, ``"pre"`` the last (``keras.utils.pad_sequences``'
            names), for texts whose end matters most, such as reviews.
        encoder, attention, embed_dim, hidden, num_heads, num_layers: the
            backbone's (``AttnTextBackbone``).
        dropout: after the embedding and before the classifier.
        string_input: give the task a ``TextPreprocessor`` (raw strings in);
            False: a task on token ids alone.
        split_contractions: standardize with ``standardize_contractions``
            ("doesn't" -> "does nt", as Penn-Treebank-tokenized corpora
            such as SST-2 read after punctuation goes); build the
            vocabulary the same way.

    Inputs: raw strings through the preprocessor, or ``(batch, T)`` int32
    ids. Output: ``(batch, num_classes)`` float32 probabilities.
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, received {num_classes!r}")
    if truncating not in TRUNCATIONS:
        raise ValueError(f"truncating must be one of {TRUNCATIONS}, received "
                         f"{truncating!r}")
    tokens = vocabulary_list(vocabulary)
    if tokens is not None:
        vocab_size = vocab_size or len(tokens) + 2
    if string_input and tokens is None:
        raise ValueError("string_input=True needs a vocabulary (build one with "
                         "attention_zoo.data.text.build_vocabulary)")
    if vocab_size is None:
        raise ValueError("pass vocabulary or vocab_size")
    preprocessor = (TextPreprocessor(tokens, max_length, ngrams, truncating,
                                     split_contractions, max_tokens=vocab_size,
                                     name="preprocessor") if string_input else None)
    backbone = AttnTextBackbone(vocab_size, max_length, encoder, attention, embed_dim,
                                hidden, num_heads, num_layers, dropout,
                                name=f"{name}_backbone")
    return TextClassifier(backbone, num_classes, preprocessor, dropout, name=name)
