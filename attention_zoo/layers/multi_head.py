"""Multi-head attention with grouped-query heads and float32 scores."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from attention_zoo.layers.base import SequenceAttention, check_positive, masked_softmax
from attention_zoo.layers.registry import SEQUENCE, alias, register


@register("mha", SEQUENCE)
class MultiHeadAttention(SequenceAttention):
    """Multi-head attention (Vaswani et al., 2017) with grouped-query
    attention (Ainslie et al., 2023, arXiv:2305.13245).

    ``num_heads`` query heads of width ``key_dim`` share
    ``num_key_value_heads`` key/value heads (default: ``num_heads``; 1 is
    multi-query attention). Query head ``h`` uses key/value head
    ``h // (num_heads // num_key_value_heads)``. Projections run in the
    compute dtype; scores ``q . k / sqrt(key_dim)`` and softmax in float32, so
    large activations do not overflow under ``mixed_float16``.

    Args:
        num_heads: query heads.
        key_dim: width of each query/key head.
        value_dim: width of each value head (default: ``key_dim``).
        num_key_value_heads: key/value heads; must divide ``num_heads``.
        dropout: dropout on the attention weights while training.
        use_bias: biases on the four projections.
        output_dim: width of the output projection (default: the query's).

    Call: ``layer(query, value, key=None, query_mask=None, value_mask=None,
    return_attention_scores=False, training=None, use_causal_mask=False)``.
    Shapes: query ``(batch, Tq, dq)``, value ``(batch, Tv, dv)``, key
    ``(batch, Tv, dk)``; output ``(batch, Tq, output_dim or dq)``; scores
    ``(batch, num_heads, Tq, Tv)``.
    """

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None,
                 num_key_value_heads: int | None = None, dropout: float = 0.0,
                 use_bias: bool = True, output_dim: int | None = None,
                 kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", **kwargs: Any) -> None:
        super().__init__(dropout=dropout, **kwargs)
        self.num_heads = check_positive("num_heads", num_heads)
        self.key_dim = check_positive("key_dim", key_dim)
        self.value_dim = key_dim if value_dim is None else check_positive(
            "value_dim", value_dim)
        kv_heads = num_heads if num_key_value_heads is None else num_key_value_heads
        self.num_key_value_heads = check_positive("num_key_value_heads", kv_heads)
        if num_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_key_value_heads must divide num_heads={num_heads}, "
                f"received num_key_value_heads={num_key_value_heads!r}")
        self.use_bias = bool(use_bias)
        self.output_dim = None if output_dim is None else check_positive(
            "output_dim", output_dim)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build_weights(self) -> None:
        heads, kv_heads = self.num_heads, self.num_key_value_heads
        for name, fan_in, width in (
                ("query", self.query_width, heads * self.key_dim),
                ("key", self.key_width, kv_heads * self.key_dim),
                ("value", self.value_width, kv_heads * self.value_dim),
                ("output", heads * self.value_dim,
                 self.output_dim or self.query_width)):
            kernel = self.add_weight(name=f"{name}_kernel", shape=(fan_in, width),
                                     initializer=self.kernel_initializer)
            bias = self.add_weight(name=f"{name}_bias", shape=(width,),
                                   initializer=self.bias_initializer
                                   ) if self.use_bias else None
            setattr(self, f"{name}_kernel", kernel)
            setattr(self, f"{name}_bias", bias)

    def _project(self, name: str, x: Any) -> Any:
        # Cast to x's dtype although autocast reads weights in the compute
        # dtype: PyTorch's symbolic trace (keras.Input) reads them uncast,
        # and float32 weights would make the output's spec float32 there.
        bias = getattr(self, f"{name}_bias")
        y = ops.matmul(x, ops.cast(getattr(self, f"{name}_kernel"), x.dtype))
        return y if bias is None else y + ops.cast(bias, y.dtype)

    def _split_heads(self, x: Any, heads: int, width: int) -> Any:
        # (batch, T, heads * width) -> (batch, heads, T, width)
        x = ops.reshape(x, (-1, ops.shape(x)[1], heads, width))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, query: Any, value: Any, key: Any = None,
             query_mask: Any = None, value_mask: Any = None,
             return_attention_scores: bool = False, training: Any = None,
             use_causal_mask: bool = False) -> Any:
        key = self.checked_inputs(query, value, key)
        groups = self.num_heads // self.num_key_value_heads
        q = self._split_heads(self._project("query", query), self.num_heads,
                              self.key_dim)
        k = self._split_heads(self._project("key", key),
                              self.num_key_value_heads, self.key_dim)
        v = self._split_heads(self._project("value", value),
                              self.num_key_value_heads, self.value_dim)
        if groups > 1:
            k = ops.repeat(k, groups, axis=1)
            v = ops.repeat(v, groups, axis=1)
        # Scale q before the product, in float32: the product is what overflows.
        q = ops.cast(q, "float32") * (1.0 / math.sqrt(self.key_dim))
        scores = ops.matmul(q, ops.transpose(ops.cast(k, "float32"), (0, 1, 3, 2)))
        mask = self.mask(query, value, query_mask, value_mask, use_causal_mask)
        if mask is not None:
            mask = ops.expand_dims(mask, 1)  # broadcast over heads
        weights = masked_softmax(scores, mask)
        dropped = self._dropout(weights, training=training)
        context = ops.matmul(ops.cast(dropped, v.dtype), v)  # (b, h, Tq, dv)
        context = ops.reshape(ops.transpose(context, (0, 2, 1, 3)),
                              (-1, ops.shape(query)[1],
                               self.num_heads * self.value_dim))
        output = self._project("output", context)
        if return_attention_scores:
            return output, weights
        return output

    def compute_output_shape(self, query_shape: Any, value_shape: Any,
                             key_shape: Any = None) -> tuple:
        return (query_shape[0], query_shape[1],
                self.output_dim or query_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_heads": self.num_heads,
                "key_dim": self.key_dim, "value_dim": self.value_dim,
                "num_key_value_heads": self.num_key_value_heads,
                "use_bias": self.use_bias, "output_dim": self.output_dim,
                "kernel_initializer":
                    keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer":
                    keras.initializers.serialize(self.bias_initializer)}


alias("multi_head", "mha")
alias("gqa", "mha")  # pass num_key_value_heads < num_heads
