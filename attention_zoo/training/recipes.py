"""Recipes (epochs, batch, optimizer, schedule, regularization, augmentation),
the one-cycle schedule and the smoothed loss. The optimizers they name are in
``training.optimizers``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import keras

from attention_zoo.data.images import check_flip


@dataclass(frozen=True)
class Recipe:
    """Everything about a training run that is not the model or the data."""

    epochs: int = 10
    batch_size: int = 512
    optimizer: str = "sgd"           # "sgd" (Nesterov), "muon" or "adamw"
    learning_rate: float = 0.4       # peak of the one-cycle schedule
    warmup: float = 0.15             # fraction of steps spent warming up
    decay: bool = True               # then linear decay (False: hold the peak)
    lr_start: float = 0.1            # warm-up starts at peak * lr_start
    lr_end: float = 0.0              # decay ends at peak * lr_end
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.2
    ema: bool = True                 # evaluate/ship an EMA of the weights
    ema_momentum: float = 0.99
    # 0: the EMA momentum warms up as (1 + t) / (10 + t). p > 0: it is
    # ema_momentum * (t / total) ** p, light early and strongest at the end
    # (airbench's schedule, with p = 0.6 per step).
    ema_power: float = 0.0
    # Lookahead: every `lookahead` steps the weights are replaced by their EMA
    # (0: the EMA is only what gets evaluated and shipped).
    lookahead: int = 0
    # Learning-rate multiplier for normalization offsets (BatchNormalization's
    # beta: the model's variable_groups() offsets), applied to their
    # gradients, not to their weight decay.
    norm_bias_lr_scale: float = 1.0
    # > 0 (airbench94_muon: 3 of its 8 epochs): the whitening stem's bias
    # (the model's variable_groups() stem_bias) trains at the offsets' rate,
    # falling linearly to 0 over this many epochs, then stays frozen. 0: it
    # trains at the base rate throughout.
    # The two landed level on two seeds (benchmarks/cifar10_epochs.md, the
    # avx2_wbias3 rows), so the default keeps 0.
    whiten_bias_epochs: float = 0.0
    # optimizer="muon" (optimizers.MuonSGD): the kernels the model's
    # variable_groups() names orthogonal take Muon steps at
    # muon_learning_rate (scheduled like learning_rate), the rest Nesterov
    # SGD. Which kernels is the model's to say, not the recipe's.
    muon_learning_rate: float = 0.24
    muon_momentum: float = 0.6
    muon_steps: int = 3
    translate: int = 2               # augmentation: pixels of translation
    # False, True (random flips) or "alternate" (airbench's alternating
    # flip; data.pipeline).
    flip: bool | str = True
    cutout: int = 0
    # Test-time augmentation at evaluation: False, "flip", or airbench's
    # "flip_translate" (flips plus one-pixel shifts; training.TTA_MODES).
    tta: bool | str = "flip_translate"
    # Validate every N epochs (Keras's validation_freq); 0: only once, after
    # training, which saves a pass over the validation set per epoch.
    validate_every: int = 1
    # < 1: the net trains on this fraction of each batch, the examples a
    # small proxy net trained alongside finds hardest
    # (training.HardExampleTrainer; fit() needs the proxy).
    select: float = 1.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _check_type(field.name, getattr(self, field.name), field.type)
        for name in ("epochs", "batch_size", "muon_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, received "
                                 f"{getattr(self, name)!r}")
        for name in ("learning_rate", "muon_learning_rate"):
            value = getattr(self, name)
            if not 0.0 < value < float("inf"):
                raise ValueError(f"{name} must be a positive number, received {value!r}")
        for name in ("warmup", "momentum", "ema_momentum", "label_smoothing",
                     "muon_momentum"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), received "
                                 f"{getattr(self, name)!r}")
        for name in ("weight_decay", "lr_start", "lr_end", "ema_power", "lookahead",
                     "norm_bias_lr_scale", "translate", "cutout"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise ValueError(f"{name} must be >= 0, received {getattr(self, name)!r}")
        check_flip(self.flip)
        if not 0.0 < self.select <= 1.0:
            raise ValueError(f"select must be in (0, 1], received {self.select!r}")
        if self.whiten_bias_epochs < 0:
            raise ValueError(f"whiten_bias_epochs must be >= 0, received "
                             f"{self.whiten_bias_epochs!r}")
        if (not isinstance(self.validate_every, int) or isinstance(self.validate_every, bool)
                or self.validate_every < 0):
            raise ValueError(f"validate_every must be an int >= 0, received "
                             f"{self.validate_every!r}")

    def replace(self, **changes: Any) -> "Recipe":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown recipe fields {sorted(unknown)}; known: "
                             f"{[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **changes)


#: What each annotation of ``Recipe`` admits (``--set`` converts to these).
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
    "bool | str": (bool, str)}


def _check_type(name: str, value: Any, annotation: str) -> None:
    allowed = FIELD_TYPES[annotation]
    if isinstance(value, bool) and bool not in allowed:  # bool is an int
        allowed = ()
    if not isinstance(value, allowed):
        raise TypeError(f"recipe field {name} takes {annotation}, received "
                        f"{value!r} ({type(value).__name__})")


#: airbench94's optimizer settings at batch 512 in Keras terms (recipe
#: ``cifar10_sgd``). Nesterov SGD at momentum 0.85; learning rate 0.75 per
#: mean-loss batch (airbench's 11.5 per 1024 summed examples, divided by
#: 1024 * (1 + 1 / (1 - 0.85)), times 512); weight decay 0.009 (airbench's
#: 0.0153 per 1024 examples, decoupled as Keras applies it); a triangle from
#: 0.2 to the peak at 23% to 0.07; BatchNorm offsets at 64x the learning
#: rate; lookahead every 5 steps towards an EMA of momentum
#: 0.95 * progress ** 0.6; label smoothing 0.2; flip + translate.
CIFAR10_SGD = Recipe(learning_rate=0.75, momentum=0.85, weight_decay=0.009,
                     warmup=0.23, lr_start=0.2, lr_end=0.07, norm_bias_lr_scale=64.0,
                     ema_momentum=0.95, ema_power=0.6, lookahead=5)

#: ``fit``'s default, for any net (AttnCNN's default,
#: ``models.attn_cnn.DEFAULT_RECIPE``, is this with hard-example selection,
#: ``cifar10_select``): airbench94_muon's settings (Jordan, 2024)
#: in Keras terms: batch 2000; the 3x3 convolutions take Muon steps (rate
#: 0.24, momentum 0.6, 3 Newton-Schulz iterations); every other variable
#: Nesterov SGD at momentum 0.85: the classifier at 1.31 per mean-loss batch
#: (airbench's 0.67 per summed example on logits / 256, moved to this net's
#: logits / 8: 0.67 * 2000 / 32 ** 2), BatchNorm offsets at 81x that
#: (airbench's 0.053 per summed example), weight decay 0.0204 (airbench's
#: 0.004 per step through momentum 0.85, decoupled); no EMA or lookahead.
#: Unlike airbench94_muon it warms up linearly from 0.1x the peak over the
#: first tenth of the steps (one epoch of ten), then decays to 0: from the
#: peak at step 0, 2 of 8 seeds collapsed to chance at step 4 (the one run
#: on never recovered), and the warm-up cost no measurable accuracy
#: (benchmarks/cifar10_early_steps.md). Alternating flip, as in airbench.
#: Validated once, after training: the same run validated every epoch took
#: 45.7 minutes for the command, 41.4 without (benchmarks/cifar10_epochs.md).
CIFAR10 = CIFAR10_SGD.replace(
    optimizer="muon", batch_size=2000, learning_rate=1.31, weight_decay=0.0204,
    norm_bias_lr_scale=81.0, warmup=0.1, lr_start=0.1, lr_end=0.0, ema=False,
    lookahead=0, ema_power=0.0, flip="alternate", validate_every=0)

RECIPES: dict[str, Recipe] = {
    "cifar10": CIFAR10,
    "cifar10_sgd": CIFAR10_SGD,
    # The default validated every epoch (the name its benchmark rows ran under).
    "cifar10_muon": CIFAR10.replace(validate_every=1),
    # Hard-example selection (AttnCNN's default): the net trains on the
    # harder half of batches twice cifar10's. At 20 epochs (cifar10's steps
    # and images, each chosen from two) seven runs averaged 91.34% with TTA,
    # level with cifar10 at matched precision; 26 epochs added 0.34 points
    # on each of two seeds and fits the budget on bfloat16 CPUs
    # (benchmarks/cifar10_epochs.md, the amx_select rows).
    "cifar10_select": CIFAR10.replace(batch_size=4000, epochs=26, select=0.5),
    # The attention ablation: the SGD recipe, shorter.
    "cifar10_short": CIFAR10_SGD.replace(epochs=4),
    # Text classifiers: AdamW, a short one-cycle, no image augmentation.
    "text": Recipe(epochs=3, batch_size=64, optimizer="adamw", learning_rate=2e-3,
                   warmup=0.1, weight_decay=1e-2, label_smoothing=0.0, ema=False,
                   translate=0, flip=False, tta=False),
    # NBTextClassifier: logistic regression on NB-scaled n-gram bags. It
    # fits the training set within 2 epochs; label smoothing is its
    # regularizer (IMDB: 91.8% with 0.1, 91.0% without; text_nb_imdb.md).
    "nb_text": Recipe(epochs=2, batch_size=64, optimizer="adamw", learning_rate=3e-3,
                      warmup=0.1, weight_decay=1e-2, label_smoothing=0.1, ema=False,
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
                 start: float = 0.1, decay: bool = True, end: float = 0.0) -> None:
        self.peak, self.total_steps = float(peak), int(total_steps)
        self.warmup_steps, self.start = max(1, int(warmup_steps)), float(start)
        self.decay, self.end = bool(decay), float(end)

    def __call__(self, step: Any) -> Any:
        from keras import ops

        step = ops.cast(step, "float32")
        up = self.start + (1.0 - self.start) * step / self.warmup_steps
        left = ops.maximum(0.0, (self.total_steps - step)
                           / max(1, self.total_steps - self.warmup_steps))
        down = self.end + (1.0 - self.end) * left if self.decay else 1.0
        return self.peak * ops.clip(ops.minimum(up, down), 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "start": self.start,
                "decay": self.decay, "end": self.end}


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
