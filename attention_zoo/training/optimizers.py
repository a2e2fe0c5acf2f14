"""Optimizers for the recipes: Keras's SGD and AdamW with a scheduled weight
EMA and a faster learning rate for normalization offsets, and MuonSGD
(orthogonalized updates for convolution kernels, after airbench94_muon)."""

from __future__ import annotations

import math
import re
from typing import Any

import keras

from attention_zoo.training.recipes import OneCycle, Recipe

#: The whitening stem's bias, by variable path (``stem_bias_steps``).
STEM_BIAS = re.compile(r"whiten[^/]*/bias$")


class _ZooOptimizer:
    """Two additions to a Keras optimizer.

    The weight EMA's momentum follows a schedule. By default it warms up as
    ``min(momentum, (1 + t) / (10 + t))`` (as ``tf.train.
    ExponentialMovingAverage`` with ``num_updates``): Keras's EMA uses the
    full momentum from step 1, so a short run (the 4-epoch ablation: 120
    steps at 0.99) ships weights still a third made of the random
    initialization. With ``ema_power=p > 0`` it is ``momentum * (t / total)
    ** p``. (``training.fit`` copies it back into the weights every
    ``recipe.lookahead`` steps: the ``Lookahead`` callback.)

    ``norm_bias_lr_scale`` multiplies the gradients of normalization offsets
    (variables named ``beta``): airbench trains BatchNorm biases 64x faster.
    Keras applies weight decay apart from the gradient, so decay is unscaled.

    ``stem_bias_steps > 0`` (airbench94_muon's treatment of its whitening
    bias): the bias of a whitening stem (a layer whose name contains
    ``whiten``, as AttnCNN's ``stem_whiten``) trains at the offsets' rate,
    times ``1 - step / stem_bias_steps``, and is frozen from then on. It
    takes no weight decay, which would go on shrinking it once frozen.
    """

    def __init__(self, *args: Any, ema_power: float = 0.0, total_steps: int = 0,
                 norm_bias_lr_scale: float = 1.0, stem_bias_steps: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if ema_power and total_steps <= 0:
            raise ValueError(f"ema_power needs total_steps > 0, received {total_steps}")
        if not isinstance(stem_bias_steps, int) or stem_bias_steps < 0:
            raise ValueError(f"stem_bias_steps must be an int >= 0, received "
                             f"{stem_bias_steps!r}")
        self.ema_power, self.total_steps = float(ema_power), int(total_steps)
        self.norm_bias_lr_scale = float(norm_bias_lr_scale)
        self.stem_bias_steps = stem_bias_steps

    def is_stem_bias(self, variable: Any) -> bool:
        return self.stem_bias_steps > 0 and STEM_BIAS.search(variable.path) is not None

    def no_decay(self, variables: list) -> list:
        """The variables weight decay skips."""
        return [v for v in variables if self.is_stem_bias(v)]

    def build(self, variables: list) -> None:
        if not self.built:
            # Keras keeps one exclusion list, set in one call.
            exempt = self.no_decay(variables)
            if exempt:
                self.exclude_from_weight_decay(var_list=exempt)
        super().build(variables)

    def apply(self, grads: Any, trainable_variables: Any = None) -> None:
        if self.norm_bias_lr_scale != 1.0 or self.stem_bias_steps:
            variables = (self._trainable_variables if trainable_variables is None
                         else list(trainable_variables))
            grads = [g if g is None else self._scaled(g, v)
                     for g, v in zip(grads, variables)]
        return super().apply(grads, trainable_variables)

    def _scaled(self, gradient: Any, variable: Any) -> Any:
        if self.is_stem_bias(variable):
            from keras import ops

            left = 1.0 - ops.cast(self.iterations, "float32") / self.stem_bias_steps
            scale = self.norm_bias_lr_scale * ops.maximum(left, 0.0)
            return gradient * ops.cast(scale, gradient.dtype)
        if variable.name == "beta" and self.norm_bias_lr_scale != 1.0:
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
    """Muon (Jordan et al., 2024) for the kernels that ``muon_pattern``
    matches, Nesterov SGD (with the EMA and offset-rate options of ``SGD``)
    for every other variable. airbench94_muon's split: convolutions followed
    by BatchNorm, whose scale the normalization makes irrelevant, take Muon
    steps; offsets, the classifier and layers without a normalization after
    them (attention gates, whose scale matters) take SGD steps.

    A Muon step, per matched kernel ``W`` of shape ``(..., out)``: momentum
    ``b = mu * b + g`` and its Nesterov look-ahead ``g + mu * b``, reshaped
    to a ``(fan_in, out)`` matrix and orthogonalized by ``muon_steps``
    Newton-Schulz iterations (singular values pushed towards 1); ``W`` is
    rescaled to Frobenius norm ``sqrt(out)`` and moved by ``muon_learning_
    rate`` (scheduled like the base rate) times that update. Weight decay
    does not apply to Muon kernels: the rescaling would undo it.

    Args:
        muon_learning_rate: peak rate of the Muon kernels; the base
            ``learning_rate`` schedule sets its shape.
        muon_momentum: Muon's momentum (Nesterov).
        muon_steps: Newton-Schulz iterations (airbench94_muon uses 3).
        muon_pattern: regular expression searched in each variable's path
            (e.g. ``"stage1a_conv/kernel"``); matches of fewer than 2
            dimensions are refused.
    """

    # Quintic Newton-Schulz coefficients that maximize the slope at zero
    # (Jordan et al.): a few steps push every singular value into ~[0.7, 1.2].
    NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)

    def __init__(self, learning_rate: Any = 0.01, *args: Any,
                 muon_learning_rate: float = 0.24, muon_momentum: float = 0.6,
                 muon_steps: int = 3, muon_pattern: str = r"_conv/kernel$",
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, *args, **kwargs)
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
        self.muon_pattern = str(muon_pattern)
        self._muon = re.compile(self.muon_pattern)

    def uses_muon(self, variable: Any) -> bool:
        if not self._muon.search(variable.path):
            return False
        if len(variable.shape) < 2:
            raise ValueError(f"muon_pattern {self.muon_pattern!r} matches "
                             f"{variable.path} of shape {tuple(variable.shape)}; "
                             "Muon needs kernels of 2 or more dimensions")
        return True

    def build(self, variables: list) -> None:
        if self.built:
            return
        muon = [v for v in variables if self.uses_muon(v)]
        if not muon:
            raise ValueError(f"muon_pattern {self.muon_pattern!r} matches none of "
                             f"the {len(variables)} trainable variables")
        super().build(variables)
        # update_step may receive the backend's variable, which has no path.
        self._muon_indices = {self._get_variable_index(v) for v in muon}

    def no_decay(self, variables: list) -> list:
        return super().no_decay(variables) + [v for v in variables if self.uses_muon(v)]

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
                "muon_momentum": self.muon_momentum, "muon_steps": self.muon_steps,
                "muon_pattern": self.muon_pattern}


