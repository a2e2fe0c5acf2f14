"""Every layer of the library as a case of the contract harness."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import attention_zoo.layers as L
import reference as ref

B, TQ, TV = 2, 3, 5       # batch, query steps, value steps
H, W, C = 6, 5, 16        # feature map; H != W catches axis mix-ups
T, D = 5, 16              # sequence blocks


@dataclass
class Case:
    id: str
    cls: type
    kwargs: dict
    kind: str                      # "sequence" | "feature_map" | "block"
    shapes: list                   # per positional input, without batch
    reference: Callable
    call_kwargs: dict = field(default_factory=dict)
    # Output at a query whose keys are all masked, given the layer.
    all_masked_output: Callable[[Any], np.ndarray] | None = None
    maps: bool = True              # supports return_attention_scores

    def make(self, **extra: Any) -> Any:
        return self.cls(**self.kwargs, **extra)

    def inputs(self, seed: int = 0, scale: float = 1.0) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [(rng.standard_normal((B, *s)) * scale).astype("float32")
                for s in self.shapes]

    @property
    def masks(self) -> bool:
        return self.kind != "feature_map"


def _zeros(layer: Any) -> np.ndarray:
    return np.zeros(())


def _output_bias(layer: Any) -> np.ndarray:
    return layer.output_bias.numpy()


def seq(id: str, cls: type, q: int = 8, k: int | None = None, v: int = 6,
        reference=ref.single_head, masked=_zeros, **kwargs: Any) -> Case:
    shapes = [(TQ, q), (TV, v)] + ([] if k is None else [(TV, k)])
    return Case(id, cls, kwargs, "sequence", shapes, reference,
                all_masked_output=masked)


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

BY_ID = {case.id: case for case in CASES}
