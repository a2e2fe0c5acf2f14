"""Every layer of the library as a case of the contract harness; timm's
families keep theirs in cases_<family>.py."""

from __future__ import annotations

import attention_zoo.layers as L
import cases_channel
import cases_conv
import cases_coordinate
import cases_non_local
import cases_self_attention
import reference as ref
from case import (B, C, D, TQ, TV, H, T, W, Case,  # noqa: F401 (re-exported)
                  _output_bias, _zeros, seq)

CASES = [
    seq("additive", L.AdditiveAttention, q=8, k=7, units=5),
    seq("additive_nobias", L.AdditiveAttention, q=8, units=4, use_bias=False),
    seq("dot", L.DotProductAttention, q=6, k=6, score="dot"),
    seq("scaled_dot", L.DotProductAttention, q=6, k=6, score="scaled_dot"),
    seq("general", L.DotProductAttention, q=8, k=7, score="general"),
    seq("concat", L.DotProductAttention, q=8, k=7, score="concat", units=5),
    seq("cosine", L.DotProductAttention, q=6, k=6, score="cosine"),
    seq("mha", L.MultiHeadAttention, q=8, v=6, k=7, num_heads=2, key_dim=4,
        value_dim=3, reference=ref.multi_head, masked=_output_bias),
    seq("mha_gqa", L.MultiHeadAttention, q=8, v=6, num_heads=4, key_dim=4,
        num_key_value_heads=2, output_dim=5, reference=ref.multi_head,
        masked=_output_bias),
    Case("se", L.SqueezeExcite, {"reduction": 4, "min_units": 2}, "feature_map",
         [(H, W, C)], ref.squeeze_excite),
    Case("channel", L.ChannelAttention, {"reduction": 4, "min_units": 2},
         "feature_map", [(H, W, C)], ref.channel),
    Case("eca", L.EfficientChannelAttention, {}, "feature_map", [(H, W, C)],
         ref.eca),
    Case("spatial", L.SpatialAttention, {}, "feature_map", [(H, W, C)],
         ref.spatial),
    Case("cbam", L.CBAM, {"reduction": 4, "min_units": 2, "kernel_size": 3},
         "feature_map", [(H, W, C)], ref.cbam),
    Case("coordinate", L.CoordinateAttention, {"reduction": 4, "min_units": 2},
         "feature_map", [(H, W, C)], ref.coordinate),
    Case("gc", L.GlobalContext, {"reduction": 4, "min_units": 2}, "feature_map",
         [(H, W, C)], ref.global_context),
    Case("bam", L.BottleneckAttention, {"reduction": 4, "min_units": 2,
                                        "dilation": 2},
         "feature_map", [(H, W, C)], ref.bam),
    Case("attention_pooling", L.AttentionPooling1D, {"units": 7}, "block",
         [(T, D)], ref.attention_pooling, all_masked_output=_zeros),
    Case("positional_sinusoidal", L.PositionalEmbedding, {"max_length": 8},
         "block", [(T, D)], ref.positional, maps=False),
    Case("positional_learned", L.PositionalEmbedding,
         {"max_length": 8, "mode": "learned"}, "block", [(T, D)], ref.positional, maps=False),
    Case("transformer_post", L.TransformerEncoder,
         {"num_heads": 2, "ff_dim": 12}, "block", [(T, D)], ref.transformer),
    Case("transformer_pre_gqa", L.TransformerEncoder,
         {"num_heads": 4, "ff_dim": 12, "num_key_value_heads": 2,
          "norm_first": True}, "block", [(T, D)], ref.transformer),
]

CASES += [*cases_channel.CASES, *cases_coordinate.CASES, *cases_conv.CASES,
          *cases_self_attention.CASES, *cases_non_local.CASES]

BY_ID = {case.id: case for case in CASES}
