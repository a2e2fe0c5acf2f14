"""Attention layers for Keras 3, written with ``keras.ops`` only.

Sequence layers take ``(query, value, key=None)``; feature-map layers take
channels-last ``(batch, H, W, C)``; every layer returns its attention maps
when called with ``return_attention_scores=True``, eagerly and on
``keras.Input`` alike. ``get(name, **kwargs)`` builds a layer by name;
``names()`` lists them.
"""

from attention_zoo.layers.additive import AdditiveAttention
from attention_zoo.layers.base import FeatureMapAttention, SequenceAttention
from attention_zoo.layers.channel import (ChannelAttention,
                                          EfficientChannelAttention,
                                          SqueezeExcite)
from attention_zoo.layers.context import GlobalContext
from attention_zoo.layers.coordinate import CoordinateAttention
from attention_zoo.layers.dot_product import DotProductAttention
from attention_zoo.layers.multi_head import MultiHeadAttention
from attention_zoo.layers.pooling import AttentionPooling1D
from attention_zoo.layers.positional import PositionalEmbedding
from attention_zoo.layers.registry import (FEATURE_MAP, SEQUENCE,
                                           SEQUENCE_BLOCK, get, names)
from attention_zoo.layers.spatial import CBAM, BottleneckAttention, SpatialAttention
from attention_zoo.layers.transformer import TransformerEncoder

__all__ = [
    "AdditiveAttention", "AttentionPooling1D", "BottleneckAttention", "CBAM",
    "ChannelAttention", "CoordinateAttention", "DotProductAttention",
    "EfficientChannelAttention", "FeatureMapAttention", "GlobalContext",
    "MultiHeadAttention", "PositionalEmbedding", "SequenceAttention",
    "SpatialAttention", "SqueezeExcite", "TransformerEncoder",
    "FEATURE_MAP", "SEQUENCE", "SEQUENCE_BLOCK", "get", "names",
]
