"""Harness cases of timm's conv attention layers (``sk``, ``splat``): 8
input channels, the defaults and a strided, grouped, dilated variant."""

from attention_zoo.layers.selective_kernel import SelectiveKernel
from attention_zoo.layers.split_attention import SplitAttention
import reference_conv as ref
from case import H, W, Case

SHAPES = [(H, W, 8)]

CASES: list = [
    Case("sk", SelectiveKernel, {}, "feature_map", SHAPES, ref.selective_kernel),
    # Stride 2 with the dilated branch (a stride-1 conv, subsampled), grouped
    # branches, more filters than inputs.
    Case("sk_strided", SelectiveKernel,
         {"filters": 12, "strides": 2, "groups": 2, "rd_channels": 4},
         "feature_map", SHAPES, ref.selective_kernel),
    Case("splat", SplitAttention, {}, "feature_map", SHAPES, ref.split_attention),
    Case("splat_strided", SplitAttention,
         {"filters": 12, "strides": 2, "groups": 2, "dilation": 2,
          "use_batch_norm": True, "rd_channels": 4},
         "feature_map", SHAPES, ref.split_attention),
]
