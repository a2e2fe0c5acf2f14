"""Harness cases of timm's coordinate attention layers (the zoo's own
``coordinate`` case is in cases.py). Each case turns on options its timm
defaults leave off, so the harness covers them on every backend."""

import reference_coordinate as ref
from case import C, H, W, Case

from attention_zoo.layers.coordinate import (CoordinateAttention,
                                             EfficientLocalAttention,
                                             SimpleCoordinateAttention,
                                             StripAttention)
from attention_zoo.layers.registry import LAYERS

CASES: list = [
    Case("coord", CoordinateAttention,
         {**LAYERS.entry("coord").defaults, "gate": "hard_sigmoid"},
         "feature_map", [(H, W, C)], ref.coordinate),
    Case("scoord", SimpleCoordinateAttention, {"residual": True}, "feature_map",
         [(H, W, C)], ref.simple_coordinate),
    Case("ela", EfficientLocalAttention, {"kernel_size": 3, "groups": 2},
         "feature_map", [(H, W, C)], ref.efficient_local),
    Case("strip", StripAttention, {}, "feature_map", [(H, W, C)], ref.strip),
]
