"""AttnCNN training and inference speed for each precision and XLA setting.

Usage: python benchmarks/cifar10_speed.py [--attention cbam] [--steps 12]
Writes a Markdown table to stdout (committed as benchmarks/cifar10_speed.md).
Synthetic pixels: speed does not depend on the data.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from attention_zoo.models import AttnCNN  # noqa: E402


def forward_flops(model: keras.Model) -> float:
    """FLOPs of one forward pass of one image, counted by TF's profiler."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    spec = tf.TensorSpec((1, *model.inputs[0].shape[1:]), tf.float32)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
    return float(info.total_float_ops)


def measure(attention: str, policy: str, xla: bool, batch: int, steps: int) -> dict:
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    model = AttnCNN(attention=attention)
    keras.config.set_dtype_policy("float32")
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
                  "categorical_crossentropy", jit_compile=xla)
    x = np.random.default_rng(0).integers(0, 256, (batch * steps, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical(np.arange(batch * steps) % 10, 10)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache()
    model.fit(data.take(2), epochs=1, verbose=0)  # trace and compile
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    train = batch * steps / (time.perf_counter() - start)
    images = data.map(lambda a, b: a)
    model.predict(images.take(2), verbose=0)
    start = time.perf_counter()
    model.predict(images, verbose=0)
    infer = batch * steps / (time.perf_counter() - start)
    return {"train": train, "infer": infer}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attention", default="cbam")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()

    flops = forward_flops(AttnCNN(attention=args.attention))
    print(f"AttnCNN(attention={args.attention!r}), batch {args.batch}, "
          f"{args.steps} timed steps; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, TF {tf.__version__}, Keras {keras.__version__}\n")
    print(f"forward FLOPs per image: {flops / 1e6:.1f} M "
          f"(training step ~3x: {3 * flops / 1e6:.0f} M)\n")
    print("| precision | XLA | train images/s | train GFLOP/s | inference images/s |")
    print("|---|---|---|---|---|")
    for policy in ("float32", "mixed_bfloat16"):
        for xla in (False, True):
            r = measure(args.attention, policy, xla, args.batch, args.steps)
            print(f"| {policy} | {'on' if xla else 'off'} | {r['train']:.0f} | "
                  f"{r['train'] * 3 * flops / 1e9:.1f} | {r['infer']:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
