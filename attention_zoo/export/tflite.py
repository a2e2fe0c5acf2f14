"""TFLite / LiteRT: conversion with built-in ops only (float32, float16
weights, int8 with float islands), recurrent unrolling, and running files in
the LiteRT interpreter."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Sequence

import keras
import numpy as np

from attention_zoo.export.saved_model import input_names, output_order, write_saved_model

QUANTIZATIONS = (None, "float16", "int8")
#: What an int8 export keeps in float by default: the attention path. With
#: one int8 scale per tensor, gates multiplying feature maps by sigmoid
#: weights lose the attention, and so do masked scores (masking adds -1e9:
#: every real score rounds to the same value; weights of ~1/T over long texts
#: fall below int8's 1/256 step). All-int8, the shipped models scored 76.4%
#: (attn_cnn_cifar10, 1,000 held-out images, float 87.5%) and 50%
#: (attn_text_imdb: a constant output); with these defaults 88.15% and
#: 90.28% against float 88.35% and 90.40% (benchmarks/export_benchmark.md).
GATE_FLOAT_OPS = ("MUL",)  # image models: x * gate


def default_float_ops(model: keras.Model) -> tuple[str, ...]:
    """``GATE_FLOAT_OPS`` for image models; none for models on token ids,
    whose attention layers stay float instead (``default_float_layers``)."""
    return () if _takes_ids(model) else GATE_FLOAT_OPS


def default_float_layers(model: keras.Model) -> tuple[str, ...]:
    """For models on token ids, every layer (nested ones too) that computes
    masked attention scores; none for image models. Keeping whole layers
    rather than op types float leaves the recurrent encoder's own ADD/MUL
    gates int8 (SST-2 BiGRU: 4.08 -> 3.86 MB, same accuracy)."""
    from attention_zoo.layers.base import SequenceAttention
    from attention_zoo.layers.pooling import AttentionPooling1D

    if not _takes_ids(model):
        return ()
    return tuple(layer.name for layer in model._flatten_layers(include_self=False)
                 if isinstance(layer, (SequenceAttention, AttentionPooling1D)))


def _takes_ids(model: keras.Model) -> bool:
    return model.inputs[0].dtype.startswith("int")


# ----------------------------------------------------- representative data --

def _input_specs(model: keras.Model) -> list[tuple[str, tuple, str]]:
    """What the model takes from its caller: texts for a text task (its
    preprocessor makes the ids), else its inputs."""
    from attention_zoo.models.task import takes_text

    if takes_text(model):
        return [("text", (), "string")]
    return [(name, tuple(t.shape)[1:], t.dtype)
            for name, t in zip(input_names(model), model.inputs)]


def _expected(model: keras.Model) -> str:
    parts = []
    for name, shape, dtype in _input_specs(model):
        if dtype == "string":
            parts.append(f"{name!r}: N texts")
        else:
            dims = ", ".join("?" if d is None else str(d) for d in ("N", *shape))
            parts.append(f"{name!r}: ({dims}) {dtype}")
    return "; ".join(parts)


def _describe(value: Any) -> str:
    if isinstance(value, (str, bytes)):
        return f"a single {type(value).__name__} {value[:40]!r}"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        dtype = value.dtype
        dtype = dtype if isinstance(dtype, np.dtype) else getattr(dtype, "name", dtype)
        return f"an array of shape {tuple(value.shape)} {dtype}"
    if isinstance(value, (list, tuple)):
        if not value:
            return f"an empty {type(value).__name__}"
        kinds = sorted({type(v).__name__ for v in value})
        first = value[0]
        inner = ("" if isinstance(first, (str, bytes))
                 else f", the first {_describe(first)}")
        return f"a {type(value).__name__} of {len(value)} {'/'.join(kinds)}{inner}"
    return f"a {type(value).__name__}"


def _as_batch(value: Any, specs: list[tuple[str, tuple, str]]) -> list[np.ndarray] | None:
    """``value`` as one ``(n, ...)`` array per input if it is one batch of
    samples of the model's inputs, else None."""
    if isinstance(value, (str, bytes)):
        return None
    if len(specs) == 1:
        parts = [value]
    elif isinstance(value, (list, tuple)) and len(value) == len(specs):
        parts = list(value)
    else:
        return None
    arrays = []
    for part, (_, shape, dtype) in zip(parts, specs):
        try:
            x = np.asarray(part)
        except (ValueError, TypeError):
            return None
        if x.ndim != 1 + len(shape) or len(x) == 0:
            return None
        if dtype == "string":
            if x.dtype.kind not in "USO" or not all(
                    isinstance(t, (str, bytes, np.str_, np.bytes_)) for t in x.ravel()):
                return None
            x = np.array([_text(t) for t in x.ravel()], dtype=object).reshape(x.shape)
        elif x.dtype.kind not in "iuf" or any(
                d is not None and d != n for d, n in zip(shape, x.shape[1:])):
            return None
        arrays.append(x)
    if len({len(x) for x in arrays}) != 1:
        return None
    return arrays


