"""Shipping trained weights with a model card (JSON for code, Markdown for people)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import keras

from attention_zoo.files import discard, install, temporary_beside, write_text
from attention_zoo.models.presets import CARD_FILE, WEIGHTS_FILE, weights_root
from attention_zoo.training import save_atomically


def machine() -> str:
    """``"x86_64 AMD EPYC (avx2), 2 cores, Linux 6.1"``: where a timing was made."""
    from attention_zoo.training.policy import cpu_description

    return (f"{platform.machine()} {cpu_description()}, {os.cpu_count()} cores, "
            f"{platform.system()} {platform.release()}")


def check_ship_name(name: str, root: str | os.PathLike | None = None,
                    overwrite: bool = False) -> Path:
    """The folder ``<root>/<name>`` a model may ship to; ``ValueError`` for a
    name that is empty, hidden, or a path (separators, ``..``), and for a
    shipped name that exists unless ``overwrite``, or a folder there that is
    not a shipped model."""
    if not isinstance(name, str):
        raise TypeError(f"a shipped model's name is a str, received "
                        f"{type(name).__name__}")
    if (not name or name.startswith(".") or name != Path(name).name
            or "/" in name or "\\" in name or not name.isprintable()):
        raise ValueError(f"a shipped model's name is a plain folder name such as "
                         f"'attn_cnn_mine' (no path separators, '..' or leading "
                         f"'.'), received {name!r}")
    folder = (Path(root) if root is not None else weights_root()) / name
    if folder.exists() or folder.is_symlink():
        if not (folder / CARD_FILE).is_file():
            raise ValueError(f"{str(folder)!r} exists and is not a shipped model "
                             f"(no {CARD_FILE}); pick another name")
        if not overwrite:
            raise ValueError(f"a model is already shipped as {name!r} ({folder}); "
                             f"pass --overwrite / overwrite=True to replace it")
    return folder


def ship(model: keras.Model, name: str, card: dict[str, Any],
         root: str | os.PathLike | None = None,
         files: dict[str, str | os.PathLike] | None = None,
         overwrite: bool = False) -> Path:
    """Writes ``model``'s weights and ``card`` (which must name the builder in
    ``"model"`` and its arguments in ``"config"``) to ``<root>/<name>/``, with
    ``files`` (name in the folder -> source path) copied beside them.
    ``overwrite`` replaces a model shipped under that name
    (``check_ship_name`` says what else is refused).

    The folder is written under a fresh hidden temporary name and then
    swapped in whole, so a re-shipped model keeps no file of the one it
    replaces (a vocabulary the new card no longer names), an interrupted
    ship leaves the old model as it was, and ``pretrained()`` never lists
    the temporary folder."""
    for key in ("model", "config"):
        if key not in card:
            raise ValueError(f"a model card needs {key!r}, received keys "
                             f"{sorted(card)}")
    folder = check_ship_name(name, root, overwrite)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_beside(folder, folder=True)
    try:
        # A new functional model over the same layers has no optimizer, so
        # the file holds the weights without momentum and EMA slots.
        bare = keras.Model(model.inputs, model.outputs, name=model.name)
        save_atomically(bare, tmp / WEIGHTS_FILE)
        for target, source in (files or {}).items():
            write_text(tmp / target, Path(source).read_text(encoding="utf-8"))
        card = {"name": name, **card}
        write_text(tmp / CARD_FILE, json.dumps(card, indent=2, default=str) + "\n")
        write_text(tmp / "README.md", markdown(card))
        # Checked again: another process may have shipped the name meanwhile.
        check_ship_name(name, root, overwrite)
        install(tmp, folder)
    finally:
        discard(tmp)
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
