"""Harness cases of timm's channel and context attention layers: one per new
layer (ese, ecam, ceca, ge, lcbam) and one per existing layer's new options
(combined), at the default shapes. The existing layers' own cases (se,
channel, eca, spatial, cbam, gc, bam) are in cases.py."""

from case import C, H, W, Case

import reference_channel as ref
from attention_zoo.layers.channel import (EffectiveSqueezeExcite,
                                          EfficientChannelAttention,
                                          SqueezeExcite)
from attention_zoo.layers.context import GlobalContext
from attention_zoo.layers.gather_excite import GatherExcite
from attention_zoo.layers.spatial import CBAM


def _case(id: str, cls: type, reference, **kwargs) -> Case:
    return Case(id, cls, kwargs, "feature_map", [(H, W, C)], reference)


CASES: list = [
    # timm's rounding (hidden 8), no biases, mean-plus-max, hard sigmoid.
    _case("se_timm", SqueezeExcite, ref.squeeze_excite, reduction=4, divisor=8,
          use_bias=False, add_maxpool=True, gate="hard_sigmoid"),
    _case("ese", EffectiveSqueezeExcite, ref.effective_squeeze_excite,
          add_maxpool=True),
    _case("ecam", EfficientChannelAttention, ref.eca, use_mlp=True,
          min_kernel_size=3),
    _case("ceca", EfficientChannelAttention, ref.eca, padding="circular",
          kernel_size=5, gate="hard_sigmoid"),
    # 6 x 5 gathered to 3 x 3 and resized back (rows doubled, columns not).
    _case("ge", GatherExcite, ref.gather_excite, extent=2, add_maxpool=True),
    # Two learned stride-2 gathers: 6 x 5 -> 3 x 3 -> 2 x 2.
    _case("ge_params", GatherExcite, ref.gather_excite, extent=4,
          extra_params=True, use_mlp=False, gate="hard_sigmoid"),
    # Both fusions (timm's gc and gca in one) on the mean context.
    _case("gc_timm", GlobalContext, ref.global_context, use_attn=False,
          fuse_scale=True, reduction=8, min_units=1, divisor=1, epsilon=1e-6),
    _case("lcbam", CBAM, ref.cbam, light=True, use_bias=False, batch_norm=True,
          kernel_size=3, reduction=4, min_units=1, divisor=1),
]
