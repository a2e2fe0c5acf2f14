"""tf.distribute: strategies by name, the chief, and the custom training loop
that multi-worker training needs with Keras 3."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import keras
import numpy as np

from attention_zoo.training.callbacks import look_ahead
from attention_zoo.training.optimizers import make_optimizer, variable_groups
from attention_zoo.training.recipes import Recipe

STRATEGIES = ("mirrored", "multiworker")
#: keras.distribution's distributions (it exports no common base class).
DISTRIBUTIONS = (keras.distribution.DataParallel, keras.distribution.ModelParallel)


def get_strategy(strategy: Any) -> Any:
    """The scale-out object for ``training.fit``, by backend.

    On TensorFlow: None, ``"mirrored"`` (all local GPUs, or the CPU),
    ``"multiworker"`` (``TF_CONFIG`` names the cluster) or a
    ``tf.distribute.Strategy``. On JAX: None, ``"mirrored"`` (Keras's
    ``keras.distribution.DataParallel`` over every visible device: batches
    are split across them, variables replicated) or a ``DataParallel`` /
    ``ModelParallel`` of your own. PyTorch has neither.
    """
    backend = keras.backend.backend()
    if strategy is None or isinstance(strategy, DISTRIBUTIONS):
        if strategy is not None and backend != "jax":
            raise ValueError(f"a keras.distribution distribution needs "
                             f"KERAS_BACKEND=jax, the backend is {backend!r}")
        return strategy
    if backend == "jax":
        if strategy == "mirrored":
            return keras.distribution.DataParallel(
                devices=keras.distribution.list_devices())
        raise ValueError(f"on JAX, strategy must be None, 'mirrored' (keras."
                         f"distribution.DataParallel) or a keras.distribution "
                         f"DataParallel / ModelParallel, received {strategy!r}; "
                         f"multi-worker training runs on TensorFlow")
    if backend != "tensorflow":
        raise ValueError(f"strategy={strategy!r} needs KERAS_BACKEND=tensorflow "
                         f"(tf.distribute) or jax (keras.distribution); the "
                         f"backend is {backend!r}")
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.Strategy):
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


def strategy_scope(strategy: Any) -> Any:
    """The context that training runs under: the strategy's or the
    distribution's scope (Keras reads the distribution when ``fit`` feeds
    batches, so it covers the whole run), or nothing."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def is_multiworker(strategy: Any) -> bool:
    """True for a MultiWorkerMirroredStrategy, whose training needs
    ``fit_multiworker`` instead of ``model.fit``."""
    if strategy is None or isinstance(strategy, DISTRIBUTIONS):
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: Any = None) -> bool:
    """True on the process that writes files: always without a multi-worker
    strategy; otherwise the "chief" task, or worker 0 when there is none."""
    if not is_multiworker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def mean_over_workers(strategy: Any, value: np.ndarray) -> np.ndarray:
    """The mean of a host array over the replicas of ``strategy`` (every
    worker must call it)."""
    import tensorflow as tf

    per_replica = strategy.run(lambda: tf.constant(value, tf.float32))
    return strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None).numpy()


def fit_multiworker(strategy: Any, build: Callable[[], keras.Model], train: Any,
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
        optimizer = make_optimizer(recipe, steps, variable_groups(model))
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
            if recipe.lookahead:
                look_ahead(optimizer, model.trainable_variables, recipe.lookahead)
            total, count = total + loss, count + 1
            if bar is not None:
                bar.add(1, [("loss", loss)])
        history["loss"].append(total / max(count, 1))
    if recipe.ema:
        optimizer.finalize_variable_values(model.trainable_variables)
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    return model, history
