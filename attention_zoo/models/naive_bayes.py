"""NBTextClassifier: a bag of n-grams weighted by naive-Bayes log-count
ratios, then logistic regression (NBSVM, Wang & Manning 2012).

Not an attention model. It is the ensemble partner of the attention text
classifiers: it reads word order only through n-grams, so its mistakes
differ from a BiGRU's; averaged with one, it lifts the BiGRU's accuracy and
the ensemble keeps the BiGRU's readable attention (IMDB: 91.80% alone,
90.92% for the BiGRU, 91.60% averaged; benchmarks/text_nb_imdb.md).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import keras
import numpy as np

from attention_zoo.layers.base import float32_weight
from attention_zoo.models.registry import register_model
from attention_zoo.models.attn_text.preprocessor import TextPreprocessor, vocabulary_list
from attention_zoo.models.task import Task

#: Additive smoothing of the per-class n-gram counts.
ALPHA = 1.0


@keras.saving.register_keras_serializable(package="attention_zoo")
class DistinctTokens(keras.layers.Layer):
    """Sets repeats of an id within a text to 0 (padding), so a bag counts
    each n-gram once: the binarized features NBSVM uses.

    Input and output ``(batch, T)`` int ids, sorted along ``T``."""

    def call(self, ids: Any) -> Any:
        from keras import ops

        ids = ops.sort(ids, axis=-1)
        new = ops.not_equal(ids[:, 1:], ids[:, :-1])
        # The first column from ids, not from new: with T = 1, new is empty.
        new = ops.concatenate([ops.ones_like(ids[:, :1], dtype="bool"), new], axis=1)
        return ops.where(new, ids, ops.zeros_like(ids))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)


@keras.saving.register_keras_serializable(package="attention_zoo")
class NaiveBayesLogits(keras.layers.Layer):
    """``logits[b, c] = bias[c] + sum_i r[i, c] * w[i, c]`` over the distinct
    ids ``i`` of text ``b`` (0 is padding and adds nothing).

    ``r`` holds the naive-Bayes log-probabilities of each id per class,
    centred over classes (for two classes, +-half the NBSVM log-count
    ratio); it is a frozen weight set by ``set_counts`` before training.
    ``w`` is trained, starting at ``init``: 1 starts from multinomial naive
    Bayes; 0 (the default) is logistic regression on NB-scaled features,
    which gives calibrated probabilities to average in an ensemble.

    Input ``(batch, T)`` int ids. Output ``(batch, num_classes)`` float32.
    """

    def __init__(self, vocab_size: int, num_classes: int, init: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(vocab_size, int) or vocab_size < 2:
            raise ValueError(f"vocab_size must be an int >= 2, received {vocab_size!r}")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, received "
                             f"{num_classes!r}")
        self.vocab_size, self.num_classes, self.init = vocab_size, num_classes, float(init)

    def build(self, input_shape: Any) -> None:
        shape = (self.vocab_size, self.num_classes)
        self.ratios = float32_weight(self, "ratios", shape, "zeros", trainable=False)
        self.scales = float32_weight(self, "scales", shape,
                                     keras.initializers.Constant(self.init))
        self.bias = float32_weight(self, "bias", (self.num_classes,), "zeros")

    def call(self, ids: Any) -> Any:
        from keras import ops

        present = ops.expand_dims(ops.cast(ops.not_equal(ids, 0), "float32"), -1)
        evidence = ops.take(self.ratios, ids, axis=0) * ops.take(self.scales, ids, axis=0)
        return ops.sum(evidence * present, axis=1) + self.bias

    def set_counts(self, counts: np.ndarray, class_counts: np.ndarray) -> None:
        """Sets ``r`` from ``counts[i, c]`` (texts of class ``c`` holding id
        ``i``) and ``class_counts[c]`` (texts of class ``c``); the bias
        starts at the log prior."""
        counts = np.asarray(counts, np.float64)
        if counts.shape != (self.vocab_size, self.num_classes):
            raise ValueError(f"counts must have shape {(self.vocab_size, self.num_classes)}"
                             f", received {counts.shape}")
        smoothed = counts[1:] + ALPHA  # row 0, padding, is no evidence
        log_prob = np.log(smoothed / smoothed.sum(axis=0, keepdims=True))
        ratios = np.zeros_like(counts)
        ratios[1:] = log_prob - log_prob.mean(axis=1, keepdims=True)
        self.ratios.assign(ratios.astype(np.float32))
        prior = np.log(np.maximum(np.asarray(class_counts, np.float64), 1.0))
        self.bias.assign((prior - prior.mean()).astype(np.float32))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], self.num_classes)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "num_classes": self.num_classes, "init": self.init}


@keras.saving.register_keras_serializable(package="attention_zoo")
class NaiveBayesClassifier(Task):
    """NBSVM as a task: distinct ids -> ``NaiveBayesLogits`` -> softmax,
    behind a ``TextPreprocessor`` that gives words and n-grams. ``adapt``
    sets the naive-Bayes ratios from a training set (``training.fit`` calls
    it before the first step).

    Input ``(batch, T)`` int32 n-gram ids (raw strings through the
    preprocessor); output ``(batch, num_classes)`` float32 probabilities.
    """

    def __init__(self, vocab_size: int, num_classes: int = 2, init: float = 0.0,
                 preprocessor: TextPreprocessor | None = None,
                 name: str = "nb_text", **kwargs: Any) -> None:
        self.preprocessor = preprocessor
        ids = keras.Input((None,), dtype="int32", name="token_ids")
        distinct = DistinctTokens(name="distinct")(ids)
        logits = NaiveBayesLogits(vocab_size, num_classes, init=init,
                                  name="naive_bayes")(distinct)
        probabilities = keras.layers.Activation("softmax", dtype="float32",
                                                name="probabilities")(logits)
        super().__init__(inputs=ids, outputs=probabilities, name=name, **kwargs)
        self.vocab_size, self.num_classes, self.init = vocab_size, num_classes, init

    @property
    def naive_bayes(self) -> NaiveBayesLogits:
        return next(l for l in self.layers if isinstance(l, NaiveBayesLogits))

    def adapt(self, batches: Iterable[tuple[Any, Any]],
              reduce: Callable[[np.ndarray], np.ndarray] | None = None) -> list[str]:
        """Counts, over ``batches`` of ``(texts, labels)`` (ids for a task
        without a preprocessor; labels as ids or one-hot), the texts of each
        class holding each n-gram, and sets the naive-Bayes ratios from
        them. ``reduce`` combines the counts of several workers (it gets and
        returns one array)."""
        layer = self.naive_bayes
        distinct = next(l for l in self.layers if isinstance(l, DistinctTokens))
        counts = np.zeros((layer.vocab_size, layer.num_classes), np.float64)
        class_counts = np.zeros(layer.num_classes, np.float64)
        for inputs, labels, *_ in batches:
            labels = np.asarray(labels)
            if labels.ndim == 2:
                labels = labels.argmax(axis=1)
            ids = self.preprocessor(inputs) if self.preprocessor is not None else inputs
            ids = keras.ops.convert_to_numpy(distinct(ids)).astype(np.int64)
            cells = ids * layer.num_classes + labels[:, None]
            counts += np.bincount(cells[ids != 0], minlength=counts.size
                                  ).reshape(counts.shape)
            class_counts += np.bincount(labels, minlength=layer.num_classes)
        if reduce is not None:
            both = reduce(np.concatenate([counts, class_counts[None]], axis=0))
            counts, class_counts = both[:-1], both[-1]
        layer.set_counts(counts, class_counts)
        return [f"{layer.name} (the training set's n-gram counts)"]

    def arguments(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "num_classes": self.num_classes,
                "init": self.init, "preprocessor": self.preprocessor}


@register_model("nb_text")
def NBTextClassifier(num_classes: int = 2, vocabulary: Sequence[str] | str | None = None,
                     ngrams: int = 3, max_length: int = 8000, init: float = 0.0,
                     split_contractions: bool = False,
                     name: str = "nb_text") -> NaiveBayesClassifier:
    """A string-input NBSVM: ``TextPreprocessor`` (``standardize``, words
    and n-grams up to ``ngrams``) -> distinct ids -> ``NaiveBayesLogits``
    -> softmax. ``training.fit`` sets the naive-Bayes ratios from the
    training set before the first step; outside it, call
    ``model.adapt(batches)``.

    Args:
        vocabulary: n-grams, most frequent first (``data.text.build_vocabulary``
            with the same ``ngrams``), or a file with one per line.
        max_length: ids kept per text: words first, then bigrams, then
            trigrams, so a text longer than ``max_length / ngrams`` words
            loses its last n-grams first.
        init: starting n-gram weight (see ``NaiveBayesLogits``).
        split_contractions: as ``AttnTextClassifier``'s.

    Inputs: ``(batch,)`` strings. Output: ``(batch, num_classes)`` float32
    probabilities.
    """
    tokens = vocabulary_list(vocabulary)
    if tokens is None:
        raise ValueError("NBTextClassifier needs a vocabulary (build one with "
                         "attention_zoo.data.text.build_vocabulary(texts, size, ngrams))")
    if not isinstance(ngrams, int) or ngrams < 1:
        raise ValueError(f"ngrams must be an int >= 1, received {ngrams!r}")
    preprocessor = TextPreprocessor(tokens, max_length, ngrams if ngrams > 1 else None,
                                    split_contractions=split_contractions,
                                    name="preprocessor")
    return NaiveBayesClassifier(len(tokens) + 2, num_classes, init, preprocessor,
                                name=name)


def adapt_naive_bayes(model: keras.Model, batches: Iterable[tuple[Any, Any]],
                      reduce: Callable[[np.ndarray], np.ndarray] | None = None
                      ) -> list[str]:
    """``model.adapt(batches, reduce)`` for a ``NaiveBayesClassifier``;
    nothing for another model."""
    members = getattr(model, "members", [])
    if any(isinstance(m, NaiveBayesClassifier) for m in members):
        raise ValueError(f"{model.name} is an ensemble: adapt its naive-Bayes members "
                         f"before combining them")
    if not isinstance(model, NaiveBayesClassifier):
        return []
    return model.adapt(batches, reduce)
