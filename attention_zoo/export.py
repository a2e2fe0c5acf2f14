"""Export for serving and mobile, each verified right after it is written.

``export(model, path, format=...)`` writes a SavedModel, a TFLite/LiteRT
flatbuffer (float32, float16 weights or full int8) or an ONNX file, loads it
back in its own runtime (TensorFlow, ``ai_edge_litert``, onnxruntime), runs
sample inputs through it and through Keras, and writes a JSON report beside
it. A float export that disagrees with Keras by more than 1e-4 raises and
leaves nothing at ``path``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import keras
import numpy as np

FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZATIONS = (None, "float16", "int8")
#: What an int8 export keeps in float by default: the attention path. With
#: one int8 scale per tensor, gates multiplying feature maps by sigmoid
#: weights lose the attention, and so do masked scores (masking adds -1e9:
#: every real score rounds to the same value; weights of ~1/T over long texts
#: fall below int8's 1/256 step). Measured on the shipped models, all-int8
#: vs these defaults: attn_cnn_cifar10 76.4% -> 87.3% (float 87.5%, 1,000
#: held-out images), attn_text_imdb 50% -> 90.4% (float 90.4%).
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


FLOAT_TOLERANCE = 1e-4
SAMPLE_TEXTS = ["a gripping, beautifully acted film", "dull, lifeless and far too long",
                "", "Ça va? Émile's <br /> 2nd film 😀 is GREAT!!!",
                "not bad at all", "the plot makes no sense " * 40,
                "an instant classic", "i wanted my two hours back"]


class ExportError(RuntimeError):
    """An export that was written but computes something else than Keras."""


# --------------------------------------------------------------- writing --

def _signature(model: keras.Model, batch_size: int | None) -> list:
    import tensorflow as tf

    return [tf.TensorSpec((batch_size, *tuple(t.shape)[1:]), t.dtype,
                          name=_input_name(t, i))
            for i, t in enumerate(model.inputs)]


def _input_name(tensor: Any, index: int) -> str:
    name = getattr(tensor, "name", "") or ""
    return name if name.isidentifier() else f"input_{index}"


def input_names(model: keras.Model) -> list[str]:
    """The names the exported signatures give the model's inputs, in order."""
    return [spec.name for spec in _signature(model, None)]


def write_saved_model(model: keras.Model, directory: str | os.PathLike,
                      batch_size: int | None = None) -> None:
    """Writes ``model`` as a SavedModel whose ``serve`` endpoint is also the
    ``serving_default`` signature, inputs named as the model's."""
    specs = _signature(model, batch_size)

    def serve(*args: Any) -> Any:
        return model(list(args) if len(args) > 1 else args[0], training=False)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=specs)
    archive.write_out(str(directory), verbose=False)


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
        representative_data: for ``"int8"``, batches of model inputs (e.g.
            training images) that calibrate the activation ranges.
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
    if quantize == "int8" and representative_data is None:
        raise ValueError("int8 quantization needs representative_data: "
                         "batches of inputs such as training images")
    if batch_size is None or quantize == "int8":
        model = unroll_recurrent(model)
    with tempfile.TemporaryDirectory() as directory:
        write_saved_model(model, directory, batch_size)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        try:
            if quantize == "int8":
                flatbuffer = _int8(
                    converter, model, representative_data,
                    default_float_ops(model) if float_ops is None else float_ops,
                    default_float_layers(model) if float_layers is None else float_layers)
            else:
                flatbuffer = converter.convert()
        except Exception as error:  # ConverterError lives in a private module
            raise ValueError(
                f"{model.name} does not convert to TFLite with built-in ops "
                f"only: {error}") from error
    return strip_tensor_names(flatbuffer)