def representative_samples(model: keras.Model, data: Any) -> list[np.ndarray]:
    """``representative_data`` as one ``(N, ...)`` array of all its samples
    per model input (texts: object arrays of str).

    ``data`` is N samples (an array ``(N, *input shape)``, a list of N
    samples or N texts; a list of one such array per input for a model of
    several inputs) or an iterable of such batches. Anything else raises
    ``ValueError`` or ``TypeError`` naming ``representative_data``, the
    shapes the model takes and what came."""
    specs = _input_specs(model)
    several = ("a list with one such array per input" if len(specs) > 1
               else "an array (a list) of N samples")

    def error(kind: type, what: str) -> Exception:
        return kind(f"representative_data must hold samples of the model's inputs "
                    f"({_expected(model)}): {several}, or an iterable of such "
                    f"batches; received {what}")

    if data is None:
        raise ValueError(f"quantize='int8' needs representative_data to calibrate "
                         f"on, such as training inputs ({_expected(model)})")
    whole = _as_batch(data, specs)
    if whole is not None:
        return whole
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable):
        raise error(TypeError, _describe(data))
    batches = []
    for i, item in enumerate(data):
        batch = _as_batch(item, specs)
        if batch is None:
            raise error(ValueError, f"{_describe(data)} whose item {i} is "
                                    f"{_describe(item)}")
        batches.append(batch)
    if not batches:
        raise error(ValueError, _describe(data) if isinstance(data, (list, tuple))
                    else "an empty iterable")
    return [np.concatenate(parts) for parts in zip(*batches)]


def _text(value: Any) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    if not isinstance(value, (str, np.str_)):
        raise TypeError(f"representative_data of a text model holds batches of "
                        f"strings, received {type(value).__name__}")
    return str(value)



def to_tflite(model: keras.Model, batch_size: int | None = 1,
              quantize: str | None = None,
              representative_data: Iterable[Any] | None = None,
              float_ops: Sequence[str] | None = None,
              float_layers: Sequence[str] | None = None) -> bytes:
    """Converts ``model`` to a TFLite flatbuffer with TFLite built-in ops only
    (no Flex), so it runs on any LiteRT runtime.

    Args:
        batch_size: 1 for a fixed batch-1 signature, None for a dynamic batch.
        quantize: None (float32), ``"float16"`` (float16 weights) or
            ``"int8"`` (full-integer: int8 kernels, uint8 input for image
            models, uint8 output; float kept only where an op has no int8
            kernel).
        representative_data: for ``"int8"``, inputs (e.g. training images)
            that calibrate the activation ranges: N samples, such as an
            array ``(N, 32, 32, 3)``, or an iterable of such batches (see
            ``representative_samples``).
        float_ops: for ``"int8"``, TFLite op types kept in float, with
            (de)quantize ops around them (default ``default_float_ops``).
        float_layers: for ``"int8"``, names of Keras layers (nested ones
            too) whose ops all stay float (default ``default_float_layers``).
            ``float_ops=()`` with ``float_layers=()`` quantizes every op that
            has an int8 kernel.

    Recurrent layers are unrolled for a dynamic batch, where their loop would
    keep TF tensor lists that LiteRT runs only through Flex, and for int8,
    whose calibrator crashes on the loop. Internal tensor names are dropped
    from the file (inputs, outputs and signatures keep theirs): an unrolled
    recurrent model has thousands of them.

    Raises ``ValueError`` when a layer needs a TF (Flex) op.
    """
    import tensorflow as tf

    if not isinstance(model, keras.Model):
        raise TypeError(f"to_tflite expects a keras.Model, received "
                        f"{type(model).__name__}")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, received "
                         f"{quantize!r}")
    if float_layers:
        known = {layer.name for layer in model._flatten_layers()}
        unknown = sorted(set(float_layers) - known)
        if unknown:
            raise ValueError(f"float_layers names no layer of {model.name}: "
                             f"{unknown}; its layers: {sorted(known)}")
    samples = (representative_samples(model, representative_data)
               if quantize == "int8" else None)
    if batch_size is None or quantize == "int8":
        model = unroll_recurrent(model)
    with tempfile.TemporaryDirectory() as directory:
        write_saved_model(model, directory, batch_size, frozen=True)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        try:
            if quantize == "int8":
                flatbuffer = _int8(
                    converter, model, samples,
                    default_float_ops(model) if float_ops is None else float_ops,
                    default_float_layers(model) if float_layers is None else float_layers)
            else:
                flatbuffer = converter.convert()
        except Exception as error:  # ConverterError lives in a private module
            raise ValueError(
                f"{model.name} does not convert to TFLite with built-in ops "
                f"only: {error}") from error
    return strip_tensor_names(flatbuffer)


