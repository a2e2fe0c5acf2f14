"""The ``attention-zoo`` command."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cmd_layers(args: argparse.Namespace) -> int:
    from attention_zoo.layers import catalog

    rows = catalog.describe_all(width=args.width)
    print(catalog.format_table(rows))
    print(f"\n{len(rows)} layers built, run on random inputs and finite.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attention-zoo",
        description="Attention layers and attention models for Keras 3.")
    sub = parser.add_subparsers(dest="command", required=True)
    layers = sub.add_parser(
        "layers", help="build a model from every layer, run it, print a table")
    layers.add_argument("--width", type=int, default=64,
                        help="channels / features of the example inputs")
    layers.set_defaults(run=cmd_layers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