def _int8(converter: Any, model: keras.Model, representative_data: Iterable[Any],
          float_ops: Sequence[str], float_layers: Sequence[str]) -> bytes:
    """Calibrates, then quantizes every op but ``float_ops`` and the ops of
    ``float_layers`` (what ``tf.lite.experimental.QuantizationDebugger`` does
    for its denylists)."""
    import tensorflow as tf
    from tensorflow.lite.python import convert as lite_convert
    from tensorflow.lite.python import util as lite_util

    dtype = np.dtype(model.inputs[0].dtype)  # pixels float, token ids int
    batches = [np.asarray(b, dtype) for b in representative_data]

    def calibration():
        for batch in batches:
            for row in batch:
                yield [row[None]]

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
    """A copy of ``model`` (same weights) whose RNN layers, also inside
    ``Bidirectional``, have ``unroll=True``; ``model`` itself when it has
    none. Needs a fixed sequence length."""
    def unrolled(node: Any) -> bool:
        found = False
        if isinstance(node, dict):
            if node.get("unroll") is False:
                node["unroll"] = found = True
            for value in node.values():
                found = unrolled(value) or found
        elif isinstance(node, list):
            for value in node:
                found = unrolled(value) or found
        return found

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        unrolled(config)
        layer = type(layer).from_config(config)
        for rnn in (layer, getattr(layer, "forward_layer", None),
                    getattr(layer, "backward_layer", None)):
            if isinstance(rnn, keras.layers.RNN):
                # Keras's unrolled loop zeroes a go_backwards layer's masked
                # outputs with the unreversed mask, hitting real tokens; left
                # unzeroed, masked steps only carry values that masking
                # layers downstream ignore (the parity check still decides).
                rnn.zero_output_for_mask = False
        return layer

    if not any(unrolled(layer.get_config()) for layer in model.layers
               if not isinstance(layer, keras.layers.InputLayer)):
        return model
    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


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
    model.export(str(path), format="onnx", verbose=False, opset_version=opset,
                 input_signature=_signature(model, batch_size))


# --------------------------------------------------------------- running --

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
    feed = {name: _quantize(np.asarray(x), details[name])
            for name, x in inputs.items()}
    outputs = runner(**feed)
    out_details = runner.get_output_details()
    return [_dequantize(outputs[k], out_details[k])
            for k in sorted(outputs, key=_output_order)]


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    scale, zero = detail["quantization"]
    if scale and np.issubdtype(dtype, np.integer) and not np.issubdtype(x.dtype,
                                                                        np.integer):
        info = np.iinfo(dtype)
        x = np.clip(np.round(x / scale + zero), info.min, info.max)
    return x.astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    if scale and np.issubdtype(y.dtype, np.integer):
        return (y.astype(np.float32) - zero) * scale
    return y


def _output_order(name: str) -> tuple:
    tail = name.rsplit("_", 1)[-1]
    return (0, int(tail)) if tail.isdigit() else (1, name)


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


def _onnx_runner(path: Path) -> Callable[[dict], list[np.ndarray]]:
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


# -------------------------------------------------------------- verifying --

def _sample_inputs(model: keras.Model, samples: Any, count: int = 8) -> list[np.ndarray]:
    if samples is not None:
        arrays = samples if isinstance(samples, (list, tuple)) else [samples]
        return [np.asarray(a) for a in arrays]
    rng = np.random.default_rng(0)
    arrays = []
    for t in model.inputs:
        shape = (count, *tuple(t.shape)[1:])
        if t.dtype.startswith("int"):
            arrays.append(rng.integers(0, 100, shape).astype(t.dtype))
        elif t.dtype == "string":
            arrays.append(np.array(SAMPLE_TEXTS, dtype=object))
        else:  # raw-pixel image models: values in 0..255
            arrays.append(rng.uniform(0, 255, shape).astype(t.dtype))
    return arrays


def _compare(got: Sequence[np.ndarray], want: Sequence[np.ndarray]) -> dict:
    got = [np.asarray(g, np.float64) for g in got]
    want = [np.asarray(w, np.float64) for w in want]
    abs_error = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want))
    scale = max(float(np.max(np.abs(w))) for w in want) or 1.0
    agree = float(np.mean(got[0].argmax(-1) == want[0].argmax(-1)))
    return {"max_abs_error": abs_error, "max_rel_error": abs_error / scale,
            "top1_agreement": agree}


