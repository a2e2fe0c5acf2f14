"""The model zoo: names of model builders, and shipped weights.

Shipped weights live in ``saved_models/<name>/`` with a ``card.json`` that
names the builder and its arguments; the cards are the list of what ships.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

import keras

from attention_zoo.registry import Registry

MODELS = Registry("model")
F = TypeVar("F", bound=Callable[..., keras.Model])

WEIGHTS_FILE = "model.weights.h5"
CARD_FILE = "card.json"


def register_model(name: str) -> Callable[[F], F]:
    def wrap(builder: F) -> F:
        MODELS.add(name, builder)
        return builder

    return wrap


def create(name: str, /, **kwargs: Any) -> keras.Model:
    """Builds the zoo model ``name`` (see ``names()``) with ``kwargs``."""
    return MODELS.create(name, **kwargs)


def names() -> list[str]:
    return MODELS.names()


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


def load(name: str, tta: bool | str = False) -> keras.Model:
    """Builds a shipped model and loads its weights, ready for ``predict``.

    ``tta``: ``"flip"`` or ``"flip_translate"`` returns it wrapped by
    ``with_tta``, so it predicts with test-time augmentation (the accuracy
    an image model's card reports "with TTA"), at one pass per view.
    """
    from attention_zoo.models.tta import check_tta, with_tta

    check_tta(tta)
    info = card(name)
    folder = weights_root() / name
    model = create(info["model"], **_with_paths(info["config"], folder))
    model.load_weights(folder / WEIGHTS_FILE)
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
