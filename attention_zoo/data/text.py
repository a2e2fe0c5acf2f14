"""Text data: ``label<TAB>text`` files (TSV, CSV, gzipped), IMDB, vocabularies.

The in-model standardization (``standardize``) is the one place text is
cleaned, so training data, ``model.predict([...])`` on raw strings and the
pure-Python tokenizer of exported models all see the same tokens.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import keras
import numpy as np

from attention_zoo.data.prefetch import prefetched
from attention_zoo.files import write_text

if TYPE_CHECKING:  # for annotations; the functions import tensorflow where they use it
    import tensorflow as tf

HTML_BREAK = r"<br\s*/?>"
# TextVectorization's own punctuation set, applied after lower-casing.
PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'


@keras.saving.register_keras_serializable(package="attention_zoo")
def standardize(texts: tf.Tensor) -> tf.Tensor:
    """Repairs invalid UTF-8, drops HTML line breaks, lower-cases and strips
    punctuation: Keras's ``lower_and_strip_punctuation`` plus the first two."""
    return _standardize(texts, split_contractions=False)


# Penn Treebank splits "doesn't" as "does n't" and "it's" as "it 's" (GLUE's
# SST-2 is written so); splitting raw text the same way before the
# apostrophes go makes both "does nt" and "it s".
CONTRACTION = r"(n't|'s|'re|'ve|'ll|'d|'m)\b"


@keras.saving.register_keras_serializable(package="attention_zoo")
def standardize_contractions(texts: tf.Tensor) -> tf.Tensor:
    """``standardize`` that first splits English contractions off their word
    as the Penn Treebank does ("doesn't" -> "does nt", "it's" -> "it s"),
    so raw text and tokenized corpora (SST-2) give the same tokens."""
    return _standardize(texts, split_contractions=True)


def _standardize(texts: tf.Tensor, split_contractions: bool) -> tf.Tensor:
    import tensorflow as tf

    texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8",
                                         errors="replace")
    texts = tf.strings.regex_replace(texts, HTML_BREAK, " ")
    texts = tf.strings.lower(texts, encoding="utf-8")
    if split_contractions:
        texts = tf.strings.regex_replace(texts, CONTRACTION, r" \1")
    return tf.strings.regex_replace(texts, PUNCTUATION, "")


def standardizer(split_contractions: bool = False) -> Callable[[tf.Tensor], tf.Tensor]:
    """The in-model standardization function of a text model."""
    return standardize_contractions if split_contractions else standardize


@dataclass
class TextSet:
    texts: np.ndarray   # object array of str
    labels: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> "TextSet":
        return TextSet(self.texts[index], self.labels[index])


def concatenate(sets: Sequence[TextSet]) -> TextSet:
    """One ``TextSet`` of all texts of ``sets``, in order."""
    return TextSet(np.concatenate([s.texts for s in sets]),
                   np.concatenate([s.labels for s in sets]).astype("int32"))


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8",
                                errors="replace", newline="")
    return path.open(encoding="utf-8", errors="replace", newline="")


def text_tsv(path: str | os.PathLike, label_column: str = "label",
             text_column: str = "text", delimiter: str | None = None) -> TextSet:
    """Reads a ``label<TAB>text`` file with a header row (``.tsv``, ``.csv``
    or either gzipped). The header names the columns; the delimiter follows
    the suffix unless given. HTML line breaks are replaced by spaces.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such text file: {str(path)!r}")
    if delimiter is None:
        delimiter = "," if ".csv" in path.suffixes else "\t"
    csv.field_size_limit(1 << 24)
    with _open_text(path) as f:
        reader = csv.DictReader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE
                                if delimiter == "\t" else csv.QUOTE_MINIMAL)
        fields = reader.fieldnames or []
        if label_column not in fields or text_column not in fields:
            raise ValueError(f"{str(path)!r} needs a header with columns "
                             f"{label_column!r} and {text_column!r}, found {fields}")
        texts, labels = [], []
        for line, row in enumerate(reader, start=2):
            try:
                labels.append(int(row[label_column]))
            except (TypeError, ValueError):
                raise ValueError(f"{str(path)!r} line {line}: label must be an "
                                 f"integer, found {row[label_column]!r}") from None
            texts.append(re.sub(HTML_BREAK, " ", row[text_column] or ""))
    return TextSet(np.array(texts, dtype=object), np.array(labels, dtype="int32"))


def imdb(path: str | os.PathLike | None = None, val_fraction: float = 0.1,
         seed: int = 0) -> tuple[TextSet, TextSet]:
    """IMDB reviews as ``(train, val)``: a fixed, seeded, stratified
    ``val_fraction`` of the training split is held out.

    ``path`` is a ``label<TAB>text`` file; without it the text of
    ``keras.datasets.imdb``'s cache is used (downloads once).
    """
    data = text_tsv(path) if path is not None else _keras_imdb()
    return stratified_split(data, val_fraction, seed)


def _keras_imdb() -> TextSet:
    (x, y), _ = keras.datasets.imdb.load_data()
    index = {i + 3: w for w, i in keras.datasets.imdb.get_word_index().items()}
    texts = [" ".join(index.get(t, "") for t in seq[1:]) for seq in x]
    return TextSet(np.array(texts, dtype=object), np.asarray(y, "int32"))


def stratified_split(data: TextSet, val_fraction: float, seed: int = 0
                     ) -> tuple[TextSet, TextSet]:
    """Holds out ``val_fraction`` of each class, chosen by a seeded shuffle."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), received {val_fraction!r}")
    rng = np.random.default_rng(seed)
    val = np.zeros(len(data), bool)
    for c in np.unique(data.labels):
        index = rng.permutation(np.flatnonzero(data.labels == c))
        val[index[:int(round(len(index) * val_fraction))]] = True
    return data.take(np.flatnonzero(~val)), data.take(np.flatnonzero(val))


