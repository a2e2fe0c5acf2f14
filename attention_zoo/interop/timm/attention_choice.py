"""Which zoo layer name and arguments reproduce a timm model's attention
modules: ``from_timm`` converts each module with its widths written out,
while a zoo backbone gives every block one name and one set of arguments
and lets the name's rule size each layer; ``zoo_attention`` finds the name
and arguments under which every converted layer is rebuilt exactly."""

from __future__ import annotations

import itertools
from typing import Any

import keras
import numpy as np

from attention_zoo import layers as zoo_layers
from attention_zoo.layers.base import ConvAttention
from attention_zoo.layers.registry import FEATURE_MAP, LAYERS

#: Config keys that do not describe what a layer computes.
_NOT_SETTINGS = ("name", "trainable", "dtype")


def settings(layer: keras.layers.Layer) -> dict[str, Any]:
    return {k: v for k, v in layer.get_config().items() if k not in _NOT_SETTINGS}


def _reproduces(name: str, kwargs: dict[str, Any], layer: keras.layers.Layer,
                shape: tuple) -> bool:
    """Whether ``layers.get(name, **kwargs)`` built for ``shape`` holds
    ``layer``'s weights and computes what it does on a random input."""
    try:
        candidate = zoo_layers.get(name, **kwargs)
        candidate.build((None, None, None, shape[-1]))
    except ValueError:  # arguments the layer refuses
        return False
    if [tuple(w.shape) for w in candidate.weights] != \
            [tuple(w.shape) for w in layer.weights]:
        return False
    candidate.set_weights(layer.get_weights())
    x = np.random.default_rng(0).standard_normal((1, *shape)).astype("float32")
    try:
        got = keras.ops.convert_to_numpy(candidate(x))
    except ValueError:  # an input size the arguments do not admit
        return False
    want = keras.ops.convert_to_numpy(layer(x))
    return bool(np.allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max()))


def _width_ratios(configs: list[dict[str, Any]], channels: list[int],
                  class_defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """The zoo's ratio arguments (``reduction``: channels per unit, or
    ``rd_ratio``: units per channel) for each width the converter wrote
    out, as the widest block's module has it: for a model whose widths
    follow another ratio than the zoo name's default (resnetrs's 1/4 SE)."""
    widest = max(range(len(configs)), key=channels.__getitem__)
    ratios = []
    for key, value in configs[widest].items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 \
                or all(c.get(key) == value for c in configs):
            continue
        reduction = channels[widest] / value
        if "reduction" in class_defaults:
            ratios.append({"reduction": int(reduction) if reduction.is_integer()
                           else reduction})
        if "rd_ratio" in class_defaults:
            ratios.append({"rd_ratio": 1.0 / reduction})
    return ratios


def zoo_attention(converted: dict[str, keras.layers.Layer],
                   shapes: dict[str, tuple]) -> tuple[str, dict[str, Any]]:
    """The zoo name and arguments that reproduce every converted attention
    layer, the fewest arguments first. ``from_timm`` writes each layer's
    widths out (they vary by block); the backbone gives every block the
    same arguments and the name's rule for widths, so the arguments are the
    settings all converted layers share, and of those that are the class's
    own defaults (which the converter may have left unset) as few as
    reproduce the widths, with a width ratio where the name's default
    ratio does not."""
    layers = list(converted.values())
    cls = type(layers[0])
    if any(type(layer) is not cls for layer in layers):
        raise ValueError(f"its blocks hold different attention modules "
                         f"({sorted({type(l).__name__ for l in layers})})")
    if isinstance(layers[0], ConvAttention):
        raise ValueError(f"a {cls.__name__} in the blocks' feature-map attention "
                         f"slot; the zoo's backbones put conv attention in place of "
                         f"a 3x3 convolution instead")
    configs = [settings(layer) for layer in layers]
    # One probe per distinct layer: blocks of a stage share their settings.
    probes: dict[str, tuple[keras.layers.Layer, tuple]] = {}
    for (path, layer), config in zip(converted.items(), configs):
        probes.setdefault(repr((config, shapes[path])), (layer, shapes[path]))
    shared = {k: v for k, v in configs[0].items() if all(c.get(k) == v for c in configs)}
    class_defaults = settings(cls())
    widths = _width_ratios(configs, [shapes[path][-1] for path in converted],
                           class_defaults)
    found = []
    for entry in LAYERS:
        if entry.target is not cls or entry.kind != FEATURE_MAP:
            continue
        defaults = settings(zoo_layers.get(entry.name))
        changed = {k: v for k, v in shared.items() if defaults.get(k) != v}
        chosen = {k: v for k, v in changed.items() if class_defaults.get(k) != v}
        optional = [k for k in changed if k not in chosen]
        candidates = ({**width, **chosen, **{k: changed[k] for k in keys}}
                      for width in [{}, *widths] for size in range(len(optional) + 1)
                      for keys in itertools.combinations(optional, size))
        kwargs = next((kwargs for kwargs in candidates if all(
            _reproduces(entry.name, kwargs, layer, shape)
            for layer, shape in probes.values())), None)
        if kwargs is not None:
            found.append((len(kwargs), entry.name, kwargs))
    if not found:
        raise ValueError(f"no zoo layer name and arguments reproduce its "
                         f"{cls.__name__} attention in every block (the zoo's width "
                         f"rules differ from this model's)")
    _, name, kwargs = min(found, key=lambda f: f[:2])
    return name, kwargs
