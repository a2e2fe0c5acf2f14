"""Test-time augmentation (TTA) for image classifiers, in one place.

``training.predict(model, data, tta=...)`` and ``with_tta(model)`` average
the same views with the same weights:

- ``"flip"`` (or True): the image and its mirror image, half each;
- ``"flip_translate"``: airbench's level 2: that pair at half weight, and at
  a quarter each the image shifted one pixel up-left and one down-right
  (reflected borders), each with its mirror.

``with_tta`` builds the averaging into a Keras model, so a loaded or
exported file predicts with it (the shipped CNN's reported accuracy is its
TTA accuracy), at one forward pass per view.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

TTA_MODES = (False, True, "flip", "flip_translate")

#: (window rows down, window columns right, mirrored, weight) of each view
#: (``view``), the plain image first.
VIEWS: dict[str, tuple[tuple[int, int, bool, float], ...]] = {
    "flip": ((0, 0, False, 0.5), (0, 0, True, 0.5)),
    "flip_translate": ((0, 0, False, 0.25), (0, 0, True, 0.25),
                       (-1, -1, False, 0.125), (-1, -1, True, 0.125),
                       (1, 1, False, 0.125), (1, 1, True, 0.125)),
}


def check_tta(tta: Any) -> None:
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, received {tta!r}")


def views(tta: bool | str) -> tuple[tuple[int, int, bool, float], ...]:
    """The views of a TTA mode (``False``: the plain image alone)."""
    check_tta(tta)
    if not tta:
        return ((0, 0, False, 1.0),)
    return VIEWS["flip" if tta is True else tta]


def view(images: Any, dy: int = 0, dx: int = 0, mirrored: bool = False) -> Any:
    """``images`` ``(batch, height, width, channels)`` seen through a window
    moved ``dy`` rows down and ``dx`` columns right (negative: up, left)
    over their one-pixel reflected border, so their content moves the other
    way; then mirrored left-right if ``mirrored``. Shape unchanged."""
    if dy or dx:
        height, width = images.shape[1], images.shape[2]
        padded = ops.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
        images = padded[:, 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
    return ops.flip(images, axis=2) if mirrored else images


@keras.saving.register_keras_serializable(package="attention_zoo")
class ImageView(keras.layers.Layer):
    """One TTA view of a batch of images (``view``); shape unchanged:
    ``(batch, height, width, channels)``."""

    def __init__(self, dy: int = 0, dx: int = 0, mirrored: bool = False,
                 **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")  # raw pixels: never bfloat16
        super().__init__(**kwargs)
        if abs(dy) > 1 or abs(dx) > 1:
            raise ValueError(f"shifts are at most one pixel, received dy={dy}, dx={dx}")
        self.dy, self.dx, self.mirrored = int(dy), int(dx), bool(mirrored)

    def call(self, images: Any) -> Any:
        return view(images, self.dy, self.dx, self.mirrored)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dy": self.dy, "dx": self.dx,
                "mirrored": self.mirrored}


def view_model(model: keras.Model, dy: int = 0, dx: int = 0,
               mirrored: bool = False) -> keras.Model:
    """``model`` seeing its images through ``view(images, dy, dx, mirrored)``,
    sharing its weights; ``model`` itself for the plain view."""
    if not (dy or dx or mirrored):
        return model
    inputs = keras.Input(model.inputs[0].shape[1:], dtype=model.inputs[0].dtype,
                         name=model.inputs[0].name)
    return keras.Model(inputs, model(ImageView(dy, dx, mirrored)(inputs)),
                       name=f"{model.name}_view")


@keras.saving.register_keras_serializable(package="attention_zoo")
class WeightedMean(keras.layers.Layer):
    """``sum(w * x for w, x in zip(weights, inputs))`` in float32: a list of
    same-shaped ``(batch, classes)`` probabilities in, one out."""

    def __init__(self, weights: list[float] | tuple[float, ...], **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.view_weights = [float(w) for w in weights]

    def call(self, inputs: list) -> Any:
        if len(inputs) != len(self.view_weights):
            raise ValueError(f"WeightedMean has {len(self.view_weights)} weights, "
                             f"received {len(inputs)} inputs")
        return sum(w * ops.cast(x, "float32") for w, x in zip(self.view_weights, inputs))

    def compute_output_shape(self, input_shape: list) -> tuple:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weights": self.view_weights}


def with_tta(model: keras.Model, tta: bool | str = "flip_translate") -> keras.Model:
    """A functional model that returns ``model``'s probabilities averaged
    over the views of ``tta`` (``"flip"`` or ``"flip_translate"``), sharing
    its weights.

    Input: ``model``'s, ``(batch, height, width, channels)`` images.
    Output: ``(batch, classes)`` probabilities, float32.
    """
    if not isinstance(model, keras.Model) or len(model.inputs) != 1:
        raise TypeError(f"with_tta needs a keras.Model with one image input, "
                        f"received {type(model).__name__}")
    if len(model.inputs[0].shape) != 4:
        raise ValueError(f"with_tta needs (batch, height, width, channels) inputs, "
                         f"{model.name} takes {tuple(model.inputs[0].shape)}")
    if not tta:
        raise ValueError(f"with_tta needs a TTA mode ('flip' or 'flip_translate'), "
                         f"received {tta!r}")
    chosen = views(tta)
    inputs = keras.Input(model.inputs[0].shape[1:], dtype=model.inputs[0].dtype,
                         name=model.inputs[0].name)
    outputs = [model(ImageView(dy, dx, mirrored, name=f"view_{i}")(inputs))
               for i, (dy, dx, mirrored, _) in enumerate(chosen)]
    mean = WeightedMean([w for *_, w in chosen], name="tta_mean")(outputs)
    return keras.Model(inputs, mean, name=f"{model.name}_tta")
