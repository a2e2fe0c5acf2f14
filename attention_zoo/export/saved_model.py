"""SavedModel writing: named serving signatures at a fixed or dynamic batch."""

from __future__ import annotations

import os
from typing import Any

import keras


def serving_signature(model: keras.Model, batch_size: int | None) -> list:
    import tensorflow as tf

    return [tf.TensorSpec((batch_size, *tuple(t.shape)[1:]), t.dtype,
                          name=_input_name(t, i))
            for i, t in enumerate(model.inputs)]


def _input_name(tensor: Any, index: int) -> str:
    name = getattr(tensor, "name", "") or ""
    return name if name.isidentifier() else f"input_{index}"


def input_names(model: keras.Model) -> list[str]:
    """The names the exported signatures give the model's inputs, in order."""
    return [spec.name for spec in serving_signature(model, None)]


def write_saved_model(model: keras.Model, directory: str | os.PathLike,
                      batch_size: int | None = None, frozen: bool = False) -> None:
    """Writes ``model`` as a SavedModel whose ``serve`` endpoint is also the
    ``serving_default`` signature, inputs named as the model's.

    ``frozen``: on JAX, the weights go into the graph as constants instead of
    variables, for the TFLite converter: JAX's stateful endpoint reads and
    writes back every non-trainable variable, a dropout layer's uint32 seed
    among them, and TFLite has no uint32 variables."""
    specs = serving_signature(model, batch_size)

    def serve(*args: Any) -> Any:
        return model(list(args) if len(args) > 1 else args[0], training=False)

    archive = keras.export.ExportArchive()
    archive.track(model)
    static = {"is_static": True} if frozen and keras.backend.backend() == "jax" else {}
    archive.add_endpoint("serve", serve, input_signature=specs, **static)
    archive.write_out(str(directory), verbose=False)


def output_order(name: str) -> tuple:
    """Sort key of a signature's outputs (``output_0``, ``output_1``, ...):
    a signature keeps them in a dict, by name."""
    tail = name.rsplit("_", 1)[-1]
    return (0, int(tail)) if tail.isdigit() else (1, name)
