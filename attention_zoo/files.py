"""Writing files whole or not at all.

The package's single files (checkpoints, models, cards, vocabularies,
plots, summaries, reports, the decoded-image cache) go through here: each
is written under a temporary name of its own in the same folder and renamed
over the target only once complete, so a killed process leaves either the
old file or the new one, never half of one, and processes writing the same
path at once (a KerasTuner chief and its workers) do not trip over each
other's temporary files. Exports (a SavedModel is a folder) and shipped
model folders are swapped in the same way by their own code
(``export.export``, ``models.cards.ship``); logs are appended.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yields a fresh temporary path beside ``path`` (ending in ``suffix``,
    for writers that insist on an extension, such as ``.weights.h5``) to
    write; renames it over ``path`` when the block ends without an error,
    and removes it otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}",
                                    dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp's file is private (0600); the target gets the permissions
        # a plain open() would have given it.
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@functools.cache
def umask() -> int:
    """The process's umask (read once: the only way to read it is to set it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _file_mode() -> int:
    return 0o666 & ~umask()


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` whole or not at all."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
