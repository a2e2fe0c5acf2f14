"""The ``attention-zoo`` command: layers, demo, train, evaluate, predict,
export, tune. One module per group of commands; ``main`` is the entry point.

Errors: a mistake in what the user typed or gave (a ``ValueError``,
``TypeError``, ``OSError``, a bad zip or a failed export check) prints one
line, ``attention-zoo <command>: error: <what was expected, what came>``, and
exits with status 2, as argparse does for its own errors. Anything else is a
bug: one line that says so and status 1. ``--debug`` (or
``ATTENTION_ZOO_DEBUG=1``) shows the Python traceback of either.
"""

from __future__ import annotations

import os
import re
import sys
import zipfile
from typing import Sequence

from attention_zoo.cli.common import quiet_tensorflow
from attention_zoo.cli.parser import build_parser

__all__ = ["build_parser", "main", "INPUT_ERRORS", "USAGE_STATUS"]

#: Exit status of every input error, argparse's included.
USAGE_STATUS = 2
#: What a user's input can raise; export.ExportError is added when export
#: loads (it imports TensorFlow).
INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError,
                                                 zipfile.BadZipFile)


def main(argv: Sequence[str] | None = None) -> int:
    quiet_tensorflow()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or argparse's one-line error
        return int(done.code or 0)
    debug = args.debug or os.environ.get("ATTENTION_ZOO_DEBUG", "") not in ("", "0")
    prefix = f"attention-zoo {args.command}"
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001  (sorted below; --debug re-raises)
        if debug:
            raise
        if isinstance(error, _input_errors()):
            print(f"{prefix}: error: {one_line(error)}", file=sys.stderr)
            return USAGE_STATUS
        print(f"{prefix}: internal error ({type(error).__name__}: {one_line(error)}); "
              f"rerun with --debug for the traceback and report it", file=sys.stderr)
        return 1


def _input_errors() -> tuple[type[BaseException], ...]:
    export = sys.modules.get("attention_zoo.export")
    extra = (export.ExportError,) if export is not None else ()
    return INPUT_ERRORS + extra


def one_line(error: BaseException) -> str:
    """The error's message on one line (TensorFlow's span several)."""
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.strerror}: {str(error.filename)!r}"
    return re.sub(r"\s*\n\s*", "; ", text.strip())


if __name__ == "__main__":
    sys.exit(main())
