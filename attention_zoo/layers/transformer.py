"""A transformer encoder block built on this package's MultiHeadAttention."""

from __future__ import annotations

from typing import Any

import keras

from attention_zoo.layers.base import (TracedLayer, check_positive,
                                       check_rate, check_shape, check_tensor)
from attention_zoo.layers.multi_head import MultiHeadAttention
from attention_zoo.layers.registry import SEQUENCE_BLOCK, register


@register("transformer", SEQUENCE_BLOCK)
class TransformerEncoder(TracedLayer):
    """Self-attention, residual, LayerNorm, feed-forward (Vaswani et al., 2017).

    Post-norm (``norm_first=False``, the paper's)::

        h = LN(x + Dropout(MHA(x, x)));  y = LN(h + Dropout(FF(h)))

    Pre-norm (``norm_first=True``, trains deeper stacks without warm-up)::

        h = x + Dropout(MHA(LN(x), LN(x)));  y = h + Dropout(FF(LN(h)))

    ``FF(h) = W_2 act(W_1 h + b_1) + b_2``.

    Args:
        num_heads: attention heads.
        ff_dim: hidden width of the feed-forward network.
        key_dim: width of each head (default: ``D // num_heads``).
        num_key_value_heads: grouped-query key/value heads.
        dropout: on attention weights and both residual branches.
        activation: of the feed-forward network.
        norm_first: pre-norm instead of post-norm.
        epsilon: of both LayerNorms.

    Call: ``layer(inputs, mask=None, use_causal_mask=False,
    return_attention_scores=False, training=None)``; inputs and output
    ``(batch, T, D)``, scores ``(batch, num_heads, T, T)``. Padding masked by
    a Keras mask is ignored by attention and the mask passes through.
    """

    def __init__(self, num_heads: int, ff_dim: int, key_dim: int | None = None,
                 num_key_value_heads: int | None = None, dropout: float = 0.0,
                 activation: str = "gelu", norm_first: bool = False,
                 epsilon: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_heads = check_positive("num_heads", num_heads)
        self.ff_dim = check_positive("ff_dim", ff_dim)
        self.key_dim = None if key_dim is None else check_positive("key_dim", key_dim)
        self.num_key_value_heads = num_key_value_heads
        self.dropout = check_rate("dropout", dropout)
        self.activation = keras.activations.serialize(keras.activations.get(activation))
        self.norm_first = bool(norm_first)
        self.epsilon = float(epsilon)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        check_shape(self, input_shape, "inputs", (None, None, None))
        self.width = width = input_shape[-1]
        policy = {"dtype": self.dtype_policy}
        self.attention = MultiHeadAttention(
            self.num_heads, self.key_dim or max(1, width // self.num_heads),
            num_key_value_heads=self.num_key_value_heads, dropout=self.dropout,
            name="attention", **policy)
        self.norm1 = keras.layers.LayerNormalization(epsilon=self.epsilon,
                                                     name="norm1", **policy)
        self.norm2 = keras.layers.LayerNormalization(epsilon=self.epsilon,
                                                     name="norm2", **policy)
        self.ff1 = keras.layers.Dense(self.ff_dim, activation=self.activation,
                                      name="ff1", **policy)
        self.ff2 = keras.layers.Dense(width, name="ff2", **policy)
        self.residual_dropout = keras.layers.Dropout(self.dropout, **policy)
        self.attention.build(input_shape, input_shape)
        self.norm1.build(input_shape)
        self.norm2.build(input_shape)
        self.ff1.build(input_shape)
        self.ff2.build(tuple(input_shape[:-1]) + (self.ff_dim,))
        self.built = True

    def call(self, inputs: Any, mask: Any = None, use_causal_mask: bool = False,
             return_attention_scores: bool = False, training: Any = None) -> Any:
        check_tensor(self, inputs, "inputs", (None, None, self.width))
        x = self.norm1(inputs) if self.norm_first else inputs
        attended, scores = self.attention(
            x, x, query_mask=mask, value_mask=mask, use_causal_mask=use_causal_mask,
            return_attention_scores=True, training=training)
        h = inputs + self.residual_dropout(attended, training=training)
        if not self.norm_first:
            h = self.norm1(h)
        x = self.norm2(h) if self.norm_first else h
        y = h + self.residual_dropout(self.ff2(self.ff1(x)), training=training)
        if not self.norm_first:
            y = self.norm2(y)
        if return_attention_scores:
            return y, scores
        return y

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_heads": self.num_heads,
                "ff_dim": self.ff_dim, "key_dim": self.key_dim,
                "num_key_value_heads": self.num_key_value_heads,
                "dropout": self.dropout, "activation": self.activation,
                "norm_first": self.norm_first, "epsilon": self.epsilon}
