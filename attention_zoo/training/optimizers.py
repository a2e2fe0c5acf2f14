"""Optimizers for the recipes: Keras's SGD and AdamW with a scheduled weight
EMA and a faster learning rate for normalization offsets, and MuonSGD
(orthogonalized updates for convolution kernels, after airbench94_muon).

Which variables take which treatment is the model's to say, by object
(``VariableGroups``, ``variable_groups(model)``), not by name: renaming a
layer must not change how it trains."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import keras

from attention_zoo.training.recipes import OneCycle, Recipe

#: The layers whose ``beta`` the generic ``variable_groups`` counts as a
#: normalization offset (subclasses included).
NORMALIZATIONS = (keras.layers.BatchNormalization, keras.layers.LayerNormalization,
                  keras.layers.GroupNormalization)


@dataclass(frozen=True)
class VariableGroups:
    """Variables that take an optimizer treatment other than the default.

    Each field is a tuple of ``keras.Variable`` objects, matched by identity
    (never by name or path). A variable in no group trains by the optimizer's
    default rule; a group's variables the optimizer does not train (frozen
    layers) are ignored.

    Attributes:
        orthogonal: kernels (2 or more dimensions) that take Muon steps under
            ``MuonSGD``: convolutions followed by a normalization, which makes
            their scale irrelevant. They take no weight decay there. Other
            optimizers ignore the group.
        offsets: normalization offsets (BatchNormalization's ``beta``). Their
            gradients are multiplied by ``norm_bias_lr_scale`` (airbench
            trains them 64x faster); weight decay is not scaled.
        stem_bias: the bias of a whitening stem. With ``stem_bias_steps > 0``
            it trains at the offsets' rate times ``1 - step /
            stem_bias_steps``, is frozen from then on, and takes no weight
            decay; with ``stem_bias_steps == 0`` it trains as any variable.
            It takes precedence over ``offsets`` for a variable in both.
    """

    orthogonal: tuple = ()
    offsets: tuple = ()
    stem_bias: tuple = ()

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            # A lone Variable is iterable (over its first axis): refuse it
            # rather than split it into slices.
            if isinstance(value, keras.Variable) or not isinstance(value, (tuple, list)):
                raise TypeError(f"VariableGroups.{field.name} takes a tuple of "
                                f"keras.Variable, received {type(value).__name__}")
            for item in value:
                if not isinstance(item, keras.Variable):
                    raise TypeError(f"VariableGroups.{field.name} takes keras.Variable "
                                    f"items, received {type(item).__name__}")
            object.__setattr__(self, field.name, tuple(value))

    def __add__(self, other: "VariableGroups") -> "VariableGroups":
        """The union, group by group: ``self``'s variables first, then
        ``other``'s not already there (by identity)."""
        if not isinstance(other, VariableGroups):
            return NotImplemented
        return VariableGroups(**{
            field.name: _unique(getattr(self, field.name) + getattr(other, field.name))
            for field in fields(self)})


def _unique(variables: tuple) -> tuple:
    seen: set[int] = set()
    kept = []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            kept.append(variable)
    return tuple(kept)


def _own_groups(layer: keras.layers.Layer) -> VariableGroups | None:
    """``layer.variable_groups()``, checked; None when it defines none."""
    method = getattr(layer, "variable_groups", None)
    if not callable(method):
        return None
    groups = method()
    if not isinstance(groups, VariableGroups):
        raise TypeError(f"{type(layer).__name__}.variable_groups() must return a "
                        f"VariableGroups, received {type(groups).__name__}")
    return groups


def variable_groups(model: keras.Model) -> VariableGroups:
    """The variable groups of ``model`` (see ``VariableGroups``).

    ``model.variable_groups()`` when the model defines it. Otherwise the
    generic groups, from a walk of the model's layers, nested models and
    sublayers included (Keras's ``_flatten_layers``, one level at a time):

    - a layer that defines ``variable_groups()`` speaks for itself and its
      sublayers (so a model wrapped in another, as ``HardExampleTrainer``
      wraps the net, keeps its groups);
    - otherwise the ``beta`` of every ``keras.layers.BatchNormalization``,
      ``LayerNormalization`` and ``GroupNormalization`` (by ``isinstance``:
      subclasses too) is an offset.

    The generic groups name no orthogonal kernels and no stem bias: which
    convolutions take Muon steps, and which bias is a whitening stem's, only
    the model can say.
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"variable_groups takes a keras.Model (or Layer), received "
                        f"{type(model).__name__}")
    own = _own_groups(model)
    if own is not None:
        return own
    groups, seen = VariableGroups(), {id(model)}
    pending = list(model._flatten_layers(include_self=False, recursive=False))
    while pending:
        layer = pending.pop(0)
        if id(layer) in seen:  # a layer shared between branches
            continue
        seen.add(id(layer))
        own = _own_groups(layer)
        if own is not None:
            groups = groups + own
            continue
        if isinstance(layer, NORMALIZATIONS) and getattr(layer, "beta", None) is not None:
            groups = groups + VariableGroups(offsets=(layer.beta,))
        pending[:0] = layer._flatten_layers(include_self=False, recursive=False)
    return groups


class _ZooOptimizer:
    """Additions to a Keras optimizer.

    The weight EMA's momentum follows a schedule. By default it warms up as
    ``min(momentum, (1 + t) / (10 + t))`` (as ``tf.train.
    ExponentialMovingAverage`` with ``num_updates``): Keras's EMA uses the
    full momentum from step 1, so a short run (the 4-epoch ablation: 120
    steps at 0.99) ships weights still a third made of the random
    initialization. With ``ema_power=p > 0`` it is ``momentum * (t / total)
    ** p``. (``training.fit`` copies it back into the weights every
    ``recipe.lookahead`` steps: the ``Lookahead`` callback.)

    ``norm_bias_lr_scale`` multiplies the gradients of the ``offsets``
    group (normalization offsets): airbench trains BatchNorm biases 64x
    faster. Keras applies weight decay apart from the gradient, so decay is
    unscaled.

    ``stem_bias_steps > 0`` (airbench94_muon's treatment of its whitening
    bias): the ``stem_bias`` group trains at the offsets' rate, times ``1 -
    step / stem_bias_steps``, and is frozen from then on. It takes no weight
    decay, which would go on shrinking it once frozen.

    The groups (``VariableGroups``, usually ``variable_groups(model)``) come
    by ``groups=`` or ``use_groups`` before the optimizer is built; without
    them no variable takes a special treatment. They are variables, not
    configuration: ``get_config`` leaves them out, and an optimizer restored
    from a config (``keras.saving.load_model``) whose options need them
    refuses to train until ``use_groups`` hands them over.
    """

    def __init__(self, *args: Any, ema_power: float = 0.0, total_steps: int = 0,
                 norm_bias_lr_scale: float = 1.0, stem_bias_steps: int = 0,
                 groups: VariableGroups | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if ema_power and total_steps <= 0:
            raise ValueError(f"ema_power needs total_steps > 0, received {total_steps}")
        if not isinstance(stem_bias_steps, int) or stem_bias_steps < 0:
            raise ValueError(f"stem_bias_steps must be an int >= 0, received "
                             f"{stem_bias_steps!r}")
        self.ema_power, self.total_steps = float(ema_power), int(total_steps)
        self.norm_bias_lr_scale = float(norm_bias_lr_scale)
        self.stem_bias_steps = stem_bias_steps
        self._groups = VariableGroups()
        self._awaits_groups = False  # set by from_config
        self._stem_indices: frozenset[int] = frozenset()
        self._offset_indices: frozenset[int] = frozenset()
        self._no_decay_keys: frozenset[Any] = frozenset()
        if groups is not None:
            self.use_groups(groups)

    @property
    def groups(self) -> VariableGroups:
        """The variable groups this optimizer treats apart."""
        return self._groups

    def use_groups(self, groups: VariableGroups) -> None:
        """Takes the variable groups (see ``VariableGroups``). Call it before
        the optimizer is built (before its first step or ``build``)."""
        if not isinstance(groups, VariableGroups):
            raise TypeError(f"use_groups takes a VariableGroups, received "
                            f"{type(groups).__name__}")
        if self.built and not self._awaits_groups:
            # Indices and no-decay keys are read when a step is traced; a
            # compiled train function would keep the old ones.
            raise ValueError(f"use_groups() must come before {type(self).__name__} is "
                             "built (by its first step or build()); it is built")
        self._check_groups(groups)
        if self.built:
            # Restored by load_model, which builds the optimizer before anyone
            # could hand it the groups, and no step has been traced since.
            self._check_trains_groups(groups, self._trainable_variables)
        self._groups, self._awaits_groups = groups, False
        if self.built:
            self._index_groups()

    def _check_groups(self, groups: VariableGroups) -> None:
        """Subclasses refuse groups they cannot use."""

    def _check_trains_groups(self, groups: VariableGroups, variables: list) -> None:
        """Subclasses refuse to build on variables their groups leave out."""

    def _needs_groups(self) -> list[str]:
        """The options set that act on groups."""
        needs = []
        if self.norm_bias_lr_scale != 1.0:
            needs.append(f"norm_bias_lr_scale={self.norm_bias_lr_scale:g}")
        if self.stem_bias_steps:
            needs.append(f"stem_bias_steps={self.stem_bias_steps}")
        return needs

    def _keys(self, variables: tuple | list) -> set[Any]:
        return {self._var_key(v) for v in variables}

    def no_decay(self, variables: list) -> list:
        """The variables, of ``variables``, that weight decay skips."""
        exempt = self._keys(self._groups.stem_bias) if self.stem_bias_steps else set()
        return [v for v in variables if self._var_key(v) in exempt]

    def build(self, variables: list) -> None:
        if self.built:
            return
        if not self._awaits_groups:
            self._check_trains_groups(self._groups, variables)
        super().build(variables)
        self._index_groups()

    def _index_groups(self) -> None:
        # By the optimizer's own variable index: update_step may receive the
        # backend's variable (a tf.Variable) rather than the keras.Variable,
        # and _var_key maps both to the same index.
        index = self._trainable_variables_indices

        def indices(group: tuple) -> frozenset[int]:
            return frozenset(index[k] for k in self._keys(group) if k in index)

        self._stem_indices = (indices(self._groups.stem_bias) if self.stem_bias_steps
                              else frozenset())
        self._offset_indices = indices(self._groups.offsets)
        self._no_decay_keys = frozenset(self._keys(self.no_decay(self._trainable_variables)))

    def _use_weight_decay(self, variable: Any) -> bool:
        # Beside Keras's own exclusions (exclude_from_weight_decay), which
        # this leaves as the caller set them.
        if self._var_key(variable) in self._no_decay_keys:
            return False
        return super()._use_weight_decay(variable)

    def _backend_apply_gradients(self, grads: list, trainable_variables: list) -> None:
        # Here, not in apply(): the optimizer is built (its indices exist),
        # empty gradients are filtered out, and clipping is still to come.
        if self._awaits_groups and self._needs_groups():
            raise ValueError(
                f"{type(self).__name__} was restored from a saved config, which holds "
                f"no variables, and its options {self._needs_groups()} act on variable "
                "groups: call optimizer.use_groups(variable_groups(model)) before "
                "training it")
        # From its first step on, the groups are the ones it trained with.
        self._awaits_groups = False
        if self._stem_indices or (self._offset_indices and self.norm_bias_lr_scale != 1.0):
            grads = [self._scaled(g, self._get_variable_index(v))
                     for g, v in zip(grads, trainable_variables)]
        return super()._backend_apply_gradients(grads, trainable_variables)

    def _scaled(self, gradient: Any, index: int) -> Any:
        if index in self._stem_indices:
            from keras import ops

            left = 1.0 - ops.cast(self.iterations, "float32") / self.stem_bias_steps
            scale = self.norm_bias_lr_scale * ops.maximum(left, 0.0)
            return gradient * ops.cast(scale, gradient.dtype)
        if index in self._offset_indices and self.norm_bias_lr_scale != 1.0:
            return gradient * self.norm_bias_lr_scale
        return gradient

    def _ema_momentum_now(self) -> Any:
        from keras import ops

        step = ops.cast(self.iterations, "float32")
        if self.ema_power:
            progress = ops.minimum(1.0, step / self.total_steps)
            return self.ema_momentum * ops.power(progress, self.ema_power)
        return ops.minimum(self.ema_momentum, (1.0 + step) / (10.0 + step))

    def _update_model_variables_moving_average(self, trainable_variables: Any) -> None:
        if not self.use_ema:
            return
        from keras import ops

        momentum = self._ema_momentum_now()
        for var, average in zip(trainable_variables,
                                self._model_variables_moving_average):
            if average is not None:
                m = ops.cast(momentum, var.dtype)
                average.assign(m * average + (1.0 - m) * var)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ema_power": self.ema_power,
                "total_steps": self.total_steps,
                "norm_bias_lr_scale": self.norm_bias_lr_scale,
                "stem_bias_steps": self.stem_bias_steps}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> Any:
        optimizer = super().from_config(dict(config), custom_objects=custom_objects)
        # A config holds no variables; load_model builds the optimizer right
        # after this, before anyone can call use_groups.
        optimizer._awaits_groups = True
        return optimizer


@keras.saving.register_keras_serializable(package="attention_zoo")
class SGD(_ZooOptimizer, keras.optimizers.SGD):
    """``keras.optimizers.SGD`` with a scheduled weight EMA and scaled
    normalization-offset learning rate."""


@keras.saving.register_keras_serializable(package="attention_zoo")
class AdamW(_ZooOptimizer, keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` with a scheduled weight EMA and scaled
    normalization-offset learning rate."""


def _frobenius(x: Any) -> Any:
    from keras import ops

    return ops.sqrt(ops.sum(ops.square(x)))


@keras.saving.register_keras_serializable(package="attention_zoo")
class MuonSGD(SGD):
    """Muon (Jordan et al., 2024) for the ``orthogonal`` group's kernels,
    Nesterov SGD (with the EMA and offset-rate options of ``SGD``) for every
    other variable. airbench94_muon's split: convolutions followed by
    BatchNorm, whose scale the normalization makes irrelevant, take Muon
    steps; offsets, the classifier and layers without a normalization after
    them (attention gates, whose scale matters) take SGD steps. Which
    kernels those are is the model's to say (``VariableGroups.orthogonal``,
    from ``variable_groups(model)``): building with none is refused.

    A Muon step, per kernel ``W`` of shape ``(..., out)``: momentum ``b = mu
    * b + g`` and its Nesterov look-ahead ``g + mu * b``, reshaped to a
    ``(fan_in, out)`` matrix and orthogonalized by ``muon_steps``
    Newton-Schulz iterations (singular values pushed towards 1); ``W`` is
    rescaled to Frobenius norm ``sqrt(out)`` and moved by ``muon_learning_
    rate`` (scheduled like the base rate) times that update. Weight decay
    does not apply to Muon kernels: the rescaling would undo it.

    Args:
        muon_learning_rate: peak rate of the Muon kernels; the base
            ``learning_rate`` schedule sets its shape.
        muon_momentum: Muon's momentum (Nesterov).
        muon_steps: Newton-Schulz iterations (airbench94_muon uses 3).
        groups: the ``VariableGroups`` (or ``use_groups`` before building);
            kernels of fewer than 2 dimensions in ``orthogonal`` are refused.
    """

    # Quintic Newton-Schulz coefficients that maximize the slope at zero
    # (Jordan et al.): a few steps push every singular value into ~[0.7, 1.2].
    NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)

    def __init__(self, learning_rate: Any = 0.01, *args: Any,
                 muon_learning_rate: float = 0.24, muon_momentum: float = 0.6,
                 muon_steps: int = 3, **kwargs: Any) -> None:
        super().__init__(learning_rate, *args, **kwargs)
        self._muon_indices: frozenset[int] = frozenset()
        if muon_learning_rate <= 0 or not 0 <= muon_momentum < 1 or muon_steps < 1:
            raise ValueError(
                "MuonSGD needs muon_learning_rate > 0, 0 <= muon_momentum < 1 and "
                f"muon_steps >= 1, received {muon_learning_rate}, {muon_momentum}, "
                f"{muon_steps}")
        # Muon's rate follows the base schedule's shape: their ratio is fixed.
        if isinstance(learning_rate, OneCycle):
            peak = learning_rate.peak
        elif isinstance(learning_rate, (int, float)):
            peak = float(learning_rate)
        else:
            raise TypeError("MuonSGD's learning_rate must be a number or a "
                            f"OneCycle schedule, received {type(learning_rate).__name__}")
        self._muon_ratio = float(muon_learning_rate) / peak
        self.muon_learning_rate = float(muon_learning_rate)
        self.muon_momentum = float(muon_momentum)
        self.muon_steps = int(muon_steps)

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> "MuonSGD":
        config = dict(config)
        # Saved .keras files of earlier runs carry the name pattern that chose
        # the Muon kernels; the kernels now come from the model's groups.
        config.pop("muon_pattern", None)
        return super().from_config(config, custom_objects=custom_objects)

    def _check_groups(self, groups: VariableGroups) -> None:
        for kernel in groups.orthogonal:
            if len(kernel.shape) < 2:
                raise ValueError(f"Muon needs kernels of 2 or more dimensions; the "
                                 f"orthogonal group holds {kernel.path} of shape "
                                 f"{tuple(kernel.shape)}")

    def _check_trains_groups(self, groups: VariableGroups, variables: list) -> None:
        trained = self._keys(variables)
        if not any(self._var_key(k) in trained for k in groups.orthogonal):
            raise ValueError(
                f"MuonSGD needs kernels for its Muon steps, but the model's "
                f"variable_groups() named no orthogonal kernels among the "
                f"{len(variables)} trainable variables (received "
                f"{len(groups.orthogonal)} orthogonal variables): pass "
                "groups=variable_groups(model) (make_optimizer(recipe, steps, "
                "variable_groups(model))) for a model that defines variable_groups(), "
                "or use optimizer='sgd'")

    def _needs_groups(self) -> list[str]:
        return ["Muon steps"] + super()._needs_groups()

    def build(self, variables: list) -> None:
        if self.built:
            return
        super().build(variables)
        if not self.momentums:
            # Keras's SGD keeps no buffers at momentum=0; Muon's momentum
            # (muon_momentum) still needs one per kernel.
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def _index_groups(self) -> None:
        super()._index_groups()
        index = self._trainable_variables_indices
        self._muon_indices = frozenset(index[k] for k in self._keys(self._groups.orthogonal)
                                       if k in index)

    def no_decay(self, variables: list) -> list:
        muon = self._keys(self._groups.orthogonal)
        return super().no_decay(variables) + [v for v in variables
                                              if self._var_key(v) in muon]

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        index = self._get_variable_index(variable)
        if index not in self._muon_indices:
            return super().update_step(gradient, variable, learning_rate)
        from keras import ops

        buffer = self.momentums[index]
        gradient = ops.cast(gradient, variable.dtype)
        self.assign(buffer, self.muon_momentum * buffer + gradient)
        ahead = gradient + self.muon_momentum * buffer
        out = variable.shape[-1]
        update = ops.reshape(self.orthogonalize(ops.reshape(ahead, (-1, out))),
                             variable.shape)
        rate = ops.cast(learning_rate, variable.dtype) * self._muon_ratio
        self.assign(variable, variable * (math.sqrt(out) / (_frobenius(variable) + 1e-7))
                    - rate * update)

    def orthogonalize(self, matrix: Any) -> Any:
        """Approximately ``U V^T`` of ``matrix = U S V^T``."""
        from keras import ops

        a, b, c = self.NS_COEFFICIENTS
        wide = matrix.shape[0] <= matrix.shape[1]
        x = matrix if wide else ops.transpose(matrix)
        x = x / (_frobenius(x) + 1e-7)  # so the spectral norm is <= 1
        for _ in range(self.muon_steps):
            gram = ops.matmul(x, ops.transpose(x))
            x = a * x + ops.matmul(b * gram + c * ops.matmul(gram, gram), x)
        return x if wide else ops.transpose(x)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "muon_learning_rate": self.muon_learning_rate,
                "muon_momentum": self.muon_momentum, "muon_steps": self.muon_steps}


