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
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import keras
import numpy as np

from attention_zoo.files import write_text
from attention_zoo.export.onnx_model import onnx_runner, to_onnx
from attention_zoo.export.saved_model import input_names, output_order, write_saved_model
from attention_zoo.export.tflite import (
    GATE_FLOAT_OPS, QUANTIZATIONS, default_float_layers, default_float_ops,
    quantize_input, run_signature, run_tflite, run_tflite_batches, strip_tensor_names,
    tflite_op_report, to_tflite, unroll_recurrent)

__all__ = ["FORMATS", "QUANTIZATIONS", "GATE_FLOAT_OPS", "ExportError", "export",
           "to_tflite", "to_onnx", "write_saved_model", "input_names", "run_tflite",
           "run_tflite_batches", "run_signature", "tflite_op_report", "latency_ms",
           "default_float_ops", "default_float_layers", "strip_tensor_names",
           "unroll_recurrent", "fixed_length", "token_inputs"]

FORMATS = ("saved_model", "tflite", "onnx")
FLOAT_TOLERANCE = 1e-4
SAMPLE_TEXTS = ["a gripping, beautifully acted film", "dull, lifeless and far too long",
                "", "Ça va? Émile's <br /> 2nd film 😀 is GREAT!!!",
                "not bad at all", "the plot makes no sense " * 40,
                "an instant classic", "i wanted my two hours back"]


class ExportError(RuntimeError):
    """An export that was written but computes something else than Keras."""


# -------------------------------------------------------------- verifying --

def _sample_inputs(model: keras.Model, samples: Any, count: int = 8) -> list[np.ndarray]:
    if samples is not None:
        if isinstance(samples, (list, tuple)) and samples and all(
                isinstance(t, (str, bytes)) for t in samples):
            return [np.array(samples, dtype=object)]  # texts: one string input
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
            write_text(path.with_name(name), text)
        if text_files:
            report["tokenizer_files"] = sorted(text_files)
    finally:
        _remove(tmp)
    report_path = path.with_name(path.name + ".report.json")
    write_text(report_path, json.dumps(report, indent=2, default=str) + "\n")
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
    """The int32-id classifier inside a string model (an ensemble's: one id
    input per member, averaged), sample ids made by the pure-Python
    tokenizers (checked against the model's TextVectorization), the
    tokenizer files to write beside ``path``, and a function from texts to
    the model's id inputs."""
    from attention_zoo.data import tokenizer as tokenizer_module
    from attention_zoo.models.ensemble import ensemble_members, named_view
    from attention_zoo.models.text import IDS_MODEL

    parts = ensemble_members(model)
    texts = list(sample_inputs) if sample_inputs is not None else SAMPLE_TEXTS
    stem = path.name.rsplit(".", 1)[0]
    tokenizers, classifiers, files = [], [], {}
    for i, member in enumerate(parts):
        prefix = stem if len(parts) == 1 else f"{stem}.member{i}"
        tokenizer, member_files = _tokenizer(member, prefix, texts)
        tokenizers.append(tokenizer)
        files.update(member_files)
        classifiers.append(fixed_length(member.get_layer(IDS_MODEL),
                                        tokenizer.max_length))
    files[f"{stem}.tokenizer.py"] = Path(tokenizer_module.__file__).read_text(
        encoding="utf-8")
    ids = [tokenizer(texts) for tokenizer in tokenizers]
    if len(parts) == 1:
        return classifiers[0], ids, files, tokenizers[0]
    inputs = [keras.Input((t.max_length,), dtype="int32", name=f"token_ids_{i}")
              for i, t in enumerate(tokenizers)]
    # Views named member<i>: layer names in one model must be unique.
    outputs = [named_view(c, f"member{i}")(x)
               for i, (c, x) in enumerate(zip(classifiers, inputs))]
    mean = keras.layers.Average(dtype="float32", name="probabilities")(outputs)
    token_model = keras.Model(inputs, mean, name=IDS_MODEL)
    return token_model, ids, files, lambda batch: [t(batch) for t in tokenizers]


