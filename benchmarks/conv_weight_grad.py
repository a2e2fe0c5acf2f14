"""Weight gradient of AttnCNN's 3x3 convolutions: oneDNN's kernel against
the per-tap matrix products that ``models.cpu_kernels.Conv2D`` uses
(``cpu_kernels._taps_weight_gradient`` itself, traced by ``tf.function``),
on tensors of the net's shapes at batch 2000 (bfloat16, as trained on a
CPU with native bfloat16, or float32).

Usage: python benchmarks/conv_weight_grad.py [--width 112 352 352] [--dtype bfloat16|float32]
(output: conv_weight_grad.md). Columns, seconds for one batch (best of 3):
forward convolution, oneDNN's weight gradient, the per-tap products, and
the largest difference of the per-tap gradient from oneDNN's, relative to
oneDNN's largest value (rounding).
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import attention_zoo  # noqa: E402,F401  before TensorFlow: oneDNN as users get it
import tensorflow as tf  # noqa: E402

from attention_zoo.models.cpu_kernels import _taps_weight_gradient  # noqa: E402
from attention_zoo.models.cards import machine  # noqa: E402
from attention_zoo.training.policy import onednn_enabled  # noqa: E402


def layer_shapes(width: list[int]) -> dict[str, tuple[int, int, int]]:
    """``name: (map height = width, input channels, filters)`` of AttnCNN's
    stage convolutions with the whitening stem (24 channels, 31x31 maps):
    each stage's first convolution runs before its pooling, the second
    after it."""
    shapes, channels, size = {}, 24, 31
    for stage, filters in enumerate(width, start=1):
        shapes[f"{stage}a"] = (size, channels, filters)
        size //= 2
        shapes[f"{stage}b"] = (size, filters, filters)
        channels = filters
    return shapes


def best_of_3(function: Callable[..., Any], *args: Any) -> float:
    function(*args)  # traces and warms up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        function(*args).numpy()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, nargs=3, default=[112, 352, 352])
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    args = parser.parse_args()
    dtype = tf.as_dtype(args.dtype)
    print(f"{machine()}, oneDNN "
          f"{'on' if onednn_enabled() else 'off'}, {args.dtype}, batch {args.batch}")
    for name, (hw, cin, cout) in layer_shapes(args.width).items():
        x = tf.cast(tf.random.normal((args.batch, hw, hw, cin)), dtype)
        dy = tf.cast(tf.random.normal((args.batch, hw, hw, cout)), dtype)
        w = tf.cast(tf.random.normal((3, 3, cin, cout)), dtype)
        native = tf.function(lambda x, dy, cin=cin, cout=cout: tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=[3, 3, cin, cout], out_backprop=dy,
            strides=[1, 1, 1, 1], padding="SAME"))
        taps = tf.function(lambda x, dy: _taps_weight_gradient(x, dy, 3, 3))
        forward = tf.function(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"))
        reference = tf.cast(native(x, dy), tf.float32)
        error = float(tf.reduce_max(tf.abs(reference - tf.cast(taps(x, dy), tf.float32)))
                      / tf.reduce_max(tf.abs(reference)))
        print(f"{name} {hw}x{hw} {cin:>3} -> {cout:>3}  fwd {best_of_3(forward, x, w):.3f}  "
              f"native wgrad {best_of_3(native, x, dy):.3f}  "
              f"taps {best_of_3(taps, x, dy):.3f}  relerr {error:.4f}", flush=True)


if __name__ == "__main__":
    main()
