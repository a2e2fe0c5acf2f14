"""timm's SE-ResNet-50 and ECA-ResNet-50d against their Keras conversions
(``attention_zoo.interop.from_timm``) on this machine's CPU: inference
throughput of timm's PyTorch model and of the Keras model on TensorFlow
(without and with XLA) and JAX (jit), and the converted model's TFLite files
(float32, int8): size, batch-1 latency and top-1 agreement with Keras.

Usage:
  python benchmarks/timm.py [--models seresnet50 ecaresnet50d] [--batches 1 32]
      [--seconds 5] [--warmup 2] [--backends tensorflow jax] [--size 224]
      [--images 100] [--calibration 64] [--tflite-threads N]
      [--cifar /work/shared/data/cifar10/cifar10-train-jpeg.zip]
      [--out benchmarks/timm.md] [--quick]
Writes Markdown to --out (default benchmarks/timm.md, replaced atomically)
and prints a progress line per measurement. `--quick` only tests the script
(seresnet18 and ecaresnet26t at 64x64, 1 s per cell, 20 images, 8 to
calibrate; explicit options still win) and writes /tmp/timm_quick.md unless
--out is given.

The weights are timm's random initialisation (``torch.manual_seed(0)``;
``pretrained=False``): the checkpoints cannot be downloaded on this machine.
This process converts the model and runs timm, Keras on TensorFlow and
LiteRT; Keras picks its backend once per process, so the JAX cells run in a
worker process (``KERAS_BACKEND=jax``) that loads the converted model from
the ``.keras`` file this process saved in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import _common  # benchmarks/_common.py: imported while this folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
_common.import_from(ROOT)  # `import timm` must not import this file

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = ("seresnet50", "ecaresnet50d")
QUICK_MODELS = ("seresnet18", "ecaresnet26t")
BACKENDS = ("tensorflow", "jax")
CIFAR = Path("/work/shared/data/cifar10/cifar10-train-jpeg.zip")
VAL_PER_CLASS = 500  # CIFAR-10's validation split here: the last 500 of each class
MARK = "@@timm "  # the worker's lines to its parent; anything else is noise
NOISE = ("I0000", "W0000", "E0000", "WARNING: All log messages", "To enable",
         "rebuild TensorFlow", "WARNING:absl")
RUNTIMES = {  # row labels of the throughput table, in order
    "timm": "timm (PyTorch, eager, `inference_mode`)",
    "tf": "Keras, TensorFlow (`jit_compile=False`)",
    "tf_xla": "Keras, TensorFlow + XLA (`jit_compile=True`)",
    "jax": "Keras, JAX (jit)",
}


def _progress(line: str) -> None:
    print(line, flush=True)


def _last_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1].strip()}" if lines else type(error).__name__


def throughput(call, batch: int, warmup: int, seconds: float) -> dict:
    """``warmup`` untimed calls of ``call()`` (each runs one batch and
    returns when its outputs exist), then timed calls until ``seconds`` have
    passed (at least one)."""
    start = time.perf_counter()
    for _ in range(warmup):
        call()
    warmup_s = time.perf_counter() - start
    calls, start = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    return {"images_s": calls * batch / elapsed, "calls": calls, "seconds": elapsed,
            "warmup_s": warmup_s}


def pixels(batch: int, size: int, seed: int = 0):
    """Random pixels 0..255, float32 ``(batch, size, size, 3)``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")


# ---------------------------------------------------------------- the worker


def _emit(**event) -> None:
    print(MARK + json.dumps(event), flush=True)


def worker(backend: str, job: dict) -> None:
    """Runs each model of ``job`` (``.keras`` path, a probe input and
    TensorFlow's logits on it) on ``backend`` with jit, at every batch size."""
    import attention_zoo  # noqa: F401  registers the zoo's classes for loading
    import keras
    import numpy as np

    assert keras.backend.backend() == backend, keras.backend.backend()
    _emit(event="ready")
    for entry in job["models"]:
        name = entry["model"]
        try:
            keras.backend.clear_session()
            model = keras.saving.load_model(entry["path"], compile=False)
            model.compile(jit_compile=True)
            probe = np.load(entry["probe"])
            diff = float(np.max(np.abs(model.predict_on_batch(probe["x"]) - probe["logits"])))
            _emit(event="parity", model=name, max_abs=diff, jit_ran=bool(model.jit_compile))
        except Exception as error:  # noqa: BLE001  reported in the cells
            for batch in job["batches"]:
                _emit(event="error", model=name, batch=batch, error=_last_line(error))
            continue
        for batch in job["batches"]:
            _emit(event="start", model=name, batch=batch)
            try:
                x = pixels(batch, job["size"])
                r = throughput(lambda: model.predict_on_batch(x), batch, job["warmup"],
                               job["seconds"])
                _emit(event="result", model=name, batch=batch, **r)
            except Exception as error:  # noqa: BLE001  reported in the cell
                _emit(event="error", model=name, batch=batch, error=_last_line(error))
        del model


