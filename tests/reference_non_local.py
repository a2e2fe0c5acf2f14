"""NumPy (float64) references of the non-local layers (``nl``, ``bat``),
written from the papers and timm's ``non_local_attn.py`` in its own layout
(channels first, explicit Kronecker matrices), independent of the package."""

from __future__ import annotations

import math

import numpy as np

from reference import batch_norm, dense, relu, sigmoid, softmax, w


def non_local(layer, inputs):
    x = inputs[0]
    b, H, W, C = x.shape
    theta = dense(x, layer.theta).reshape(b, H * W, -1)
    phi = dense(x, layer.phi).reshape(b, H * W, -1)
    g = dense(x, layer.g).reshape(b, H * W, -1)
    scale = 1.0 / math.sqrt(C) if layer.use_scale else 1.0
    a = softmax(theta @ phi.transpose(0, 2, 1) * scale)
    y = (a @ g).reshape(b, H, W, -1)
    return x + batch_norm(dense(y, layer.z), layer.norm), a


def _cba(x, conv, bn):
    return relu(batch_norm(dense(x, conv), bn))


def _conv_valid(x, conv):
    """A 'valid' convolution whose kernel covers the whole (kh, kw) input:
    (b, kh, kw, cin) -> (b, cout)."""
    kernel = w(conv.kernel)  # (kh, kw, cin, cout)
    return np.einsum("bhwc,hwco->bo", x, kernel) + w(conv.bias)


def _kron_eye(m, t):
    """(b, g, k, k) -> (b, g, k t, k t): each matrix Kronecker I_t, as timm's
    resize_mat builds it."""
    return np.einsum("bgij,ac->bgiajc", m, np.eye(t)).reshape(
        m.shape[0], m.shape[1], m.shape[2] * t, m.shape[3] * t)


def bat(layer, inputs):
    x = inputs[0]
    b, H, W, C = x.shape
    k, groups = layer.block_size, layer.groups
    r = _cba(x, layer.conv1, layer.bn1)  # (b, H, W, d)
    d = r.shape[-1]
    u = _cba(r, layer.ba_conv1, layer.ba_bn1)  # (b, H, W, groups)
    # adaptive_max_pool2d to (k, 1) and (1, k), H and W divisible by k.
    rows = np.stack([u[:, i * H // k:(i + 1) * H // k].max((1, 2))
                     for i in range(k)], 1)  # (b, k, groups)
    cols = np.stack([u[:, :, i * W // k:(i + 1) * W // k].max((1, 2))
                     for i in range(k)], 1)
    p = sigmoid(_conv_valid(rows[:, :, None], layer.conv_p)).reshape(b, groups, k, k)
    q = sigmoid(_conv_valid(cols[:, None], layer.conv_q)).reshape(b, groups, k, k)
    p = p / p.sum(3, keepdims=True)
    q = q / q.sum(2, keepdims=True)
    per_group = d // groups
    big_p = np.repeat(_kron_eye(p, H // k), per_group, 1)  # (b, d, H, H)
    big_q = np.repeat(_kron_eye(q, W // k), per_group, 1)  # (b, d, W, W)
    y = big_p @ r.transpose(0, 3, 1, 2) @ big_q  # (b, d, H, W)
    y = _cba(y.transpose(0, 2, 3, 1), layer.ba_conv2, layer.ba_bn2)
    y = _cba(y, layer.conv2, layer.bn2)
    return x + y, {"height": p, "width": q}
