"""The ``attention-zoo`` command: layers, demo, train, evaluate, predict,
export, tune. One module per group of commands; ``main`` is the entry point."""

from __future__ import annotations

import sys
from typing import Sequence

from attention_zoo.cli.common import quiet_tensorflow
from attention_zoo.cli.parser import build_parser

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
