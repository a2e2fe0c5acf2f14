"""Conversion to TFLite/LiteRT with built-in ops only, and running the result.

Issue #5 grows this into the full exporter (SavedModel, ONNX, quantization,
parity reports); the layer contract tests already convert through here.
"""

from __future__ import annotations

import tempfile
from typing import Any, Mapping, Sequence

import keras
import numpy as np


def _signature(model: keras.Model, batch_size: int | None) -> list:
    import tensorflow as tf

    return [tf.TensorSpec((batch_size, *tuple(t.shape)[1:]), t.dtype,
                          name=_input_name(t, i))
            for i, t in enumerate(model.inputs)]


def _input_name(tensor: Any, index: int) -> str:
    name = getattr(tensor, "name", "") or ""
    return name if name.isidentifier() else f"input_{index}"


def write_saved_model(model: keras.Model, directory: str,
                      batch_size: int | None = None) -> None:
    """Writes ``model`` as a SavedModel with a ``serve`` endpoint (also the
    ``serving_default`` signature), inputs named as the model's."""
    specs = _signature(model, batch_size)

    def serve(*args: Any) -> Any:
        return model(list(args) if len(args) > 1 else args[0], training=False)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=specs)
    archive.write_out(directory, verbose=False)


def to_tflite(model: keras.Model, batch_size: int | None = 1) -> bytes:
    """Converts ``model`` to a TFLite flatbuffer using TFLite built-in ops
    only, so it runs on any LiteRT runtime without the Flex delegate.

    Raises ``ValueError`` naming the op when a layer needs a TF (Flex) op.
    """
    import tensorflow as tf

    if not isinstance(model, keras.Model):
        raise TypeError(f"to_tflite expects a keras.Model, received "
                        f"{type(model).__name__}")
    with tempfile.TemporaryDirectory() as directory:
        write_saved_model(model, directory, batch_size)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            return converter.convert()
        except Exception as error:  # ConverterError lives in a private module
            raise ValueError(
                f"{model.name} does not convert to TFLite with built-in ops "
                f"only: {error}") from error


def input_names(model: keras.Model) -> list[str]:
    """The names the exported signatures give the model's inputs, in order."""
    return [spec.name for spec in _signature(model, None)]


def run_tflite(flatbuffer: bytes,
               inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray],
               names: Sequence[str] | None = None) -> list[np.ndarray]:
    """Runs a flatbuffer from ``to_tflite`` in the LiteRT interpreter.

    ``inputs`` is a dict by input name, or a list in the order of ``names``
    (``input_names(model)``; a signature does not keep argument order).
    Returns the outputs in the model's order.
    """
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=flatbuffer).get_signature_runner()
    details = runner.get_input_details()
    if not isinstance(inputs, Mapping):
        if names is None and len(details) == 1:
            names = list(details)
        if names is None or len(names) != len(inputs):
            raise ValueError(
                f"the TFLite model takes inputs {sorted(details)}; pass a dict "
                f"or a list with their names, received {len(inputs)} inputs "
                f"and names={names!r}")
        inputs = dict(zip(names, inputs))
    if set(inputs) != set(details):
        raise ValueError(f"the TFLite model takes inputs {sorted(details)}, "
                         f"received {sorted(inputs)}")
    outputs = runner(**{name: np.asarray(x, dtype=details[name]["dtype"])
                        for name, x in inputs.items()})
    return [outputs[k] for k in sorted(outputs, key=_output_order)]


def _output_order(name: str) -> tuple:
    tail = name.rsplit("_", 1)[-1]
    return (0, int(tail)) if tail.isdigit() else (1, name)
