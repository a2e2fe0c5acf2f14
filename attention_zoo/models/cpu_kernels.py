"""Faster training kernels for AttnCNN on TensorFlow without a GPU: an
opt-in strategy, chosen by backend and device (``layer_classes``).

Both layers compute what their Keras parents compute, with the same weights,
config and saved files; they change only how a training step gets there, and
only on the TensorFlow backend with no GPU visible (elsewhere, and outside
training, they are their parents). Measured on this project's 2-core CPUs
in ``benchmarks/cifar10_speed.md`` sections 3 (AVX512-BF16) and
4 (AVX2, oneDNN on).

They carry their parents' class names (``cpu_kernels.Conv2D``,
``cpu_kernels.BatchNormalization``) because Keras files a layer's weights
under its snake-cased class name: so named, weight files written by a model
of Keras's layers load into one of these and back.

- ``BatchNormalization``: Keras 3's BatchNormalization builds batch
  statistics and the normalization from separate ops on a float32 copy of the
  activations (several passes over every activation, forward and backward);
  TensorFlow's fused kernel makes one. Keras exposes no fused op, so this is
  the package's one layer that calls ``tf`` directly.
- ``Conv2D``: oneDNN's weight gradient for wide 3x3 convolutions on
  small maps runs well below its forward pass; nine matrix products, one per
  kernel tap, compute the same gradient faster there; below 256 filters the
  layer keeps oneDNN's (``benchmarks/conv_weight_grad.md``).
"""

from __future__ import annotations

import functools
from typing import Any

import keras
from keras import ops


@functools.cache
def _tensorflow_on_cpu() -> bool:
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.config.list_logical_devices("GPU")


#: What ``layer_classes`` accepts.
KERNELS = ("auto", "keras")


def layer_classes(kernels: str = "auto") -> tuple[type, type]:
    """The ``(Conv2D, BatchNormalization)`` classes a convnet builds with:
    this module's on TensorFlow without a GPU when ``kernels="auto"``,
    Keras's own everywhere else (JAX, PyTorch, GPUs) and with
    ``kernels="keras"``. Either way the model computes the same and writes
    the same weight files."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}, received {kernels!r}")
    if kernels == "auto" and _tensorflow_on_cpu():
        return Conv2D, BatchNormalization
    return keras.layers.Conv2D, keras.layers.BatchNormalization


def _replicas_in_sync() -> int:
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


@keras.saving.register_keras_serializable(package="attention_zoo")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` that trains with TensorFlow's fused
    kernel on the CPU.

    Same arguments, weights and results as the parent (moving statistics
    included: the fused kernel's unbiased batch variance is rescaled to the
    biased one Keras averages). It falls back to the parent with a mask, on
    other backends, on a GPU, for axes other than the last of a 4-D input, and
    under a strategy with several replicas (where ``synchronized`` statistics
    need the parent's all-reduce).

    Input and output shape: ``(batch, height, width, channels)``.
    """

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        if not (training and self.trainable and mask is None and _tensorflow_on_cpu()
                and len(inputs.shape) == 4 and self.axis in (-1, 3) and not self.renorm
                and _replicas_in_sync() == 1):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        scale = (ops.cast(self.gamma, "float32") if self.scale
                 else ops.ones((channels,), "float32"))
        offset = (ops.cast(self.beta, "float32") if self.center
                  else ops.zeros((channels,), "float32"))
        # The fused op takes bfloat16/float16 activations with float32
        # statistics and accumulates in float32 itself.
        x = inputs if inputs.dtype in (tf.bfloat16, tf.float16) else ops.cast(inputs, "float32")
        outputs, mean, unbiased, *_ = tf.compat.v1.nn.fused_batch_norm(
            x, scale, offset, epsilon=self.epsilon, data_format="NHWC", is_training=True)
        count = ops.cast(ops.prod(ops.shape(inputs)[:-1]), "float32")
        variance = unbiased * (count - 1.0) / count
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(
            self.moving_variance * momentum + variance * (1.0 - momentum))
        return ops.cast(outputs, self.compute_dtype)


def _taps_weight_gradient(inputs: Any, grad: Any, kh: int, kw: int) -> Any:
    """The kernel gradient of a stride-1 "same" convolution as one matrix
    product per tap: ``sum over batch and pixels of shifted input x grad``."""
    height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
    filters = grad.shape[-1]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = ops.pad(inputs, [[0, 0], [top, kh - 1 - top], [left, kw - 1 - left], [0, 0]])
    grad = ops.reshape(grad, (-1, filters))
    taps = [ops.matmul(ops.transpose(ops.reshape(
                padded[:, i:i + height, j:j + width, :], (-1, channels))), grad)
            for i in range(kh) for j in range(kw)]
    return ops.reshape(ops.stack(taps), (kh, kw, channels, filters))


def _conv_with_taps_gradient(inputs: Any, kernel: Any) -> Any:
    kh, kw = kernel.shape[0], kernel.shape[1]

    @ops.custom_gradient
    def conv(x: Any, k: Any) -> Any:
        def backward(*grads: Any, upstream: Any = None) -> tuple[Any, Any]:
            dy = upstream if upstream is not None else grads[0]
            dx = ops.conv_transpose(dy, k, strides=1, padding="same")
            return dx, ops.cast(_taps_weight_gradient(x, dy, kh, kw), k.dtype)

        return ops.conv(x, k, strides=1, padding="same"), backward

    return conv(inputs, kernel)


@keras.saving.register_keras_serializable(package="attention_zoo")
class Conv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` whose kernel gradient is one matrix product per
    kernel tap while training on the CPU; forward pass, input gradient,
    weights and config are the parent's.

    It applies to stride-1, undilated, ungrouped "same" convolutions without
    bias or activation in channels_last (the rest falls back to the parent).

    Input shape ``(batch, height, width, channels)``; output shape
    ``(batch, height, width, filters)``.
    """

    #: Narrower layers keep oneDNN's own weight gradient, which was faster
    #: for AttnCNN's first stage (112 filters) and slower for its 352-filter
    #: stages, in bfloat16 and in float32 (benchmarks/conv_weight_grad.md).
    taps_min_filters = 256

    def _taps_apply(self, inputs: Any) -> bool:
        return (self.strides == (1, 1) and self.dilation_rate == (1, 1)
                and self.groups == 1 and self.padding == "same" and not self.use_bias
                and self.data_format == "channels_last"
                and self.activation is keras.activations.linear
                and self.filters >= self.taps_min_filters
                and None not in inputs.shape[1:] and _tensorflow_on_cpu())

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not (training and self._taps_apply(inputs)):
            return super().call(inputs)
        return _conv_with_taps_gradient(inputs, ops.cast(self.kernel, self.compute_dtype))