def _int8(converter: Any, model: keras.Model, samples: Sequence[np.ndarray],
          float_ops: Sequence[str], float_layers: Sequence[str]) -> bytes:
    """Calibrates, then quantizes every op but ``float_ops`` and the ops of
    ``float_layers`` (what ``tf.lite.experimental.QuantizationDebugger`` does
    for its denylists)."""
    import tensorflow as tf
    from tensorflow.lite.python import convert as lite_convert
    from tensorflow.lite.python import util as lite_util

    dtype = np.dtype(model.inputs[0].dtype)  # pixels float, token ids int
    names = input_names(model)
    samples = [np.asarray(x, t.dtype) for x, t in zip(samples, model.inputs)]

    def calibration():
        for i in range(len(samples[0])):
            yield {name: x[i:i + 1] for name, x in zip(names, samples)}

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True  # no public flag does this
    calibrated = converter.convert()
    quantized = lite_convert.mlir_quantize(
        calibrated, denylisted_ops=list(float_ops),
        denylisted_nodes=_layer_nodes(calibrated, float_layers),
        # One scale per dense layer: an unrolled recurrent layer repeats its
        # kernels' per-channel scales at every step (SST-2: 0.6 MB).
        disable_per_channel_for_dense_layers=True)
    # uint8 pixels in (token ids stay int32) and uint8 probabilities out.
    float_input = dtype.kind == "f"
    return lite_util.modify_model_io_type(
        quantized, tf.uint8 if float_input else tf.float32, tf.uint8)


def _layer_nodes(flatbuffer: bytes, layers: Sequence[str]) -> list[str]:
    """Names of the ops (their output tensors) that ``layers`` made, the
    converter naming them ``.../<layer>[_N]/<op>``, except their weight
    projections (FULLY_CONNECTED): plain matmuls that int8 handles well, and
    in float they would keep the largest float weights in the file (SST-2:
    2 x 64 KB, what took its int8 file from 31% to 30% of float)."""
    import re

    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    if not layers:
        return []
    pattern = re.compile("(^|/)(" + "|".join(re.escape(n) for n in layers)
                         + r")(_\d+)?/")
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    found = set()
    for graph in model.subgraphs:
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex].builtinCode
            if code == schema.BuiltinOperator.FULLY_CONNECTED:
                continue
            for index in op.outputs:
                name = (graph.tensors[index].name or b"").decode()
                if pattern.search(name):
                    found.add(name)
    return sorted(found)


def strip_tensor_names(flatbuffer: bytes) -> bytes:
    """``flatbuffer`` without the names of tensors other than the graphs'
    inputs and outputs."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    for graph in model.subgraphs:
        keep = set(graph.inputs) | set(graph.outputs)
        for index, tensor in enumerate(graph.tensors):
            if index not in keep:
                tensor.name = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def unroll_recurrent(model: keras.Model) -> keras.Model:
    """A copy of ``model`` (same weights) whose RNN layers, inside
    ``Bidirectional``, nested models and ensemble members too, have
    ``unroll=True``, so its SavedModel holds no TensorList loop (a Flex op
    in TFLite); ``model`` itself when it has none. Needs a fixed sequence
    length in the model's inputs. Nested models (a task's backbone, an
    ensemble's members) are cloned where they are called, on inputs of the
    length they get there: SavedModel traces each on its own inputs."""
    if not any(isinstance(layer, keras.layers.RNN) and not layer.unroll
               for layer in sublayers(model)):
        return model

    def nested(layer: keras.layers.Layer) -> bool:
        return isinstance(layer, keras.Model) and hasattr(layer, "_run_through_graph")

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if nested(layer):
            return layer  # cloned in call(), where its inputs' shapes are known
        config = layer.get_config()
        for node in (config, config.get("layer"), config.get("backward_layer")):
            if isinstance(node, dict) and "unroll" in node.get("config", node):
                node.get("config", node)["unroll"] = True
        layer = type(layer).from_config(config)
        for rnn in (layer, getattr(layer, "forward_layer", None),
                    getattr(layer, "backward_layer", None)):
            if isinstance(rnn, keras.layers.RNN):
                rnn.unroll = True
                # Keras's unrolled loop zeroes a go_backwards layer's masked
                # outputs with the unreversed mask, hitting real tokens; left
                # unzeroed, masked steps only carry values that masking
                # layers downstream ignore (the parity check still decides).
                rnn.zero_output_for_mask = False
        return layer

    def call(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        if not nested(layer):
            return layer(*args, **kwargs)
        inputs = keras.tree.map_structure(
            lambda mine, given: keras.Input(batch_shape=given.shape, dtype=mine.dtype,
                                            name=mine.name), layer.input, args[0])
        copy = keras.models.clone_model(layer, input_tensors=inputs,
                                        clone_function=clone, call_function=call)
        return copy(*args, **kwargs)

    copy = keras.models.clone_model(model, clone_function=clone, call_function=call)
    copy.set_weights(model.get_weights())
    return copy


def sublayers(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Every layer inside ``layer``: nested models' layers (ensemble members,
    backbones) and the RNNs a ``Bidirectional`` wraps."""
    children = list(getattr(layer, "layers", ()))
    if isinstance(layer, keras.layers.Bidirectional):
        children += [layer.forward_layer, layer.backward_layer]
    for child in children:
        yield child
        yield from sublayers(child)


