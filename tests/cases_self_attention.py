"""Harness cases of timm's 2-D self-attention layers (``lambda``,
``bottleneck``, ``halo``): small maps and 2 heads, so the harness stays fast."""

import reference_self_attention as ref
from attention_zoo.layers.lambda_layer import LambdaLayer
from attention_zoo.layers.self_attention_2d import BottleneckSelfAttention, HaloAttention
from case import C, H, W, Case

CASES: list = [
    # feat_size from the build shape (6, 5): H != W catches axis mix-ups.
    Case("bottleneck", BottleneckSelfAttention, {"num_heads": 2},
         "feature_map", [(H, W, C)], ref.bottleneck),
    # Odd W: the 2x2 pool's last window covers one column.
    Case("bottleneck_strided", BottleneckSelfAttention,
         {"filters": 8, "strides": 2, "num_heads": 2, "dim_head": 4,
          "qkv_bias": True, "scale_pos_embed": True},
         "feature_map", [(H, W, C)], ref.bottleneck),
    # 2 x 3 blocks of 2 x 2 queries, each on a 4 x 4 window.
    Case("halo", HaloAttention, {"num_heads": 2, "block_size": 2, "halo_size": 1},
         "feature_map", [(4, 6, C)], ref.halo),
    # Strided queries: 1 x 2 blocks of 2 x 2 (every other position of 4 x 4).
    Case("halo_strided", HaloAttention,
         {"filters": 8, "strides": 2, "num_heads": 2, "block_size": 4,
          "halo_size": 1, "qkv_bias": True, "scale_pos_embed": True},
         "feature_map", [(4, 8, C)], ref.halo),
    Case("lambda", LambdaLayer, {"num_heads": 2, "dim_head": 4, "r": 3},
         "feature_map", [(H, W, C)], ref.lambda_layer, degree=2),
    Case("lambda_relative", LambdaLayer,
         {"filters": 8, "strides": 2, "num_heads": 2, "dim_head": 4, "r": None},
         "feature_map", [(4, 5, C)], ref.lambda_layer, degree=2),
]