def run_worker(backend: str, job: dict, cap: float, progress) -> tuple[dict, dict]:
    """Runs ``worker`` in a process of its own. Returns (cells by (model,
    batch), parity by model); a cell that outlasts ``cap`` seconds, and the
    cells after it, become failures, as do those of a crashed worker."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    stderr = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker", backend,
         json.dumps(job)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        start_new_session=True)
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            if line.startswith(MARK):
                lines.put(json.loads(line[len(MARK):]))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    cells: dict = {}
    parity: dict = {}
    failure = None
    try:
        while True:
            try:
                event = lines.get(timeout=cap)
            except queue.Empty:
                failure = f"timed out: no result in {cap:.0f} s"
                break
            if event is None:
                process.wait()
                if len(cells) < len(job["models"]) * len(job["batches"]):
                    stderr.seek(0)
                    tail = [line.strip() for line in stderr.read().splitlines()
                            if line.strip() and not line.startswith(NOISE)]
                    failure = (tail[-1] if tail
                               else f"worker exited with status {process.returncode}")
                break
            kind = event["event"]
            if kind == "parity":
                parity[event["model"]] = event
                progress(f"[{backend}] {event['model']}: loaded from .keras, max abs "
                         f"logit difference vs TensorFlow {event['max_abs']:.1e}")
            elif kind in ("result", "error"):
                key = (event["model"], event["batch"])
                cells[key] = (event if kind == "result"
                              else {"cell": event["error"]})
                progress(_cell_line(backend, key, cells[key]))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
        process.wait()
        stderr.close()
    for entry in job["models"]:
        for batch in job["batches"]:
            key = (entry["model"], batch)
            if key not in cells:
                cells[key] = {"cell": failure or "not run"}
                progress(_cell_line(backend, key, cells[key]))
    return cells, parity


def _cell_line(runtime: str, key: tuple, r: dict) -> str:
    model, batch = key
    head = f"[{runtime}] {model} batch {batch}"
    if "images_s" in r:
        return (f"{head}: {r['images_s']:.2f} images/s ({r['calls']} timed calls in "
                f"{r['seconds']:.1f} s; warm-up {r['warmup_s']:.1f} s)")
    return f"{head}: {r['cell']}"


# ---------------------------------------------------------------- the parent


def cifar_images(path: Path, size: int, count: int, calibration: int):
    """``(evaluated, calibration)`` float32 pixels ``(n, size, size, 3)``,
    resized with PIL's bilinear filter: ``count`` validation images (the
    last 500 of each class, in name order), ``count / classes`` from every
    class, evenly spaced; ``calibration`` images drawn (seed 0) from the rest
    of the training split."""
    import numpy as np
    from PIL import Image

    with zipfile.ZipFile(path) as archive:
        by_class: dict[str, list[str]] = {}
        for name in archive.namelist():
            parts = name.split("/")
            if len(parts) >= 2 and name.lower().endswith((".jpg", ".jpeg", ".png")):
                by_class.setdefault(parts[-2], []).append(name)
        classes = sorted(by_class)
        per_class = -(-count // len(classes))
        picked, rest = [], []
        for c in classes:
            names = sorted(by_class[c])
            val = names[-VAL_PER_CLASS:]
            spots = np.linspace(0, len(val) - 1, per_class).round().astype(int)
            picked += [val[i] for i in spots]
            rest += names[:-VAL_PER_CLASS]
        chosen = [rest[i] for i in np.sort(np.random.default_rng(0).choice(
            len(rest), calibration, replace=False))]

        def load(names: list[str]):
            out = []
            for name in names:
                with archive.open(name) as file:
                    image = Image.open(file).convert("RGB")
                    out.append(np.asarray(image.resize((size, size), Image.BILINEAR)))
            return np.stack(out).astype("float32")

        return load(picked), load(chosen)


def fixed_size_copy(model, size: int):
    """The converted model with a fixed ``(size, size, 3)`` input (its
    backbone takes any size), same weights: for TFLite files of one shape."""
    config = model.get_config()
    config["backbone"]["config"]["input_shape"] = [size, size, 3]
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def median_latency_ms(call, warmup: int, seconds: float) -> tuple[float, int]:
    """Median wall time of ``call()`` in ms over calls for ``seconds`` (at
    least 5), after ``warmup`` untimed calls; and the number of calls."""
    import numpy as np

    for _ in range(warmup):
        call()
    times, start = [], time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return 1000.0 * float(np.median(times)), len(times)


def bench_model(name: str, args, images, calibration, tmp: Path, progress) -> dict:
    """timm and Keras-on-TensorFlow cells, the TFLite rows, and the
    ``.keras`` file and probe the JAX worker reads."""
    import keras
    import numpy as np
    import timm
    import torch

    from attention_zoo import export
    from attention_zoo.interop import from_timm

    out: dict = {"cells": {}, "tflite": []}
    torch.manual_seed(0)
    torch_model = timm.create_model(name, pretrained=False).eval()
    cfg = torch_model.pretrained_cfg or {}
    mean = np.asarray(cfg.get("mean", (0.485, 0.456, 0.406)), "float32")
    std = np.asarray(cfg.get("std", (0.229, 0.224, 0.225)), "float32")

    def to_torch(x):  # what timm takes: normalized, channels first
        return torch.from_numpy(np.ascontiguousarray(
            ((x / 255.0 - mean) / std).transpose(0, 3, 1, 2).astype("float32")))

    out["params"] = sum(p.numel() for p in torch_model.parameters())
    for batch in args.batches:
        x = to_torch(pixels(batch, args.size))
        with torch.inference_mode():
            r = throughput(lambda: torch_model(x), batch, args.warmup, args.seconds)
        out["cells"][("timm", batch)] = r
        progress(_cell_line("timm", (name, batch), r))

    started = time.perf_counter()
    model = from_timm(torch_model)
    out["convert_s"] = time.perf_counter() - started
    probe = images[:4]
    with torch.inference_mode():
        timm_logits = torch_model(to_torch(probe)).numpy()
    keras_logits = np.asarray(model.predict_on_batch(probe))
    out["vs_timm"] = float(np.max(np.abs(keras_logits - timm_logits)))
    progress(f"[convert] {name}: {out['convert_s']:.1f} s, {out['params']:,} parameters, "
             f"max abs logit difference vs timm {out['vs_timm']:.1e} on {len(probe)} images")
    del torch_model

    if "tensorflow" in args.backends:
        for runtime, jit in (("tf", False), ("tf_xla", True)):
            model.compile(jit_compile=jit)
            if jit and not model.jit_compile:
                out["xla_off"] = True  # Keras turned XLA off for this model
            for batch in args.batches:
                x = pixels(batch, args.size)
                try:
                    r = throughput(lambda: model.predict_on_batch(x), batch,
                                   args.warmup, args.seconds)
                except Exception as error:  # noqa: BLE001  reported in the cell
                    r = {"cell": _last_line(error)}
                out["cells"][(runtime, batch)] = r
                progress(_cell_line(runtime, (name, batch), r))
        model.compile(jit_compile=False)

    if "jax" in args.backends:
        path = tmp / f"{name}.keras"
        model.save(path)
        np.savez(tmp / f"{name}_probe.npz", x=probe, logits=keras_logits)
        out["job"] = {"model": name, "path": str(path),
                      "probe": str(tmp / f"{name}_probe.npz")}

    # TFLite: batch-1 files of a fixed-size copy; Keras's float logits on the
    # evaluated images are the reference.
    reference = np.concatenate([np.asarray(model.predict_on_batch(images[i:i + 25]))
                                for i in range(0, len(images), 25)])
    out["keras_top1_classes"] = int(len(np.unique(reference.argmax(-1))))
    top2 = np.sort(reference, axis=-1)[:, -2:]
    out["keras_margin"] = float(np.median(top2[:, 1] - top2[:, 0]))
    out["keras_spread"] = float(np.median(reference.max(-1) - reference.min(-1)))
    fixed = fixed_size_copy(model, args.size)
    names = export.input_names(fixed)
    for label, kwargs in (("float32", {}),
                          ("int8", {"quantize": "int8", "representative_data": calibration})):
        row = {"file": label}
        try:
            started = time.perf_counter()
            flatbuffer = export.to_tflite(fixed, batch_size=1, **kwargs)
            row["convert_s"] = time.perf_counter() - started
            row["bytes"] = len(flatbuffer)
            runner, outputs, xnnpack = export.run_tflite_batches(
                flatbuffer, [[images[i:i + 1]] for i in range(len(images))], names,
                num_threads=args.tflite_threads)
            logits = np.concatenate([o[0] for o in outputs])
            row["agreement"] = float(np.mean(logits.argmax(-1) == reference.argmax(-1)))
            row["max_abs"] = float(np.max(np.abs(logits - reference)))
            row["xnnpack"] = xnnpack
            row["io"] = (np.dtype(runner.get_input_details()[names[0]]["dtype"]).name,
                         np.dtype(next(iter(runner.get_output_details().values()))
                                  ["dtype"]).name)
            row["float_ops"] = (export.tflite_op_report(flatbuffer)["float_ops"]
                                if label == "int8" else None)
            one = {names[0]: export.quantize_input(
                images[:1], runner.get_input_details()[names[0]])}
            row["latency_ms"], row["latency_calls"] = median_latency_ms(
                lambda: runner(**one), args.warmup, args.seconds)
            progress(f"[tflite] {name} {label}: {row['bytes'] / 1e6:.1f} MB, "
                     f"{row['latency_ms']:.1f} ms (median of {row['latency_calls']}), "
                     f"top-1 agreement {row['agreement']:.3f}, max abs logit "
                     f"difference {row['max_abs']:.2e}, XNNPACK {xnnpack}, "
                     f"{row['io'][0]} in, {row['io'][1]} out, converted in "
                     f"{row['convert_s']:.0f} s")
        except Exception as error:  # noqa: BLE001  reported in the row
            row["cell"] = _last_line(error)
            progress(f"[tflite] {name} {label}: {row['cell']}")
        out["tflite"].append(row)
    del model, fixed
    keras.backend.clear_session()
    return out


# ------------------------------------------------------------ the Markdown


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def _rate(r: dict | None) -> str:
    if r is None:
        return "-"
    if "cell" in r:
        return r["cell"].replace("|", "\\|").replace("\n", " ")[:120]
    return f"{r['images_s']:.1f}" if r["images_s"] >= 10 else f"{r['images_s']:.2f}"


def markdown(args, results: dict, parity: dict, command: str, seconds: float,
             machine: dict) -> str:
    size = f"{args.size}x{args.size}"
    version = _common.version
    runtimes = ["timm"] + (["tf", "tf_xla"] if "tensorflow" in args.backends else []) \
        + (["jax"] if "jax" in args.backends else [])
    lines = [
        f"# timm models against their Keras conversions on CPU: {', '.join(args.models)}",
        "",
        _common.made_on(seconds),
        "",
        f"$ {command}",
        "",
        f"CPU: {_common.cpu_lines()}. Load average (1 min) at the start {machine['load'][0]}, "
        f"at the end {machine['load'][1]}.",
        "",
        f"Versions: torch {version('torch')} ({machine['torch_threads']} intra-op "
        f"threads, its default), timm {version('timm')}, TensorFlow "
        f"{version('tensorflow')}, Keras {version('keras')}, JAX {version('jax')} "
        f"(jaxlib {version('jaxlib')}), LiteRT (ai-edge-litert) "
        f"{version('ai-edge-litert')}, NumPy {version('numpy')}, Python "
        f"{platform.python_version()}.",
        "",
        "Weights: timm's random initialisation (`timm.create_model(name, "
        "pretrained=False)` after `torch.manual_seed(0)`), converted with "
        "`attention_zoo.interop.from_timm`; the ImageNet checkpoints cannot be "
        "downloaded on this machine. Timings do not depend on the weights; the "
        "TFLite agreement below measures how closely each file reproduces the "
        "Keras float model, not accuracy.",
        "",
        f"Method: each cell is {args.warmup} untimed warm-up call(s) (tracing and "
        f"compiling included), then timed calls on one in-memory batch of random "
        f"pixels at {size} until {args.seconds:g} s have passed; images/s is the "
        f"timed calls' images over their time. timm runs its model in eval mode "
        f"under `torch.inference_mode()` on the pixels normalized and channels-first; "
        f"Keras runs `model.predict_on_batch` on the 0..255 pixels channels-last "
        f"(the normalization is inside the model) after `model.compile("
        f"jit_compile=...)`, on TensorFlow in this process and on JAX in a worker "
        f"process (`KERAS_BACKEND=jax`) that loads the model from a `.keras` file, "
        f"with each runtime's default threads.",
        "",
        f"## Inference throughput (images/s, {size})",
        "",
        "| model | runtime | " + " | ".join(f"batch {b}" for b in args.batches)
        + " | Keras / timm (" + " / ".join(f"batch {b}" for b in args.batches) + ") |",
        "|---|---|" + "---|" * len(args.batches) + "---|",
    ]
    for name in args.models:
        res = results[name]
        for runtime in runtimes:
            cells = [res["cells"].get((runtime, b)) for b in args.batches]
            label = RUNTIMES[runtime]
            if runtime == "tf_xla" and res.get("xla_off"):
                label += " (Keras turned XLA off)"
            if runtime == "timm":
                ratio = "1 (reference)"
            else:
                parts = []
                for b, r in zip(args.batches, cells):
                    base = res["cells"].get(("timm", b))
                    ok = r and "images_s" in r and base and "images_s" in base
                    parts.append(f"{r['images_s'] / base['images_s']:.2f}x" if ok else "-")
                ratio = " / ".join(parts)
            lines.append(f"| {name} | {label} | " + " | ".join(_rate(r) for r in cells)
                         + f" | {ratio} |")
    lines += [
        "",
        "Per cell: warm-up seconds (the first call traces and compiles) and timed "
        "calls in timed seconds.",
        "",
        "| model | runtime | " + " | ".join(f"batch {b}" for b in args.batches) + " |",
        "|---|---|" + "---|" * len(args.batches),
    ]
    for name in args.models:
        for runtime in runtimes:
            cells = []
            for b in args.batches:
                r = results[name]["cells"].get((runtime, b))
                cells.append(f"{r['warmup_s']:.1f} s; {r['calls']} in {r['seconds']:.1f} s"
                             if r and "images_s" in r else "-")
            lines.append(f"| {name} | {RUNTIMES[runtime]} | " + " | ".join(cells) + " |")
    checks = []
    for name in args.models:
        res = results[name]
        text = (f"{name} ({res['params']:,} parameters): converted in "
                f"{res['convert_s']:.1f} s; max abs logit difference Keras (TensorFlow) "
                f"vs timm {res['vs_timm']:.1e} on 4 images")
        if name in parity:
            text += f", JAX vs TensorFlow {parity[name]['max_abs']:.1e}"
        checks.append(text + ".")
    lines += ["", "Conversion checks: " + " ".join(checks)]

    n = args.images
    lines += [
        "",
        f"## TFLite (LiteRT), batch 1, {size}",
        "",
        f"Files from `attention_zoo.export.to_tflite(model, batch_size=1, "
        f"quantize=None or \"int8\")` of the converted model with its input fixed "
        f"to {size} (same weights). Images: {n} CIFAR-10 validation images (the last "
        f"500 of each class in `cifar10-train-jpeg.zip`, {n // 10} per class, evenly "
        f"spaced), 32x32 upscaled to {size} with PIL's bilinear filter; int8 "
        f"calibration: {args.calibration} other CIFAR-10 images (seeded draw from the "
        f"rest of the training split), resized the same way. Top-1 agreement and max "
        f"abs logit difference are against the Keras float model (TensorFlow) on "
        f"those {n} images, one image per call. Latency: median of one-image calls "
        f"for {args.seconds:g} s after {args.warmup} warm-up call(s), LiteRT with "
        f"{args.tflite_threads} thread(s) for both files.",
        "",
        "| model | file | MB | batch-1 ms | top-1 agreement with Keras | max abs logit "
        "difference vs Keras | XNNPACK |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in args.models:
        for row in results[name]["tflite"]:
            if "cell" in row:
                lines.append(f"| {name} | {row['file']} | "
                             + row["cell"].replace("|", "\\|")[:160] + " | | | | |")
                continue
            lines.append(
                f"| {name} | {row['file']} ({row['io'][0]} in, {row['io'][1]} out) | "
                f"{row['bytes'] / 1e6:.1f} | "
                f"{row['latency_ms']:.1f} | {row['agreement']:.3f} "
                f"({round(row['agreement'] * n)}/{n}) | {row['max_abs']:.2e} | "
                f"{'yes' if row['xnnpack'] else 'no (built-in kernels)'} |")
    lines += ["", "The Keras float model's top-1 over the evaluated images: "
              + "; ".join(f"{name}: {results[name]['keras_top1_classes']} distinct "
                          f"ImageNet classes among {n}, median gap between its two "
                          f"largest logits {results[name]['keras_margin']:.2e} "
                          f"(median range of the logits "
                          f"{results[name]['keras_spread']:.2e})"
                          for name in args.models)
              + ". With random weights the logits lie close together, so a small "
                "error can change the top-1."]
    for name in args.models:
        for row in results[name]["tflite"]:
            if row.get("float_ops") is not None:
                ops = ", ".join(f"{op} {count}" for op, count in row["float_ops"].items())
                lines += ["", f"{name} {row['file']}: ops computing in float: "
                              f"{ops or 'none'}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", help=f"timm model names (default "
                        f"{' '.join(MODELS)}; --quick: {' '.join(QUICK_MODELS)})")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--seconds", type=float,
                        help="timed seconds per cell (default 5; --quick: 1)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed calls before each cell (default 2; --quick: 1)")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS),
                        help="Keras backends to time (the TFLite files are made "
                             "on TensorFlow either way)")
    parser.add_argument("--size", type=int, help="image side (default 224; --quick: 64)")
    parser.add_argument("--images", type=int,
                        help="CIFAR-10 validation images for the TFLite agreement, "
                             "a multiple of 10 (default 100; --quick: 20)")
    parser.add_argument("--calibration", type=int,
                        help="CIFAR-10 images to calibrate int8 on (default 64; "
                             "--quick: 8)")
    parser.add_argument("--tflite-threads", type=int, default=os.cpu_count(),
                        help="LiteRT threads (default: os.cpu_count())")
    parser.add_argument("--cifar", type=Path, default=CIFAR,
                        help="CIFAR-10 image-folder zip (train/<class>/NNNN.jpg)")
    parser.add_argument("--worker-cap", type=float, default=900,
                        help="seconds the JAX worker may go without a result "
                             "before it is stopped (default 900)")
    parser.add_argument("--out", type=Path, help="Markdown file (default "
                        "benchmarks/timm.md; --quick: /tmp/timm_quick.md)")
    parser.add_argument("--quick", action="store_true",
                        help="tests the script: small models at 64x64, 1 s per cell")
    parser.add_argument("--worker", nargs=2, metavar=("BACKEND", "JOB"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], json.loads(args.worker[1]))
        return
    quick = args.quick
    defaults = {"models": list(QUICK_MODELS if quick else MODELS),
                "seconds": 1.0 if quick else 5.0, "warmup": 1 if quick else 2,
                "size": 64 if quick else 224, "images": 20 if quick else 100,
                "calibration": 8 if quick else 64,
                "out": Path("/tmp/timm_quick.md" if quick
                            else ROOT / "benchmarks" / "timm.md")}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.images < 10 or args.images % 10:
        parser.error("--images must be a positive multiple of 10 (the same number "
                     "from every class)")
    command = _common.command()
    _progress(f"$ {command}")
    started = time.perf_counter()

    # This process runs Keras on TensorFlow; attention_zoo before torch and
    # timm (the other order crashes when TensorFlow loads).
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import attention_zoo  # noqa: F401
    import torch

    machine = {"torch_threads": torch.get_num_threads(), "load": [_load(), None]}
    images, calibration = cifar_images(args.cifar, args.size, args.images,
                                       args.calibration)
    _progress(f"[data] {len(images)} CIFAR-10 validation images and {len(calibration)} "
              f"calibration images at {args.size}x{args.size}")
    results: dict = {}
    parity: dict = {}
    with tempfile.TemporaryDirectory(prefix="timm_bench_") as tmp:
        for name in args.models:
            results[name] = bench_model(name, args, images, calibration, Path(tmp),
                                        _progress)
        jobs = [results[n].pop("job") for n in args.models if "job" in results[n]]
        if jobs:
            job = {"models": jobs, "batches": args.batches, "size": args.size,
                   "seconds": args.seconds, "warmup": args.warmup}
            cells, parity = run_worker("jax", job, args.worker_cap, _progress)
            for (name, batch), r in cells.items():
                results[name]["cells"][("jax", batch)] = r
    seconds = time.perf_counter() - started
    machine["load"][1] = _load()
    _common.write_text(args.out, markdown(args, results, parity, command, seconds,
                                          machine))
    _progress(f"wrote {args.out} ({seconds / 60:.1f} min)")


if __name__ == "__main__":
    main()
