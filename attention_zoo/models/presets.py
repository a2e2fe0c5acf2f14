"""Presets: shipped models, KerasHub's way.

A preset is a folder ``saved_models/<name>/`` (or ``$ATTENTION_ZOO_WEIGHTS/
<name>/``, or any folder a user points at) holding ``card.json``, which names
the registered builder and its arguments, and ``model.weights.h5``, the
task's weights. ``load(name)``, ``Task.from_preset(name_or_path)`` and
``Backbone.from_preset`` read them on any backend.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import keras

from attention_zoo.models.registry import MODELS, create

WEIGHTS_FILE = "model.weights.h5"
CARD_FILE = "card.json"


def weights_root() -> Path:
    """``$ATTENTION_ZOO_WEIGHTS`` or the repository's ``saved_models/``."""
    env = os.environ.get("ATTENTION_ZOO_WEIGHTS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "saved_models"


def pretrained() -> list[str]:
    """Names of the shipped models that ``load`` accepts."""
    root = weights_root()
    if not root.is_dir():
        return []
    # Hidden folders are ship()'s temporary ones, never a shipped model.
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")
                  and (p / CARD_FILE).is_file() and (p / WEIGHTS_FILE).is_file())


def card(name: str) -> dict[str, Any]:
    """The model card of a shipped model."""
    available = pretrained()
    if name not in available:
        raise ValueError(f"Unknown pretrained model {name!r}. Shipped: "
                         f"{', '.join(available) or 'none'}")
    return json.loads((weights_root() / name / CARD_FILE).read_text())


#: Config entries that name a file beside the card.
FILE_ARGUMENTS = ("vocabulary",)


def preset_folder(preset: str | os.PathLike) -> Path:
    """The folder of a preset: a shipped name (``pretrained()``) or a path
    to a folder with ``card.json`` and ``model.weights.h5``."""
    if not isinstance(preset, (str, os.PathLike)):
        raise TypeError(f"a preset is a shipped name or a folder path, received "
                        f"{type(preset).__name__}")
    folder = Path(preset)
    if isinstance(preset, str) and preset in pretrained():
        return weights_root() / preset
    if (folder / CARD_FILE).is_file() and (folder / WEIGHTS_FILE).is_file():
        return folder
    raise ValueError(f"Unknown preset {str(preset)!r}: not a shipped name "
                     f"({', '.join(pretrained()) or 'none shipped'}) nor a folder "
                     f"holding {CARD_FILE} and {WEIGHTS_FILE}")


def load_preset(preset: str | os.PathLike, **kwargs: Any) -> keras.Model:
    """The task of a preset with its trained weights. ``kwargs`` override the
    card's builder arguments: a new head (``num_classes=5``) keeps the
    preset's backbone weights and starts its head afresh, for fine-tuning."""
    folder = preset_folder(preset)
    info = json.loads((folder / CARD_FILE).read_text())
    config = _with_paths(info["config"], folder)
    model = create(info["model"], **config)
    load_weights_strictly(model, folder / WEIGHTS_FILE)
    if not kwargs:
        return model
    changed = create(info["model"], **{**config, **kwargs})
    backbone = getattr(model, "backbone", None)
    if backbone is None or getattr(changed, "backbone", None) is None:
        raise ValueError(f"preset {str(preset)!r} ({info['model']}) has no backbone "
                         f"to keep under other arguments ({', '.join(kwargs)})")
    try:
        changed.backbone.set_weights(backbone.get_weights())
    except ValueError as error:
        raise ValueError(f"{', '.join(f'{k}={v!r}' for k, v in kwargs.items())} "
                         f"changes the backbone of preset {str(preset)!r}, so its "
                         f"weights do not fit: {error}") from None
    return changed


def load_weights_strictly(model: keras.Model, path: str | os.PathLike) -> None:
    """``model.load_weights(path)``, refusing a file whose layout does not
    match the model: Keras only warns, and leaves the unmatched weights as
    they were initialized."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(path)
    skipped = [str(w.message) for w in caught if "saving" in w.filename]
    if skipped:
        raise ValueError(f"the weights in {str(path)!r} do not fit {model.name} "
                         f"({type(model).__name__}): {skipped[0]}")


def load(name: str, tta: bool | str = False, **kwargs: Any) -> keras.Model:
    """Builds a shipped model and loads its weights, ready for ``predict``;
    ``"timm/<architecture>[.<tag>]"`` converts a timm checkpoint from the
    Hugging Face Hub once and caches it (``attention_zoo.interop.hub``).

    ``tta``: ``"flip"`` or ``"flip_translate"`` returns it wrapped by
    ``with_tta``, so it predicts with test-time augmentation (the accuracy
    an image model's card reports "with TTA"), at one pass per view.
    ``kwargs``: a shipped model's builder arguments to change (a new head:
    ``num_classes=5``, see ``load_preset``); for timm checkpoints
    ``num_classes``, ``include_top``, ``input_shape`` (``load_timm``).
    """
    from attention_zoo.models.tta import check_tta, with_tta

    check_tta(tta)
    if isinstance(name, str) and name.startswith("timm/"):
        from attention_zoo.interop.hub import load_timm

        model = load_timm(name, **kwargs)
    else:
        card(name)  # an unknown name gets the list of shipped ones
        model = load_preset(name, **kwargs)
    return with_tta(model, tta) if tta else model


def _with_paths(config: Any, folder: Path) -> Any:
    """``config`` with file arguments made paths into ``folder``, also in
    nested configs (an ensemble's members)."""
    if isinstance(config, dict):
        return {k: str(folder / v) if k in FILE_ARGUMENTS and isinstance(v, str)
                else _with_paths(v, folder) for k, v in config.items()}
    if isinstance(config, list):
        return [_with_paths(v, folder) for v in config]
    return config


def check_matches_card(name: str, requested: dict[str, Any]) -> Path:
    """Refuses shipped weights trained with other arguments; returns their
    path. Arguments a card leaves out are the builder's defaults, as
    ``load`` builds it."""
    info = card(name)
    shipped = {**_defaults(MODELS.entry(info["model"]).target), **info["config"]}
    diff = {k: (shipped.get(k), v) for k, v in requested.items()
            if _plain(shipped.get(k)) != _plain(v)}
    if diff:
        detail = ", ".join(f"{k}={got!r} (shipped: {want!r})"
                           for k, (want, got) in diff.items())
        raise ValueError(f"the shipped weights {name!r} do not fit this model: "
                         f"{detail}")
    return weights_root() / name / WEIGHTS_FILE


def _defaults(builder: Callable[..., Any]) -> dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(builder).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
