"""Training: precision and XLA policy, recipes, callbacks, checkpoint/resume.

``fit(build, train, val, recipe=...)`` builds the model under the chosen
precision policy, compiles it with the recipe's optimizer, and trains with a
progress bar, TensorBoard logs, a checkpoint every epoch and automatic resume
from the last finished epoch when ``out_dir`` holds an interrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

from attention_zoo.dtype_policy import global_dtype_policy
from attention_zoo.files import write_text
from attention_zoo.models.tta import TTA_MODES, view_model, views
from attention_zoo.training.callbacks import (AtomicCheckpoint, Lookahead, Throughput,
                                              save_atomically)
from attention_zoo.training.distribute import (STRATEGIES, fit_multiworker, get_strategy,
                                               is_chief, is_multiworker, mean_over_workers,
                                               strategy_scope)
from attention_zoo.training.policy import (PRECISIONS, choose_jit, choose_precision,
                                           cpu_has_bf16, has_gpu, onednn_enabled)
from attention_zoo.training.optimizers import (SGD, AdamW, MuonSGD, VariableGroups,
                                               make_optimizer, variable_groups)
from attention_zoo.training.recipes import (RECIPES, OneCycle, Recipe,
                                            SparseSmoothedCrossentropy, get_recipe)
from attention_zoo.training import run_folder
from attention_zoo.training.selection import HardExampleTrainer

__all__ = ["fit", "evaluate", "predict", "predict_views", "view_accuracies", "accuracy", "FitResult", "Recipe", "RECIPES", "get_recipe",
           "OneCycle", "SGD", "AdamW", "MuonSGD", "SparseSmoothedCrossentropy", "make_optimizer",
           "VariableGroups", "variable_groups",
           "AtomicCheckpoint", "Lookahead", "Throughput", "save_atomically", "PRECISIONS",
           "choose_precision", "choose_jit", "has_gpu", "cpu_has_bf16", "onednn_enabled", "STRATEGIES",
           "TTA_MODES", "tta_name", "get_strategy", "is_chief", "is_multiworker",
           "fit_multiworker", "HardExampleTrainer"]


@dataclass
class FitResult:
    model: keras.Model
    history: dict[str, list[float]]
    precision: str
    jit_compile: bool
    wall_seconds: float
    initial_epoch: int
    val_accuracy: float | None  # with the recipe's TTA
    val_accuracy_plain: float | None = None  # without TTA


def fit(build: Callable[[], keras.Model] | keras.Model, train: Any, val: Any = None,
        recipe: str | Recipe = "cifar10", out_dir: str | os.PathLike | None = None,
        precision: str = "auto", jit_compile: bool | str = "auto",
        train_size: int | None = None, verbose: int | str = "auto",
        strategy: Any = None, log: Callable[[str], None] = print,
        proxy: Callable[[], keras.Model] | None = None, overwrite: bool = False,
        arguments: dict[str, Any] | None = None) -> FitResult:
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
            ``tf.distribute.Strategy`` on TensorFlow; None, ``"mirrored"``
            (``keras.distribution.DataParallel`` over every device) or a
            ``DataParallel`` / ``ModelParallel`` on JAX (``get_strategy``).
            ``train`` batches are global batches.
            Create a multi-worker strategy at program start (``get_strategy(
            "multiworker")``) and pass it: TensorFlow refuses to create it
            after other work. Under it a custom loop replaces
            ``model.fit`` (keras-team/keras#20585) and only the chief writes
            files; it has no per-epoch resume.
        proxy: builds the small model that picks each batch's hardest
            examples when ``recipe.select < 1`` (``HardExampleTrainer``);
            it trains with the model under the same optimizer, and the
            returned and saved model is the trained model alone.
        overwrite: start over in an ``out_dir`` that holds a run (finished
            or not), removing only the files training writes there.
        arguments: what else defines the run (the command's arguments), kept
            in ``out_dir/run.json`` with the recipe: resuming with other
            values is refused (``training.run_folder``), as is writing into a
            folder that is not a run folder or re-running a finished run
            without a larger ``recipe.epochs``.
    """
    recipe = get_recipe(recipe)
    if recipe.select < 1 and proxy is None:
        raise ValueError(f"recipe.select={recipe.select} trains on the hardest "
                         f"examples of each batch: pass proxy=, a function that "
                         f"builds the model that ranks them")
    if recipe.tta not in TTA_MODES:  # before training, not after it
        raise ValueError(f"recipe.tta must be one of {TTA_MODES}, received "
                         f"{recipe.tta!r}")
    policy, policy_why = choose_precision(precision)
    use_xla, xla_why = choose_jit(jit_compile)
    if isinstance(build, keras.Model):
        if precision != "auto":
            raise ValueError("precision applies when fit() builds the model; "
                             "pass a function that builds it, or build it under "
                             "keras.config.set_dtype_policy yourself")
        policy, policy_why = build.dtype_policy.name, "the model's own"
    strategy = get_strategy(strategy)
    if recipe.select < 1 and is_multiworker(strategy):  # before out_dir is made
        raise ValueError(f"recipe.select={recipe.select} (hard-example selection) is "
                         "not supported under MultiWorkerMirroredStrategy; train on "
                         "every example (select=1, e.g. recipe 'cifar10', "
                         "--recipe cifar10)")
    log(f"precision: {policy} ({policy_why}); XLA: {'on' if use_xla else 'off'} "
        f"({xla_why}); oneDNN: {'on' if onednn_enabled() else 'off'}; "
        f"strategy: {type(strategy).__name__ if strategy else 'none'}")

    steps = int(train.cardinality()) if hasattr(train, "cardinality") else -1
    if steps <= 0:
        raise ValueError("train must be a finite, batched tf.data.Dataset")
    train_size = train_size or steps * recipe.batch_size

    out = Path(out_dir) if out_dir is not None else None
    callbacks: list[keras.callbacks.Callback] = [Throughput(train_size)]
    if recipe.lookahead:
        callbacks.append(Lookahead(recipe.lookahead))
    if out is not None and is_chief(strategy):
        state = run_folder.claim(out, run_arguments(recipe, arguments), recipe.epochs,
                                 overwrite)
        if state == "continue":
            log(f"continuing the finished run in {out}: {recipe.epochs} epochs")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        # The backup goes last: once it says an epoch is done, that epoch's
        # log row and checkpoint are already on disk.
        callbacks += [
            keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
            keras.callbacks.TensorBoard(str(out / "logs"), write_graph=False),
            AtomicCheckpoint(out / "last.keras"),
            # Kept after the last epoch, so a larger epochs continues the run.
            keras.callbacks.BackupAndRestore(str(out / "backup"),
                                             double_checkpoint=True,
                                             delete_checkpoint=False),
        ]
        initial = run_folder.finished_epochs(out)
        if initial:
            log(f"resuming from {out / 'backup'}: {initial} of {recipe.epochs} "
                f"epochs already done")
    else:
        initial = 0

    def under_policy(make: Callable[[], keras.Model]) -> keras.Model:
        with global_dtype_policy(policy):
            model = make()
        _adapt_to_data(model, train, log, strategy)
        return model

    def build_under_policy() -> keras.Model:
        # A built model is already trained or adapted: left as it is.
        model = build if isinstance(build, keras.Model) else under_policy(build)
        if recipe.select < 1:
            # The net's policy, so that compile() adds loss scaling under
            # mixed_float16 as it would for the net alone.
            model = HardExampleTrainer(model, under_policy(proxy), keep=recipe.select,
                                       dtype=model.dtype_policy)
        return model

    start = time.perf_counter()
    if is_multiworker(strategy):
        model, logged = fit_multiworker(strategy, build_under_policy, train, recipe,
                                         steps, verbose)
        out = out if is_chief(strategy) else None
    else:
        with strategy_scope(strategy):
            model = build_under_policy()
            model.compile(optimizer=make_optimizer(recipe, steps, variable_groups(model)),
                          loss=keras.losses.CategoricalCrossentropy(
                              label_smoothing=recipe.label_smoothing),
                          metrics=["accuracy"], jit_compile=use_xla)
            # validate_every=0: no validation between epochs; the evaluation
            # below is the only one (it gives the plain accuracy too).
            # shuffle=False: the datasets shuffle themselves, and Keras warns
            # that it ignores its own default (True) for a tf.data.Dataset.
            logged = model.fit(train, epochs=recipe.epochs, callbacks=callbacks,
                               verbose=verbose, shuffle=False,
                               validation_data=val if recipe.validate_every else None,
                               validation_freq=max(1, recipe.validate_every)).history
    wall = time.perf_counter() - start
    if isinstance(model, HardExampleTrainer):
        model = model.net
    val_accuracy = val_plain = None
    if val is not None and is_multiworker(strategy):
        log("validation skipped under MultiWorkerMirroredStrategy: evaluate the "
            "saved model (attention-zoo evaluate) on one process")
    elif val is not None:
        val_plain, val_accuracy = view_accuracies(model, val, recipe.tta)
        log(f"validation accuracy: {val_plain:.4f}" + (
            f", {val_accuracy:.4f} with {tta_name(recipe.tta)} TTA" if recipe.tta else ""))
    if out is not None:
        save_atomically(model, out / "model.keras")
        write_text(out / "result.json", json.dumps({
            "precision": policy, "jit_compile": use_xla, "recipe":
            dataclasses.asdict(recipe), "wall_seconds_this_process": wall,
            "initial_epoch": initial, "val_accuracy": val_accuracy,
            "val_accuracy_plain": val_plain}, indent=2))
    return FitResult(model, dict(logged), policy, use_xla, wall, initial,
                     val_accuracy, val_plain)


