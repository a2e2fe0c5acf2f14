"""A float32 copy of a mixed-precision model, for export.

A model trained under ``mixed_bfloat16`` or ``mixed_float16`` computes in
16 bits but keeps float32 variables. TFLite has no built-in bfloat16
kernels and ONNX Runtime's CPU kernels few, so ``export`` writes such a
model in float32: the same layers and weights, every policy float32. Its
outputs differ from the 16-bit model's by that precision's rounding; the
export is verified against the float32 copy.
"""

from __future__ import annotations

from typing import Any

import keras

from attention_zoo.dtype_policy import global_dtype_policy


def _is_policy(value: Any) -> bool:
    return isinstance(value, dict) and "DTypePolicy" in str(value.get("class_name", "")) \
        and isinstance(value.get("config"), dict)


def _policy_names(node: Any, found: set[str]) -> set[str]:
    if _is_policy(node):
        found.add(str(node["config"].get("name")))
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "dtype" and isinstance(value, str):  # the zoo's Backbone and Task
                found.add(value)
            _policy_names(value, found)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _policy_names(value, found)
    return found


def _to_float32(node: Any) -> Any:
    if _is_policy(node) and str(node["config"].get("name", "")).startswith("mixed_"):
        return {**node, "config": {**node["config"], "name": "float32"}}
    if isinstance(node, dict):
        return {key: "float32" if key == "dtype" and isinstance(value, str)
                and value.startswith("mixed_") else _to_float32(value)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_to_float32(value) for value in node]
    return node


def mixed_policy(model: keras.Model) -> str | None:
    """The mixed policy some layer of ``model`` (nested models included)
    computes under, such as ``"mixed_bfloat16"``; None if none does."""
    names = _policy_names(keras.saving.serialize_keras_object(model), set())
    names.add(model.dtype_policy.name)
    mixed = sorted(name for name in names if name.startswith("mixed_"))
    return mixed[0] if mixed else None


def float32_copy(model: keras.Model) -> keras.Model:
    """``model`` rebuilt from its config with every dtype policy float32,
    holding ``model``'s weights (the variables of a mixed policy are
    float32 already, so nothing is rounded)."""
    config = _to_float32(keras.saving.serialize_keras_object(model))
    with global_dtype_policy("float32"):
        copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy
