"""The model zoo's names: one registry of model builders (``create``,
``names``). Shipped weights are ``models.presets``'."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import keras

from attention_zoo.registry import Registry

MODELS = Registry("model")
F = TypeVar("F", bound=Callable[..., keras.Model])


def register_model(name: str) -> Callable[[F], F]:
    def wrap(builder: F) -> F:
        MODELS.add(name, builder)
        return builder

    return wrap


def create(name: str, /, **kwargs: Any) -> keras.Model:
    """Builds the zoo model ``name`` (see ``names()``) with ``kwargs``."""
    return MODELS.create(name, **kwargs)


def names() -> list[str]:
    return MODELS.names()
