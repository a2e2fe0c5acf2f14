"""Training: precision and XLA policy, recipes, callbacks, checkpoint/resume.

``fit(build, train, val, recipe=...)`` builds the model under the chosen
precision policy, compiles it with the recipe's optimizer, and trains with a
progress bar, TensorBoard logs, a checkpoint every epoch and automatic resume
from the last finished epoch when ``out_dir`` holds an interrupted run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


# ------------------------------------------------------ precision and XLA --

def has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def cpu_has_bf16() -> bool:
    """True when the CPU has native bfloat16 dot products (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_precision(precision: str = "auto") -> tuple[str, str]:
    """Returns ``(policy, why)``. ``"auto"``: mixed_float16 on a GPU;
    mixed_bfloat16 on a CPU with native bf16 (measured faster there, see
    benchmarks/cifar10_speed.md); float32 otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, received "
                         f"{precision!r}")
    if precision != "auto":
        return precision, "forced"
    if has_gpu():
        return "mixed_float16", "GPU found: float16 tensor cores"
    if cpu_has_bf16():
        return "mixed_bfloat16", "CPU has native bfloat16 (avx512_bf16/amx)"
    return "float32", "CPU without native bfloat16"


def choose_jit(jit_compile: bool | str = "auto") -> tuple[bool, str]:
    """Returns ``(use_xla, why)``. ``"auto"``: XLA on a GPU; off on a CPU,
    where it trains this package's convnets slower (benchmarks/)."""
    if isinstance(jit_compile, bool):
        return jit_compile, "forced"
    if jit_compile != "auto":
        raise ValueError(f"jit_compile must be True, False or 'auto', received "
                         f"{jit_compile!r}")
    if has_gpu():
        return True, "GPU found: XLA fuses the attention ops"
    return False, "CPU: XLA measured slower here"


# ----------------------------------------------------------------- recipes --

@dataclass(frozen=True)
class Recipe:
    """Everything about a training run that is not the model or the data."""

    epochs: int = 10
    batch_size: int = 512
    optimizer: str = "sgd"           # "sgd" (Nesterov) or "adamw"
    learning_rate: float = 0.4       # peak of the one-cycle schedule
    warmup: float = 0.15             # fraction of steps spent warming up
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.2
    ema: bool = True                 # evaluate/ship an EMA of the weights
    ema_momentum: float = 0.99
    translate: int = 2               # augmentation: pixels of translation
    flip: bool = True
    cutout: int = 0
    tta: bool = True                 # flip test-time augmentation at eval

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
    """Linear warm-up from ``peak * start`` to ``peak``, then linear decay to 0."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int,
                 start: float = 0.1) -> None:
        self.peak, self.total_steps = float(peak), int(total_steps)
        self.warmup_steps, self.start = max(1, int(warmup_steps)), float(start)

    def __call__(self, step: Any) -> Any:
        from keras import ops

        step = ops.cast(step, "float32")
        up = self.start + (1.0 - self.start) * step / self.warmup_steps
        down = (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps)
        return self.peak * ops.clip(ops.minimum(up, down), 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "start": self.start}


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
    schedule = OneCycle(recipe.learning_rate, total, int(recipe.warmup * total))
    common = {"weight_decay": recipe.weight_decay, "use_ema": recipe.ema,
              "ema_momentum": recipe.ema_momentum}
    if recipe.optimizer == "sgd":
        return SGD(schedule, momentum=recipe.momentum, nesterov=True, **common)
    if recipe.optimizer == "adamw":
        return AdamW(schedule, **common)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', received "
                     f"{recipe.optimizer!r}")


# --------------------------------------------------------------- callbacks --

class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the whole model to ``path`` every epoch: written to a temporary
    name and renamed, so a kill never leaves half a file."""

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        save_atomically(self.model, self.path)


class Throughput(keras.callbacks.Callback):
    """Records wall time and training images/s of each epoch into the logs."""

    def __init__(self, examples_per_epoch: int) -> None:
        super().__init__()
        self.examples = examples_per_epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._start
        if logs is not None:
            logs["epoch_seconds"] = seconds
            logs["train_examples_per_second"] = self.examples / seconds


def save_atomically(model: keras.Model, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
    tmp = path.with_name(f".{path.name}.tmp{suffix}")
    if suffix == ".weights.h5":
        model.save_weights(tmp)
    else:
        model.save(tmp)
    os.replace(tmp, path)


# ----------------------------------------------------------- scale-out --

STRATEGIES = ("mirrored", "multiworker")


def get_strategy(strategy: Any) -> Any:
    """None, ``"mirrored"`` (all local GPUs, or the CPU), ``"multiworker"``
    (``TF_CONFIG`` names the cluster) or a ``tf.distribute.Strategy``."""
    import tensorflow as tf

    if strategy is None or isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if strategy == "multiworker":
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:
            raise RuntimeError(
                "MultiWorkerMirroredStrategy must be created before any other "
                "TensorFlow work: call attention_zoo.training.get_strategy("
                "'multiworker') at program start and pass the result") from error
    raise ValueError(f"strategy must be None, one of {STRATEGIES} or a "
                     f"tf.distribute.Strategy, received {strategy!r}")


def _is_multiworker(strategy: Any) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: Any = None) -> bool:
    """True on the process that writes files: always without a multi-worker
    strategy; otherwise the "chief" task, or worker 0 when there is none."""
    if not _is_multiworker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def _fit_multiworker(strategy: Any, build: Callable[[], keras.Model], train: Any,
                     recipe: Recipe, steps: int, verbose: int | str) -> tuple:
    """Keras 3's ``model.fit`` fails under MultiWorkerMirroredStrategy
    (keras-team/keras#20585); this loop runs the recipe's step through
    ``strategy.run`` on a distributed dataset instead."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    batches = strategy.experimental_distribute_dataset(train.with_options(options))
    with strategy.scope():
        model = build()
        optimizer = make_optimizer(recipe, steps)
        optimizer.build(model.trainable_variables)

    @tf.function
    def step(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            per_example = keras.losses.categorical_crossentropy(
                y, p, label_smoothing=recipe.label_smoothing)
            loss = tf.nn.compute_average_loss(per_example,
                                              global_batch_size=recipe.batch_size)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function
    def distributed_step(x: Any, y: Any) -> Any:
        losses = strategy.run(step, args=(x, y))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    history: dict[str, list[float]] = {"loss": []}
    show = verbose not in (0, False) and is_chief(strategy)
    for epoch in range(recipe.epochs):
        bar = keras.utils.Progbar(steps) if show else None
        total, count = 0.0, 0
        for x, y in batches:
            loss = float(distributed_step(x, y))
            total, count = total + loss, count + 1
            if bar is not None:
                bar.add(1, [("loss", loss)])
        history["loss"].append(total / max(count, 1))
    if recipe.ema:
        optimizer.finalize_variable_values(model.trainable_variables)
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    return model, history


# -------------------------------------------------------------------- fit --

@dataclass
class FitResult:
    model: keras.Model
    history: dict[str, list[float]]
    precision: str
    jit_compile: bool
    wall_seconds: float
    initial_epoch: int
    val_accuracy: float | None


def fit(build: Callable[[], keras.Model] | keras.Model, train: Any, val: Any = None,
        recipe: str | Recipe = "cifar10", out_dir: str | os.PathLike | None = None,
        precision: str = "auto", jit_compile: bool | str = "auto",
        train_size: int | None = None, verbose: int | str = "auto",
        strategy: Any = None, log: Callable[[str], None] = print) -> FitResult:
    """Trains a model with a recipe.

    Args:
        build: a function that builds the (uncompiled) model; it is called
            under the chosen dtype policy. A built ``keras.Model`` is trained
            as it is (its dtype policy was fixed when it was built), so then
            ``precision`` must be ``"auto"``.
        train, val: ``tf.data`` datasets of ``(x, one-hot y)`` batches (see
            ``attention_zoo.data.pipeline``).
        recipe: a name in ``RECIPES`` or a ``Recipe``.
        out_dir: where checkpoints (``last.keras``, every epoch), the backup
            for resume, TensorBoard logs, ``history.csv`` and the final
            ``model.keras`` go. A directory holding an interrupted run resumes
            it from its last finished epoch.
        precision: ``"auto"``, ``"float32"``, ``"mixed_float16"``,
            ``"mixed_bfloat16"``.
        jit_compile: ``"auto"``, True or False.
        train_size: examples per epoch (for images/s); inferred if None.
        strategy: None, ``"mirrored"``, ``"multiworker"`` or a
            ``tf.distribute.Strategy``; ``train`` batches are global batches.
            Create a multi-worker strategy at program start (``get_strategy(
            "multiworker")``) and pass it: TensorFlow refuses to create it
            after other work. Under it a custom loop replaces
            ``model.fit`` (keras-team/keras#20585) and only the chief writes
            files; it has no per-epoch resume.
    """
    recipe = get_recipe(recipe)
    policy, policy_why = choose_precision(precision)
    use_xla, xla_why = choose_jit(jit_compile)
    if isinstance(build, keras.Model):
        if precision != "auto":
            raise ValueError("precision applies when fit() builds the model; "
                             "pass a function that builds it, or build it under "
                             "keras.config.set_dtype_policy yourself")
        policy, policy_why = build.dtype_policy.name, "the model's own"
    strategy = get_strategy(strategy)
    log(f"precision: {policy} ({policy_why}); XLA: {'on' if use_xla else 'off'} "
        f"({xla_why}); strategy: {type(strategy).__name__ if strategy else 'none'}")

    steps = int(train.cardinality()) if hasattr(train, "cardinality") else -1
    if steps <= 0:
        raise ValueError("train must be a finite, batched tf.data.Dataset")
    train_size = train_size or steps * recipe.batch_size

    out = Path(out_dir) if out_dir is not None else None
    callbacks: list[keras.callbacks.Callback] = [Throughput(train_size)]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        # The backup goes last: once it says an epoch is done, that epoch's
        # log row and checkpoint are already on disk.
        callbacks += [
            keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
            keras.callbacks.TensorBoard(str(out / "logs"), write_graph=False),
            AtomicCheckpoint(out / "last.keras"),
            keras.callbacks.BackupAndRestore(str(out / "backup"),
                                             double_checkpoint=True),
        ]
        initial = _finished_epochs(out)
        if initial:
            log(f"resuming from {out / 'backup'}: {initial} of {recipe.epochs} "
                f"epochs already done")
    else:
        initial = 0

    def build_under_policy() -> keras.Model:
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            return build if isinstance(build, keras.Model) else build()
        finally:
            keras.config.set_dtype_policy(previous)

    start = time.perf_counter()
    if _is_multiworker(strategy):
        model, logged = _fit_multiworker(strategy, build_under_policy, train, recipe,
                                         steps, verbose)
        out = out if is_chief(strategy) else None
    else:
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model = build_under_policy()
            model.compile(optimizer=make_optimizer(recipe, steps),
                          loss=keras.losses.CategoricalCrossentropy(
                              label_smoothing=recipe.label_smoothing),
                          metrics=["accuracy"], jit_compile=use_xla)
        logged = model.fit(train, validation_data=val, epochs=recipe.epochs,
                           callbacks=callbacks, verbose=verbose).history
    wall = time.perf_counter() - start
    val_accuracy = None
    if val is not None and _is_multiworker(strategy):
        log("validation skipped under MultiWorkerMirroredStrategy: evaluate the "
            "saved model (attention-zoo evaluate) on one process")
    elif val is not None:
        val_accuracy = evaluate(model, val, tta=recipe.tta)
        log(f"validation accuracy{' (flip TTA)' if recipe.tta else ''}: "
            f"{val_accuracy:.4f}")
    if out is not None:
        save_atomically(model, out / "model.keras")
        (out / "result.json").write_text(json.dumps({
            "precision": policy, "jit_compile": use_xla, "recipe":
            dataclasses.asdict(recipe), "wall_seconds_this_process": wall,
            "initial_epoch": initial, "val_accuracy": val_accuracy}, indent=2))
    return FitResult(model, dict(logged), policy, use_xla, wall, initial,
                     val_accuracy)


def _finished_epochs(out: Path) -> int:
    meta = out / "backup" / "training_metadata.json"
    if not meta.is_file():
        return 0
    try:
        return int(json.loads(meta.read_text())["epoch"])  # epochs completed
    except (ValueError, KeyError, json.JSONDecodeError):
        return 0


# --------------------------------------------------------------- evaluate --

def predict(model: keras.Model, data: Any, tta: bool = False) -> np.ndarray:
    """Class probabilities for a dataset of ``x`` or ``(x, y)`` batches; with
    ``tta`` the mean over each image and its mirror image."""
    from keras import ops

    images = data.map(lambda x, *_: x)
    probabilities = model.predict(images, verbose=0)
    if tta:
        mirrored = model.predict(images.map(lambda x: ops.flip(x, axis=2)),
                                 verbose=0)
        probabilities = (probabilities + mirrored) / 2.0
    return probabilities


def evaluate(model: keras.Model, data: Any, tta: bool = False) -> float:
    """Top-1 accuracy on ``(x, y)`` batches (``y`` one-hot or integer)."""
    labels = np.concatenate([np.asarray(y) for _, y in data])
    if labels.ndim == 2:
        labels = labels.argmax(-1)
    return float(np.mean(predict(model, data, tta).argmax(-1) == labels))
