"""Helpers shared by the ``attention-zoo`` commands: argument types,
model loading, class names."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keras loads only when a command needs it, so --help is quick
    import keras

    from attention_zoo.data.images import ImageSet


def text_splits(args: argparse.Namespace) -> tuple:
    """``(train, val, description)`` of a text run: ``--val-data``, else the
    seeded stratified ``--val-fraction`` of ``--data`` (``--split-seed``),
    else of ``keras.datasets.imdb``. `train` and `ensemble` share it, so an
    ensemble is judged on the split its members held out."""
    from attention_zoo import data

    if args.data is None:
        train, val = data.imdb(None, args.val_fraction, args.split_seed)
        return train, val, "keras.datasets.imdb"
    if args.val_data:
        return (data.text_tsv(args.data), data.text_tsv(args.val_data),
                f"{args.data}; validation {args.val_data}")
    train, val = data.stratified_split(data.text_tsv(args.data), args.val_fraction,
                                       args.split_seed)
    return train, val, (f"{args.data}; validation = seeded stratified "
                        f"{args.val_fraction:.0%} (seed {args.split_seed})")


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

def positive_int(value: str) -> int:
    """An argparse type: an integer > 0."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received "
                                         f"{value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {number}")
    return number


def count_or_auto(value: str) -> int | None:
    """An argparse type: a positive integer, or ``auto`` (None: chosen)."""
    return None if value.lower() == "auto" else positive_int(value)


def _number(value: str, low: float, high: float, low_open: bool, what: str,
            high_open: bool = True) -> float:
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    inside = ((number > low if low_open else number >= low)
              and (number < high if high_open else number <= high))
    if not inside:  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(f"expected {what}, received {value!r}")
    return number


def positive_float(value: str) -> float:
    """An argparse type: a finite number > 0."""
    return _number(value, 0.0, float("inf"), True, "a positive number")


def fraction(value: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    return _number(value, 0.0, 1.0, True, "a number between 0 and 1 (exclusive)")


def rate(value: str) -> float:
    """An argparse type: a dropout rate in [0, 1)."""
    return _number(value, 0.0, 1.0, False, "a rate in [0, 1)")


def agreement(value: str) -> float:
    """An argparse type: a fraction in (0, 1] (export's --min-agreement)."""
    return _number(value, 0.0, 1.0, True, "a fraction in (0, 1], such as 0.9",
                   high_open=False)


def jit_argument(value: str) -> bool | str:
    lowered = value.lower()
    if lowered in ("auto",):
        return "auto"
    if lowered in ("1", "true", "on", "yes"):
        return True
    if lowered in ("0", "false", "off", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected auto, on or off, received {value!r}")

def attention_argument(value: str) -> str | None | list:
    if value.lower() == "none":
        return None
    if "," in value:
        return [None if v.lower() == "none" else v for v in value.split(",")]
    return value

def add_tta(parser: argparse.ArgumentParser, what: str = "") -> None:
    """``--tta [flip|flip_translate]`` (``models.tta``), False when absent."""
    parser.add_argument("--tta", nargs="?", const="flip", default=False,
                        choices=["flip", "flip_translate"],
                        help=f"test-time augmentation{what}: flip (the default of "
                             "--tta) or flip_translate (also 1-pixel shifts)")

def load_model(name_or_path: str) -> keras.Model:
    import keras

    import attention_zoo  # noqa: F401  (registers layers for loading)
    from attention_zoo import models

    if os.path.exists(name_or_path):
        return keras.saving.load_model(name_or_path, safe_mode=True)
    return models.load(name_or_path)

def class_names(args: argparse.Namespace, classes: int, images: bool) -> list[str]:
    """The model's class names: its card's, CIFAR-10's for a 10-class
    image model without them, else ``"0"``, ``"1"``, ..."""
    from attention_zoo import models
    from attention_zoo.data.images import CIFAR10_CLASSES

    if not os.path.exists(args.model):
        names = models.card(args.model).get("class_names")
        if names and len(names) == classes:
            return list(names)
    if images and classes == 10:
        return list(CIFAR10_CLASSES)
    return [str(i) for i in range(classes)]

def per_class(data_set: ImageSet, n: int) -> ImageSet:
    import numpy as np

    index = np.concatenate([np.flatnonzero(data_set.labels == c)[:n]
                            for c in range(len(data_set.class_names))])
    return data_set.take(np.sort(index))


def takes_text(model: keras.Model) -> bool:
    """``models.takes_text``, imported when a command runs (not at start-up,
    where it would load Keras and TensorFlow before they are silenced)."""
    from attention_zoo.models.task import takes_text as model_takes_text

    return model_takes_text(model)
