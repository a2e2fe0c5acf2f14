"""Writing files and folders whole or not at all.

The package's single files (checkpoints, models, cards, vocabularies,
plots, summaries, reports, the decoded-image cache) go through here: each
is written under a temporary name of its own in the same folder and renamed
over the target only once complete, so a killed process leaves either the
old file or the new one, never half of one, and processes writing the same
path at once (a KerasTuner chief and its workers) do not trip over each
other's temporary files. Folders (a SavedModel export, a shipped model)
are written under a fresh temporary name (``temporary_beside``) and put in
place by ``install``, which swaps them with the old one; logs are appended.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import shutil
import sys
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


def temporary_beside(path: str | os.PathLike, folder: bool = False,
                     suffix: str = "") -> Path:
    """A fresh, empty file (or ``folder``) ``.<name>.*.tmp<suffix>`` beside
    ``path``, private to this process, for ``install`` or ``discard``."""
    path = Path(path)
    if folder:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}",
                                     dir=path.parent))
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}",
                                    dir=path.parent)
    os.close(handle)
    return Path(name)


def discard(tmp: str | os.PathLike) -> None:
    """Removes what ``temporary_beside`` made (a file or a folder)."""
    tmp = Path(tmp)
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


def install(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Puts the finished ``tmp`` (from ``temporary_beside``) at ``path``,
    with the permissions a plain write would have given it. A file replaces
    the old one in one rename. A folder swaps places with the old one (the
    caller checked it may go) in one ``renameat2(RENAME_EXCHANGE)`` where
    Linux offers it, else the old one is first renamed aside to a fresh
    temporary name; the old one is removed only once the new one is in
    place, so a killed process leaves one of the two at ``path``."""
    tmp, path = Path(tmp), Path(path)
    os.chmod(tmp, (0o777 if tmp.is_dir() else 0o666) & ~umask())
    if not tmp.is_dir() or not os.path.lexists(path):
        os.replace(tmp, path)
        return
    if _exchange(tmp, path):  # tmp now holds the old folder
        shutil.rmtree(tmp, ignore_errors=True)
        return
    aside = temporary_beside(path, folder=True, suffix=".old")
    os.replace(path, aside)  # onto our own empty folder
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(aside, path)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swaps two paths (Linux ``renameat2``); False where the
    system or the file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))