def latency_ms(run: Callable[[], Any], repeats: int = 20) -> float:
    """Median wall time of ``run()`` in milliseconds, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


# ----------------------------------------------------------------- export --

def export(model: keras.Model, path: str | os.PathLike, format: str = "tflite",
           quantize: str | None = None, representative_data: Iterable[Any] | None = None,
           batch_size: int | None = 1, sample_inputs: Any = None,
           float_ops: Sequence[str] | None = None,
           float_layers: Sequence[str] | None = None) -> dict[str, Any]:
    """Exports ``model`` to ``path`` and verifies it; returns the report (also
    written to ``<path>.report.json``).

    Args:
        format: ``"saved_model"``, ``"tflite"`` or ``"onnx"``.
        quantize: TFLite only: None, ``"float16"`` or ``"int8"``.
        representative_data: TFLite int8 calibration batches: images, or
            for a text model batches of strings.
        batch_size: fixed batch of the signature (1), or None for dynamic.
        sample_inputs: inputs to compare on (default: random pixels or ids).
        float_ops: int8 only: op types kept in float (default
            ``default_float_ops(model)``, see ``to_tflite``).
        float_layers: int8 only: layer names whose ops stay float (default
            ``default_float_layers(model)``).

    Raises ``ExportError`` (and removes the file) when a float export differs
    from Keras by more than 1e-4; ``ValueError`` for bad arguments.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, received {format!r}")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, received "
                         f"{quantize!r}")
    if quantize is not None and format != "tflite":
        raise ValueError(f"quantize={quantize!r} applies to format='tflite' only")
    if not isinstance(model, keras.Model):
        raise TypeError(f"export expects a keras.Model, received "
                        f"{type(model).__name__}")
    if batch_size not in (1, None):
        raise ValueError(f"batch_size must be 1 (fixed batch-1 signature) or "
                         f"None (dynamic batch), received {batch_size!r}")
    for what, value in (("float_ops", float_ops), ("float_layers", float_layers)):
        if value is None:
            continue
        if quantize != "int8":
            raise ValueError(f"{what} applies to quantize='int8' only, "
                             f"received quantize={quantize!r}")
        if isinstance(value, str) or not all(isinstance(o, str) for o in value):
            raise TypeError(f"{what} must be a list of names such as "
                            f"{['SOFTMAX'] if what == 'float_ops' else ['token_attention']}, "
                            f"received {value!r}")
    path = Path(path)
    if not path.parent.exists():
        raise ValueError(f"the folder of {str(path)!r} does not exist")
    text_files: dict[str, Any] = {}
    if model.inputs[0].dtype == "string" and format != "saved_model":
        # Mobile runtimes get token ids; the tokenizer travels beside the file.
        model, sample_inputs, text_files, tokenize = _token_model(model, path,
                                                                  sample_inputs)
        if representative_data is not None:  # calibrate on the texts' ids
            representative_data = [tokenize([_text(t) for t in batch])
                                   for batch in representative_data]
    inputs = _sample_inputs(model, sample_inputs)
    want = keras.tree.flatten(model.predict(inputs if len(inputs) > 1 else inputs[0],
                                            verbose=0))
    names = input_names(model)
    tmp = path.with_name(f".{path.name}.tmp")
    _remove(tmp)
    try:
        if format == "saved_model":
            got, latency = _saved_model(model, tmp, batch_size, inputs, names)
            extra = {}
        elif format == "tflite":
            got, latency, extra = _tflite(model, tmp, batch_size, quantize,
                                          representative_data, inputs, names,
                                          float_ops, float_layers)
        else:
            got, latency = _onnx(model, tmp, batch_size, inputs, names)
            extra = {}
        report = {"format": format, "quantize": quantize, "path": str(path),
                  "batch_size": batch_size, "samples": int(len(inputs[0])),
                  **_compare(got, want), "file_bytes": _size(tmp),
                  "batch1_latency_ms": latency, **extra}
        if quantize is None and report["max_abs_error"] > FLOAT_TOLERANCE:
            raise ExportError(
                f"{format} export of {model.name} differs from Keras by "
                f"{report['max_abs_error']:.3g} (> {FLOAT_TOLERANCE}); nothing "
                f"was written to {str(path)!r}")
        _remove(path)
        os.replace(tmp, path)
        for name, text in text_files.items():
            target = path.with_name(name)
            target.with_name(f".{name}.tmp").write_text(text, encoding="utf-8")
            os.replace(target.with_name(f".{name}.tmp"), target)
        if text_files:
            report["tokenizer_files"] = sorted(text_files)
    finally:
        _remove(tmp)
    report_path = path.with_name(path.name + ".report.json")
    report_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def _text(value: Any) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    if not isinstance(value, (str, np.str_)):
        raise TypeError(f"representative_data of a text model holds batches of "
                        f"strings, received {type(value).__name__}")
    return str(value)


