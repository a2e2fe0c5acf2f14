"""Hard-example selection: a network trains on the part of each batch that a
small proxy network, trained alongside it, finds hardest (airbench96_faster's
data filtering, Jordan 2024). Each step costs the network ``keep`` of a full
batch, so a recipe can show it twice the batches, half of each, for the cost
of the full run plus the proxy's: ranking batches of 4,000 and training the
proxy on the kept 2,000 made AttnCNN's run 1.14x the default's on a 2-core
AVX2 CPU (``benchmarks/cifar10_epochs.md``, ``avx2_select``)."""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any, Callable, ContextManager

import keras
import numpy as np
from keras import ops

if TYPE_CHECKING:
    from attention_zoo.training.optimizers import VariableGroups


@keras.saving.register_keras_serializable("attention_zoo")
class HardExampleTrainer(keras.Model):
    """Wraps ``net`` and ``proxy`` (same inputs and classes) for training.

    A training step runs ``proxy`` on the whole batch, keeps the
    ``ceil(keep * batch)`` examples with the highest loss under the compiled
    loss, and takes one optimizer step on the sum of ``net``'s mean loss on
    those examples and ``proxy``'s on the same ones: the proxy keeps learning
    what is hard as the net does. ``call`` (prediction, evaluation, export) is
    ``net``'s alone; ``training.fit`` returns ``net`` once training ends.

    Batches are ``(x, y)``: ``x`` what ``net`` takes, ``(batch, ...)``;
    ``y`` one-hot ``(batch, classes)``, as the compiled loss expects. The
    compiled loss must be a ``keras.losses.Loss`` (its per-example values
    rank the batch).

    It trains on Keras's TensorFlow, JAX and PyTorch backends alike: each
    has its own gradient step around one shared loss computation, and no
    gradient flows through the ranking. Under ``mixed_float16`` the loss is
    scaled as in Keras's own steps.

    Args:
        net: the functional model being trained, ``(batch, ...) -> (batch,
            classes)``.
        proxy: a cheaper functional model with the same inputs and outputs
            (for AttnCNN, ``models.attn_cnn.selection_proxy``).
        keep: fraction of each batch the net trains on, in (0, 1].
    """

    def __init__(self, net: keras.Model, proxy: keras.Model, keep: float = 0.5,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for role, model in (("net", net), ("proxy", proxy)):
            if not isinstance(model, keras.Model):
                raise TypeError(f"{role} must be a keras.Model, received "
                                f"{type(model).__name__}")
        if not 0.0 < float(keep) <= 1.0:
            raise ValueError(f"keep must be in (0, 1], received {keep!r}")
        if tuple(net.output.shape[1:]) != tuple(proxy.output.shape[1:]):
            raise ValueError(f"proxy outputs {tuple(proxy.output.shape)} do not match "
                             f"the net's {tuple(net.output.shape)}")
        self.net, self.proxy, self.keep = net, proxy, float(keep)
        self.built = True  # its weights are the two built models'

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.net(inputs, training=training)

    def hardest(self, x: Any, y: Any) -> Any:
        """Indices of the ``ceil(keep * batch)`` examples of ``(x, y)`` with
        the highest proxy loss, hardest first."""
        losses = ops.stop_gradient(self._example_losses(y, self.proxy(x, training=True)))
        batch = ops.shape(losses)[0]
        if isinstance(batch, int):
            # Known while tracing: JAX and PyTorch need top_k's k as a Python
            # int. float32 products, as the unknown-batch branch rounds them.
            count = math.ceil(np.float32(self.keep) * np.float32(batch))
        else:  # a TensorFlow graph whose batch size comes with the data
            count = ops.cast(ops.ceil(self.keep * ops.cast(batch, "float32")), "int32")
        return ops.top_k(losses, count)[1]

    def _example_losses(self, y: Any, scores: Any) -> Any:
        if not isinstance(self.loss, keras.losses.Loss):
            raise TypeError("HardExampleTrainer ranks examples by a keras.losses.Loss "
                            "passed to compile(loss=...), received "
                            f"{type(self.loss).__name__}")
        return self.loss.call(ops.cast(y, "float32"), ops.cast(scores, "float32"))

    def _selected_losses(self, x: Any, y: Any,
                         pause: Callable[[], ContextManager[Any]] = contextlib.nullcontext,
                         ) -> tuple[Any, Any, tuple[Any, Any, Any]]:
        """What every backend's step differentiates: ``(total, loss, (x_kept,
        y_kept, y_pred))``, ``total`` being the net's compiled ``loss`` plus
        the proxy's mean loss, both on the kept examples, unscaled.

        ``pause`` keeps the ranking off the backend's gradient record: only
        the kept examples are backpropagated, through both models, which
        costs less than backpropagating the whole batch through the proxy."""
        with pause():
            kept = self.hardest(x, y)
        x_kept, y_kept = ops.take(x, kept, axis=0), ops.take(y, kept, axis=0)
        proxy_loss = ops.mean(self._example_losses(y_kept, self.proxy(x_kept, training=True)))
        y_pred = self.net(x_kept, training=True)
        # The net's loss as Keras's own train_step computes it (regularizers
        # and add_loss included), so logs and callbacks read the same "loss".
        loss = self._compute_loss(x=x_kept, y=y_kept, y_pred=y_pred, training=True)
        return loss + ops.cast(proxy_loss, loss.dtype), loss, (x_kept, y_kept, y_pred)

    def _update_metrics(self, loss: Any, x_kept: Any, y_kept: Any,
                        y_pred: Any) -> dict[str, Any]:
        # The loss tracker weighs each step by the examples the net trained on.
        self._loss_tracker.update_state(loss, sample_weight=ops.shape(y_kept)[0])
        return self.compute_metrics(x_kept, y_kept, y_pred)

    def train_step(self, *args: Any) -> Any:
        """One step on a batch, with the running backend's gradients.

        On JAX, Keras's stateless contract: ``train_step(state, data)``
        returns ``(logs, state)``; on TensorFlow and PyTorch
        ``train_step(data)`` returns ``logs``."""
        steps = {"tensorflow": self._tensorflow_step, "jax": self._jax_step,
                 "torch": self._torch_step}
        backend = keras.backend.backend()
        if backend not in steps:
            raise ValueError(f"HardExampleTrainer trains on the {sorted(steps)} "
                             f"backends, running {backend!r}")
        return steps[backend](*args)

    def _tensorflow_step(self, data: Any) -> dict[str, Any]:
        import tensorflow as tf

        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            total, loss, kept = self._selected_losses(x, y, pause=tape.stop_recording)
            # A LossScaleOptimizer (mixed_float16) keeps float16 gradients finite.
            total = self.optimizer.scale_loss(total)
        weights = self.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(total, weights), weights))
        return self._update_metrics(loss, *kept)

    def _torch_step(self, data: Any) -> dict[str, Any]:
        import torch

        x, y = data[0], data[1]
        self.zero_grad()  # torch accumulates .grad across backward() calls
        total, loss, kept = self._selected_losses(x, y, pause=torch.no_grad)
        self.optimizer.scale_loss(total).backward()
        weights = self.trainable_weights[:]
        with torch.no_grad():  # the update itself is not part of any graph
            self.optimizer.apply([w.value.grad for w in weights], weights)
        return self._update_metrics(loss, *kept)

    def _jax_step(self, state: tuple[Any, Any, Any, Any],
                  data: Any) -> tuple[dict[str, Any], tuple[Any, Any, Any, Any]]:
        import jax

        trainable, non_trainable, optimizer_state, metrics_state = state
        x, y = data[0], data[1]

        def scaled_total(trainable: Any, non_trainable: Any, metrics_state: Any) -> Any:
            # One scope over all the state the step reads, as stateless_call and
            # stateless_compute_loss each open over theirs: the proxy runs twice
            # (ranking, kept examples), the net once, and compute_loss may read
            # regularized weights and update loss metrics.
            mapping = [*zip(self.trainable_variables, trainable),
                       *zip(self.non_trainable_variables, non_trainable),
                       *zip(self.metrics_variables, metrics_state),
                       *zip(self.optimizer.variables, optimizer_state)]
            with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
                total, loss, kept = self._selected_losses(x, y)
                total = self.optimizer.scale_loss(total)  # as on TensorFlow
            # Batch-norm statistics and seed states the calls moved on.
            non_trainable = [scope.get_current_value(v) for v in self.non_trainable_variables]
            metrics_state = [scope.get_current_value(v) for v in self.metrics_variables]
            return total, (loss, kept, non_trainable, metrics_state)

        (_, (loss, kept, non_trainable, metrics_state)), grads = jax.value_and_grad(
            scaled_total, has_aux=True)(trainable, non_trainable, metrics_state)
        trainable, optimizer_state = self.optimizer.stateless_apply(
            optimizer_state, grads, trainable)
        with keras.StatelessScope(
                state_mapping=list(zip(self.metrics_variables, metrics_state))) as scope:
            logs = self._update_metrics(loss, *kept)
        metrics_state = [scope.get_current_value(v) for v in self.metrics_variables]
        return logs, (trainable, non_trainable, optimizer_state, metrics_state)

    def variable_groups(self) -> "VariableGroups":
        """The net's optimizer variable groups and the proxy's, merged: both
        train under the one optimizer (``training.optimizers.variable_groups``)."""
        from attention_zoo.training.optimizers import variable_groups

        return variable_groups(self.net) + variable_groups(self.proxy)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "keep": self.keep,
                "net": keras.saving.serialize_keras_object(self.net),
                "proxy": keras.saving.serialize_keras_object(self.proxy)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "HardExampleTrainer":
        config = dict(config)
        net = keras.saving.deserialize_keras_object(config.pop("net"))
        proxy = keras.saving.deserialize_keras_object(config.pop("proxy"))
        return cls(net, proxy, **config)