def make_optimizer(recipe: Recipe, steps_per_epoch: int,
                   groups: VariableGroups | None = None) -> keras.optimizers.Optimizer:
    """The recipe's optimizer for ``steps_per_epoch`` steps an epoch.

    ``groups`` (usually ``variable_groups(model)``) says which variables
    take Muon steps, the offsets' rate and the stem-bias schedule; None: no
    variable takes a special treatment (``optimizer="muon"`` then refuses to
    build: it needs orthogonal kernels)."""
    total = recipe.epochs * steps_per_epoch
    schedule = OneCycle(recipe.learning_rate, total, int(recipe.warmup * total),
                        start=recipe.lr_start, decay=recipe.decay, end=recipe.lr_end)
    if recipe.lookahead and not recipe.ema:
        raise ValueError("lookahead copies the weight EMA back: it needs ema=True")
    common = {"weight_decay": recipe.weight_decay, "use_ema": recipe.ema,
              "ema_momentum": recipe.ema_momentum, "ema_power": recipe.ema_power,
              "total_steps": total, "norm_bias_lr_scale": recipe.norm_bias_lr_scale,
              "stem_bias_steps": round(recipe.whiten_bias_epochs * steps_per_epoch),
              "groups": VariableGroups() if groups is None else groups}
    if recipe.optimizer == "sgd":
        return SGD(schedule, momentum=recipe.momentum, nesterov=True, **common)
    if recipe.optimizer == "muon":
        return MuonSGD(schedule, momentum=recipe.momentum, nesterov=True,
                       muon_learning_rate=recipe.muon_learning_rate,
                       muon_momentum=recipe.muon_momentum,
                       muon_steps=recipe.muon_steps, **common)
    if recipe.optimizer == "adamw":
        return AdamW(schedule, **common)
    raise ValueError(f"optimizer must be 'sgd', 'muon' or 'adamw', received "
                     f"{recipe.optimizer!r}")