def token_inputs(model: keras.Model) -> Callable[[Sequence[str]], dict[str, np.ndarray]]:
    """For a string-input text model or ensemble: a function from texts to
    the ``{input name: int32 ids}`` its TFLite and ONNX files take (one
    input per ensemble member), made by the same pure-Python tokenizers the
    export writes beside them."""
    token_model, _, _, to_ids = _token_model(model, Path("model.tflite"), None)
    names = input_names(token_model)

    def feed(texts: Sequence[str]) -> dict[str, np.ndarray]:
        ids = to_ids(list(texts))
        return dict(zip(names, ids if isinstance(ids, list) else [ids]))
    return feed


def _tokenizer(model: keras.Model, prefix: str, texts: list
               ) -> tuple[Any, dict[str, str]]:
    """The standalone tokenizer of one string AttnTextClassifier, checked
    against its vectorizer on ``texts``, and its files named ``prefix.*``."""
    from attention_zoo.data import tokenizer as tokenizer_module
    from attention_zoo.data.text import standardize_contractions
    from attention_zoo.models.text import as_text_tensor

    vectorize = model.get_layer("vectorize")
    config = vectorize.get_config()
    vocabulary = [str(t) for t in vectorize.get_vocabulary()[2:]]
    ngrams = config.get("ngrams")
    ngrams = max(ngrams) if isinstance(ngrams, (list, tuple)) else ngrams
    truncating = config.get("truncating", "post")
    split = config.get("standardize") is standardize_contractions
    tokenizer = tokenizer_module.Tokenizer(vocabulary, config["output_sequence_length"],
                                           ngrams, truncating, split)
    ids = tokenizer(texts)
    found = np.asarray(vectorize(as_text_tensor(texts)))  # padded to the longest
    if not np.array_equal(ids[:, :found.shape[1]], found) or ids[:, found.shape[1]:].any():
        raise ExportError("the Python tokenizer disagrees with the model's "
                          "TextVectorization on the sample texts")
    files = {
        f"{prefix}.vocab.txt": "".join(f"{t}\n" for t in vocabulary),
        f"{prefix}.tokenizer.json": json.dumps({
            "vocabulary": f"{prefix}.vocab.txt", "max_length": tokenizer.max_length,
            "ngrams": ngrams, "truncating": truncating,
            "split_contractions": split}, indent=2) + "\n",
    }
    return tokenizer, files


def fixed_length(classifier: keras.Model, length: int) -> keras.Model:
    """A copy of a token-id classifier (same weights) whose input is
    ``(batch, length)``: string models run theirs on ids padded to each
    batch's longest text, mobile runtimes need one shape."""
    if classifier.inputs[0].shape[1] == length:
        return classifier
    ids = keras.Input((length,), dtype="int32", name=input_names(classifier)[0])
    copy = keras.models.clone_model(classifier, input_tensors=ids)
    copy.set_weights(classifier.get_weights())
    return copy


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
        outputs.append([result[k].numpy() for k in sorted(result, key=output_order)])
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
    one = {n: quantize_input(np.asarray(x[:1]), details[n]) for n, x in zip(names, inputs)}
    latency = None if batch_size is None else latency_ms(lambda: runner(**one))
    return got, latency, {"ops": tflite_op_report(flatbuffer), "xnnpack": xnnpack}


def _onnx(model, tmp, batch_size, inputs, names):
    target = tmp.with_suffix(".onnx") if tmp.suffix != ".onnx" else tmp
    to_onnx(model, target, batch_size)
    if target != tmp:
        os.replace(target, tmp)
    run = onnx_runner(tmp)
    outputs = [run(dict(zip(names, chunk))) for chunk in _batches(inputs, batch_size)]
    got = [np.concatenate(parts) for parts in zip(*outputs)]
    one = {n: x[:1] for n, x in zip(names, inputs)}
    return got, latency_ms(lambda: run(one))
