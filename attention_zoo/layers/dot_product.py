"""Luong's family of dot-product scores, plus scaled and cosine."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from attention_zoo.layers.additive import additive_scores
from attention_zoo.layers.base import SequenceAttention, check_positive
from attention_zoo.layers.registry import SEQUENCE, alias, register

SCORES = ("dot", "scaled_dot", "general", "concat", "cosine")
_NEEDS_EQUAL_DIMS = ("dot", "scaled_dot", "cosine")


@register("dot", SEQUENCE, score="dot")
class DotProductAttention(SequenceAttention):
    """Luong attention and relatives; ``score`` picks the formula:

    - ``"dot"``: ``q . k``
    - ``"scaled_dot"``: ``q . k / sqrt(d)`` (Vaswani et al., 2017)
    - ``"general"``: ``q^T W k`` with ``W`` ``(dq, dk)``
    - ``"concat"``: ``v^T tanh(W [q; k])`` with ``W`` ``(dq + dk, units)``
    - ``"cosine"``: ``t * cos(q, k)``, temperature ``t`` learned unless
      ``learn_temperature=False``

    Luong et al., 2015, arXiv:1508.04025. Scores and softmax run in float32.

    Args:
        score: one of ``SCORES``.
        units: hidden width of ``"concat"`` (default: dq).
        temperature: initial (or fixed) ``t`` of ``"cosine"``.
        learn_temperature: learn ``t``.
        dropout: dropout on the attention weights while training.

    Shapes: see ``SequenceAttention``. ``"dot"``, ``"scaled_dot"`` and
    ``"cosine"`` need ``dq == dk``.
    """

    def __init__(self, score: str = "dot", units: int | None = None,
                 temperature: float = 10.0, learn_temperature: bool = True,
                 dropout: float = 0.0,
                 kernel_initializer: Any = "glorot_uniform", **kwargs: Any) -> None:
        super().__init__(dropout=dropout, **kwargs)
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, received {score!r}")
        self.score = score
        self.units = None if units is None else check_positive("units", units)
        self.temperature = float(check_positive("temperature", temperature,
                                                integer=False))
        self.learn_temperature = bool(learn_temperature)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build_weights(self) -> None:
        query_dim, key_dim = self.query_width, self.key_width
        if self.score in _NEEDS_EQUAL_DIMS and query_dim != key_dim:
            raise ValueError(
                f"DotProductAttention layer '{self.name}' with score="
                f"'{self.score}' expects query and key of the same last "
                f"dimension, received query (..., {query_dim}) and key "
                f"(..., {key_dim}).")

        if self.score == "general":
            self.w = self.score_weight("w", (query_dim, key_dim), self.kernel_initializer)
        elif self.score == "concat":
            units = self.units or query_dim
            self.w_q = self.score_weight("w_q", (query_dim, units), self.kernel_initializer)
            self.w_k = self.score_weight("w_k", (key_dim, units), self.kernel_initializer)
            self.v = self.score_weight("v", (units,), self.kernel_initializer)
        elif self.score == "cosine":
            self.t = self.score_weight("temperature", (),
                            keras.initializers.Constant(self.temperature),
                            trainable=self.learn_temperature)

    def scores(self, query: Any, key: Any) -> Any:
        if self.score == "concat":
            # W [q; k] == W_q q + W_k k, without materializing every pair.
            return additive_scores(query, key, self.w_q, self.w_k, self.v)
        if self.score == "general":
            query = ops.matmul(query, self.w)
        elif self.score == "cosine":
            query = _l2_normalize(query)
            key = _l2_normalize(key)
        scores = ops.matmul(query, ops.transpose(key, (0, 2, 1)))
        if self.score == "scaled_dot":
            scores = scores / math.sqrt(self.key_width)
        elif self.score == "cosine":
            scores = scores * self.t
        return scores

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "score": self.score, "units": self.units,
                "temperature": self.temperature,
                "learn_temperature": self.learn_temperature,
                "kernel_initializer":
                    keras.initializers.serialize(self.kernel_initializer)}


def _l2_normalize(x: Any, epsilon: float = 1e-12) -> Any:
    # rsqrt of a clamped sum of squares keeps zero vectors finite.
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), -1, keepdims=True),
                                     epsilon))


for _score in SCORES[1:]:
    alias(_score, "dot", score=_score)
alias("luong", "dot", score="general")
