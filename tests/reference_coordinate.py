"""NumPy (float64) references of the coordinate attention family, written
from Hou et al. (arXiv:2103.02907) and timm's ``coord_attn.py`` formulas,
independent of the package's code. Each takes the layer (for its weights and
options) and the inputs, and returns ``(output, maps)``."""

from __future__ import annotations

import numpy as np

from reference import batch_norm, conv2d_same, dense, hard_swish, relu, sigmoid, w


def silu(x):
    return x * sigmoid(x)


def hard_sigmoid(x):
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0


ACTIVATIONS = {None: lambda x: x, "relu": relu, "silu": silu, "hard_swish": hard_swish}
GATES = {"sigmoid": sigmoid, "hard_sigmoid": hard_sigmoid}


def depthwise_same(x, layer):
    """Stride-1 'same' depthwise convolution of (b, H, W, C), odd kernel."""
    kernel = w(layer.kernel)[..., 0]  # (kh, kw, C)
    kh, kw = kernel.shape[:2]
    padded = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    H, W = x.shape[1:3]
    out = sum(padded[:, i:i + H, j:j + W, :] * kernel[i, j]
              for i in range(kh) for j in range(kw))
    return out + w(layer.bias) if layer.use_bias else out


def group_norm(x, layer):
    b, H, W, C = x.shape
    g = x.reshape(b, H, W, layer.groups, C // layer.groups)
    mean = g.mean((1, 2, 4), keepdims=True)
    var = g.var((1, 2, 4), keepdims=True)
    g = ((g - mean) / np.sqrt(var + layer.epsilon)).reshape(x.shape)
    return g * w(layer.gamma) + w(layer.beta)


def _strips(x):
    """Mean over width (b, H, 1, C) and over height (b, 1, W, C)."""
    return x.mean(2, keepdims=True), x.mean(1, keepdims=True)


def _output(layer, x, gate):
    return x * gate + x if layer.residual else x * gate


def coordinate(layer, inputs):
    x = inputs[0]
    H = x.shape[1]
    strip_h, strip_w = _strips(x)
    y = conv2d_same(np.concatenate([strip_h, strip_w.transpose(0, 2, 1, 3)], 1),
                    layer.conv)
    if layer.batch_norm:
        y = batch_norm(y, layer.bn)
    y = ACTIVATIONS[layer.activation](y)
    gate = GATES[layer.gate]
    a_h = gate(conv2d_same(y[:, :H], layer.conv_h))
    a_w = gate(conv2d_same(y[:, H:].transpose(0, 2, 1, 3), layer.conv_w))
    return _output(layer, x, a_h * a_w), {"height": a_h, "width": a_w}


def simple_coordinate(layer, inputs):
    x = inputs[0]
    act = ACTIVATIONS[layer.activation]
    strip_h, strip_w = _strips(x)
    a_h = dense(act(dense(strip_h, layer.fc1)), layer.fc_h)
    a_w = dense(act(dense(strip_w, layer.fc1)), layer.fc_w)
    gate = GATES[layer.gate](a_h + a_w)
    return _output(layer, x, gate), gate


def efficient_local(layer, inputs):
    x = inputs[0]
    act, gate = ACTIVATIONS[layer.activation], GATES[layer.gate]
    strip_h, strip_w = _strips(x)
    y_h = depthwise_same(strip_h, layer.conv_h)
    y_w = depthwise_same(strip_w, layer.conv_w)
    if layer.groups is not None:
        y_h, y_w = group_norm(y_h, layer.norm_h), group_norm(y_w, layer.norm_w)
    a_h, a_w = gate(act(y_h)), gate(act(y_w))
    return _output(layer, x, a_h * a_w), {"height": a_h, "width": a_w}


def strip(layer, inputs):
    x = inputs[0]
    strip_h, strip_w = _strips(x)
    if layer.use_conv:
        strip_h, strip_w = depthwise_same(strip_h, layer.conv_h), depthwise_same(
            strip_w, layer.conv_w)
    gate = GATES[layer.gate](strip_h + strip_w)
    return _output(layer, x, gate), gate
