"""AttnTextClassifier: embeddings, an encoder, attention pooling over tokens."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from attention_zoo import layers as zoo_layers
from attention_zoo.data.text import standardizer
from attention_zoo.data.tokenizer import TRUNCATIONS
from attention_zoo.layers.base import float32_weight
from attention_zoo.models.registry import register_model

ENCODERS = ("bigru", "transformer", "none")
POOLINGS = ("pooling", "additive", "dot", "mha")
IDS_MODEL = "token_classifier"


@keras.saving.register_keras_serializable(package="attention_zoo")
class TokenVectorization(keras.layers.TextVectorization):
    """``TextVectorization`` that pads a batch only to its longest text and
    lets a longer text keep its start or its end: ``truncating="post"``
    keeps the first ``output_sequence_length`` tokens, ``"pre"`` the last
    (reviews end with their verdict).

    Output ``(batch, T)`` ids, padding at the end, with ``T`` the longest
    text's token count clipped to ``[1, output_sequence_length]``: a batch
    of short texts costs a recurrent encoder short loops (with length
    bucketing in the input pipeline, ``data.text_pipeline``), and exports
    pad to ``output_sequence_length`` exactly as the standalone tokenizer
    does."""

    def __init__(self, *, output_sequence_length: int | None = None,
                 truncating: str = "post", **kwargs: Any) -> None:
        if truncating not in TRUNCATIONS:
            raise ValueError(f"truncating must be one of {TRUNCATIONS}, received "
                             f"{truncating!r}")
        if truncating == "pre" and not output_sequence_length:
            raise ValueError("truncating='pre' needs an output_sequence_length")
        if truncating == "pre" and kwargs.get("ngrams"):
            # n-gram ids come as all words, then all bigrams...: the last
            # tokens would be n-grams only.
            raise ValueError("truncating='pre' does not combine with ngrams")
        if output_sequence_length is not None and (
                not isinstance(output_sequence_length, int) or output_sequence_length < 1):
            raise ValueError(f"output_sequence_length must be a positive int or "
                             f"None, received {output_sequence_length!r}")
        # The parent pads to the longest text; call() cuts and truncates.
        super().__init__(output_sequence_length=None, **kwargs)
        self.truncating = truncating
        self.sequence_length = output_sequence_length

    def call(self, inputs: Any) -> Any:
        from keras import ops

        ids = super().call(inputs)
        # One padding column, so a batch of empty texts still has a step.
        ids = ops.pad(ids, [[0, 0], [0, 1]])
        found = ops.sum(ops.cast(ops.not_equal(ids, 0), "int32"), axis=1)
        length = self.sequence_length
        if length is None:
            width = ops.maximum(ops.max(found), 1)
            return ids[:, :width]
        width = ops.clip(ops.max(found), 1, length)
        if self.truncating == "post":
            return ids[:, :width]
        start = ops.maximum(found - length, 0)
        # Padding first, so texts shorter than width read zeros past their end.
        ids = ops.pad(ids, [[0, 0], [0, length]])
        index = ops.expand_dims(start, 1) + ops.expand_dims(
            ops.arange(length, dtype="int32"), 0)
        return ops.take_along_axis(ids, ops.cast(index, ids.dtype), axis=1)[:, :width]

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], None)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "output_sequence_length": self.sequence_length,
                "truncating": self.truncating}


@keras.saving.register_keras_serializable(package="attention_zoo")
class LearnedQuery(keras.layers.Layer):
    """A learned query vector, repeated for every example: turns a sequence
    attention layer into attention pooling. Input ``(batch, T, D)``; output
    ``(batch, 1, units)``."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape: Any) -> None:
        self.query = float32_weight(self, "query", (1, 1, self.units),
                                    "glorot_uniform")

    def call(self, inputs: Any) -> Any:
        from keras import ops

        batch = ops.shape(inputs)[0]
        return ops.cast(ops.broadcast_to(self.query, (batch, 1, self.units)),
                        self.compute_dtype)

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], 1, self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


