"""The layer factory: ``get(name, **kwargs)`` and ``names()``, as timm has."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import keras

from attention_zoo.registry import Registry

LAYERS = Registry("layer")

#: Layer kinds, so a model can ask for "any feature-map attention".
SEQUENCE = "sequence"        # (query, value, key=None) -> context
FEATURE_MAP = "feature_map"  # (batch, H, W, C) -> same shape
SEQUENCE_BLOCK = "sequence_block"  # (batch, T, D) -> pooled or same shape
#: Layers that replace a convolution, as timm's sk, splat, lambda, bottleneck
#: and halo do: (batch, H, W, C) -> (batch, H / strides, W / strides, filters).
CONV = "conv"

T = TypeVar("T", bound=type)


def register(name: str, kind: str, **defaults: Any) -> Callable[[T], T]:
    """Class decorator: Keras-serializable under ``attention_zoo>Class`` and
    reachable from the factory as ``name``."""

    def wrap(cls: T) -> T:
        cls = keras.saving.register_keras_serializable(package="attention_zoo")(cls)
        LAYERS.add(name, cls, kind=kind, **defaults)
        return cls

    return wrap


def alias(name: str, target: str, **defaults: Any) -> None:
    """Another factory name for a registered layer, with preset arguments."""
    entry = LAYERS.entry(target)
    LAYERS.add(name, entry.target, kind=entry.kind, **{**entry.defaults, **defaults})


def get(name: str, /, **kwargs: Any) -> keras.layers.Layer:
    """Builds the layer registered as ``name``.

    Example: ``get("cbam", reduction=8)`` or ``get("general")`` (Luong's
    general score). Raises ``ValueError`` listing the known names.
    """
    return LAYERS.create(name, **kwargs)


def names(kind: str | None = None) -> list[str]:
    """Registered layer names, optionally of one kind (``"feature_map"``,
    ``"conv"``, ``"sequence"``, ``"sequence_block"``)."""
    return LAYERS.names(kind)
