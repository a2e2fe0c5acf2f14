"""Bahdanau (additive) attention with its own learned projections."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from attention_zoo.layers.base import SequenceAttention, check_positive
from attention_zoo.layers.registry import SEQUENCE, alias, register


def additive_scores(q: Any, k: Any, w_q: Any, w_k: Any, v: Any,
                    bias: Any = None) -> Any:
    """``v^T tanh(W_q q_i + W_k k_j [+ b])`` for every pair: ``(batch, Tq, Tv)``."""
    qp = ops.expand_dims(ops.matmul(q, w_q), 2)  # (batch, Tq, 1, units)
    kp = ops.expand_dims(ops.matmul(k, w_k), 1)  # (batch, 1, Tv, units)
    hidden = qp + kp if bias is None else qp + kp + bias
    return ops.sum(ops.tanh(hidden) * v, axis=-1)


@register("additive", SEQUENCE)
class AdditiveAttention(SequenceAttention):
    """Bahdanau attention: ``score(q, k) = v^T tanh(W_q q + W_k k + b)``.

    Unlike ``keras.layers.AdditiveAttention``, it learns ``W_q``
    ``(dq, units)``, ``W_k`` ``(dk, units)``, ``v`` ``(units,)`` and, with
    ``use_bias``, ``b`` ``(units,)``. Weights stay float32 under mixed
    precision. Bahdanau et al., 2015, arXiv:1409.0473.

    Args:
        units: width of the hidden tanh layer.
        use_bias: add ``b`` inside the tanh.
        dropout: dropout on the attention weights while training.
        kernel_initializer: initializer of ``W_q``, ``W_k`` and ``v``.

    Shapes: see ``SequenceAttention``; output ``(batch, Tq, dv)``, scores
    ``(batch, Tq, Tv)``.
    """

    def __init__(self, units: int, use_bias: bool = True, dropout: float = 0.0,
                 kernel_initializer: Any = "glorot_uniform", **kwargs: Any) -> None:
        super().__init__(dropout=dropout, **kwargs)
        self.units = check_positive("units", units)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build_weights(self) -> None:
        query_dim, key_dim = self.query_width, self.key_width

        self.w_q = self.score_weight("w_q", (query_dim, self.units), self.kernel_initializer)
        self.w_k = self.score_weight("w_k", (key_dim, self.units), self.kernel_initializer)
        self.v = self.score_weight("v", (self.units,), self.kernel_initializer)
        self.b = self.score_weight("b", (self.units,), "zeros") if self.use_bias else None

    def scores(self, query: Any, key: Any) -> Any:
        return additive_scores(query, key, self.w_q, self.w_k, self.v, self.b)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units,
                "use_bias": self.use_bias,
                "kernel_initializer":
                    keras.initializers.serialize(self.kernel_initializer)}


alias("bahdanau", "additive")