def _pool(x: Any, attention: str, width: int, num_heads: int) -> Any:
    """Attention pooling over tokens; the layer is named ``token_attention``."""
    name = "token_attention"
    if attention == "pooling":
        return zoo_layers.AttentionPooling1D(name=name)(x)
    query = LearnedQuery(width, name="learned_query")(x)
    if attention == "additive":
        layer = zoo_layers.AdditiveAttention(width, name=name)
    elif attention == "dot":
        layer = zoo_layers.DotProductAttention(score="scaled_dot", name=name)
    else:
        layer = zoo_layers.MultiHeadAttention(num_heads, max(1, width // num_heads),
                                              name=name)
    pooled = layer(query, x)  # value mask: the padding mask of x
    return keras.layers.Reshape((width,), name="pooled")(pooled)


def token_classifier(num_classes: int, vocab_size: int, max_length: int,
                     encoder: str = "bigru", attention: str = "additive",
                     embed_dim: int = 128, hidden: int = 64, num_heads: int = 4,
                     num_layers: int = 1, dropout: float = 0.3,
                     variable_length: bool = False) -> keras.Model:
    """The classifier on int32 token ids ``(batch, max_length)`` (0 = padding):
    what TFLite and ONNX exports contain. ``variable_length`` takes
    ``(batch, T)`` ids with any ``T <= max_length`` (inside string models)."""
    ids = keras.Input((None if variable_length else max_length,), dtype="int32",
                      name="token_ids")
    x = keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True,
                               name="embedding")(ids)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    if encoder == "bigru":
        x = keras.layers.Bidirectional(
            keras.layers.GRU(hidden, return_sequences=True), name="bigru")(x)
        width = 2 * hidden
    elif encoder == "none":  # attention over the (n-gram) embeddings themselves
        width = embed_dim
    else:
        x = zoo_layers.PositionalEmbedding(max_length, mode="learned",
                                           name="positions")(x)
        for i in range(num_layers):
            x = zoo_layers.TransformerEncoder(num_heads, ff_dim=2 * embed_dim,
                                              dropout=dropout, norm_first=True,
                                              name=f"encoder{i + 1}")(x)
        width = embed_dim
    x = _pool(x, attention, width, num_heads)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32",
                                      name="probabilities")(x)
    return keras.Model(ids, outputs, name=IDS_MODEL)


