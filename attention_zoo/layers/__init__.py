"""Attention layers for Keras 3, written with ``keras.ops`` only.

Sequence layers take ``(query, value, key=None)``; feature-map layers take
channels-last ``(batch, H, W, C)``; layers that replace a convolution
(``sk``, ``splat``, ``lambda``, ``bottleneck``, ``halo``) take ``(batch, H,
W, C)`` and, like ``Conv2D``, ``filters`` and ``strides``. Every layer
returns its attention maps when called with ``return_attention_scores=True``,
eagerly and on ``keras.Input`` alike. ``get(name, **kwargs)`` builds a layer
by name (timm's ``create_attn`` names among them); ``names()`` lists them.
"""

from attention_zoo.layers.additive import AdditiveAttention
from attention_zoo.layers.base import (ConvAttention, FeatureMapAttention,
                                       SequenceAttention)
from attention_zoo.layers.channel import (ChannelAttention,
                                          EfficientChannelAttention,
                                          EffectiveSqueezeExcite, SqueezeExcite)
from attention_zoo.layers.context import GlobalContext
from attention_zoo.layers.coordinate import (CoordinateAttention,
                                             EfficientLocalAttention,
                                             SimpleCoordinateAttention,
                                             StripAttention)
from attention_zoo.layers.dot_product import DotProductAttention
from attention_zoo.layers.gather_excite import GatherExcite
from attention_zoo.layers.lambda_layer import LambdaLayer
from attention_zoo.layers.multi_head import MultiHeadAttention
from attention_zoo.layers.non_local import BATNonLocalAttention, NonLocalAttention
from attention_zoo.layers.pooling import AttentionPooling1D
from attention_zoo.layers.positional import PositionalEmbedding
from attention_zoo.layers.registry import (CONV, FEATURE_MAP, SEQUENCE,
                                           SEQUENCE_BLOCK, get, names)
from attention_zoo.layers.selective_kernel import SelectiveKernel
from attention_zoo.layers.self_attention_2d import (BottleneckSelfAttention,
                                                    HaloAttention,
                                                    MultiHeadConvAttention)
from attention_zoo.layers.spatial import CBAM, BottleneckAttention, SpatialAttention
from attention_zoo.layers.split_attention import SplitAttention
from attention_zoo.layers.transformer import TransformerEncoder

__all__ = [
    "AdditiveAttention", "AttentionPooling1D", "BATNonLocalAttention",
    "BottleneckAttention", "BottleneckSelfAttention", "CBAM", "ChannelAttention",
    "ConvAttention", "CoordinateAttention", "DotProductAttention",
    "EffectiveSqueezeExcite", "EfficientChannelAttention",
    "EfficientLocalAttention", "FeatureMapAttention", "GatherExcite",
    "GlobalContext", "HaloAttention", "LambdaLayer", "MultiHeadAttention",
    "MultiHeadConvAttention", "NonLocalAttention", "PositionalEmbedding",
    "SelectiveKernel", "SequenceAttention", "SimpleCoordinateAttention",
    "SpatialAttention", "SplitAttention", "SqueezeExcite", "StripAttention",
    "TransformerEncoder",
    "CONV", "FEATURE_MAP", "SEQUENCE", "SEQUENCE_BLOCK", "get", "names",
]
