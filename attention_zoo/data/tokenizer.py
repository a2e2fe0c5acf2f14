"""A pure-Python tokenizer that reproduces the text models' in-model
``TextVectorization`` (``attention_zoo.data.text.standardize`` or
``standardize_contractions``, whitespace
split, optional n-grams, vocabulary lookup, pad, truncate at the end or
the start), for TFLite and
ONNX exports that take int32 token ids.

This file has no dependency beyond NumPy and is copied next to exported
models; use it as ``Tokenizer.from_files("model.tokenizer.json")``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

# RE2 (TensorFlow) semantics: \s is ASCII whitespace only.
_HTML_BREAK = re.compile(r"<br[\t\n\f\r ]*/?>")
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
_WHITESPACE = re.compile(r"[\t\n\v\f\r ]+")
_CONTRACTION = re.compile(r"(n't|'s|'re|'ve|'ll|'d|'m)\b", re.ASCII)
PAD, OOV = 0, 1
TRUNCATIONS = ("post", "pre")  # keras.utils.pad_sequences' names


def standardize(text: str | bytes, split_contractions: bool = False) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = _HTML_BREAK.sub(" ", text)
    text = text.lower()  # full Unicode mapping (final sigma too), as TF's
    if split_contractions:  # "doesn't" -> "does n't", as Penn Treebank
        text = _CONTRACTION.sub(r" \1", text)
    return _PUNCTUATION.sub("", text)


class Tokenizer:
    """Texts to ``(batch, max_length)`` int32 ids: 0 pads, 1 is out of
    vocabulary, ``vocabulary[i]`` is id ``i + 2``. ``truncating="post"``
    keeps the first ``max_length`` tokens of a longer text, ``"pre"`` the
    last."""

    def __init__(self, vocabulary: Sequence[str], max_length: int,
                 ngrams: int | None = None, truncating: str = "post",
                 split_contractions: bool = False) -> None:
        if truncating not in TRUNCATIONS:
            raise ValueError(f"truncating must be one of {TRUNCATIONS}, received "
                             f"{truncating!r}")
        self.vocabulary = list(vocabulary)
        self.index = {token: i + 2 for i, token in enumerate(self.vocabulary)}
        self.max_length = int(max_length)
        self.ngrams = ngrams
        self.truncating = truncating
        self.split_contractions = split_contractions

    @classmethod
    def from_files(cls, config_path: str | Path) -> "Tokenizer":
        config_path = Path(config_path)
        config = json.loads(config_path.read_text(encoding="utf-8"))
        vocab_file = config_path.parent / config["vocabulary"]
        vocabulary = vocab_file.read_text(encoding="utf-8").split("\n")[:-1]
        return cls(vocabulary, config["max_length"], config.get("ngrams"),
                   config.get("truncating", "post"),
                   config.get("split_contractions", False))

    def tokens(self, text: str | bytes) -> list[str]:
        words = [w for w in _WHITESPACE.split(
            standardize(text, self.split_contractions)) if w]
        if not self.ngrams:
            return words
        out = list(words)
        for n in range(2, self.ngrams + 1):
            out += [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
        return out

    def __call__(self, texts: Iterable[str | bytes]) -> np.ndarray:
        texts = [texts] if isinstance(texts, (str, bytes)) else list(texts)
        ids = np.zeros((len(texts), self.max_length), np.int32)
        for row, text in enumerate(texts):
            found = [self.index.get(t, OOV) for t in self.tokens(text)]
            found = (found[-self.max_length:] if self.truncating == "pre"
                     else found[:self.max_length])
            ids[row, :len(found)] = found
        return ids
