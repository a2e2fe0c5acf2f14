"""Keras layers laid out as PyTorch (timm) computes them, so timm's weights
load unchanged: convolutions padded on every side and BatchNorm with
PyTorch's epsilon and momentum. Shared by the timm-style backbones."""

from __future__ import annotations

from typing import Any

import keras

from attention_zoo.layers.options import TORCH_BN_EPSILON, TORCH_BN_MOMENTUM


def torch_padding(kernel_size: int, strides: int) -> int:
    """timm's ``get_padding``: zeros on every side of a convolution."""
    return ((strides - 1) + (kernel_size - 1)) // 2


def conv2d(x: Any, filters: int, kernel_size: int, name: str, strides: int = 1,
           groups: int = 1) -> Any:
    """A bias-free ``Conv2D`` on ``x`` padded as timm pads it, with timm's
    initialization (kaiming normal, fan out)."""
    pad = torch_padding(kernel_size, strides)
    # Keras's 'same' pads a strided convolution at the bottom and right
    # only; PyTorch pads every side, so pad explicitly. At stride 1 both pad
    # (k - 1) / 2 on every side.
    if strides > 1 and pad:
        x = keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(
        filters, kernel_size, strides=strides,
        padding="same" if strides == 1 else "valid", groups=groups, use_bias=False,
        name=name, kernel_initializer=keras.initializers.VarianceScaling(
            2.0, "fan_out", "untruncated_normal"))(x)


def batch_norm(x: Any, name: str, zero: bool = False) -> Any:
    """PyTorch's ``BatchNorm2d``; ``zero`` starts its scale at 0 (timm's
    ``zero_init_last``: a residual branch that starts as nothing)."""
    return keras.layers.BatchNormalization(
        epsilon=TORCH_BN_EPSILON, momentum=TORCH_BN_MOMENTUM, name=name,
        gamma_initializer="zeros" if zero else "ones")(x)


def max_pool_3x3(x: Any, name: str) -> Any:
    """PyTorch's ``MaxPool2d(3, 2, padding=1)`` on non-negative ``x`` (after
    a ReLU-like activation): PyTorch pads with -inf, and zeros change no
    maximum of values >= 0."""
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(3, 2, name=name)(x)


def average_pool_2x2(x: Any, name: str) -> Any:
    """PyTorch's ``AvgPool2d(2, ceil_mode=True, count_include_pad=False)``
    (timm's average-pool shortcut): 'same' pooling, which averages the edge
    windows of odd sizes over what they hold too."""
    return keras.layers.AveragePooling2D(2, 2, padding="same", name=name)(x)


@keras.saving.register_keras_serializable(package="attention_zoo")
class TorchMaxPooling2D(keras.layers.Layer):
    """PyTorch's ``MaxPool2d(pool_size, strides, padding)``: the input padded
    with -inf on every side, then 'valid' max pooling. Keras's 'same' pads
    strided pools at the bottom and right only, and zero padding changes
    the maxima of negative values (SiLU's outputs reach -0.28).

    Input ``(batch, H, W, C)``; output ``(batch, (H + 2 padding -
    pool_size) // strides + 1, ..., C)``."""

    def __init__(self, pool_size: int = 3, strides: int = 2, padding: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for what, value, least in (("pool_size", pool_size, 1), ("strides", strides, 1),
                                   ("padding", padding, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{what} must be an int >= {least}, received {value!r}")
        self.pool_size, self.strides, self.padding = pool_size, strides, padding

    def call(self, x: Any) -> Any:
        p = self.padding
        if p:
            x = keras.ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]],
                              constant_values=float("-inf"))
        return keras.ops.max_pool(x, self.pool_size, self.strides, padding="valid")

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        def size(n: int | None) -> int | None:
            return None if n is None else \
                (n + 2 * self.padding - self.pool_size) // self.strides + 1

        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), input_shape[3])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": self.pool_size,
                "strides": self.strides, "padding": self.padding}