def _adapt_to_data(model: keras.Model, train: Any, log: Callable[[str], None],
                   strategy: Any = None) -> None:
    """Sets the weights a model takes from data before the first step: it
    asks the model (``Task.adapt``: whitening filters, naive-Bayes counts).
    Workers of a multi-worker run see different data (and augmentation),
    so they average their statistics and agree."""
    adapt = getattr(model, "adapt", None)
    if not callable(adapt):  # a plain Keras model: nothing comes from data
        return
    reduce = ((lambda a: mean_over_workers(strategy, a))
              if is_multiworker(strategy) else None)
    for what in adapt(iter(train), reduce=reduce):
        log(f"adapted {what}")


def run_arguments(recipe: Recipe, arguments: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """What defines a run for ``run_folder``: ``arguments`` and each recipe
    field as ``recipe.<field>``."""
    fields = {f"recipe.{k}": v for k, v in dataclasses.asdict(recipe).items()}
    return {**(arguments or {}), **fields}


# --------------------------------------------------------------- evaluate --

def tta_name(tta: bool | str) -> str:
    """``"flip"`` for True, the mode itself otherwise (``"none"`` for False)."""
    return "flip" if tta is True else (tta or "none")


def predict(model: keras.Model, data: Any, tta: bool | str = False) -> np.ndarray:
    """Class probabilities for a dataset of ``x`` or ``(x, y)`` batches.

    ``tta``: False; True or ``"flip"``: the mean over each image and its
    mirror image; ``"flip_translate"``: airbench's level 2, half that mean
    and a quarter each for the image shifted one pixel up-left and down-right
    (reflected borders), each with its mirror (``models.tta``; shipped CNN:
    88.3% -> 88.8%). ``models.with_tta`` builds the same into a model.
    """
    return predict_views(model, data, tta)[1]


def predict_views(model: keras.Model, data: Any,
                  tta: bool | str = False) -> tuple[np.ndarray, np.ndarray]:
    """``(plain, with_tta)`` class probabilities from one pass over the views:
    the un-augmented view is one of TTA's, so both accuracies cost what TTA
    costs alone."""
    if hasattr(data, "cardinality") and int(data.cardinality()) == 0:
        raise ValueError("data holds no batches: there is nothing to predict "
                         "(an empty dataset or split)")
    chosen = views(tta)
    images = data.map(lambda x, *_: x)
    # Each view inside a model rather than in tf.data: keras.ops cannot run
    # in a tf.data graph on JAX or PyTorch.
    probabilities = [view_model(model, *v[:3]).predict(images, verbose=0)
                     for v in chosen]
    return probabilities[0], sum(v[3] * p for v, p in zip(chosen, probabilities))


def view_accuracies(model: keras.Model, data: Any,
                    tta: bool | str = False) -> tuple[float, float]:
    """``(plain, with_tta)`` top-1 accuracies on ``(x, y)`` batches, from one
    pass over the views (``predict_views``)."""
    plain, with_tta = predict_views(model, data, tta)
    return accuracy(plain, data), accuracy(with_tta, data)


def evaluate(model: keras.Model, data: Any, tta: bool | str = False) -> float:
    """Top-1 accuracy on ``(x, y)`` batches (``y`` one-hot or integer)."""
    return accuracy(predict(model, data, tta), data)


def accuracy(probabilities: np.ndarray, data: Any) -> float:
    """Top-1 accuracy of ``probabilities`` (in ``data``'s batch order)
    against the labels of ``data``'s ``(x, y)`` batches."""
    labels = np.concatenate([np.asarray(y) for _, y in data])
    if labels.ndim == 2:
        labels = labels.argmax(-1)
    return float(np.mean(np.asarray(probabilities).argmax(-1) == labels))
