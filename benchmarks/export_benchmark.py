"""Exports of the shipped models: validation accuracy, file size and batch-1
latency of Keras, LiteRT (float32, float16, int8) and ONNX Runtime, in one run.

Usage:
  python benchmarks/export_benchmark.py --cifar ZIP [--sst2 DIR] [--imdb TSV_GZ]
      [--limit N]
Prints a Markdown table (committed as benchmarks/export_benchmark.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from attention_zoo import data, export, models  # noqa: E402


def _latency_ms(fn) -> float:
    return export.latency_ms(fn, repeats=50)


def _chunks(feed: dict, size: int) -> list[dict]:
    count = len(next(iter(feed.values())))
    return [{k: v[i:i + size] for k, v in feed.items()} for i in range(0, count, size)]


def _tflite_predict(path: Path, feed: dict, chunk: int) -> tuple:
    runner, outputs, _ = export.run_tflite_batches(
        path.read_bytes(), _chunks(feed, chunk), num_threads=os.cpu_count())
    details = runner.get_input_details()
    one = {k: export.quantize_input(v[:1], details[k]) for k, v in feed.items()}
    return (np.concatenate([out[0] for out in outputs]),
            _latency_ms(lambda: runner(**one)))


def _onnx_predict(path: Path, feed: dict) -> tuple:
    run = export.onnx_runner(path)
    p = np.concatenate([run(part)[0] for part in _chunks(feed, 250)])
    return p, _latency_ms(lambda: run(_chunks(feed, 1)[0]))


def _progress(line: str) -> None:
    """export's progress lines go to stderr: stdout is the Markdown table."""
    print(line, file=sys.stderr, flush=True)


def bench(name: str, model, x: np.ndarray, y: np.ndarray, ids_fn=None,
          representative=None) -> list[dict]:
    """Rows for one shipped model; ``ids_fn`` turns texts into the
    ``{input name: token ids}`` the mobile formats of text models take (one
    input per ensemble member). TFLite files have a dynamic batch."""
    import tensorflow as tf

    rows = []
    keras_p = model.predict(x, verbose=0, batch_size=250)
    one = x[:1]
    rows.append({"format": "Keras", "accuracy": float(np.mean(keras_p.argmax(-1) == y)),
                 "bytes": None,
                 "latency_ms": _latency_ms(lambda: model(tf.constant(one)
                                                         if x.dtype == object else one,
                                                         training=False))})
    mobile_x = (ids_fn(x) if ids_fn
                else {export.input_names(model)[0]: x.astype("float32")})
    with tempfile.TemporaryDirectory() as tmp:
        for label, kwargs in [("LiteRT float32", {}), ("LiteRT float16", {"quantize": "float16"}),
                              ("LiteRT int8", {"quantize": "int8",
                                               "representative_data": representative})]:
            path = Path(tmp) / f"{label.split()[-1]}.tflite"
            started = time.perf_counter()
            report = export.export(model, path, batch_size=None, log=_progress, **kwargs)
            seconds = time.perf_counter() - started
            p, latency = _tflite_predict(path, mobile_x, 250)
            rows.append({"format": label, "accuracy": float(np.mean(p.argmax(-1) == y)),
                         "bytes": report["file_bytes"], "latency_ms": latency,
                         "max_abs_error": report["max_abs_error"],
                         "export_seconds": seconds, "float_ops": report["ops"]["float_ops"]})
        path = Path(tmp) / "model.onnx"
        started = time.perf_counter()
        report = export.export(model, path, format="onnx", batch_size=None,
                               log=_progress)
        seconds = time.perf_counter() - started
        p, latency = _onnx_predict(path, mobile_x)
        rows.append({"format": "ONNX Runtime", "accuracy": float(np.mean(p.argmax(-1) == y)),
                     "bytes": report["file_bytes"], "latency_ms": latency,
                     "max_abs_error": report["max_abs_error"], "export_seconds": seconds})
    for row in rows:
        row["model"] = name
    return rows


def bench_text(name: str, train, val) -> list[dict]:
    model = models.load(name)
    pick = np.random.default_rng(0).choice(len(train), 256, replace=False)
    return bench(name, model, val.texts, val.labels, ids_fn=export.token_inputs(model),
                 representative=[[train.texts[i] for i in pick]])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cifar", required=True)
    parser.add_argument("--sst2", help="folder with train.tsv and dev.tsv")
    parser.add_argument("--imdb", help="IMDB train.tsv.gz (validation: seeded 10%%)")
    parser.add_argument("--limit", type=int, default=5000)
    args = parser.parse_args()
    rows = []
    shipped = models.pretrained()
    if "attn_cnn_cifar10" in shipped:
        train, val = data.cifar10(args.cifar)
        pick = np.random.default_rng(0).choice(len(train), 256, replace=False)
        keep = np.sort(np.random.default_rng(0).choice(
            len(val), min(args.limit, len(val)), replace=False))  # every class
        x, y = val.images[keep], val.labels[keep]
        rows += bench("attn_cnn_cifar10", models.load("attn_cnn_cifar10"), x, y,
                      representative=[train.images[pick].astype("float32")])
    if "attn_text_sst2" in shipped and args.sst2:
        rows += bench_text("attn_text_sst2", data.text_tsv(Path(args.sst2) / "train.tsv"),
                           data.text_tsv(Path(args.sst2) / "dev.tsv"))
    if "attn_text_imdb" in shipped and args.imdb:
        rows += bench_text("attn_text_imdb", *data.imdb(args.imdb))
    print(f"{platform.machine()}, {os.cpu_count()} cores; validation accuracy on "
          f"the splits of ../shared/data (CIFAR-10: last 500 per class, a seeded "
          f"sample of {args.limit}; SST-2: dev; IMDB: seeded stratified 10% of train); "
          f"TFLite files with a dynamic batch; batch-1 latency, median of 50 calls\n")
    print("| model | format | val accuracy | file MB | batch-1 ms | max abs error vs Keras "
          "| export s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        size = f"{r['bytes'] / 1e6:.2f}" if r["bytes"] else "-"
        err = f"{r['max_abs_error']:.1e}" if "max_abs_error" in r else "-"
        secs = f"{r['export_seconds']:.0f}" if "export_seconds" in r else "-"
        print(f"| {r['model']} | {r['format']} | {r['accuracy']:.4f} | {size} | "
              f"{r['latency_ms']:.2f} | {err} | {secs} |")
    for r in rows:
        if r["format"] == "LiteRT int8":
            print(f"\n{r['model']} {r['format']}: ops computing in float: "
                  f"{r['float_ops'] or 'none'}")


if __name__ == "__main__":
    main()
