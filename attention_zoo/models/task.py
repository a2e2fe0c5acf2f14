"""``Task``: a backbone with a head, and the preprocessing of raw inputs.

KerasHub's split, for the zoo: the network (``Task``, a functional
``keras.Model`` on tensors every backend holds) and, where raw inputs are
not tensors a JAX or PyTorch graph can take (strings), a ``preprocessor``
that turns them into such tensors inside ``tf.data``. ``fit``, ``evaluate``
and ``predict`` take raw inputs and run the preprocessor first, so
``task.predict(["a gripping film"])`` works on every backend. Image models
keep their normalization inside the network and have no preprocessor.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import keras
import numpy as np

from attention_zoo.models.backbone import build_under_policy

#: Batches of raw inputs ``predict`` makes when given a list or an array.
DEFAULT_BATCH = 32


class Task(keras.Model):
    """Base class of the zoo's task models (classifiers).

    Subclasses set ``self.backbone`` (or None) and ``self.preprocessor`` (or
    None) and then call ``super().__init__(inputs=..., outputs=...)``.

    What training needs from a model, it asks the model, never its layer
    names: ``variable_groups()`` (optimizer treatments) and
    ``adapt(batches)`` (weights set from data before the first step).
    """

    backbone: keras.Model | None = None
    preprocessor: keras.layers.Layer | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        # Subclasses set their parts before the functional __init__, which
        # PyTorch's Module refuses; the graph tracks the backbone anyway and
        # a preprocessor has no weights, so a plain attribute does.
        if keras.backend.backend() == "torch" and "_modules" not in self.__dict__:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # ------------------------------------------------------------- raw inputs

    def preprocess(self, x: Any, batch_size: int | None = None) -> Any:
        """``x`` as the network takes it: a ``tf.data.Dataset`` whose batches'
        first element went through the preprocessor, or ``x`` itself for a
        task without one. ``x``: a dataset of ``x`` or ``(x, y, ...)``
        batches, or raw inputs the preprocessor accepts (batched by
        ``batch_size``, default 32)."""
        if self.preprocessor is None:
            return x
        import tensorflow as tf

        preprocessor = self.preprocessor
        if not isinstance(x, tf.data.Dataset):
            x = tf.data.Dataset.from_tensor_slices(preprocessor.check_inputs(x)).batch(
                batch_size or DEFAULT_BATCH)

        names = [t.name for t in self.inputs]

        def apply(first: Any, *rest: Any) -> Any:
            ids = preprocessor(first)
            if isinstance(ids, (tuple, list)):  # one input per member: by name,
                ids = dict(zip(names, ids))     # as a tuple would read as (x, y)
            return (ids, *rest) if rest else ids

        return x.map(apply, num_parallel_calls=tf.data.AUTOTUNE)

    def _raw(self, method: Callable[..., Any], x: Any, y: Any, batch_size: Any,
             kwargs: dict[str, Any]) -> Any:
        if self.preprocessor is not None and x is not None:
            import tensorflow as tf

            if y is not None and not isinstance(x, tf.data.Dataset):
                # Keras shuffles arrays itself, but not a dataset.
                x = self._labelled(x, y, batch_size,
                                   kwargs.pop("shuffle", method.__name__ == "fit"))
                y = None
                if method.__name__ == "fit":
                    kwargs["shuffle"] = False
            x, batch_size = self.preprocess(x, batch_size), None
            validation = kwargs.get("validation_data")
            if validation is not None:
                kwargs["validation_data"] = self._validation(validation)
        if y is not None:
            kwargs["y"] = y
        if batch_size is not None:
            kwargs["batch_size"] = batch_size
        return method(x, **kwargs)

    def _validation(self, validation: Any) -> Any:
        """``fit``'s ``validation_data`` (a dataset or ``(x, y)``) preprocessed."""
        import tensorflow as tf

        if isinstance(validation, tf.data.Dataset):
            return self.preprocess(validation)
        x, y, *_ = validation
        return self.preprocess(self._labelled(x, y))

    def _labelled(self, x: Any, y: Any, batch_size: int | None = None,
                  shuffle: bool = False) -> Any:
        """Raw inputs ``x`` and labels ``y`` as a dataset of ``(x, y)`` batches."""
        import tensorflow as tf

        pairs = tf.data.Dataset.from_tensor_slices(
            (self.preprocessor.check_inputs(x), np.asarray(y)))
        if shuffle:
            pairs = pairs.shuffle(len(y), reshuffle_each_iteration=True)
        return pairs.batch(batch_size or DEFAULT_BATCH)

    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None,
            **kwargs: Any) -> Any:
        return self._raw(super().fit, x, y, batch_size, kwargs)

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 **kwargs: Any) -> Any:
        if kwargs.get("_use_cached_eval_dataset"):
            # fit's validation: its data went through fit's preprocessing.
            return super().evaluate(x, y, batch_size=batch_size, **kwargs)
        return self._raw(super().evaluate, x, y, batch_size, kwargs)

    def predict(self, x: Any, batch_size: int | None = None, **kwargs: Any) -> Any:
        return self._raw(super().predict, x, None, batch_size, kwargs)

    # ---------------------------------------------------------------- config

    #: Constructor arguments that are Keras objects (or lists of them).
    PARTS = ("backbone", "preprocessor", "members")

    def arguments(self) -> dict[str, Any]:
        """The constructor's arguments (parts as objects); subclasses list
        theirs. A method, not a stored dict: a dict holding the parts would
        be tracked as a second path to their weights."""
        return {}

    def get_config(self) -> dict[str, Any]:
        config = {**self.arguments(), "name": self.name, "trainable": self.trainable,
                  # See Backbone.get_config.
                  "dtype": keras.dtype_policies.serialize(self.dtype_policy)}
        return {k: keras.tree.map_structure(keras.saving.serialize_keras_object, v)
                if k in self.PARTS and v is not None else v for k, v in config.items()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Task":
        config = {k: [keras.saving.deserialize_keras_object(p) for p in v]
                  if k in cls.PARTS and isinstance(v, list)
                  else keras.saving.deserialize_keras_object(v)
                  if k in cls.PARTS and v is not None else v
                  for k, v in config.items()}
        return build_under_policy(cls, config)

    # ----------------------------------------------------- what training asks

    def variable_groups(self) -> Any:
        """Variables that take an optimizer treatment other than the
        default: the backbone's (``Backbone.variable_groups``)."""
        from attention_zoo.training.optimizers import VariableGroups, variable_groups

        return (variable_groups(self.backbone) if self.backbone is not None
                else VariableGroups())

    def adapt(self, batches: Any, reduce: Callable[[np.ndarray], np.ndarray] | None = None
              ) -> list[str]:
        """Sets weights that come from data (whitening filters, naive-Bayes
        counts) from ``batches`` of raw ``(x, y)``; ``training.fit`` calls it
        before the first step. ``reduce`` combines statistics over the
        workers of a distributed run. Returns what it set, for the log;
        nothing here."""
        return []

    # ---------------------------------------------------------------- presets

    @classmethod
    def from_preset(cls, preset: str | os.PathLike, **kwargs: Any) -> "Task":
        """A shipped preset (a name of ``models.pretrained()`` or a preset
        folder holding ``card.json`` and ``model.weights.h5``) with its
        trained weights."""
        from attention_zoo.models.presets import load_preset

        task = load_preset(preset, **kwargs)
        if not isinstance(task, cls):
            raise ValueError(f"preset {str(preset)!r} holds a {type(task).__name__}, "
                             f"not a {cls.__name__}")
        return task


def takes_text(model: keras.Model) -> bool:
    """Whether ``model`` predicts from raw strings: a task with a text
    preprocessor, or a string-input functional model (``.keras`` files
    written before tasks had preprocessors, TensorFlow only)."""
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is not None:
        return bool(getattr(preprocessor, "takes_text", False))
    return bool(model.inputs) and str(model.inputs[0].dtype) == "string"
