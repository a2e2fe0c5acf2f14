"""Where an export may write: checks made before converting, so that
nothing of the user's is replaced unless asked and nothing that is not an
export of this package is ever replaced."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

FORMATS = ("saved_model", "tflite", "onnx")
FILE_SUFFIXES = {"tflite": ".tflite", "onnx": ".onnx"}
#: The file inside every SavedModel folder this package writes; only such a
#: folder is ever replaced.
MARKER = "attention_zoo_export.json"


def check_path(path: str | os.PathLike, format: str = "tflite", overwrite: bool = False,
               model_name: str = "model") -> Path:
    """The absolute path ``export`` would write ``format`` to, after the
    checks it makes before converting; raises ``ValueError`` (and changes
    nothing) where it would refuse. ``path`` is resolved first, so ``.``,
    ``..`` and symbolic links are judged as the folders and files they are.

    * The folder that holds ``path`` must exist and be writable.
    * ``"tflite"``, ``"onnx"``: ``path`` must not be a folder; an existing
      file is replaced only with ``overwrite=True``.
    * ``"saved_model"``: an existing ``path`` is replaced only with
      ``overwrite=True`` and only when it is a SavedModel folder this package
      wrote (it holds ``MARKER``); anything else is never replaced.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, received {format!r}")
    given = os.fspath(path)
    if not given:
        raise ValueError("path is empty: expected the file (tflite, onnx) or "
                         "folder (saved_model) to write")
    full = Path(given).expanduser().resolve()
    parent = full.parent
    if not parent.is_dir():
        raise ValueError(f"the folder of {given!r} ({str(parent)!r}) does not exist; "
                         f"create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write in the folder {str(parent)!r} (of {given!r}): "
                         f"permission denied")
    if format in FILE_SUFFIXES:
        if full.is_dir():
            example = os.path.join(given, f"{model_name}{FILE_SUFFIXES[format]}")
            raise ValueError(
                f"{given!r} is an existing folder ({str(full)!r}); a {format} export "
                f"is one file: give a file name inside it, e.g. {example!r}. "
                f"Nothing was changed")
        if os.path.lexists(full):
            if not full.is_file():
                raise ValueError(f"{given!r} exists and is not a regular file; "
                                 f"choose another path")
            if not overwrite:
                raise ValueError(f"{given!r} already exists; pass overwrite=True "
                                 f"(CLI: --overwrite) to replace it, or choose "
                                 f"another path")
        return full
    cwd = Path.cwd().resolve()
    if full == cwd or full in cwd.parents:
        raise ValueError(f"{given!r} is the current folder or one above it "
                         f"({str(full)!r}); give a new folder name for the SavedModel, "
                         f"e.g. {os.path.join(given, model_name + '_saved_model')!r}")
    if os.path.lexists(full):
        if not _ours(full):
            raise ValueError(
                f"{given!r} exists and is not a SavedModel folder written by "
                f"attention_zoo (it has no {MARKER}); it is never replaced, not even "
                f"with overwrite=True: choose a new folder name (or remove it "
                f"yourself)")
        if not overwrite:
            raise ValueError(f"{given!r} holds an earlier attention_zoo SavedModel "
                             f"export; pass overwrite=True (CLI: --overwrite) to "
                             f"replace it, or choose another path")
    return full


def _ours(folder: Path) -> bool:
    """Whether ``folder`` is a SavedModel folder that ``export`` wrote."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("format") == "saved_model"


def check_side_files(full: Path, files: Mapping[str, str | None], overwrite: bool
                      ) -> None:
    """Refuses (ValueError) to replace a file beside the export without
    ``overwrite`` (one that already holds the text to be written, such as
    the tokenizer files of the same model exported to another format, is
    left as it is), and a folder or other non-file at all."""
    for name, text in files.items():
        target = full.with_name(name)
        if not os.path.lexists(target):
            continue
        if not target.is_file():
            raise ValueError(f"{str(target)!r} (written beside the export) exists and "
                             f"is not a regular file; choose another path")
        if not overwrite and not (text is not None and holds(target, text)):
            raise ValueError(f"{str(target)!r} (written beside the export) already "
                             f"exists; pass overwrite=True (CLI: --overwrite) to "
                             f"replace it, or choose another path")


def holds(path: Path, text: str) -> bool:
    """Whether the file at ``path`` already holds exactly ``text``."""
    try:
        return path.read_bytes() == text.encode("utf-8")
    except OSError:
        return False
