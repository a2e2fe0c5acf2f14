"""What airbench's parts buy AttnCNN: the short recipe on 15,000 training
images with a 3x3-stem net and a one-cycle recipe ("before": 3x3 stem, BN
with scale, one-cycle SGD 0.4 / wd 5e-4, EMA 0.99) against the defaults (patch
whitening, dirac init, BN offsets only at 64x learning rate, airbench's
optimizer settings, lookahead), and variants that drop one part. Prints a
Markdown table (committed as benchmarks/cifar10_recipe.md).

Usage: python benchmarks/cifar10_recipe.py --data ZIP [--variants NAME...]
"""

from __future__ import annotations

from pathlib import Path

from cifar10_ablation import arguments, header, reported, train, width_arguments

BEFORE_NET = ["--stem", "conv", "--no-dirac", "--bn-scale", "--bn-momentum", "0.9"]
BEFORE_RECIPE = ["--lr", "0.4", "--set", "momentum=0.9", "--set", "weight_decay=5e-4",
                 "--set", "warmup=0.15", "--set", "lr_start=0.1", "--set", "lr_end=0",
                 "--set", "norm_bias_lr_scale=1", "--set", "ema_momentum=0.99",
                 "--set", "ema_power=0", "--set", "lookahead=0"]
VARIANTS = {
    "before": BEFORE_NET + BEFORE_RECIPE,
    "airbench (default)": [],
    "  without whitening stem": ["--stem", "conv"],
    "  without lookahead": ["--set", "lookahead=0"],
    "  without 64x BN-offset lr": ["--set", "norm_bias_lr_scale=1"],
    "  with the before recipe": BEFORE_RECIPE,
}


def main() -> None:
    parser = arguments("runs/recipe")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    args = parser.parse_args()
    rows = []
    for name in args.variants:
        folder = "".join(c if c.isalnum() else "_" for c in name.strip())
        rows.append(train(args.data, Path(args.out) / folder, args.recipe,
                          args.train_per_class,
                          width_arguments(args.width) + VARIANTS[name]))
    print(f"AttnCNN (CBAM), airbench's parts: {header(rows[0], args.recipe)}")
    print(f"| variant | extra arguments | params | val accuracy ({reported(rows[0])}) "
          f"| without TTA | train images/s |")
    print("|---|---|---|---|---|---|")
    for name, row in zip(args.variants, rows):
        extra = " ".join(VARIANTS[name]) or "(none)"
        print(f"| {name.strip()} | `{extra}` | {row['params']:,} | "
              f"{row['val_accuracy']:.4f} | {row['val_accuracy_without_tta']:.4f} | "
              f"{row['train_examples_per_second']:.0f} |")


if __name__ == "__main__":
    main()
