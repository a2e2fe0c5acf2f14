"""Builds a small model around every registered layer and describes it: the
README's layer table and ``attention-zoo layers`` come from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from attention_zoo.layers.registry import CONV, FEATURE_MAP, LAYERS, SEQUENCE

#: Arguments a layer needs to be built for the catalog (others have defaults).
EXAMPLE_ARGS: dict[str, dict[str, Any]] = {
    "additive": {"units": 64}, "bahdanau": {"units": 64},
    "mha": {"num_heads": 8, "key_dim": 8},
    "multi_head": {"num_heads": 8, "key_dim": 8},
    "gqa": {"num_heads": 8, "key_dim": 8, "num_key_value_heads": 2},
    "positional": {"max_length": 128},
    "transformer": {"num_heads": 8, "ff_dim": 256},
    "bat": {"block_size": 4},  # timm's 7 does not divide the 32x32 example map
}


@dataclass
class LayerRow:
    name: str
    cls: str
    kind: str
    input_shapes: list[tuple]
    output_shape: tuple
    params: int


def example_shapes(kind: str, width: int = 64) -> list[tuple]:
    """Inputs (without batch) the catalog feeds a layer of ``kind``."""
    if kind == SEQUENCE:
        return [(10, width), (20, width)]  # query, value
    if kind in (FEATURE_MAP, CONV):
        return [(32, 32, width)]
    return [(20, width)]


def describe(name: str, width: int = 64, batch: int = 2) -> LayerRow:
    """Builds the layer ``name`` in a model, runs a random batch through it
    and reports its shapes and parameter count."""
    entry = LAYERS.entry(name)
    layer = LAYERS.create(name, **EXAMPLE_ARGS.get(entry.name, {}))
    shapes = example_shapes(entry.kind, width)
    inputs = [keras.Input(shape) for shape in shapes]
    model = keras.Model(inputs, layer(*inputs))
    rng = np.random.default_rng(0)
    data = [rng.standard_normal((batch, *s)).astype("float32") for s in shapes]
    output = model.predict(data if len(data) > 1 else data[0], verbose=0)
    if not np.all(np.isfinite(output)):
        raise RuntimeError(f"layer {name!r} produced non-finite outputs")
    return LayerRow(entry.name, type(layer).__name__, entry.kind,
                    [(batch, *s) for s in shapes], tuple(output.shape),
                    layer.count_params())


def describe_all(width: int = 64) -> list[LayerRow]:
    return [describe(entry.name, width) for entry in LAYERS]


def format_table(rows: list[LayerRow]) -> str:
    header = ("name", "class", "kind", "input shape(s)", "output shape", "params")
    body = [(r.name, r.cls, r.kind, " + ".join(str(s) for s in r.input_shapes),
             str(r.output_shape), f"{r.params:,}") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    line = "  ".join("{:<%d}" % w for w in widths)
    out = [line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in body]
    return "\n".join(out)
