"""``Backbone``: the network from its inputs up to features, KerasHub's way.

A backbone is a functional ``keras.Model`` subclass built by its constructor,
so its ``get_config`` is its constructor's arguments and it loads from a
``.keras`` file or a preset on any backend. Tasks (``models.task.Task``) put
a head on one.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import keras

from attention_zoo.dtype_policy import global_dtype_policy


#: Python's recursion limit while a backbone maps its graph.
GRAPH_RECURSION_LIMIT = 20_000


def build_under_policy(cls: type, config: dict[str, Any]) -> Any:
    """``cls(**config)`` built under the global dtype policy
    ``config["dtype"]`` holds (the policy it was saved under, serialized as
    Keras serializes a layer's; configs without one build under the current
    policy)."""
    config = dict(config)
    policy = config.pop("dtype", None)
    if policy is None:
        return cls(**config)
    with global_dtype_policy(keras.dtype_policies.get(policy)):
        return cls(**config)


class Backbone(keras.Model):
    """Base class of the zoo's backbones.

    Subclasses build their layers, then call ``super().__init__(inputs=...,
    outputs=..., name=...)``, and list their own constructor arguments in
    ``get_config``. ``variable_groups()`` says which variables take which
    optimizer treatment (``training.optimizers.VariableGroups``); the default
    names none, so every variable trains alike.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Keras maps a functional graph recursively, a frame per layer on
        # the longest path: timm's 269-layer ResNets (seresnet269d,
        # resnetrs420) pass Python's default limit of 1,000 frames.
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, GRAPH_RECURSION_LIMIT))
        try:
            super().__init__(*args, **kwargs)
        finally:
            sys.setrecursionlimit(limit)

    def get_config(self) -> dict[str, Any]:
        # Not Functional's graph config: the constructor rebuilds the graph.
        # "dtype": the global policy it was built under, so a mixed-precision
        # model loads mixed (Keras layers keep their policy the same way).
        return {"name": self.name, "trainable": self.trainable,
                "dtype": keras.dtype_policies.serialize(self.dtype_policy)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Backbone":
        return build_under_policy(cls, config)

    def variable_groups(self) -> Any:
        from attention_zoo.training.optimizers import VariableGroups

        return VariableGroups()

    @classmethod
    def from_preset(cls, preset: str | os.PathLike, **kwargs: Any) -> "Backbone":
        """The backbone of a shipped preset (a name of ``models.pretrained()``
        or a preset folder), with its trained weights. ``kwargs`` go to the
        preset's task builder (for example ``num_classes`` is not needed:
        the backbone has no head)."""
        from attention_zoo.models.presets import load_preset

        task = load_preset(preset, **kwargs)
        backbone = getattr(task, "backbone", None)
        if not isinstance(backbone, cls):
            raise ValueError(f"preset {str(preset)!r} holds a {type(task).__name__} "
                             f"whose backbone is not a {cls.__name__} (it is "
                             f"{type(backbone).__name__})")
        return backbone
