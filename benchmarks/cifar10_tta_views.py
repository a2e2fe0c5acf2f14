"""How much more test-time augmentation buys an AttnCNN than airbench's
level 2 (``tta="flip_translate"``): validation accuracy of weightings of the
image, its eight one-pixel shifts (reflected borders) and their mirrors.

Usage:
  python benchmarks/cifar10_tta_views.py --data ZIP MODEL [MODEL ...]
MODEL: a shipped name (attn_cnn_cifar10) or a run's model.keras.
Prints Markdown (committed as benchmarks/cifar10_tta_views.md).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from attention_zoo import data  # noqa: E402
from attention_zoo.cli.common import load_model  # noqa: E402
from attention_zoo.models.tta import view  # noqa: E402

SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def view_probabilities(model, images: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """Each shift's flip-averaged class probabilities (``models.tta.view``,
    the views ``training.predict`` averages)."""
    return {(dy, dx): (model.predict(view(images, dy, dx), batch_size=500, verbose=0)
                       + model.predict(view(images, dy, dx, mirrored=True),
                                       batch_size=500, verbose=0)) / 2
            for dy, dx in SHIFTS}


def weightings(views: dict) -> dict[str, np.ndarray]:
    centre = views[0, 0]
    others = [views[s] for s in SHIFTS if s != (0, 0)]
    diagonal = [views[s] for s in SHIFTS if s[0] and s[1]]
    return {
        "flip (2 views)": centre,
        "flip_translate, airbench level 2 (6 views; the default)":
            0.5 * centre + 0.25 * views[-1, -1] + 0.25 * views[1, 1],
        "1/2 image, 1/2 the 4 diagonal shifts (10 views)":
            0.5 * centre + 0.5 * np.mean(diagonal, 0),
        "1/2 image, 1/2 all 8 shifts (18 views)": 0.5 * centre + 0.5 * np.mean(others, 0),
        "uniform over image and 8 shifts (18 views)": np.mean([centre, *others], 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()

    _, val = data.cifar10(args.data)
    images = val.images.astype("float32")
    print(f"$ python benchmarks/cifar10_tta_views.py {shlex.join(sys.argv[1:])}\n")
    print(f"Validation split of ../shared/data/README.md ({len(val)} images, the "
          "last 500 of each class)\n")
    rows: dict[str, list[str]] = {}
    for name in args.models:
        model = load_model(name)
        plain = model.predict(images, batch_size=500, verbose=0)
        rows.setdefault("none (1 view)", []).append(
            f"{np.mean(plain.argmax(-1) == val.labels):.4f}")
        for label, p in weightings(view_probabilities(model, images)).items():
            rows.setdefault(label, []).append(f"{np.mean(p.argmax(-1) == val.labels):.4f}")
    print("| test-time augmentation | " + " | ".join(f"`{m}`" for m in args.models) + " |")
    print("|---|" + "---|" * len(args.models))
    for label, accuracies in rows.items():
        print(f"| {label} | " + " | ".join(accuracies) + " |")


if __name__ == "__main__":
    main()
