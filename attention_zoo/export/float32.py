"""A float32 copy of a mixed-precision model, for export.

A model trained under ``mixed_bfloat16`` or ``mixed_float16`` computes in
16 bits but keeps float32 variables. TFLite has no built-in bfloat16
kernels and ONNX Runtime's CPU kernels few, so ``export`` writes such a
model in float32: the same layers and weights, every policy float32. Its
outputs differ from the 16-bit model's by that precision's rounding; the
export is verified against the float32 copy.
"""

from __future__ import annotations

from typing import Any, Callable

import keras

from attention_zoo.dtype_policy import global_dtype_policy


def _renamed(node: Any, rename: Callable[[str], str]) -> Any:
    """A serialized model ``node`` with the name of every dtype policy in it
    (layers', and the zoo's backbones' and tasks') passed through ``rename``."""
    if isinstance(node, dict) and "DTypePolicy" in str(node.get("class_name", "")) \
            and isinstance(node.get("config"), dict):
        return {**node, "config": {**node["config"],
                                   "name": rename(str(node["config"].get("name")))}}
    if isinstance(node, dict):
        return {key: _renamed(value, rename) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_renamed(value, rename) for value in node)
    return node


def mixed_policy(model: keras.Model) -> str | None:
    """The mixed policy some layer of ``model`` (nested models included)
    computes under, such as ``"mixed_bfloat16"``; None if none does."""
    names = {model.dtype_policy.name}

    def note(name: str) -> str:
        names.add(name)
        return name

    _renamed(keras.saving.serialize_keras_object(model), note)
    mixed = sorted(name for name in names if name.startswith("mixed_"))
    return mixed[0] if mixed else None


def float32_copy(model: keras.Model) -> keras.Model:
    """``model`` rebuilt from its config with every dtype policy float32,
    holding ``model``'s weights (the variables of a mixed policy are
    float32 already, so nothing is rounded)."""
    config = _renamed(keras.saving.serialize_keras_object(model),
                      lambda name: "float32" if name.startswith("mixed_") else name)
    with global_dtype_policy("float32"):
        copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy
