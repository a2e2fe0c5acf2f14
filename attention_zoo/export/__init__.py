"""Export for serving and mobile, each verified before it is kept.

``export(model, path, format=...)`` writes a SavedModel folder, a
TFLite/LiteRT flatbuffer (float32, float16 weights or full int8) or an ONNX
file under a temporary name beside ``path``, loads it back in its own
runtime (TensorFlow, ``ai_edge_litert``, onnxruntime), runs inputs through
it and through Keras, and only then renames it to ``path`` and writes a JSON
report beside it (``<path>.report.json``).

What is checked before anything is kept:

* a float export that disagrees with Keras by more than 1e-4 raises
  ``ExportError``;
* an int8 file is compared with the float Keras model on real inputs: a
  slice of ``representative_data`` held back from calibration (or
  ``sample_inputs``); a top-1 agreement below ``min_agreement`` (0.9)
  raises ``ExportError``.

Either way nothing is left at ``path`` (no file, report or tokenizer files).

A model built under a mixed policy (``mixed_bfloat16``, ``mixed_float16``:
16-bit computation, float32 variables) is exported in float32, from a copy
with the same weights (``export.float32``), and verified against that copy;
the report's ``precision`` says so. Quantize with ``quantize="float16"``
or ``"int8"`` for smaller files.

Nothing of the user's is lost: ``path`` and every file written beside it
(the report, a text model's tokenizer files) are checked before the
conversion starts. A TFLite or ONNX path that is a folder is refused; an
existing file is replaced only with ``overwrite=True``; an existing
SavedModel folder is replaced only with ``overwrite=True`` and only when this
package wrote it (it holds ``attention_zoo_export.json``). Temporary names
are fresh ``.<name>.*`` names in the target's folder (``files.temporary_beside``), so a
killed export leaves the old export or the new one plus, at worst, its own
temporary files, and removes nothing it did not create.
"""

from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np

from attention_zoo.export.paths import (FILE_SUFFIXES, FORMATS, MARKER, check_path,
                                        check_side_files, holds)
from attention_zoo.data.images import check_image_batch
from attention_zoo.files import discard, install, temporary_beside, write_text
from attention_zoo.models.task import takes_text
from attention_zoo.export.float32 import float32_copy, mixed_policy
from attention_zoo.export.onnx_model import onnx_runner, to_onnx
from attention_zoo.export.saved_model import input_names, output_order, write_saved_model
from attention_zoo.export.tflite import (
    GATE_FLOAT_OPS, QUANTIZATIONS, default_float_layers, default_float_ops,
    quantize_input, representative_samples, run_signature, run_tflite,
    run_tflite_batches, strip_tensor_names, tflite_op_report, to_tflite,
    unroll_recurrent)

__all__ = ["FORMATS", "BACKEND_FORMATS", "QUANTIZATIONS", "GATE_FLOAT_OPS", "AUTO_BATCH", "MARKER",
           "ExportError", "export", "check_path", "to_tflite", "to_onnx",
           "write_saved_model", "input_names", "run_tflite", "run_tflite_batches",
           "run_signature", "tflite_op_report", "latency_ms", "default_float_ops",
           "default_float_layers", "strip_tensor_names", "unroll_recurrent",
           "fixed_length", "token_inputs", "representative_samples"]

#: What ``export`` writes and verifies on each Keras backend. TensorFlow:
#: everything. JAX: SavedModels (through jax2tf); its TFLite conversion of
#: AttnCNN fails on a BATCH_MATMUL the converter refuses, and Keras's JAX ONNX
#: exporter (jax2onnx 0.17.1) writes graphs onnxruntime rejects (both
#: measured). PyTorch: ONNX (Keras writes no SavedModel from torch).
BACKEND_FORMATS = {"tensorflow": FORMATS, "jax": ("saved_model",), "torch": ("onnx",)}

#: ``batch_size="auto"``: TFLite keeps batch 1 (mobile runtimes run one
#: input; a fixed shape lets LiteRT plan its memory once); ONNX and
#: SavedModel get a dynamic batch (servers batch requests).
AUTO_BATCH: dict[str, int | None] = {"tflite": 1, "onnx": None, "saved_model": None}
FLOAT_TOLERANCE = 1e-4
#: int8: every HOLD_BACK-th sample of representative_data (at least 1, at
#: most MAX_HELD_BACK) is kept out of calibration and compared on.
HOLD_BACK = 5
MAX_HELD_BACK = 256
#: The name of the token-id model a text export holds.
TOKEN_MODEL = "token_classifier"

SAMPLE_TEXTS = ["a gripping, beautifully acted film", "dull, lifeless and far too long",
                "", "Ça va? Émile's <br /> 2nd film 😀 is GREAT!!!",
                "not bad at all", "the plot makes no sense " * 40,
                "an instant classic", "i wanted my two hours back"]


class ExportError(RuntimeError):
    """An export that was written but computes something else than Keras (or,
    for int8, agrees with it too rarely); nothing is kept at the path."""


# -------------------------------------------------------------- verifying --

def _sample_inputs(model: keras.Model, samples: Any, count: int = 8) -> list[np.ndarray]:
    if samples is not None:
        if isinstance(samples, (list, tuple)) and samples and all(
                isinstance(t, (str, bytes)) for t in samples):
            return [np.array(samples, dtype=object)]  # texts: one string input
        arrays = samples if isinstance(samples, (list, tuple)) else [samples]
        arrays = [np.asarray(a) for a in arrays]
        if not arrays or any(len(a) == 0 for a in arrays):
            raise ValueError("sample_inputs is empty: pass at least one input to "
                             "compare the export with Keras on, or None")
        for i, (a, t) in enumerate(zip(arrays, model.inputs)):
            if len(t.shape) == 4:  # images: the checks of data.check_image_batch
                arrays[i] = check_image_batch(a, tuple(t.shape)[1:], "sample_inputs")
        return arrays
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


# ------------------------------------------------------------------ paths --

# ----------------------------------------------------- representative data --

def _hold_back(samples: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(calibration, held back)``: every ``HOLD_BACK``-th sample, counted
    from the last (at least 1, at most ``MAX_HELD_BACK``), is held back."""
    n = len(samples[0])
    if n < 2:
        raise ValueError(f"representative_data holds {n} sample; an int8 export "
                         f"needs at least 2 (most calibrate, some are held back to "
                         f"check the int8 file), or sample_inputs to check it on")
    held = np.arange(n - 1, -1, -HOLD_BACK)[:MAX_HELD_BACK]
    keep = np.setdiff1d(np.arange(n), held)
    return [x[keep] for x in samples], [x[np.sort(held)] for x in samples]


# ----------------------------------------------------------------- export --

def export(model: keras.Model, path: str | os.PathLike, format: str = "tflite",
           quantize: str | None = None, representative_data: Any = None,
           batch_size: int | str | None = "auto", sample_inputs: Any = None,
           float_ops: Sequence[str] | None = None,
           float_layers: Sequence[str] | None = None, overwrite: bool = False,
           min_agreement: float = 0.9,
           log: Callable[[str], Any] | None = print) -> dict[str, Any]:
    """Exports ``model`` to ``path``, verifies the export, and only then
    keeps it; returns the report (also written to ``<path>.report.json``).

    Args:
        format: ``"saved_model"`` (a folder), ``"tflite"`` or ``"onnx"`` (a
            file; ``path`` must not be a folder).
        quantize: TFLite only: None, ``"float16"`` or ``"int8"``.
        representative_data: int8 calibration inputs: N samples, i.e. an
            array ``(N, *input shape)`` such as ``(N, 32, 32, 3)`` images (a
            list with one array per input for several inputs) or, for a text
            model, a list of N strings; or an iterable of such batches. Every
            5th sample (at most 256) is held back from calibration and the
            int8 file is compared with the float model on those.
        batch_size: ``"auto"`` (the format's usual choice, ``AUTO_BATCH``:
            TFLite a fixed batch of 1 for mobile runtimes, ONNX and
            SavedModel a dynamic batch for servers, which batch requests;
            nothing in either runtime needs a fixed batch), ``1``, or None
            (dynamic).
        sample_inputs: inputs to compare on (default: for int8 the held-back
            representative samples, else random pixels, ids or sample texts).
        float_ops: int8 only: op types kept in float (default
            ``default_float_ops(model)``, see ``to_tflite``).
        float_layers: int8 only: layer names whose ops stay float (default
            ``default_float_layers(model)``).
        overwrite: replace an existing file at ``path`` and existing report
            and tokenizer files beside it; a SavedModel folder is replaced
            only if this package wrote it (see ``check_path``). Without it an
            existing target is refused before any work.
        min_agreement: int8 only: the least top-1 agreement with the float
            model (on the held-back samples, or ``sample_inputs``) that is
            kept, in [0, 1]; 0 reports without checking.
        log: called with a few progress lines (converting, verifying, done,
            with the elapsed time); None for silence.

    Raises ``ExportError`` when a float export differs from Keras by more
    than 1e-4 or an int8 one agrees less than ``min_agreement``: nothing is
    then left at ``path`` or beside it. ``ValueError`` or ``TypeError`` for
    bad arguments, data or paths, before any conversion.

    A text model (string input) keeps its strings in a SavedModel; its TFLite
    and ONNX files take token ids, and the tokenizer is written beside them
    (``<stem>.vocab.txt``, ``<stem>.tokenizer.json``, ``<stem>.tokenizer.py``).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, received {format!r}")
    backend = keras.backend.backend()
    if format not in BACKEND_FORMATS.get(backend, ()):
        raise ValueError(
            f"format {format!r} needs KERAS_BACKEND=tensorflow; on {backend} this "
            f"export writes {' or '.join(map(repr, BACKEND_FORMATS.get(backend, ()))) or 'nothing'}. "
            f"A .keras file loads on any backend: export it from TensorFlow")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, received "
                         f"{quantize!r}")
    if quantize is not None and format != "tflite":
        raise ValueError(f"quantize={quantize!r} applies to format='tflite' only")
    if not isinstance(model, keras.Model):
        raise TypeError(f"export expects a keras.Model, received "
                        f"{type(model).__name__}")
    if isinstance(batch_size, bool) or batch_size not in ("auto", 1, None):
        raise ValueError(f"batch_size must be 1 (fixed batch-1 signature), None "
                         f"(dynamic batch) or 'auto' ({AUTO_BATCH}), received "
                         f"{batch_size!r}")
    if batch_size == "auto":
        batch_size = AUTO_BATCH[format]
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
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, received {overwrite!r}")
    if (isinstance(min_agreement, bool) or not isinstance(min_agreement, (int, float))
            or not 0 <= min_agreement <= 1):
        raise ValueError(f"min_agreement must be a number in [0, 1] (the least "
                         f"top-1 agreement of an int8 file with Keras), received "
                         f"{min_agreement!r}")
    if log is not None and not callable(log):
        raise TypeError(f"log must be a function of one string (such as print) "
                        f"or None, received {type(log).__name__}")
    started = time.perf_counter()

    def say(message: str) -> None:
        if log is not None:
            log(f"export: {message} [{time.perf_counter() - started:.1f}s]")

    computed_in = mixed_policy(model)
    if computed_in is not None:
        say(f"{model.name} computes in {computed_in}: exporting a float32 copy of it")
        model = float32_copy(model)
    agreement_on = "sample_inputs" if sample_inputs is not None else "random inputs"
    calibration = None
    if quantize == "int8":
        samples = representative_samples(model, representative_data)
        if sample_inputs is None:
            calibration, held = _hold_back(samples)
            sample_inputs = held if len(held) > 1 else held[0]
            agreement_on = "held-back calibration data"
        else:
            calibration = samples
        calibration_samples = int(len(calibration[0]))
    elif representative_data is not None:
        raise ValueError(f"representative_data applies to quantize='int8' only, "
                         f"received quantize={quantize!r}")
    full = check_path(path, format, overwrite, model.name)
    given = os.fspath(path)
    text_files: dict[str, Any] = {}
    if takes_text(model):
        if sample_inputs is None:
            agreement_on = "sample texts"
        if format == "saved_model":  # it keeps the strings: tokenization inside
            model = string_model(model)
        else:
            # Mobile runtimes get token ids; the tokenizer travels beside the file.
            model, sample_inputs, text_files, tokenize = _token_model(model, full,
                                                                      sample_inputs)
            if calibration is not None:  # calibrate on the texts' ids
                ids = tokenize(list(calibration[0]))
                calibration = ids if isinstance(ids, list) else [ids]
    if calibration is not None:  # N samples: one array per input
        representative_data = calibration if len(calibration) > 1 else calibration[0]
    report_name = full.name + ".report.json"
    check_side_files(full, {**text_files, report_name: None}, overwrite)
    inputs = _sample_inputs(model, sample_inputs)
    want = keras.tree.flatten(model.predict(inputs if len(inputs) > 1 else inputs[0],
                                            verbose=0))
    names = input_names(model)
    what = (f"{format}{f' {quantize}' if quantize else ''}, "
            f"{'dynamic batch' if batch_size is None else 'batch 1'}")
    tmp = temporary_beside(full, folder=format == "saved_model",
                           suffix=FILE_SUFFIXES.get(format, ""))
    try:
        if quantize == "int8":
            say(f"converting {model.name} to {what}; calibrating on "
                f"{calibration_samples} samples")
        else:
            say(f"converting {model.name} to {what}")
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
        say(f"verifying against Keras on {len(inputs[0])} inputs ({agreement_on})")
        report = {"format": format, "quantize": quantize, "path": given,
                  "batch_size": "dynamic" if batch_size is None else batch_size,
                  "samples": int(len(inputs[0])), **_compare(got, want),
                  "agreement_samples": int(len(inputs[0])),
                  "agreement_on": agreement_on, "file_bytes": _size(tmp),
                  "batch1_latency_ms": latency,
                  "precision": "float32" + (f" (the model's {computed_in} computed in "
                                            f"float32)" if computed_in else ""),
                  **extra}
        if quantize == "int8":
            report.update(calibration_samples=calibration_samples,
                          min_agreement=min_agreement)
        if quantize is None and report["max_abs_error"] > FLOAT_TOLERANCE:
            raise ExportError(
                f"{format} export of {model.name} differs from Keras by "
                f"{report['max_abs_error']:.3g} (> {FLOAT_TOLERANCE}); nothing "
                f"was written to {given!r}")
        if quantize == "int8" and report["top1_agreement"] < min_agreement:
            raise ExportError(
                f"the int8 file's top-1 class agrees with the float Keras model on "
                f"only {report['top1_agreement']:.1%} of the {report['samples']} "
                f"inputs compared ({agreement_on}), below min_agreement="
                f"{min_agreement:g}; nothing was written to {given!r}. Calibrate "
                f"on representative inputs (training data, as the model sees them), "
                f"keep more ops in float (float_ops, float_layers), or accept it "
                f"with a lower min_agreement (CLI: --min-agreement)")
        if format == "saved_model":
            write_text(tmp / MARKER, json.dumps({
                "format": format, "model": model.name, "written_by": "attention_zoo",
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds"),
                "batch_size": report["batch_size"]}, indent=2) + "\n")
        if text_files:
            report["tokenizer_files"] = sorted(text_files)
        # Checked again: the conversion took a while, and the folder is the
        # user's.
        check_path(path, format, overwrite, model.name)
        check_side_files(full, {**text_files, report_name: None}, overwrite)
        for name, text in text_files.items():
            if not holds(full.with_name(name), text):
                write_text(full.with_name(name), text)
        install(tmp, full)
    finally:
        discard(tmp)
    write_text(full.with_name(report_name),
               json.dumps(report, indent=2, default=str) + "\n")
    say(f"wrote {given} ({report['file_bytes'] / 1e6:.2f} MB; top-1 agreement "
        f"{report['top1_agreement']:.3f}, max abs error {report['max_abs_error']:.2g})")
    return report


def _token_model(model: keras.Model, path: Path, sample_inputs: Any
                 ) -> tuple[keras.Model, list[np.ndarray], dict[str, str], Any]:
    """The int32-id classifier inside a string model (an ensemble's: one id
    input per member, averaged), sample ids made by the pure-Python
    tokenizers (checked against the model's TextVectorization), the
    tokenizer files to write beside ``path``, and a function from texts to
    the model's id inputs."""
    from attention_zoo.data import tokenizer as tokenizer_module
    from attention_zoo.models.ensemble import ensemble_members, named_view

    parts = ensemble_members(model)
    texts = list(sample_inputs) if sample_inputs is not None else SAMPLE_TEXTS
    stem = path.name.rsplit(".", 1)[0]
    tokenizers, classifiers, files = [], [], {}
    for i, member in enumerate(parts):
        prefix = stem if len(parts) == 1 else f"{stem}.member{i}"
        tokenizer, member_files = _tokenizer(member, prefix, texts)
        tokenizers.append(tokenizer)
        files.update(member_files)
        classifiers.append(fixed_length(member, tokenizer.max_length))
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
    token_model = keras.Model(inputs, mean, name=TOKEN_MODEL)
    return token_model, ids, files, lambda batch: [t(batch) for t in tokenizers]


def string_model(task: keras.Model) -> keras.Model:
    """A text task with its preprocessor inside: a functional model from
    ``(batch,)`` strings to the task's output, for a SavedModel that takes
    raw texts. TensorFlow backend only (other backends hold no strings)."""
    if not getattr(task, "preprocessor", None):
        return task  # a string-input functional model already
    texts = keras.Input((), dtype="string", name="text")
    ids = task.preprocessor(texts)
    outputs = task(list(ids) if isinstance(ids, (tuple, list)) else ids)
    return keras.Model(texts, outputs, name=task.name)


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

    vectorize = model.preprocessor.vectorize
    config = vectorize.get_config()
    vocabulary = [str(t) for t in vectorize.get_vocabulary()[2:]]
    ngrams = config.get("ngrams")
    ngrams = max(ngrams) if isinstance(ngrams, (list, tuple)) else ngrams
    truncating = config.get("truncating", "post")
    split = config.get("standardize") is standardize_contractions
    tokenizer = tokenizer_module.Tokenizer(vocabulary, config["output_sequence_length"],
                                           ngrams, truncating, split)
    ids = tokenizer(texts)
    found = keras.ops.convert_to_numpy(vectorize(as_text_tensor(texts)))  # to the longest
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
    """A token-id classifier (same layers and weights) whose input is
    ``(batch, length)``: text tasks run on ids padded to each batch's
    longest text, mobile runtimes need one shape."""
    if classifier.inputs[0].shape[1] == length:
        return classifier
    ids = keras.Input((length,), dtype="int32", name=input_names(classifier)[0])
    return keras.Model(ids, classifier(ids), name=TOKEN_MODEL)


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
