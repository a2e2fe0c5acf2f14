"""NumPy (float64) references of timm's convolution-replacing attention
(``sk``, ``splat``), written from the papers and timm's modules,
independent of the package's code."""

from __future__ import annotations

import numpy as np

from reference import batch_norm, relu, sigmoid, softmax, w


def conv2d(x, layer, padding: int, strides: int):
    """PyTorch's Conv2d on (b, H, W, C): ``padding`` zeros on every side,
    then a strided, dilated, grouped convolution with the Keras kernel
    ``(kh, kw, C / groups, filters)``."""
    kernel = w(layer.kernel)
    kh, kw, group_in, filters = kernel.shape
    groups, d = layer.groups, layer.dilation_rate[0]
    group_out = filters // groups
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    ho = (x.shape[1] - d * (kh - 1) - 1) // strides + 1
    wo = (x.shape[2] - d * (kw - 1) - 1) // strides + 1
    out = np.zeros((x.shape[0], ho, wo, filters))
    for g in range(groups):
        inputs = x[..., g * group_in:(g + 1) * group_in]
        outputs = slice(g * group_out, (g + 1) * group_out)
        for i in range(kh):
            for j in range(kw):
                patch = inputs[:, i * d:i * d + (ho - 1) * strides + 1:strides,
                               j * d:j * d + (wo - 1) * strides + 1:strides]
                out[..., outputs] += patch @ kernel[i, j][:, outputs]
    return out + w(layer.bias) if layer.use_bias else out


def _kernel(conv):
    return conv.kernel_size[0], conv.dilation_rate[0]


def selective_kernel(layer, inputs):
    """SKNet as timm builds it: ``U_i = ReLU(BN(conv_i(x_i)))`` padded
    ``((s - 1) + d (k - 1)) // 2``; ``a = softmax_i(W_s ReLU(BN(W_r
    mean_hw(sum_i U_i))))``; output ``sum_i a_i U_i``."""
    x, s = inputs[0], layer.strides
    n = len(layer.path_convs)
    parts = np.split(x, n, axis=-1) if layer.split_input else [x] * n
    branches = []
    for part, conv, bn in zip(parts, layer.path_convs, layer.path_bns):
        k, d = _kernel(conv)
        branches.append(relu(batch_norm(conv2d(part, conv, ((s - 1) + d * (k - 1)) // 2,
                                               s), bn)))
    pooled = sum(branches).mean((1, 2))  # (b, filters)
    z = relu(batch_norm(pooled @ w(layer.fc_reduce.kernel)[0, 0], layer.attn_bn))
    filters = branches[0].shape[-1]
    logits = (z @ w(layer.fc_select.kernel)[0, 0]).reshape(-1, n, filters)
    a = softmax(logits, axis=1)
    return sum(u * a[:, i, None, None, :] for i, u in enumerate(branches)), a


def split_attention(layer, inputs):
    """ResNeSt's split attention as timm builds it: ``radix`` splits of one
    grouped convolution padded ``d (k - 1) / 2``, weighted per cardinal
    group by a softmax over the splits (sigmoid for one split)."""
    x, s, radix, groups = inputs[0], layer.strides, layer.radix, layer.groups
    k, d = _kernel(layer.conv)
    y = conv2d(x, layer.conv, d * (k - 1) // 2, s)
    if layer.use_batch_norm:
        y = batch_norm(y, layer.bn0)
    y = relu(y)
    filters = y.shape[-1] // radix
    splits = [y[..., r * filters:(r + 1) * filters] for r in range(radix)]
    gap = sum(splits).mean((1, 2), keepdims=True)
    z = conv2d(gap, layer.fc1, 0, 1)
    if layer.use_batch_norm:
        z = batch_norm(z, layer.bn1)
    logits = conv2d(relu(z), layer.fc2, 0, 1)[:, 0, 0]  # (b, radix * filters)
    b = x.shape[0]
    if radix > 1:
        # timm's RadixSoftmax: fc2's channels are (group, split, c).
        a = softmax(logits.reshape(b, groups, radix, filters // groups), axis=2)
        a = a.transpose(0, 2, 1, 3).reshape(b, radix, filters)
    else:
        a = sigmoid(logits).reshape(b, 1, filters)
    return sum(u * a[:, r, None, None, :] for r, u in enumerate(splits)), a
