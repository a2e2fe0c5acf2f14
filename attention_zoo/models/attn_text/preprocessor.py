"""The text preprocessor: raw strings to int32 token ids, inside ``tf.data``
on every backend (TensorFlow string ops; JAX and PyTorch hold no strings)."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from attention_zoo.data.text import standardizer
from attention_zoo.data.tokenizer import TRUNCATIONS


def _backend_tensor(ids: Any) -> Any:
    """A tf.Tensor as the backend's tensor when called eagerly; inside a
    tf.data graph (or on TensorFlow) it stays a tf.Tensor."""
    import tensorflow as tf

    if keras.backend.backend() == "tensorflow" or not tf.executing_eagerly():
        return ids
    return keras.ops.convert_to_tensor(ids.numpy())


@keras.saving.register_keras_serializable(package="attention_zoo")
class TokenVectorization(keras.layers.TextVectorization):
    """``TextVectorization`` that pads a batch only to its longest text and
    lets a longer text keep its start or its end: ``truncating="post"``
    keeps the first ``output_sequence_length`` tokens, ``"pre"`` the last
    (reviews end with their verdict).

    Output ``(batch, T)`` int ids, padding at the end, with ``T`` the
    longest text's token count clipped to ``[1, output_sequence_length]``:
    a batch of short texts costs a recurrent encoder short loops (with
    length bucketing in the input pipeline, ``data.text_pipeline``), and
    exports pad to ``output_sequence_length`` exactly as the standalone
    tokenizer does. TensorFlow ops, so it runs inside ``tf.data`` under any
    backend."""

    def __init__(self, *, output_sequence_length: int | None = None,
                 truncating: str = "post", standardize: Any = "lower_and_strip_punctuation",
                 **kwargs: Any) -> None:
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
        # A callable standardize runs here, in TensorFlow: the parent would
        # run it on NumPy arrays off the TensorFlow backend, which a tf.data
        # graph cannot hold.
        super().__init__(output_sequence_length=None,
                         standardize=None if callable(standardize) else standardize,
                         **kwargs)
        self.text_standardize = standardize if callable(standardize) else None
        self.truncating = truncating
        self.sequence_length = output_sequence_length

    def call(self, inputs: Any) -> Any:
        import tensorflow as tf

        if self.text_standardize is not None:
            if not isinstance(inputs, tf.Tensor):
                inputs = tf.convert_to_tensor(inputs, tf.string)
            inputs = self.text_standardize(inputs)
        ids = super().call(inputs)
        if not isinstance(ids, tf.Tensor):  # eager on JAX / PyTorch
            ids = tf.convert_to_tensor(keras.ops.convert_to_numpy(ids))
        # One padding column, so a batch of empty texts still has a step.
        ids = tf.pad(ids, [[0, 0], [0, 1]])
        found = tf.reduce_sum(tf.cast(tf.not_equal(ids, 0), tf.int32), axis=1)
        length = self.sequence_length
        if length is None:
            return _backend_tensor(ids[:, :tf.maximum(tf.reduce_max(found), 1)])
        width = tf.clip_by_value(tf.reduce_max(found), 1, length)
        if self.truncating == "post":
            return _backend_tensor(ids[:, :width])
        start = tf.maximum(found - length, 0)
        # Padding first, so texts shorter than width read zeros past their end.
        ids = tf.pad(ids, [[0, 0], [0, length]])
        index = start[:, None] + tf.range(length, dtype=tf.int32)[None, :]
        return _backend_tensor(
            tf.gather(ids, tf.cast(index, ids.dtype), axis=1, batch_dims=1)[:, :width])

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], None)

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "output_sequence_length": self.sequence_length,
                  "truncating": self.truncating}
        if self.text_standardize is not None:
            config["standardize"] = self.text_standardize
        return config


def vocabulary_list(vocabulary: Sequence[str] | str | None) -> list[str] | None:
    """A vocabulary as a list of tokens; a str is a file with one per line."""
    if isinstance(vocabulary, str):
        from attention_zoo.data.text import read_vocabulary

        return read_vocabulary(vocabulary)
    return None if vocabulary is None else list(vocabulary)


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
class TextPreprocessor(keras.layers.Layer):
    """Raw texts to token ids: ``standardize`` (or ``standardize_contractions``),
    words and n-grams looked up in ``vocabulary`` (0 = padding, 1 = unknown),
    at most ``max_length`` ids per text (``truncating`` says which end a
    longer text keeps).

    Input ``(batch,)`` strings (a list of Python strings, through
    ``check_inputs``); output ``(batch, T)`` int ids, ``T`` the longest
    text's count clipped to ``[1, max_length]``. A task runs it inside
    ``tf.data`` (``Task.preprocess``); exports use ``vectorize``'s vocabulary
    and settings for their standalone tokenizer.
    """

    #: A task with this preprocessor predicts from strings (``takes_text``).
    takes_text = True

    def __init__(self, vocabulary: Sequence[str] | str, max_length: int = 128,
                 ngrams: int | None = None, truncating: str = "post",
                 split_contractions: bool = False, max_tokens: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Strings are not tensors of the backend: leave inputs as they come.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        tokens = vocabulary_list(vocabulary)
        if not tokens:
            raise ValueError("TextPreprocessor needs a vocabulary (build one with "
                             "attention_zoo.data.text.build_vocabulary)")
        self.max_length, self.ngrams, self.truncating = max_length, ngrams, truncating
        self.split_contractions = bool(split_contractions)
        self.max_tokens = max_tokens or len(tokens) + 2
        self.vectorize = TokenVectorization(
            max_tokens=self.max_tokens, standardize=standardizer(split_contractions),
            ngrams=ngrams, output_mode="int", output_sequence_length=max_length,
            truncating=truncating, vocabulary=tokens, name="vectorize")

    @property
    def vocabulary(self) -> list[str]:
        """The tokens, most frequent first, without padding and unknown."""
        return [str(t) for t in self.vectorize.get_vocabulary()[2:]]

    @property
    def vocab_size(self) -> int:
        """Ids it gives: the tokens, padding (0) and unknown (1)."""
        return self.vectorize.vocabulary_size()

    def check_inputs(self, texts: Any) -> Any:
        """``texts`` as a tf string tensor; TypeError / ValueError for
        anything that is not a batch of strings."""
        return as_text_tensor(texts)

    def build(self, input_shape: Any = None) -> None:
        # The vocabulary is set in __init__; nothing depends on the shape.
        self.built = True

    def call(self, texts: Any) -> Any:
        return self.vectorize(texts)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], None)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "vocabulary": self.vocabulary,
                "max_length": self.max_length, "ngrams": self.ngrams,
                "truncating": self.truncating,
                "split_contractions": self.split_contractions,
                "max_tokens": self.max_tokens}
