"""PyTorch parameters into Keras layers: NCHW / (out, in) layouts become
Keras's NHWC / (in, out), each assignment checked for shape."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


def numpy(tensor: Any) -> np.ndarray:
    """A torch parameter or buffer as a float32 NumPy array."""
    return tensor.detach().cpu().float().numpy()


def assign(variable: Any, value: np.ndarray, what: str) -> None:
    """Sets one Keras variable, refusing a value of another shape."""
    if tuple(variable.shape) != tuple(value.shape):
        raise ValueError(f"{what}: the Keras variable {variable.path} has shape "
                         f"{tuple(variable.shape)}, the torch value {value.shape}")
    variable.assign(value.astype(keras.backend.standardize_dtype(variable.dtype)))


def conv_kernel(weight: Any) -> np.ndarray:
    """A torch Conv2d weight ``(out, in / groups, kh, kw)`` as a Keras Conv2D
    kernel ``(kh, kw, in / groups, out)``."""
    return numpy(weight).transpose(2, 3, 1, 0)


def dense_kernel(weight: Any) -> np.ndarray:
    """A torch Linear ``(out, in)`` or 1x1 Conv2d ``(out, in, 1, 1)`` weight
    as a Keras Dense kernel ``(in, out)``."""
    value = numpy(weight)
    return value.reshape(value.shape[0], value.shape[1]).T


def conv1d_kernel(weight: Any) -> np.ndarray:
    """A torch Conv1d weight ``(out, in, k)`` as a Keras Conv1D kernel
    ``(k, in, out)``."""
    return numpy(weight).transpose(2, 1, 0)


def set_conv(layer: keras.layers.Layer, conv: Any) -> None:
    """A Keras Conv2D (or Conv1D) from a torch Conv2d (Conv1d): kernel and bias."""
    weight = conv.weight
    kernel = conv1d_kernel(weight) if weight.dim() == 3 else conv_kernel(weight)
    assign(layer.kernel, kernel, f"{layer.name} kernel")
    _set_bias(layer, conv)


def set_depthwise(layer: keras.layers.Layer, conv: Any) -> None:
    """A Keras DepthwiseConv2D from a torch depthwise Conv2d (one output per
    input channel): the weight ``(C, 1, kh, kw)`` becomes ``(kh, kw, C, 1)``."""
    assign(layer.kernel, numpy(conv.weight).transpose(2, 3, 0, 1),
           f"{layer.name} kernel")
    _set_bias(layer, conv)


def set_dense(layer: keras.layers.Layer, linear: Any) -> None:
    """A Keras Dense from a torch Linear or 1x1 Conv2d: kernel and bias."""
    assign(layer.kernel, dense_kernel(linear.weight), f"{layer.name} kernel")
    _set_bias(layer, linear)


def _set_bias(layer: keras.layers.Layer, module: Any) -> None:
    has_bias = getattr(module, "bias", None) is not None
    if has_bias != bool(getattr(layer, "use_bias", False)):
        raise ValueError(f"{layer.name}: the torch module {'has' if has_bias else 'has no'} "
                         f"bias, the Keras layer {'has none' if has_bias else 'has one'}")
    if has_bias:
        assign(layer.bias, numpy(module.bias), f"{layer.name} bias")


def set_norm(layer: keras.layers.Layer, norm: Any) -> None:
    """A Keras normalization's scale and offset (gamma, beta) from a torch
    LayerNorm, GroupNorm or affine BatchNorm's weight and bias."""
    assign(layer.gamma, numpy(norm.weight), f"{layer.name} gamma")
    assign(layer.beta, numpy(norm.bias), f"{layer.name} beta")


def set_batch_norm(layer: keras.layers.BatchNormalization, bn: Any) -> None:
    """A Keras BatchNormalization from a torch BatchNorm2d: scale, offset,
    running statistics. The epsilons must agree (the converter builds the
    Keras layer with the torch one)."""
    if not np.isclose(layer.epsilon, bn.eps):
        raise ValueError(f"{layer.name}: epsilon {layer.epsilon} differs from the "
                         f"torch BatchNorm's {bn.eps}")
    if bn.affine:
        set_norm(layer, bn)
    assign(layer.moving_mean, numpy(bn.running_mean), f"{layer.name} moving_mean")
    assign(layer.moving_variance, numpy(bn.running_var), f"{layer.name} moving_variance")
