"""Validation accuracy of finished AttnCNN runs, evaluated under the policy
they trained with and again in float32.

`training.fit` evaluates a run's model as it trained, so a mixed_bfloat16
run's summary.json reports bfloat16 inference, while `models.load` and
`attention-zoo ship` users predict in float32 (`models.load` builds under the
global policy). This script measures both on the same weights.

Usage:
  python benchmarks/precision_eval.py --data ZIP RUN_FOLDER [RUN_FOLDER ...]
Prints Markdown (committed as benchmarks/precision_eval.md).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from attention_zoo import data, models, training  # noqa: E402
from attention_zoo.models.cards import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 zip or folder")
    parser.add_argument("runs", nargs="+", type=Path, help="attention-zoo train folders")
    args = parser.parse_args()

    _, val_set = data.cifar10(args.data)
    val = data.pipeline(val_set, 1000)
    print(f"{machine()}; {len(val_set)} validation images "
          f"(the last 500 of each class)\n")
    print("| run | trained in | summary.json (TTA / without) | as trained, re-measured "
          "| float32 | float32 - as trained (TTA / without) |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        summary = json.loads((run / "summary.json").read_text())
        if summary.get("model") != "attn_cnn":
            raise SystemExit(f"{run}: not an attn_cnn run (model "
                             f"{summary.get('model')!r})")
        tta = summary["recipe"]["tta"]
        trained = keras.saving.load_model(run / "model.keras", safe_mode=True)
        # Built under the global policy (float32), as models.load builds.
        f32 = models.create("attn_cnn", **summary["config"])
        f32.set_weights(trained.get_weights())
        trained_plain, trained_tta = training.view_accuracies(trained, val, tta)
        f32_plain, f32_tta = training.view_accuracies(f32, val, tta)
        print(f"| `{run.name}` | {summary['precision']} "
              f"| {summary['val_accuracy']:.4f} / {summary['val_accuracy_without_tta']:.4f} "
              f"| {trained_tta:.4f} / {trained_plain:.4f} "
              f"| {f32_tta:.4f} / {f32_plain:.4f} "
              f"| {f32_tta - trained_tta:+.4f} / {f32_plain - trained_plain:+.4f} |",
              flush=True)


if __name__ == "__main__":
    main()
