"""Attention ablation on AttnCNN: the same net and the short recipe with each
attention type. Runs `attention-zoo train` per variant and prints a Markdown
table (committed as benchmarks/cifar10_ablation.md).

Usage: python benchmarks/cifar10_ablation.py --data ZIP [--train-per-class N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

VARIANTS = ["none", "se", "eca", "cbam", "coordinate", "bam", "cbam+residual"]


def train(data: str, out: Path, recipe: str, train_per_class: int,
          extra: list[str]) -> dict:
    """Runs `attention-zoo train attn_cnn` into ``out`` once (a finished run
    is reused) and returns its summary.json."""
    command = [sys.executable, "-m", "attention_zoo", "train", "attn_cnn",
               "--data", data, "--out", str(out), "--recipe", recipe,
               "--train-per-class", str(train_per_class), *extra]
    if not (out / "summary.json").is_file():
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "summary.json").read_text())


def arguments(out: str) -> argparse.ArgumentParser:
    """The options both CIFAR-10 comparison scripts take."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", default=out)
    parser.add_argument("--train-per-class", type=int, default=1500)
    parser.add_argument("--recipe", default="cifar10_short")
    parser.add_argument("--width", nargs="+", type=int,
                        help="AttnCNN stage widths (default: the model's own; the "
                             "committed tables ran at 64 256 256, the default then)")
    return parser


def width_arguments(width: list[int] | None) -> list[str]:
    return ["--width", *map(str, width)] if width else []


def header(first: dict, recipe: str) -> str:
    return (f"recipe `{recipe}` ({first['epochs']} epochs), {first['data']}; "
            f"{first['precision']}, XLA {'on' if first['jit_compile'] else 'off'}; "
            f"{first['machine']}\n")


def reported(first: dict) -> str:
    # Summaries name the recipe's TTA ("with flip TTA", ...): the column says it.
    return first.get("val_accuracy_reported", "with flip TTA").removeprefix("with ")


def variant_arguments(variant: str) -> list[str]:
    """``"cbam"`` -> ``--attention cbam``; ``"cbam+residual"`` adds
    ``--residual-attention`` (stages output ``x + attention(x)``)."""
    attention, _, option = variant.partition("+")
    if option not in ("", "residual"):
        raise SystemExit(f"unknown variant option {option!r} in {variant!r}")
    return ["--attention", attention] + (["--residual-attention"] if option else [])


def main() -> None:
    parser = arguments("runs/ablation")
    parser.add_argument("--variants", nargs="+", default=VARIANTS)
    args = parser.parse_args()
    rows = [train(args.data, Path(args.out) / variant, args.recipe,
                  args.train_per_class,
                  width_arguments(args.width) + variant_arguments(variant))
            for variant in args.variants]
    print(f"AttnCNN attention ablation: {header(rows[0], args.recipe)}")
    print(f"| attention | params | val accuracy ({reported(rows[0])}) | without TTA "
          f"| train wall s |")
    print("|---|---|---|---|---|")
    for attention, row in zip(args.variants, rows):
        print(f"| {attention} | {row['params']:,} | {row['val_accuracy']:.4f} | "
              f"{row['val_accuracy_without_tta']:.4f} | {row['wall_seconds']:.0f} |")


if __name__ == "__main__":
    main()
