"""Silencing TensorFlow's start-up lines for the ``attention-zoo`` command.

TensorFlow writes a few lines to the process's standard error (file
descriptor 2) while it is imported, from C++ before its logging is set up,
so ``TF_CPP_MIN_LOG_LEVEL`` does not hide them; the command's one-line
error messages would be lost among them. The command therefore imports
TensorFlow with descriptor 2 pointed at ``/dev/null`` and restored after.
A library user's program keeps TensorFlow's output as it is.

This module imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


def running_the_command() -> bool:
    """Whether this process is ``attention-zoo`` or ``python -m attention_zoo``
    (``-m`` is ``sys.argv[0]`` while the package imports)."""
    name = os.path.basename(sys.argv[0]) if sys.argv else ""
    return name in ("attention-zoo", "-m")


@contextlib.contextmanager
def stderr_silenced(active: bool = True) -> Iterator[None]:
    """Points descriptor 2 at ``/dev/null`` for the block when ``active``."""
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