def run_tflite(flatbuffer: bytes,
               inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray],
               names: Sequence[str] | None = None) -> list[np.ndarray]:
    """Runs a flatbuffer from ``to_tflite`` in the LiteRT interpreter.

    ``inputs`` is a dict by input name, or a list in the order of ``names``
    (``input_names(model)``; a signature does not keep argument order).
    Quantized inputs are quantized and quantized outputs dequantized here, so
    callers pass and get float values. Returns the outputs in model order.
    """
    return run_tflite_batches(flatbuffer, [inputs], names)[1][0]


def run_tflite_batches(flatbuffer: bytes, batches: Sequence[Any],
                       names: Sequence[str] | None = None,
                       num_threads: int | None = None) -> tuple[Any, list, bool]:
    """``run_tflite`` over several batches in one interpreter. Returns the
    signature runner (for more calls), the outputs per batch, and whether
    XNNPACK ran them: it refuses some int8 graphs with float islands when it
    prepares them, and LiteRT's built-in kernels then run the file instead."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    def run_all(**options: Any) -> tuple[Any, list]:
        runner = Interpreter(model_content=flatbuffer, num_threads=num_threads,
                             **options).get_signature_runner()
        return runner, [run_signature(runner, batch, names) for batch in batches]

    try:
        return (*run_all(), True)
    except RuntimeError as error:
        if "XNNPACK" not in str(error):
            raise
        return (*run_all(experimental_op_resolver_type=(
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)), False)


def run_signature(runner: Any, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray],
                  names: Sequence[str] | None = None) -> list[np.ndarray]:
    """``run_tflite`` on an existing signature runner, so repeated calls
    reuse one interpreter."""
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
    feed = {name: quantize_input(np.asarray(x), details[name])
            for name, x in inputs.items()}
    outputs = runner(**feed)
    out_details = runner.get_output_details()
    return [dequantize_output(outputs[k], out_details[k])
            for k in sorted(outputs, key=output_order)]


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """``x`` as a quantized input wants it (``detail``: the interpreter's
    input details); float values are scaled, integers (pixels, ids) pass."""
    dtype = detail["dtype"]
    scale, zero = detail["quantization"]
    if scale and np.issubdtype(dtype, np.integer) and not np.issubdtype(x.dtype,
                                                                        np.integer):
        info = np.iinfo(dtype)
        x = np.clip(np.round(x / scale + zero), info.min, info.max)
    return x.astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    """A quantized output back in float (``detail``: its output details)."""
    scale, zero = detail["quantization"]
    if scale and np.issubdtype(y.dtype, np.integer):
        return (y.astype(np.float32) - zero) * scale
    return y


def tflite_op_report(flatbuffer: bytes) -> dict[str, Any]:
    """Which ops the flatbuffer holds, and which of them compute in float
    (in an int8 model: the float fallbacks)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops, float_ops = {}, {}
    for op in interpreter._get_ops_details():  # no public op listing exists
        name = op["op_name"]
        ops[name] = ops.get(name, 0) + 1
        ins = [tensors[i]["dtype"] for i in op["inputs"] if i >= 0 and i in tensors]
        if ins and any(np.dtype(d) == np.float32 for d in ins[:1]):
            float_ops[name] = float_ops.get(name, 0) + 1
    return {"ops": ops, "float_ops": float_ops}
