"""Does recomputing an AttnCNN's BatchNorm statistics after training help?

The default recipe ends with BatchNorm moving averages of momentum 0.6,
i.e. mostly the last two or three augmented batches. This script replaces
them by the average over one pass of the training split (batch means and
variances averaged with equal weight, the momentum set to k / (k + 1) at
batch k), either on the images as they are or augmented as in training
(flip and 2-pixel translation), and reports validation accuracy before and
after, with and without airbench's TTA.

Usage:
  python benchmarks/bn_recalibration.py --data ZIP MODEL [MODEL ...]
MODEL: a shipped name (attn_cnn_cifar10) or a run's model.keras
(``cli.common.load_model``, as the CLI reads it).
Prints Markdown (committed as benchmarks/bn_recalibration.md).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from attention_zoo import data, training  # noqa: E402
from attention_zoo.cli.common import load_model  # noqa: E402
from attention_zoo.models import cards  # noqa: E402

MODES = {"training images as they are": False,
         "training images augmented (flip, translate 2)": True}


def batch_norms(model):
    import keras

    return [layer for layer in model._flatten_layers()
            if isinstance(layer, keras.layers.BatchNormalization)]


def recalibrate(model, train, augment: bool, batch_size: int = 1000) -> None:
    """Sets every BatchNorm's moving mean and variance to the mean of its
    batch statistics over one pass of ``train``."""
    layers = batch_norms(model)
    momenta = [layer.momentum for layer in layers]
    batches = data.images.pipeline(train, batch_size, training=augment,
                                   translate=2 if augment else 0, flip=augment)
    try:
        for k, (x, _) in enumerate(batches):
            for layer in layers:
                layer.momentum = k / (k + 1.0)
            model(x, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum


def scores(model, val) -> str:
    plain, tta = training.view_accuracies(model, val, "flip_translate")
    return f"{plain:.4f} | {tta:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()

    train, val_set = data.cifar10(args.data)
    val = data.images.pipeline(val_set, 1000)
    print(f"$ python benchmarks/bn_recalibration.py {shlex.join(sys.argv[1:])}\n")
    print(f"{cards.machine()}; validation split of ../shared/data/README.md "
          f"({len(val_set)} images), statistics from its {len(train)} training images\n")
    print("| model | BatchNorm statistics | without TTA | flip_translate TTA |")
    print("|---|---|---|---|")
    for name in args.models:
        model = load_model(name)
        print(f"| `{name}` | as trained | {scores(model, val)} |", flush=True)
        for label, augment in MODES.items():
            model = load_model(name)
            recalibrate(model, train, augment)
            print(f"| `{name}` | {label} | {scores(model, val)} |", flush=True)


if __name__ == "__main__":
    main()
