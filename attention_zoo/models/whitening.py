"""airbench's data-initialized parts for convnets: a patch-whitening first
layer whose filters come from the training images, and identity ("dirac")
initialization of convolutions."""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np

#: Training images that set the whitening filters (airbench uses 5,000).
ADAPT_EXAMPLES = 5000


@keras.saving.register_keras_serializable(package="attention_zoo")
class PatchWhitening(keras.layers.Layer):
    """A ``kernel_size`` x ``kernel_size`` convolution (no padding) whose
    filters whiten image patches: the eigenvectors of the patch covariance,
    each scaled by ``1 / sqrt(eigenvalue + epsilon)``, and their negatives.

    The filters are a non-trainable weight set by ``adapt(images)`` (which
    ``training.fit`` calls with training images); the bias trains. Until it is
    adapted the layer holds random orthogonal filters, so it still runs.

    Input ``(batch, H, W, C)``; output ``(batch, H - k + 1, W - k + 1,
    2 * k * k * C)``.
    """

    def __init__(self, kernel_size: int = 2, epsilon: float = 5e-4,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"kernel_size must be an int >= 1, received {kernel_size!r}")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, received {epsilon!r}")
        self.kernel_size, self.epsilon = kernel_size, float(epsilon)

    def build(self, input_shape: Any) -> None:
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("PatchWhitening needs a known channel count, "
                             f"received input shape {input_shape}")
        k, patch = self.kernel_size, self.kernel_size ** 2 * channels
        self.filters = 2 * patch
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, channels, self.filters), trainable=False,
            initializer=keras.initializers.Orthogonal(seed=0))
        self.bias = self.add_weight(name="bias", shape=(self.filters,),
                                    initializer="zeros")

    def adapt(self, images: Any) -> None:
        """Sets the filters from ``(n, H, W, C)`` images, as they reach this
        layer (normalized). A few thousand images are enough."""
        self.set_covariance(self.patch_covariance(images))

    def patch_covariance(self, images: Any) -> np.ndarray:
        """The (uncentered) covariance of the images' patches, ``(k*k*C,
        k*k*C)``, in the kernel's (kh, kw, C) order."""
        x = np.asarray(images, dtype="float64")
        if x.ndim != 4:
            raise ValueError(f"adapt expects (n, H, W, C) images, received shape {x.shape}")
        k, channels = self.kernel_size, x.shape[-1]
        windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))
        patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, k * k * channels)
        return patches.T @ patches / len(patches)

    def set_covariance(self, covariance: np.ndarray) -> None:
        """Sets the filters from a patch covariance (``patch_covariance``, or
        its mean over the workers of a distributed run)."""
        covariance = np.asarray(covariance, dtype="float64")
        patch = covariance.shape[0]
        channels = patch // self.kernel_size ** 2
        if covariance.shape != (patch, patch) or channels * self.kernel_size ** 2 != patch:
            raise ValueError(f"covariance must be (k*k*C, k*k*C), received shape "
                             f"{covariance.shape}")
        if not self.built:
            self.build((None, None, None, channels))
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1]
        scaled = eigenvectors[:, order] / np.sqrt(eigenvalues[order] + self.epsilon)
        kernel = np.concatenate([scaled, -scaled], axis=1)
        k = self.kernel_size
        self.kernel.assign(kernel.reshape(k, k, channels, self.filters).astype("float32"))

    def call(self, inputs: Any) -> Any:
        from keras import ops

        x = ops.conv(inputs, ops.cast(self.kernel, inputs.dtype), padding="valid")
        return x + ops.cast(self.bias, x.dtype)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        k = self.kernel_size - 1
        size = [None if d is None else d - k for d in input_shape[1:3]]
        return (input_shape[0], *size, 2 * self.kernel_size ** 2 * input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "epsilon": self.epsilon}


def adapt_whitening(model: keras.Model, images: np.ndarray,
                    reduce: Callable[[np.ndarray], np.ndarray] | None = None) -> list[str]:
    """Adapts every ``PatchWhitening`` layer of a functional ``model`` to
    ``images`` (raw model inputs), feeding each the activations that reach
    it. ``reduce`` maps each layer's patch covariance before it is used
    (``training.fit`` averages it over the workers of a multi-worker run, so
    every worker gets the same filters). Returns the names of the layers
    adapted."""
    adapted = []
    for layer in model.layers:
        if isinstance(layer, PatchWhitening):
            # A single input is passed as itself, not a one-element list,
            # so calling upstream with a plain batch matches its structure.
            inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
            upstream = keras.Model(inputs, layer.input)
            # Plain calls, not predict(): this also runs inside a
            # distribution strategy's scope, where predict would distribute.
            covariance = layer.patch_covariance(np.concatenate([
                keras.ops.convert_to_numpy(keras.ops.cast(
                    upstream(images[i:i + 500], training=False), "float32"))
                for i in range(0, len(images), 500)]))
            layer.set_covariance(reduce(covariance) if reduce else covariance)
            adapted.append(layer.name)
    return adapted


@keras.saving.register_keras_serializable(package="attention_zoo")
class Dirac(keras.initializers.Initializer):
    """Convolution kernels ``(kh, kw, in, out)`` whose first ``min(in, out)``
    filters are the identity (an implicit residual: each passes one input
    channel through) and the rest uniform with variance ``1 / (3 fan_in)``
    (PyTorch's default, which airbench pairs with it)."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        from keras import ops

        if len(shape) != 4:
            raise ValueError(f"Dirac initializes (kh, kw, in, out) kernels, "
                             f"received shape {tuple(shape)}")
        kh, kw, channels_in, channels_out = shape
        rest = keras.initializers.VarianceScaling(
            1.0 / 3.0, "fan_in", "uniform", seed=self.seed)(shape, dtype)
        n = min(channels_in, channels_out)
        identity = np.zeros(shape, "float32")
        identity[kh // 2, kw // 2, np.arange(n), np.arange(n)] = 1.0
        keep_random = np.arange(channels_out) >= n
        return ops.where(keep_random, rest, ops.cast(identity, rest.dtype))

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}
