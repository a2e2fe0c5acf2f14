"""Harness cases of timm's non-local attention layers (``nl``, ``bat``)."""

import reference_non_local as ref
from attention_zoo.layers.non_local import BATNonLocalAttention, NonLocalAttention
from case import C, H, W, Case

CASES: list = [
    Case("nl", NonLocalAttention, {}, "feature_map", [(H, W, C)], ref.non_local),
    # BAT needs H and W divisible by block_size; H != W still catches axis
    # mix-ups, and 3 rows / 2 columns per band exercise the Kronecker layout.
    # timm's dropout (0.2) stays on: TFLite export must handle its seed.
    Case("bat", BATNonLocalAttention, {"block_size": 2},
         "feature_map", [(6, 4, C)], ref.bat),
]
