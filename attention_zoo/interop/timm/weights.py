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


def keras_layer(model: keras.Model, path: str, cls: type,
                names: dict[str, str] | None = None) -> Any:
    """The layer of ``model`` named after the torch module at ``path``
    (``layer1.0.conv1`` -> ``layer1_0_conv1``; ``names`` maps paths named
    otherwise), checked to be a ``cls``."""
    name = (names or {}).get(path, path.replace(".", "_"))
    try:
        layer = model.get_layer(name)
    except ValueError:
        layer = None
    if not isinstance(layer, cls):
        raise ValueError(f"its {path} has no {cls.__name__} counterpart {name!r} in "
                         f"the Keras model (a structure the converter did not read)")
    return layer


def set_modules(modules: Any, backbone: keras.Model, task: keras.Model,
                names: dict[str, str] | None = None) -> set[str]:
    """Sets the Keras layer of every ``Conv2d``, ``BatchNorm2d`` and
    ``Linear`` (the last two with subclasses) in ``modules`` (``(path, module)`` pairs), found
    by path in ``backbone`` (convolutions, norms) or ``task`` (the
    classifier); returns the Keras layer names set. A convolution whose
    Keras layer strides or groups otherwise is refused."""
    import torch

    done = set()
    for path, module in modules:
        if type(module) is torch.nn.Conv2d:
            layer = keras_layer(backbone, path, keras.layers.Conv2D, names)
            strides = tuple(module.stride)
            if tuple(layer.strides) != strides or layer.groups != module.groups:
                raise ValueError(f"its {path} has stride {strides} and {module.groups} "
                                 f"groups, the Keras {layer.name} {layer.strides} and "
                                 f"{layer.groups} (a structure the converter misread)")
            set_conv(layer, module)
        elif isinstance(module, torch.nn.BatchNorm2d):
            layer = keras_layer(backbone, path, keras.layers.BatchNormalization, names)
            set_batch_norm(layer, module)
        elif isinstance(module, torch.nn.Linear):  # timm's Linear too
            layer = keras_layer(task, path, keras.layers.Dense, names)
            set_dense(layer, module)
        else:
            continue
        done.add(layer.name)
    return done


def set_model(model: Any, converted: dict[str, keras.layers.Layer],
              backbone: keras.Model, task: keras.Model,
              names: dict[str, str] | None = None) -> None:
    """Every weight of ``backbone`` and ``task`` from the torch ``model``:
    its modules through ``set_modules``, and at each path of ``converted``
    (modules ``from_timm`` converted on their own) that Keras layer's
    weights, on the layer named after the path. ``ValueError`` where a
    Keras layer with weights took none."""
    def outside(path: str) -> bool:
        return not any(path == p or path.startswith(f"{p}.") for p in converted)

    done = set_modules(((path, module) for path, module in model.named_modules()
                        if outside(path)), backbone, task, names)
    for path, layer in converted.items():
        target = keras_layer(backbone, path, type(layer), names)
        target.set_weights(layer.get_weights())
        done.add(target.name)
    # The task's normalization is set from timm's config; its classifier
    # must come from the model.
    missed = [layer.name for layer in backbone.layers
              if layer.weights and layer.name not in done]
    missed += [layer.name for layer in task.layers
               if isinstance(layer, keras.layers.Dense) and layer.name not in done]
    if missed:
        raise ValueError(f"the Keras layers {missed} took no timm weights")
