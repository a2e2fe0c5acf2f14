"""ONNX: writing through Keras's exporter (tf2onnx) and running in
onnxruntime."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

from attention_zoo.export.saved_model import serving_signature

_ONNX_OPS_REGISTERED = False


def _register_onnx_ops() -> None:
    """Teaches tf2onnx TF's Erfc (exact GELU uses it): ``1 - Erf(x)``."""
    global _ONNX_OPS_REGISTERED
    if _ONNX_OPS_REGISTERED:
        return
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    @tf_op("Erfc")
    class Erfc:  # noqa: F841  (registered by the decorator)
        @classmethod
        def version_9(cls, ctx: Any, node: Any, **kwargs: Any) -> None:
            dtype = ctx.get_dtype(node.input[0])
            node.type = "Erf"
            one = ctx.make_const(utils.make_name(f"{node.name}_one"),
                                 np.array(1, utils.map_onnx_to_numpy_type(dtype)))
            complement = ctx.insert_new_node_on_output(
                "Sub", node.output[0], name=utils.make_name(f"{node.name}_erfc"))
            ctx.replace_inputs(complement, [one.output[0], node.output[0]])
            ctx.set_dtype(complement.output[0], dtype)
            ctx.copy_shape(node.output[0], complement.output[0])

    _ONNX_OPS_REGISTERED = True


def to_onnx(model: keras.Model, path: str | os.PathLike,
            batch_size: int | None = None, opset: int = 17) -> None:
    """Writes an ONNX file through Keras's own exporter (tf2onnx)."""
    _register_onnx_ops()
    specs = serving_signature(model, batch_size)
    if keras.backend.backend() != "tensorflow":  # Keras's JAX and torch
        # exporters read NumPy dtypes
        specs = [keras.InputSpec(shape=tuple(s.shape), dtype=s.dtype.name, name=s.name)
                 for s in specs]
    # Keras calls the model with one argument per signature entry; a model
    # of several inputs (an ensemble's id inputs) takes them as one list.
    model.export(str(path), format="onnx", verbose=False, opset_version=opset,
                 input_signature=specs if len(specs) == 1 else [specs])


def onnx_runner(path: Path) -> Callable[[dict], list[np.ndarray]]:
    """A function from ``{input name: array}`` to the outputs of the ONNX
    file at ``path``, in onnxruntime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path),
                                           providers=["CPUExecutionProvider"])
    # tf2onnx may list constants as optional graph inputs: feed only ours.
    names = {i.name for i in session.get_inputs()}

    def run(feed: dict) -> list[np.ndarray]:
        missing = set(feed) - names
        if missing:
            raise ValueError(f"the ONNX model has no inputs {sorted(missing)}")
        return session.run(None, {n: np.asarray(x) for n, x in feed.items()})

    return run