def build_vocabulary(texts: Iterable[str], max_tokens: int = 20000,
                     ngrams: int | None = None, split_contractions: bool = False
                     ) -> list[str]:
    """The ``max_tokens - 2`` most frequent tokens after the model's
    standardization (``standardizer(split_contractions)``), most frequent
    first; ids 0 and 1 stay for padding and out-of-vocabulary, as in
    ``TextVectorization``."""
    if max_tokens < 3:
        raise ValueError(f"max_tokens must be >= 3, received {max_tokens}")
    layer = keras.layers.TextVectorization(
        max_tokens=max_tokens, standardize=standardizer(split_contractions),
        ngrams=ngrams)
    layer.adapt(np.asarray(list(texts), dtype=object), batch_size=1024)
    return [str(t) for t in layer.get_vocabulary() if t not in ("", "[UNK]")]


def read_vocabulary(path: str | os.PathLike) -> list[str]:
    return Path(path).read_text(encoding="utf-8").split("\n")[:-1]


def write_vocabulary(vocabulary: Sequence[str], path: str | os.PathLike) -> None:
    write_text(path, "".join(f"{t}\n" for t in vocabulary))


def pipeline(data: TextSet, batch_size: int = 64, training: bool = False,
             num_classes: int = 2, seed: int = 0, one_hot: bool = True,
             bucket: bool = True) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(strings, labels)`` batches; shuffled every
    epoch when training. Labels one-hot unless ``one_hot=False``.

    ``bucket`` batches texts of similar word counts together (ten buckets
    at the deciles of ``data``'s lengths): string models pad a batch only to
    its longest text, so a recurrent encoder then runs a fraction of the
    steps. Batches then leave ``data``'s order (the same order on every pass
    without ``training``): pass ``bucket=False`` for predictions that must
    line up with ``data.texts``.
    """
    import tensorflow as tf

    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, received {batch_size}")
    texts = data.texts.astype(str)
    lengths = np.fromiter((len(t.split()) for t in texts), np.int32, len(texts))
    ds = tf.data.Dataset.from_tensor_slices((texts, data.labels, lengths))
    if training:
        ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    boundaries = _length_deciles(lengths) if bucket else []
    if boundaries:
        ds = ds.bucket_by_sequence_length(lambda x, y, n: n, boundaries,
                                          [batch_size] * (len(boundaries) + 1))
        # Each bucket ends with one partial batch: a count fit() can plan with.
        sizes = np.bincount(np.searchsorted(boundaries, lengths, side="right"))
        ds = ds.apply(tf.data.experimental.assert_cardinality(
            int(np.sum(-(-sizes // batch_size)))))
    else:
        ds = ds.batch(batch_size)
    ds = ds.map(lambda x, y, n: (x, tf.one_hot(y, num_classes) if one_hot else y))
    return prefetched(ds)


def _length_deciles(lengths: np.ndarray) -> list[int]:
    """Distinct word-count deciles above 1 (bucket boundaries: a bucket
    holds lengths below its boundary)."""
    if len(lengths) == 0:
        return []
    deciles = np.percentile(lengths, np.arange(10, 100, 10))
    return sorted({int(d) + 1 for d in deciles if d >= 1})
