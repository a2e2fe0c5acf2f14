"""Shipping trained weights with a model card (JSON for code, Markdown for people)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import keras

from attention_zoo.models.registry import CARD_FILE, WEIGHTS_FILE, weights_root
from attention_zoo.training import save_atomically


def machine() -> str:
    cores = os.cpu_count()
    return f"{platform.machine()} {platform.processor() or 'CPU'}, {cores} cores, " \
           f"{platform.system()} {platform.release()}"


def ship(model: keras.Model, name: str, card: dict[str, Any],
         root: str | os.PathLike | None = None,
         files: dict[str, str | os.PathLike] | None = None) -> Path:
    """Writes ``model``'s weights and ``card`` (which must name the builder in
    ``"model"`` and its arguments in ``"config"``) to ``<root>/<name>/``, with
    ``files`` (name in the folder -> source path) copied beside them."""
    for key in ("model", "config"):
        if key not in card:
            raise ValueError(f"a model card needs {key!r}, received keys "
                             f"{sorted(card)}")
    folder = Path(root) if root is not None else weights_root()
    folder = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    # A new functional model over the same layers has no optimizer, so the
    # file holds the weights without momentum and EMA slots.
    bare = keras.Model(model.inputs, model.outputs, name=model.name)
    save_atomically(bare, folder / WEIGHTS_FILE)
    for target, source in (files or {}).items():
        _write(folder / target, Path(source).read_text(encoding="utf-8"))
    card = {"name": name, **card}
    _write(folder / CARD_FILE, json.dumps(card, indent=2, default=str) + "\n")
    _write(folder / "README.md", markdown(card))
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


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
