"""Inference speed of AttnCNN pass by pass: does a pass use every core?

``cifar10_speed.md`` (section 4, AVX2-only CPU) has inference at about 385
or about 195 images/s at the same CPU time per image. This script times several passes of one
model over the same synthetic images, each pass reported with its CPU time
over wall time (2.0: both cores busy), through ``model.predict`` and
through a ``tf.function`` called on array slices, for the package's
BatchNorm class and Keras's; then on a ``tf.data`` dataset of the same
batches, through ``model.predict`` (the path of ``training.predict``: the
validation after training, ``attention-zoo evaluate``) and through a
``tf.function``, made afresh each pass, called from Python on the batches
the dataset yields (an alternative to it).

Usage: python benchmarks/inference_passes.py [--passes 6] [--batch 1000]
Prints Markdown (committed as benchmarks/inference_passes.md).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import attention_zoo  # noqa: F401  (before TensorFlow: oneDNN on)
import keras
import numpy as np
import tensorflow as tf

from attention_zoo.models import AttnCNN, cards
from attention_zoo.training import onednn_enabled
from cifar10_speed import use_keras_layers  # the script beside this one


def passes(run, images: int, count: int) -> list[str]:
    cells = []
    for _ in range(count):
        start, cpu = time.perf_counter(), time.process_time()
        run()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        cells.append(f"{images / wall:.0f} ({cpu / wall:.2f})")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=6)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--images", type=int, default=4000)
    args = parser.parse_args()
    print(f"$ python benchmarks/inference_passes.py {shlex.join(sys.argv[1:])}\n")
    print(f"{cards.machine()}, oneDNN {'on' if onednn_enabled() else 'off'}, "
          f"TF {tf.__version__}, Keras {keras.__version__}; default AttnCNN, float32, "
          f"{args.images} synthetic images, batch {args.batch}\n")
    print("Each cell: images/s of one pass (CPU seconds / wall seconds).\n")
    print("| BatchNorm class | call | " + " | ".join(f"pass {i + 1}" for i in
                                                   range(args.passes)) + " |")
    print("|---|---|" + "---|" * args.passes)
    x = np.random.default_rng(0).integers(0, 256, (args.images, 32, 32, 3)).astype("float32")
    # "conv" keeps the package's Conv2D and swaps in Keras's BatchNorm for
    # the nets built after it, so the package's goes first.
    for label, kernels in (("package", "fast"), ("Keras", "conv")):
        use_keras_layers(kernels)
        keras.utils.set_random_seed(0)
        model = AttnCNN()
        model.predict(x[:args.batch], batch_size=args.batch, verbose=0)
        call = tf.function(lambda t: model(t, training=False))
        call(x[:args.batch])

        def sliced():
            for k in range(0, len(x), args.batch):
                call(x[k:k + args.batch]).numpy()

        dataset = tf.data.Dataset.from_tensor_slices(x).batch(args.batch)

        def batched():
            fresh = tf.function(lambda t: model(t, training=False), reduce_retracing=True)
            for batch in dataset.as_numpy_iterator():
                fresh(batch).numpy()

        rows = {"`model.predict`": lambda: model.predict(x, batch_size=args.batch, verbose=0),
                "`tf.function` on slices": sliced,
                "`model.predict` on `tf.data`": lambda: model.predict(dataset, verbose=0),
                "`tf.function` on `tf.data` batches": batched}
        for name, run in rows.items():
            print(f"| {label} | {name} | " + " | ".join(passes(run, len(x), args.passes))
                  + " |", flush=True)


if __name__ == "__main__":
    main()
