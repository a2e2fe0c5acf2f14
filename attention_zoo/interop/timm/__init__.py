"""``from_timm``: timm's attention modules (as ``timm.layers.create_attn``
makes them) and models as Keras layers and models with the same weights,
channels-last.

Converters register against timm classes with ``@converts(module, name)``;
the classes resolve when ``from_timm`` first runs, so importing this package
needs neither torch nor timm.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import keras

Converter = Callable[[Any], Any]

_REGISTERED: list[tuple[str, str, Converter]] = []
_BY_CLASS: dict[type, Converter] = {}


def converts(module: str, name: str) -> Callable[[Converter], Converter]:
    """Registers ``fn(torch_module) -> keras object`` for the timm class
    ``module.name``, and (unless a subclass has its own) for its subclasses."""

    def wrap(fn: Converter) -> Converter:
        _REGISTERED.append((module, name, fn))
        _BY_CLASS.clear()
        return fn

    return wrap


def _resolved() -> dict[type, Converter]:
    if not _BY_CLASS:
        for module, name, fn in _REGISTERED:
            _BY_CLASS[getattr(importlib.import_module(module), name)] = fn
    return _BY_CLASS


def supported() -> list[str]:
    """The timm classes ``from_timm`` converts, as ``module.Class``."""
    return sorted(f"{module}.{name}" for module, name, _ in _REGISTERED)


def from_timm(obj: Any) -> Any:
    """The Keras equivalent of a timm module or model, built, with its weights.

    ``obj`` is a ``torch.nn.Module``: an attention module (``create_attn(name,
    channels)``) gives the zoo's layer of that name, taking ``(batch, H, W,
    C)`` where the module takes ``(batch, C, H, W)``. The module's inference
    behaviour is converted (BatchNorm running statistics, no dropout).

    Raises ``TypeError`` for a non-module and ``ValueError`` listing the
    supported classes for a module it cannot convert.
    """
    try:
        import torch
    except ImportError as error:
        raise ImportError("from_timm needs PyTorch and timm: pip install "
                          "'attention-zoo[timm]'") from error
    if not isinstance(obj, torch.nn.Module):
        raise TypeError(f"from_timm expects a torch.nn.Module from timm, "
                        f"received {type(obj).__name__}")
    converters = _resolved()
    for cls in type(obj).__mro__:
        if cls in converters:
            with torch.no_grad():
                return converters[cls](obj)
    raise ValueError(f"from_timm cannot convert {type(obj).__module__}."
                     f"{type(obj).__qualname__}; it converts: {', '.join(supported())}")


def build(layer: keras.layers.Layer, channels: int,
          size: tuple[int | None, int | None] = (None, None)) -> keras.layers.Layer:
    """Builds a channels-last layer for ``channels`` inputs (``size``: the
    feature map's ``(H, W)`` where the layer needs it)."""
    layer.build((None, *size, channels))
    return layer


# The converters of each family register themselves on import.
from attention_zoo.interop.timm import (byobnet, channel, conv,  # noqa: E402,F401
                                         coordinate, non_local, resnet,
                                         self_attention)
