"""Recipes (epochs, batch, optimizer, schedule, regularization, augmentation),
the one-cycle schedule, the smoothed loss and the optimizers with a
warmed-up weight average."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import keras


@dataclass(frozen=True)
class Recipe:
    """Everything about a training run that is not the model or the data."""

    epochs: int = 10
    batch_size: int = 512
    optimizer: str = "sgd"           # "sgd" (Nesterov) or "adamw"
    learning_rate: float = 0.4       # peak of the one-cycle schedule
    warmup: float = 0.15             # fraction of steps spent warming up
    decay: bool = True               # then linear decay to 0 (False: hold the peak)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.2
    ema: bool = True                 # evaluate/ship an EMA of the weights
    ema_momentum: float = 0.99
    translate: int = 2               # augmentation: pixels of translation
    flip: bool = True
    cutout: int = 0
    # Test-time augmentation at evaluation: False, "flip", or airbench's
    # "flip_translate" (flips plus one-pixel shifts; training.TTA_MODES).
    tta: bool | str = "flip_translate"

    def replace(self, **changes: Any) -> "Recipe":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown recipe fields {sorted(unknown)}; known: "
                             f"{[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **changes)


RECIPES: dict[str, Recipe] = {
    # The shipped AttnCNN: airbench-style one-cycle Nesterov SGD, label
    # smoothing, flip + translate, EMA weights, flip TTA.
    "cifar10": Recipe(),
    # The attention ablation: same, shorter.
    "cifar10_short": Recipe(epochs=4),
    # Text classifiers: AdamW, a short one-cycle, no image augmentation.
    "text": Recipe(epochs=3, batch_size=64, optimizer="adamw", learning_rate=2e-3,
                   warmup=0.1, weight_decay=1e-2, label_smoothing=0.0, ema=False,
                   translate=0, flip=False, tta=False),
}


def get_recipe(recipe: str | Recipe, **changes: Any) -> Recipe:
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"Unknown recipe {recipe!r}. Known: "
                             f"{', '.join(sorted(RECIPES))}")
        recipe = RECIPES[recipe]
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a name or a Recipe, received "
                        f"{type(recipe).__name__}")
    return recipe.replace(**changes) if changes else recipe


@keras.saving.register_keras_serializable(package="attention_zoo")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``peak * start`` to ``peak``, then linear decay to
    0 (or, with ``decay=False``, the peak held: one-epoch text models stop
    before a decay would pay)."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int,
                 start: float = 0.1, decay: bool = True) -> None:
        self.peak, self.total_steps = float(peak), int(total_steps)
        self.warmup_steps, self.start = max(1, int(warmup_steps)), float(start)
        self.decay = bool(decay)

    def __call__(self, step: Any) -> Any:
        from keras import ops

        step = ops.cast(step, "float32")
        up = self.start + (1.0 - self.start) * step / self.warmup_steps
        down = ((self.total_steps - step) / max(1, self.total_steps - self.warmup_steps)
                if self.decay else 1.0)
        return self.peak * ops.clip(ops.minimum(up, down), 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "start": self.start,
                "decay": self.decay}


@keras.saving.register_keras_serializable(package="attention_zoo")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy with label smoothing on integer labels
    (Keras's sparse loss has no smoothing)."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "smoothed_ce",
                 **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        from keras import ops

        classes = ops.shape(y_pred)[-1]
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        one_hot = ops.one_hot(labels, classes)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class _WarmEMA:
    """EMA of the weights whose momentum warms up as ``min(momentum,
    (1 + t) / (10 + t))`` (as ``tf.train.ExponentialMovingAverage`` with
    ``num_updates``). Keras's EMA uses the full momentum from step 1, so a short
    run (the 4-epoch ablation: 120 steps at 0.99) ships weights still a third
    made of the random initialization, with BN statistics of other weights."""

    def _update_model_variables_moving_average(self, trainable_variables: Any) -> None:
        if not self.use_ema:
            return
        from keras import ops

        step = ops.cast(self.iterations, "float32")
        momentum = ops.minimum(self.ema_momentum, (1.0 + step) / (10.0 + step))
        for var, average in zip(trainable_variables,
                                self._model_variables_moving_average):
            if average is not None:
                m = ops.cast(momentum, var.dtype)
                average.assign(m * average + (1.0 - m) * var)


@keras.saving.register_keras_serializable(package="attention_zoo")
class SGD(_WarmEMA, keras.optimizers.SGD):
    """``keras.optimizers.SGD`` with a warmed-up weight EMA."""


@keras.saving.register_keras_serializable(package="attention_zoo")
class AdamW(_WarmEMA, keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` with a warmed-up weight EMA."""


def make_optimizer(recipe: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    total = recipe.epochs * steps_per_epoch
    schedule = OneCycle(recipe.learning_rate, total, int(recipe.warmup * total),
                        decay=recipe.decay)
    common = {"weight_decay": recipe.weight_decay, "use_ema": recipe.ema,
              "ema_momentum": recipe.ema_momentum}
    if recipe.optimizer == "sgd":
        return SGD(schedule, momentum=recipe.momentum, nesterov=True, **common)
    if recipe.optimizer == "adamw":
        return AdamW(schedule, **common)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', received "
                     f"{recipe.optimizer!r}")