def make_optimizer(recipe: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    total = recipe.epochs * steps_per_epoch
    schedule = OneCycle(recipe.learning_rate, total, int(recipe.warmup * total),
                        start=recipe.lr_start, decay=recipe.decay, end=recipe.lr_end)
    if recipe.lookahead and not recipe.ema:
        raise ValueError("lookahead copies the weight EMA back: it needs ema=True")
    common = {"weight_decay": recipe.weight_decay, "use_ema": recipe.ema,
              "ema_momentum": recipe.ema_momentum, "ema_power": recipe.ema_power,
              "total_steps": total, "norm_bias_lr_scale": recipe.norm_bias_lr_scale,
              "stem_bias_steps": round(recipe.whiten_bias_epochs * steps_per_epoch)}
    if recipe.optimizer == "sgd":
        return SGD(schedule, momentum=recipe.momentum, nesterov=True, **common)
    if recipe.optimizer == "muon":
        return MuonSGD(schedule, momentum=recipe.momentum, nesterov=True,
                       muon_learning_rate=recipe.muon_learning_rate,
                       muon_momentum=recipe.muon_momentum,
                       muon_steps=recipe.muon_steps,
                       muon_pattern=recipe.muon_pattern, **common)
    if recipe.optimizer == "adamw":
        return AdamW(schedule, **common)
    raise ValueError(f"optimizer must be 'sgd', 'muon' or 'adamw', received "
                     f"{recipe.optimizer!r}")
