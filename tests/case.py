"""What a case of the contract harness is (tests/cases.py lists them)."""

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
    # How the output grows with the input: 2 for a lambda layer (q . lambda
    # multiplies two linear functions of x), whose true output at the large
    # inputs of test_dtype_policy lies beyond float16's range.
    degree: int = 1

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
