"""KerasTuner search over attention type and size: hypermodels, search,
resume, and KerasTuner's own chief/worker distributed mode.

The hypermodels build compiled models reporting ``accuracy`` on integer
labels, so any KerasTuner tuner works called the standard way::

    tuner = keras_tuner.Hyperband(AttnCNNHyperModel(), objective="val_accuracy",
                                  max_epochs=9)
    tuner.search(x, y, epochs=9, validation_split=0.1)
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import keras
import keras_tuner as kt
import numpy as np

from attention_zoo import layers as zoo_layers
from attention_zoo.dtype_policy import global_dtype_policy
from attention_zoo.layers.base import BottleneckAttention2D
from attention_zoo.models.attn_cnn import AttnCNN
from attention_zoo.models.attn_resnet import AttnResNet
from attention_zoo.models.task import Task
from attention_zoo.models.whitening import ADAPT_EXAMPLES
from attention_zoo.models.text import ENCODERS, POOLINGS, AttnTextClassifier
from attention_zoo.training import SparseSmoothedCrossentropy

TUNERS = ("random", "bayesian", "hyperband")


def _hp(hp: kt.HyperParameters, name: str, default: Any, space: Mapping[str, Any]
        ) -> Any:
    """A hyperparameter whose default search space a user can narrow:
    ``space[name]`` is a list (choices), a ``(low, high)`` tuple or a
    ``{"min": low, "max": high}`` dict (a range; floats log-sampled), or one
    value (fixed)."""
    value = space.get(name, default)
    if isinstance(value, dict):
        value = (value["min"], value["max"])
    if isinstance(value, list):
        return hp.Choice(name, value)
    if isinstance(value, tuple):
        low, high = value
        if isinstance(low, int) and isinstance(high, int):
            return hp.Int(name, low, high)
        return hp.Float(name, float(low), float(high), sampling="log")
    return hp.Fixed(name, value)


def _compile(model: keras.Model, hp: kt.HyperParameters, space: Mapping[str, Any],
             learning_rate: tuple, optimizer: str) -> keras.Model:
    lr = _hp(hp, "learning_rate", learning_rate, space)
    wd = _hp(hp, "weight_decay", (1e-5, 1e-2), space)
    smoothing = _hp(hp, "label_smoothing", [0.0, 0.1, 0.2], space)
    opt = (keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=wd)
           if optimizer == "sgd" else keras.optimizers.AdamW(lr, weight_decay=wd))
    model.compile(optimizer=opt, loss=SparseSmoothedCrossentropy(smoothing),
                  metrics=["accuracy"])
    return model


@functools.cache
def any_size_feature_map_layers() -> tuple[str, ...]:
    """The feature-map layer names that run on any map size, down to the
    3x3 of a small CNN's last stage (``bat`` needs sizes its block divides,
    so a search leaves it out unless ``space`` names it)."""
    usable = []
    for name in zoo_layers.names(zoo_layers.FEATURE_MAP):
        try:
            zoo_layers.get(name)(np.zeros((1, 3, 3, 16), "float32"))
        except ValueError:
            continue
        usable.append(name)
    return tuple(usable)


class _ImageHyperModel(kt.HyperModel):
    """What the image hypermodels share: images of ``input_shape``,
    ``num_classes`` classes and the ``space`` that narrows the search."""

    def __init__(self, input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 10,
                 space: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.space = dict(space or {})


class AttnCNNHyperModel(_ImageHyperModel):
    """AttnCNN search space: ``attention`` (every feature-map layer that
    runs at any map size, ``any_size_feature_map_layers()``, and "none"), ``reduction`` (channel attention bottleneck), ``width`` (first
    stage; later stages 4x), ``depth`` (stages), ``learning_rate``,
    ``weight_decay``, ``label_smoothing`` and ``augment_translate`` (pixels of
    random translation; random flips always on).

    ``space`` narrows any of them, e.g. ``{"attention": ["se", "cbam"],
    "depth": 3, "learning_rate": (0.05, 0.2)}``: a list is a choice, a
    ``(low, high)`` tuple a range, a single value is fixed.
    Models take raw pixels and integer labels and report ``accuracy``.
    """

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        s = self.space
        attention = _hp(hp, "attention", ["none", *any_size_feature_map_layers()], s)
        width = _hp(hp, "width", [16, 32, 64], s)
        depth = _hp(hp, "depth", [2, 3], s)
        translate = _hp(hp, "augment_translate", [0, 2, 4], s)
        reduced = [a for a in any_size_feature_map_layers()
                   if issubclass(zoo_layers.registry.LAYERS.entry(a).target,
                                 BottleneckAttention2D)]
        extra = {}
        with hp.conditional_scope("attention", reduced):
            if attention in reduced:
                extra["reduction"] = _hp(hp, "reduction", [4, 8, 16], s)
        body = AttnCNN(self.input_shape, self.num_classes,
                       attention=None if attention == "none" else attention,
                       width=[width] + [4 * width] * (depth - 1),
                       stem_width=max(8, width // 2), attention_kwargs=extra,
                       name="attn_cnn")
        inputs = keras.Input(self.input_shape, name="image")
        x = keras.layers.RandomFlip("horizontal", name="flip")(inputs)
        if translate:
            f = translate / self.input_shape[0]
            x = keras.layers.RandomTranslation(f, f, fill_mode="reflect",
                                               name="translate")(x)
        model = keras.Model(inputs, body(x), name="attn_cnn_search")
        return _compile(model, hp, s, (0.02, 0.4), "sgd")

    def fit(self, hp: kt.HyperParameters, model: keras.Model, x: Any, *args: Any,
            **kwargs: Any) -> Any:
        # The whitening stem's filters come from the trial's training images.
        for layer in model.layers:
            if isinstance(layer, Task):
                layer.adapt([np.asarray(x[:ADAPT_EXAMPLES])])
        return model.fit(x, *args, **kwargs)


class TextHyperModel(kt.HyperModel):
    """AttnTextClassifier search space: ``attention`` (token pooling),
    ``encoder``, ``embed_dim``, ``hidden``, ``num_heads``, ``dropout``,
    ``learning_rate``, ``weight_decay``, ``label_smoothing``; ``space``
    narrows them as in ``AttnCNNHyperModel``. Models take raw strings (the
    vocabulary is fixed) and integer labels and report ``accuracy``."""

    def __init__(self, vocabulary: Sequence[str], num_classes: int = 2,
                 max_length: int = 128, space: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocabulary, self.num_classes = list(vocabulary), num_classes
        self.max_length, self.space = max_length, dict(space or {})

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        s = self.space
        model = AttnTextClassifier(
            self.num_classes, vocabulary=self.vocabulary, max_length=self.max_length,
            attention=_hp(hp, "attention", list(POOLINGS), s),
            encoder=_hp(hp, "encoder", list(ENCODERS), s),
            embed_dim=_hp(hp, "embed_dim", [64, 128], s),
            hidden=_hp(hp, "hidden", [32, 64], s),
            num_heads=_hp(hp, "num_heads", [2, 4], s),
            dropout=_hp(hp, "dropout", [0.1, 0.3, 0.5], s))
        return _compile(model, hp, s, (3e-4, 3e-3), "adamw")


class AttnResNetHyperModel(_ImageHyperModel):
    """AttnResNet search space: ``attention`` (every feature-map layer that
    runs at any map size, the convolution-replacing ``sk`` and ``splat``,
    and "none"), ``depth`` (10 or 18: small images), ``width`` (channels of
    the first stage; later stages double), ``learning_rate``,
    ``weight_decay``, ``label_smoothing``; ``space`` narrows them as in
    ``AttnCNNHyperModel``. Models take raw pixels and integer labels and
    report ``accuracy``."""

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        s = self.space
        attention = _hp(hp, "attention",
                        ["none", *any_size_feature_map_layers(), "sk", "splat"], s)
        width = _hp(hp, "width", [16, 32, 64], s)
        model = AttnResNet(depth=_hp(hp, "depth", [10, 18], s),
                           attention=None if attention == "none" else attention,
                           num_classes=self.num_classes, input_shape=self.input_shape,
                           channels=[width * 2 ** i for i in range(4)])
        return _compile(model, hp, s, (0.02, 0.4), "sgd")


HYPERMODELS = {"attn_cnn": AttnCNNHyperModel, "attn_text": TextHyperModel,
               "attn_resnet": AttnResNetHyperModel}


# ----------------------------------------------------------------- search --

class _Timing:
    """Records each trial's wall time (and which process ran it) beside the
    trial, so the results table can show it and tests can count executions."""

    def __init__(self, tuner: kt.Tuner) -> None:
        self.tuner = tuner

    def begin(self, trial: Any) -> None:
        self._start = time.perf_counter()

    def end(self, trial: Any) -> None:
        folder = Path(self.tuner.get_trial_dir(trial.trial_id))
        folder.mkdir(parents=True, exist_ok=True)
        record = {"seconds": time.perf_counter() - self._start,
                  "tuner_id": os.environ.get("KERASTUNER_TUNER_ID", "local"),
                  "pid": os.getpid()}
        with (folder / "executions.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")


def make_tuner(hypermodel: kt.HyperModel, tuner: str = "hyperband",
               max_trials: int = 20, max_epochs: int = 9, directory: str = "tuning",
               project_name: str = "search", seed: int = 0,
               overwrite: bool = False,
               log: Callable[[str], None] | None = print) -> kt.Tuner:
    """A KerasTuner tuner on ``val_accuracy`` that records trial times and
    reports each trial's start and end through ``log`` (trial, its
    hyperparameters, its score, time since the search began).
    ``overwrite=False`` resumes a search found in ``directory``."""
    if tuner not in TUNERS:
        raise ValueError(f"tuner must be one of {TUNERS}, received {tuner!r}")
    common = {"objective": "val_accuracy", "directory": directory,
              "project_name": project_name, "seed": seed, "overwrite": overwrite}
    base = {"random": kt.RandomSearch, "bayesian": kt.BayesianOptimization,
            "hyperband": kt.Hyperband}[tuner]

    began = time.perf_counter()
    limit = f"of {max_trials} " if tuner != "hyperband" else ""

    def report(text: str) -> None:
        if log is not None:
            elapsed = int(time.perf_counter() - began)
            log(f"[{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}] {text}")

    class Timed(base):  # type: ignore[valid-type, misc]
        def on_trial_begin(self, trial: Any) -> None:
            self._timing.begin(trial)
            values = {k: _fmt(v) for k, v in trial.hyperparameters.values.items()
                      if not k.startswith("tuner/")}
            epochs = trial.hyperparameters.values.get("tuner/epochs", max_epochs)
            report(f"trial {trial.trial_id} {limit}started, {epochs} epochs: "
                   + ", ".join(f"{k}={v}" for k, v in values.items()))
            super().on_trial_begin(trial)

        def on_trial_end(self, trial: Any) -> None:
            self._timing.end(trial)
            super().on_trial_end(trial)
            score = "none" if trial.score is None else f"{trial.score:.4f}"
            report(f"trial {trial.trial_id} ended: val_accuracy {score}")

    if tuner == "hyperband":
        made = Timed(hypermodel, max_epochs=max_epochs, factor=3, **common)
    else:
        made = Timed(hypermodel, max_trials=max_trials, **common)
    made._timing = _Timing(made)
    return made


def results_table(tuner: kt.Tuner) -> str:
    """Markdown table of every finished trial: id, hyperparameters,
    validation accuracy, epochs and wall time, best first."""
    trials = [t for t in tuner.oracle.trials.values() if t.score is not None]
    trials.sort(key=lambda t: -t.score)
    names = sorted({k for t in trials for k in t.hyperparameters.values
                    if not k.startswith("tuner/")})
    header = ["trial", *names, "epochs", "val_accuracy", "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for t in trials:
        values = t.hyperparameters.values
        cells = [t.trial_id] + [_fmt(values.get(n, "")) for n in names]
        epochs = values.get("tuner/epochs", "")
        seconds = _trial_seconds(tuner, t.trial_id)
        cells += [str(epochs), f"{t.score:.4f}", f"{seconds:.0f}" if seconds else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _trial_seconds(tuner: kt.Tuner, trial_id: str) -> float | None:
    path = Path(tuner.get_trial_dir(trial_id)) / "executions.jsonl"
    if not path.is_file():
        return None
    return sum(json.loads(line)["seconds"] for line in path.read_text().splitlines())


def search(name: str, train: tuple, val: tuple, tuner: str = "hyperband",
           max_trials: int = 20, max_epochs: int = 9, directory: str = "tuning",
           hypermodel_kwargs: Mapping[str, Any] | None = None, batch_size: int = 128,
           seed: int = 0, overwrite: bool = False, verbose: int = 1,
           precision: str = "auto",
           log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Searches a zoo model's hypermodel on ``(x, y)`` arrays with integer
    labels; resumes an interrupted search in ``directory``. Under KerasTuner's
    distributed environment variables this process is the chief (serving the
    oracle) or a worker. Returns the results table and, on the chief or a
    single process, writes the best model to ``directory/best.keras``.
    ``log`` gets a line as each trial starts and ends (None: silent).
    """
    if name not in HYPERMODELS:
        raise ValueError(f"Unknown hypermodel {name!r}. Known: {', '.join(HYPERMODELS)}")
    hypermodel = HYPERMODELS[name](**dict(hypermodel_kwargs or {}))
    made = make_tuner(hypermodel, tuner, max_trials, max_epochs, directory,
                      f"{name}_{tuner}", seed, overwrite, log)
    from attention_zoo.training import choose_precision

    x, y = train
    with global_dtype_policy(choose_precision(precision)[0]):
        made.search(x, y, epochs=max_epochs, validation_data=val,
                    batch_size=batch_size, verbose=verbose)
    if os.environ.get("KERASTUNER_TUNER_ID", "chief") != "chief":
        return {"table": "(a worker: the chief holds the results)", "trials": None}
    from attention_zoo.training import save_atomically

    path = Path(directory) / "best.keras"
    save_atomically(made.get_best_models(1)[0], path)
    return {"table": results_table(made), "trials": len(made.oracle.trials),
            "best_model": str(path),
            "best_hyperparameters": made.get_best_hyperparameters(1)[0].values}
