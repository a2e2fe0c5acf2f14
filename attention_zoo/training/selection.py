"""Hard-example selection: a network trains on the part of each batch that a
small proxy network, trained alongside it, finds hardest (airbench96_faster's
data filtering, Jordan 2024). Each step costs the network ``keep`` of a full
batch, so a recipe can show it twice the batches, half of each, for the cost
of the full run plus the proxy's: ranking batches of 4,000 and training the
proxy on the kept 2,000 made AttnCNN's run 1.14x the default's on a 2-core
AVX2 CPU (``benchmarks/cifar10_epochs.md``, ``avx2_select``)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


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
        losses = self._example_losses(y, self.proxy(x, training=True))
        count = ops.cast(ops.ceil(self.keep * ops.cast(ops.shape(losses)[0], "float32")),
                         "int32")
        return ops.top_k(losses, count)[1]

    def _example_losses(self, y: Any, scores: Any) -> Any:
        return self.loss.call(ops.cast(y, "float32"), ops.cast(scores, "float32"))

    def train_step(self, data: Any) -> dict[str, Any]:
        import tensorflow as tf  # Keras's TensorFlow trainer; see fit()

        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            # Ranking needs no gradient: the proxy then trains on the kept
            # examples only, which costs less than backpropagating the batch.
            with tape.stop_recording():
                kept = self.hardest(x, y)
            x_kept, y_kept = ops.take(x, kept, axis=0), ops.take(y, kept, axis=0)
            proxy_loss = ops.mean(self._example_losses(y_kept, self.proxy(x_kept, training=True)))
            y_pred = self.net(x_kept, training=True)
            # The loss and its tracker as Keras's own TensorFlow train_step
            # computes them, so logs and callbacks read the same "loss".
            loss = self._compute_loss(x=x_kept, y=y_kept, y_pred=y_pred, training=True)
            self._loss_tracker.update_state(loss, sample_weight=ops.shape(kept)[0])
            total = self.optimizer.scale_loss(loss + ops.cast(proxy_loss, loss.dtype))
        weights = self.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(total, weights), weights))
        return self.compute_metrics(x_kept, y_kept, y_pred)

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
