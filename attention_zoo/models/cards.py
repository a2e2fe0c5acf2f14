"""Shipping trained weights with a model card (JSON for code, Markdown for people)."""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import keras

from attention_zoo.files import write_text
from attention_zoo.models.registry import CARD_FILE, WEIGHTS_FILE, weights_root
from attention_zoo.training import save_atomically


def machine() -> str:
    """``"x86_64 AMD EPYC (avx2), 2 cores, Linux 6.1"``: where a timing was made."""
    from attention_zoo.training.policy import cpu_description

    return (f"{platform.machine()} {cpu_description()}, {os.cpu_count()} cores, "
            f"{platform.system()} {platform.release()}")


def ship(model: keras.Model, name: str, card: dict[str, Any],
         root: str | os.PathLike | None = None,
         files: dict[str, str | os.PathLike] | None = None) -> Path:
    """Writes ``model``'s weights and ``card`` (which must name the builder in
    ``"model"`` and its arguments in ``"config"``) to ``<root>/<name>/``, with
    ``files`` (name in the folder -> source path) copied beside them.

    The folder is written under a temporary name and then swapped in whole,
    so a re-shipped model keeps no file of the one it replaces (a vocabulary
    the new card no longer names) and an interrupted ship leaves the old
    model as it was."""
    for key in ("model", "config"):
        if key not in card:
            raise ValueError(f"a model card needs {key!r}, received keys "
                             f"{sorted(card)}")
    root = Path(root) if root is not None else weights_root()
    folder, tmp, old = root / name, root / f".{name}.tmp", root / f".{name}.old"
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    tmp.mkdir(parents=True)
    # A new functional model over the same layers has no optimizer, so the
    # file holds the weights without momentum and EMA slots.
    bare = keras.Model(model.inputs, model.outputs, name=model.name)
    save_atomically(bare, tmp / WEIGHTS_FILE)
    for target, source in (files or {}).items():
        write_text(tmp / target, Path(source).read_text(encoding="utf-8"))
    card = {"name": name, **card}
    write_text(tmp / CARD_FILE, json.dumps(card, indent=2, default=str) + "\n")
    write_text(tmp / "README.md", markdown(card))
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def markdown(card: dict[str, Any]) -> str:
    lines = [f"# {card['name']}", ""]
    for key, value in card.items():
        if key == "name":
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        lines.append(f"- **{key.replace('_', ' ')}**: {value}")
    return "\n".join(lines) + "\n"
