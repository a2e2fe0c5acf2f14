"""AttnTextBackbone: token ids -> embeddings -> an encoder -> attention
pooling over tokens."""

from __future__ import annotations

from typing import Any

import keras

from attention_zoo import layers as zoo_layers
from attention_zoo.layers.base import float32_weight
from attention_zoo.models.backbone import Backbone

ENCODERS = ("bigru", "transformer", "none")
#: Pooling over tokens: AttentionPooling1D, or a learned query attending with
#: a sequence layer of the factory; each name means what the factory's means
#: (``"dot"`` unscaled, ``"scaled_dot"`` divided by sqrt(d)).
POOLINGS = ("pooling", "additive", "dot", "scaled_dot", "general", "cosine", "mha")


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
    elif attention == "mha":
        layer = zoo_layers.MultiHeadAttention(num_heads, max(1, width // num_heads),
                                              name=name)
    else:
        layer = zoo_layers.get(attention, name=name)
    pooled = layer(query, x)  # value mask: the padding mask of x
    return keras.layers.Reshape((width,), name="pooled")(pooled)


@keras.saving.register_keras_serializable(package="attention_zoo")
class AttnTextBackbone(Backbone):
    """``embedding -> encoder -> attention pooling over tokens``; padding
    (id 0) is masked throughout.

    Args:
        vocab_size: embedding rows (the preprocessor's ``vocab_size``).
        max_length: the longest id sequence (the positional table's size).
        encoder: ``"bigru"``, ``"transformer"`` (``PositionalEmbedding`` +
            pre-norm ``TransformerEncoder`` blocks) or ``"none"`` (attention
            pools the token / n-gram embeddings directly: fastest).
        attention: ``"pooling"`` (``AttentionPooling1D``) or a sequence layer
            of the factory attending from a learned query: ``"additive"``,
            ``"dot"``, ``"scaled_dot"``, ``"general"``, ``"cosine"``, ``"mha"``.
        embed_dim, hidden, num_heads, num_layers: sizes (``hidden``: GRU
            units per direction).
        dropout: after the embedding (and inside transformer blocks).
        sequence_length: None (the default) takes ``(batch, T)`` ids of any
            ``T <= max_length``; an int fixes ``T`` (for exports).

    Input ``(batch, T)`` int32 ids; output ``(batch, width)`` pooled features,
    ``width`` = ``2 * hidden`` for the BiGRU, ``embed_dim`` otherwise.
    """

    def __init__(self, vocab_size: int, max_length: int = 128, encoder: str = "bigru",
                 attention: str = "additive", embed_dim: int = 128, hidden: int = 64,
                 num_heads: int = 4, num_layers: int = 1, dropout: float = 0.3,
                 sequence_length: int | None = None, name: str = "attn_text_backbone",
                 **kwargs: Any) -> None:
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, received {encoder!r}")
        if attention not in POOLINGS:
            raise ValueError(f"attention must be one of {POOLINGS}, received "
                             f"{attention!r}")
        if not isinstance(vocab_size, int) or vocab_size < 3:
            raise ValueError(f"vocab_size must be an int >= 3, received {vocab_size!r}")
        ids = keras.Input((sequence_length,), dtype="int32", name="token_ids")
        x = keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True,
                                   name="embedding")(ids)
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
        if encoder == "bigru":
            x = keras.layers.Bidirectional(
                keras.layers.GRU(hidden, return_sequences=True), name="bigru")(x)
            width = 2 * hidden
        elif encoder == "none":
            width = embed_dim
        else:
            x = zoo_layers.PositionalEmbedding(max_length, mode="learned",
                                               name="positions")(x)
            for i in range(num_layers):
                x = zoo_layers.TransformerEncoder(num_heads, ff_dim=2 * embed_dim,
                                                  dropout=dropout, norm_first=True,
                                                  name=f"encoder{i + 1}")(x)
            width = embed_dim
        pooled = _pool(x, attention, width, num_heads)
        super().__init__(inputs=ids, outputs=pooled, name=name, **kwargs)
        self._arguments = {
            "vocab_size": vocab_size, "max_length": max_length, "encoder": encoder,
            "attention": attention, "embed_dim": embed_dim, "hidden": hidden,
            "num_heads": num_heads, "num_layers": num_layers, "dropout": dropout,
            "sequence_length": sequence_length}

    @property
    def token_attention(self) -> keras.layers.Layer:
        """The layer that pools over tokens (its scores explain a prediction)."""
        return self.get_layer("token_attention")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._arguments}