@register_model("attn_text")
def AttnTextClassifier(num_classes: int = 2, vocabulary: Sequence[str] | str | None = None,
                       vocab_size: int | None = None, max_length: int = 128,
                       ngrams: int | None = None, truncating: str = "post",
                       encoder: str = "bigru",
                       attention: str = "additive", embed_dim: int = 128,
                       hidden: int = 64, num_heads: int = 4, num_layers: int = 1,
                       dropout: float = 0.3, string_input: bool = True,
                       split_contractions: bool = False,
                       name: str = "attn_text") -> keras.Model:
    """An attention text classifier.

    ``embedding -> encoder -> attention pooling over tokens -> softmax``.
    Padding is masked throughout. With ``string_input`` (the default) a
    ``TextVectorization`` layer (``attention_zoo.data.text.standardize``,
    the vocabulary, ``max_length``) is inside the model, so
    ``model.predict(["a gripping film"])`` works and a SavedModel takes raw
    strings.

    Args:
        num_classes: outputs of the softmax.
        vocabulary: tokens (most frequent first, without padding and OOV), or a
            path to a file with one per line. Needed for ``string_input``.
        vocab_size: embedding rows for ``string_input=False`` (default:
            ``len(vocabulary) + 2``).
        max_length: tokens kept per text (longer texts are truncated); a
            string model pads each batch only to its longest text.
        ngrams: also use n-grams up to this n (``TextVectorization``'s).
        truncating: ``"post"`` keeps the first ``max_length`` tokens of a
            longer text, ``"pre"`` the last (``keras.utils.pad_sequences``'
            names), for texts whose end matters most, such as reviews.
        encoder: ``"bigru"``, ``"transformer"`` (``PositionalEmbedding`` +
            pre-norm ``TransformerEncoder`` blocks) or ``"none"`` (attention
            pools the token / n-gram embeddings directly: fastest).
        attention: ``"pooling"`` (``AttentionPooling1D``), ``"additive"``,
            ``"dot"`` or ``"mha"`` with a learned query.
        split_contractions: standardize with ``standardize_contractions``
            ("doesn't" -> "does nt", as Penn-Treebank-tokenized corpora
            such as SST-2 read after punctuation goes); build the
            vocabulary the same way.

    Inputs: ``(batch,)`` strings, or ``(batch, max_length)`` int32 ids.
    Output: ``(batch, num_classes)`` float32 probabilities.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, received {encoder!r}")
    if attention not in POOLINGS:
        raise ValueError(f"attention must be one of {POOLINGS}, received "
                         f"{attention!r}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, received {num_classes!r}")
    if truncating not in TRUNCATIONS:
        raise ValueError(f"truncating must be one of {TRUNCATIONS}, received "
                         f"{truncating!r}")
    vocabulary = vocabulary_list(vocabulary)
    if vocabulary is not None:
        vocab_size = vocab_size or len(vocabulary) + 2
    if string_input and vocabulary is None:
        raise ValueError("string_input=True needs a vocabulary (build one with "
                         "attention_zoo.data.text.build_vocabulary)")
    if vocab_size is None:
        raise ValueError("pass vocabulary or vocab_size")
    classifier = token_classifier(num_classes, vocab_size, max_length, encoder,
                                  attention, embed_dim, hidden, num_heads,
                                  num_layers, dropout, variable_length=string_input)
    if not string_input:
        return classifier
    return string_input_model(classifier, vocabulary, max_length, ngrams, truncating,
                              max_tokens=vocab_size, name=name,
                              split_contractions=split_contractions)


def vocabulary_list(vocabulary: Sequence[str] | str | None) -> list[str] | None:
    """A vocabulary as a list of tokens; a str is a file with one per line."""
    if isinstance(vocabulary, str):
        from attention_zoo.data.text import read_vocabulary

        return read_vocabulary(vocabulary)
    return None if vocabulary is None else list(vocabulary)


def string_input_model(classifier: keras.Model, vocabulary: list[str], max_length: int,
                       ngrams: int | None, truncating: str = "post",
                       max_tokens: int | None = None, name: str = "text_model",
                       split_contractions: bool = False) -> keras.Model:
    """``classifier`` (on int32 ids of any length) behind a ``TokenVectorization``
    layer named ``vectorize`` (``standardize`` or ``standardize_contractions``,
    ``vocabulary``, ``ngrams``, ``max_length``): a ``TextClassifierModel`` on
    raw strings."""
    texts = keras.Input((), dtype="string", name="text")
    vectorize = TokenVectorization(
        max_tokens=max_tokens or len(vocabulary) + 2,
        standardize=standardizer(split_contractions),
        ngrams=ngrams, output_mode="int", output_sequence_length=max_length,
        truncating=truncating, vocabulary=vocabulary, name="vectorize")
    return TextClassifierModel(texts, classifier(vectorize(texts)), name=name)


def as_text_tensor(texts: Any) -> Any:
    """A batch of texts as a tf string tensor. Accepts a str, bytes, or a
    list / tuple / array of them; raises TypeError for anything else. Invalid
    UTF-8 is repaired by the model's standardization, not here."""
    import numpy as np
    import tensorflow as tf

    if isinstance(texts, tf.Tensor):
        if texts.dtype != tf.string:
            raise TypeError(f"texts must be strings, received a {texts.dtype.name} "
                            f"tensor")
        return texts
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    if not isinstance(texts, (list, tuple, np.ndarray)):
        raise TypeError(f"texts must be a str or a list of str, received "
                        f"{type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError("texts is empty: pass at least one string")
    for i, text in enumerate(texts):
        if not isinstance(text, (str, bytes, np.str_, np.bytes_)):
            raise TypeError(f"texts must be strings or bytes, received "
                            f"{type(text).__name__} at position {i}: {text!r:.40}")
    return tf.constant([t if isinstance(t, bytes) else str(t).encode("utf-8",
                                                                     "surrogatepass")
                        for t in texts], dtype=tf.string)


@keras.saving.register_keras_serializable(package="attention_zoo")
class TextClassifierModel(keras.Model):
    """A functional string-input model whose ``predict`` also takes Python
    strings: ``model.predict(["a gripping, beautifully acted film"])``."""

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        if not hasattr(x, "element_spec"):  # tf.data datasets pass through
            x = as_text_tensor(x)
        return super().predict(x, *args, **kwargs)