def _token_model(model: keras.Model, path: Path, sample_inputs: Any
                 ) -> tuple[keras.Model, list[np.ndarray], dict[str, str], Any]:
    """The int32-id classifier inside a string model, sample ids made by the
    pure-Python tokenizer (checked against the model's TextVectorization),
    the tokenizer files to write beside ``path``, and the tokenizer."""
    from attention_zoo.data import tokenizer as tokenizer_module
    from attention_zoo.models.text import IDS_MODEL, as_text_tensor

    vectorize = model.get_layer("vectorize")
    config = vectorize.get_config()
    vocabulary = [str(t) for t in vectorize.get_vocabulary()[2:]]
    ngrams = config.get("ngrams")
    ngrams = max(ngrams) if isinstance(ngrams, (list, tuple)) else ngrams
    truncating = config.get("truncating", "post")
    tokenizer = tokenizer_module.Tokenizer(vocabulary, config["output_sequence_length"],
                                           ngrams, truncating)
    texts = list(sample_inputs) if sample_inputs is not None else SAMPLE_TEXTS
    ids = tokenizer(texts)
    if not np.array_equal(ids, np.asarray(vectorize(as_text_tensor(texts)))):
        raise ExportError("the Python tokenizer disagrees with the model's "
                          "TextVectorization on the sample texts")
    stem = path.name.rsplit(".", 1)[0]
    files = {
        f"{stem}.vocab.txt": "".join(f"{t}\n" for t in vocabulary),
        f"{stem}.tokenizer.json": json.dumps({
            "vocabulary": f"{stem}.vocab.txt", "max_length": tokenizer.max_length,
            "ngrams": ngrams, "truncating": truncating}, indent=2) + "\n",
        f"{stem}.tokenizer.py": Path(tokenizer_module.__file__).read_text(
            encoding="utf-8"),
    }
    return model.get_layer(IDS_MODEL), [ids], files, tokenizer


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _batches(inputs: list[np.ndarray], batch_size: int | None):
    if batch_size is None:
        return [inputs]
    n = len(inputs[0])
    return [[x[i:i + batch_size] for x in inputs] for i in range(0, n, batch_size)]


def _saved_model(model, tmp, batch_size, inputs, names):
    import tensorflow as tf

    write_saved_model(model, tmp, batch_size)
    serve = tf.saved_model.load(str(tmp)).signatures["serving_default"]
    outputs = []
    for chunk in _batches(inputs, batch_size):
        result = serve(**{n: tf.constant(x) for n, x in zip(names, chunk)})
        outputs.append([result[k].numpy() for k in sorted(result, key=_output_order)])
    got = [np.concatenate(parts) for parts in zip(*outputs)]
    one = {n: tf.constant(x[:1]) for n, x in zip(names, inputs)}
    return got, latency_ms(lambda: serve(**one))


def _tflite(model, tmp, batch_size, quantize, representative_data, inputs, names,
            float_ops, float_layers):
    flatbuffer = to_tflite(model, batch_size, quantize, representative_data, float_ops,
                           float_layers)
    tmp.write_bytes(flatbuffer)
    runner, outputs, xnnpack = run_tflite_batches(
        flatbuffer, _batches(inputs, batch_size or len(inputs[0])), names)
    got = [np.concatenate(parts) for parts in zip(*outputs)]
    details = runner.get_input_details()
    one = {n: _quantize(np.asarray(x[:1]), details[n]) for n, x in zip(names, inputs)}
    latency = None if batch_size is None else latency_ms(lambda: runner(**one))
    return got, latency, {"ops": tflite_op_report(flatbuffer), "xnnpack": xnnpack}


def _onnx(model, tmp, batch_size, inputs, names):
    target = tmp.with_suffix(".onnx") if tmp.suffix != ".onnx" else tmp
    to_onnx(model, target, batch_size)
    if target != tmp:
        os.replace(target, tmp)
    run = _onnx_runner(tmp)
    outputs = [run(dict(zip(names, chunk))) for chunk in _batches(inputs, batch_size)]
    got = [np.concatenate(parts) for parts in zip(*outputs)]
    one = {n: x[:1] for n, x in zip(names, inputs)}
    return got, latency_ms(lambda: run(one))
