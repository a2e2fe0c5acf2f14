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
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

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


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _open_text(path: Path) -> io.TextIOBase:
    """The file as text (UTF-8, with or without a byte-order mark; stray
    bytes replaced), gunzipped where it starts with gzip's header."""
    if _is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig",
                                errors="replace", newline="")
    if path.suffix == ".gz":
        raise ValueError(f"{str(path)!r} is not a gzip file (it does not start with "
                         f"gzip's header); gzip it, or drop the .gz suffix")
    return path.open(encoding="utf-8-sig", errors="replace", newline="")


def _text_lines(f: io.TextIOBase, path: Path) -> Iterator[str]:
    """The lines of ``f``; ValueError for a file that is not text (NUL
    characters: a binary file, or UTF-16)."""
    for number, line in enumerate(f, start=1):
        if "\0" in line:
            raise ValueError(f"{str(path)!r} line {number} holds NUL bytes: not a "
                             f"UTF-8 text file (binary, or UTF-16?); expected "
                             f"label<TAB>text rows")
        yield line


# What reading a damaged gzip raises: not gzip after all, a CRC or length
# mismatch, a stream that ends early, corrupt deflate data.
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
LABEL_HINT = "labels are class indices 0, 1, ..."


def text_tsv(path: str | os.PathLike, label_column: str = "label",
             text_column: str = "text", delimiter: str | None = None) -> TextSet:
    """Reads a ``label<TAB>text`` file with a header row (``.tsv``, ``.csv``
    or either gzipped). The header names the columns; the delimiter follows
    the suffix unless given. HTML line breaks are replaced by spaces.

    Returns a ``TextSet``: ``texts`` ``(n,)`` str objects, ``labels``
    ``(n,)`` int32, each a class index ``>= 0`` (``check_labels`` and
    ``infer_num_classes`` check them against a model's classes).

    Raises ValueError naming the file for a missing file, one that is not
    text (NUL bytes, a damaged gzip), one without the header's columns or
    without rows, and with the line number for a row without a text or a
    label, or with a label that is not a class index (not an integer, or
    negative). Stray non-UTF-8 bytes are replaced, not refused.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such text file: {str(path)!r}")
    if delimiter is None:
        delimiter = "," if ".csv" in path.suffixes else "\t"
    csv.field_size_limit(1 << 24)
    try:
        with _open_text(path) as f:
            return _read_rows(f, path, label_column, text_column, delimiter)
    except _GZIP_ERRORS as error:
        raise ValueError(f"{str(path)!r} is not a readable gzip file ({error}): "
                         f"truncated or damaged; re-create it or download it "
                         f"again") from None
    except OSError as error:  # the gzip's own checks, unreadable files
        raise ValueError(f"cannot read {str(path)!r}: "
                         f"{getattr(error, 'strerror', None) or error}") from None


def _read_rows(f: io.TextIOBase, path: Path, label_column: str, text_column: str,
               delimiter: str) -> TextSet:
    reader = csv.DictReader(_text_lines(f, path), delimiter=delimiter,
                            quoting=csv.QUOTE_NONE if delimiter == "\t"
                            else csv.QUOTE_MINIMAL)
    name = repr(str(path))
    try:
        fields = reader.fieldnames
        if not fields:
            raise ValueError(f"{name} holds no rows: the file is empty (expected a "
                             f"header naming columns {label_column!r} and "
                             f"{text_column!r}, then one row per text)")
        if label_column not in fields or text_column not in fields:
            raise ValueError(f"{name} needs a header with columns "
                             f"{label_column!r} and {text_column!r}, found {fields}")
        texts, labels = [], []
        for row in reader:
            line = reader.line_num
            label, text = row[label_column], row[text_column]
            if label is None or text is None:
                missing = text_column if text is None else label_column
                raise ValueError(
                    f"{name} line {line}: no {missing!r} column (the row has "
                    f"{sum(v is not None for v in row.values())} of the header's "
                    f"{len(fields)} fields; separate them with "
                    f"{'a tab' if delimiter == chr(9) else repr(delimiter)})")
            labels.append(_label(label, name, line, label_column))
            texts.append(re.sub(HTML_BREAK, " ", text))
    except csv.Error as error:
        raise ValueError(f"{name} line {reader.line_num}: not readable as "
                         f"{'TSV' if delimiter == chr(9) else 'CSV'} ({error})") from None
    if not labels:
        raise ValueError(f"{name} holds no rows below its header {fields}")
    return TextSet(np.array(texts, dtype=object), np.array(labels, dtype="int32"))


def _label(value: str, name: str, line: int, column: str) -> int:
    if not value.strip():
        raise ValueError(f"{name} line {line}: the {column!r} column is empty; "
                         f"{LABEL_HINT}")
    try:
        label = int(value)
    except ValueError:
        raise ValueError(f"{name} line {line}: label must be an integer "
                         f"({LABEL_HINT}), found {value!r}") from None
    if label < 0:
        raise ValueError(f"{name} line {line}: {LABEL_HINT}, found {label}")
    if label >= 2 ** 31:
        raise ValueError(f"{name} line {line}: {LABEL_HINT}, found {label} "
                         f"(too large)")
    return label


def _label_counts(labels: np.ndarray) -> dict[int, int]:
    values, counts = np.unique(labels, return_counts=True)
    return {int(v): int(n) for v, n in zip(values, counts)}


def _as_labels(labels: object, where: str) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1:
        array = array.reshape(-1) if array.ndim == 2 and array.shape[-1] == 1 else array
    if array.ndim != 1:
        raise ValueError(f"{where}: labels must be a list of class indices, "
                         f"received shape {array.shape}")
    if array.size and not (np.issubdtype(array.dtype, np.integer)
                           or (np.issubdtype(array.dtype, np.floating)
                               and np.all(np.mod(array, 1) == 0))):
        raise ValueError(f"{where}: labels must be integer class indices "
                         f"(0, 1, ...), received {array.dtype} values such as "
                         f"{array[:3].tolist()}")
    return array.astype(np.int64)


def check_labels(labels: object, num_classes: int, where: str,
                 class_names: Sequence[str] | None = None) -> np.ndarray:
    """Checks that ``labels`` (``(n,)`` class indices) are in
    ``[0, num_classes)`` for a model of ``num_classes`` classes; returns
    them as int32.

    ``where`` names the data in the message (e.g. ``"'dev.tsv'"``);
    ``class_names`` are listed in it. Raises ValueError naming each label
    out of range with its row count, most frequent first.
    """
    array = _as_labels(labels, where)
    outside = (array < 0) | (array >= num_classes)
    if outside.any():
        counts = sorted(_label_counts(array[outside]).items(),
                        key=lambda item: (-item[1], item[0]))
        shown = [f"{v} ({n} row{'' if n == 1 else 's'})" for v, n in counts[:5]]
        if len(counts) > 5:
            shown.append(f"{len(counts) - 5} more labels")
        found = " and ".join(", ".join(shown).rsplit(", ", 1))
        names = f" ({', '.join(class_names)})" if class_names else ""
        raise ValueError(f"{where}: labels must be in [0, {num_classes}) for this "
                         f"model's {num_classes} classes{names}; found {found}")
    return array.astype("int32")


def infer_num_classes(*label_arrays: object, where: str) -> int:
    """The number of classes of training labels: they must be class indices
    ``0 .. K-1`` with every class present; returns K (at least 2).

    ``label_arrays``: every training set's labels (``(n,)`` each: the
    training file, extra data); check validation labels against K with
    ``check_labels``. ``where`` names the data in messages. Raises
    ValueError for no labels, a negative label, a single class, or a gap
    (e.g. labels {0, 1, 7}), listing the labels found.
    """
    arrays = [_as_labels(a, where) for a in label_arrays]
    array = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
    if array.size == 0:
        raise ValueError(f"{where}: no labels to count classes from")
    found = sorted(_label_counts(array))
    shown = ", ".join(map(str, found[:20])) + (", ..." if len(found) > 20 else "")
    if found[0] < 0:
        raise ValueError(f"{where}: {LABEL_HINT}, found {found[0]} (labels found: "
                         f"{shown})")
    classes = found[-1] + 1
    if len(found) != classes:
        missing = sorted(set(range(classes)) - set(found))
        gaps = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        raise ValueError(
            f"{where}: labels must be class indices 0..K-1 with every class "
            f"present; found labels {shown}, without {gaps}; renumber them "
            f"0..{len(found) - 1}, or pass --class-names to declare all "
            f"{classes} classes")
    if classes < 2:
        raise ValueError(f"{where}: every label is 0, one class; a classifier "
                         f"needs labels of at least 2 classes (0 and 1)")
    return classes


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
