"""NumPy (float64) references of the channel and context family's layers
with timm's options (SE, effective SE, ECA and its MLP and circular modes,
gather-excite, global context fusions, CBAM and light CBAM), written from
the papers and timm's formulas, independent of the package's code. Each
takes the layer (for its weights and settings) and the inputs, and returns
``(output, maps)``."""

from __future__ import annotations

import numpy as np

from reference import (batch_norm, conv2d_same, dense, layer_norm, relu, sigmoid,
                       softmax, w)


def hard_sigmoid(x):
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0


GATES = {"sigmoid": sigmoid, "hard_sigmoid": hard_sigmoid}


def descriptor(x, add_maxpool: bool):
    """Global pooling ``(b, 1, 1, C)``: mean, or 0.5 mean + 0.5 max."""
    mean = x.mean((1, 2), keepdims=True)
    return 0.5 * mean + 0.5 * x.max((1, 2), keepdims=True) if add_maxpool else mean


def squeeze_excite(layer, inputs):
    x = inputs[0]
    p = descriptor(x, layer.add_maxpool)
    gate = GATES[layer.gate](dense(relu(dense(p, layer.fc1)), layer.fc2))
    return x * gate, gate


def effective_squeeze_excite(layer, inputs):
    x = inputs[0]
    gate = GATES[layer.gate](dense(descriptor(x, layer.add_maxpool), layer.fc))
    return x * gate, gate


def conv1d(y, conv, circular: bool = False):
    """Stride-1 convolution of ``(b, L, cin)`` with an odd kernel ``k``, the
    ends padded by ``k // 2`` zeros or wrapped around."""
    kernel = w(conv.kernel)  # (k, cin, cout)
    k = kernel.shape[0]
    pad = ((0, 0), (k // 2, k // 2), (0, 0))
    padded = np.pad(y, pad, mode="wrap") if circular else np.pad(y, pad)
    length = y.shape[1]
    out = sum(padded[:, j:j + length] @ kernel[j] for j in range(k))
    return out + w(conv.bias) if conv.use_bias else out


def eca(layer, inputs):
    """ECA, its MLP mode (timm's ecam) and circular padding (timm's ceca)."""
    x = inputs[0]
    y = x.mean((1, 2))[:, :, None]  # the channels as a sequence, (b, C, 1)
    conv = layer.conv
    if layer.use_mlp:
        y, conv = relu(conv1d(y, layer.conv)), layer.conv2
    gate = GATES[layer.gate](conv1d(y, conv, layer.padding == "circular"))
    gate = gate[:, :, 0][:, None, None, :]
    return x * gate, gate


def _pool_without_pads(x, extent: int, reduce):
    """timm's local gather: window 2e - 1, stride e, padding e - 1, each
    window reduced over its real positions only."""
    b, H, W, C = x.shape
    k, s, p = 2 * extent - 1, extent, extent - 1
    rows, cols = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    out = np.zeros((b, rows, cols, C))
    for i in range(rows):
        for j in range(cols):
            r0, c0 = max(i * s - p, 0), max(j * s - p, 0)
            window = x[:, r0:i * s - p + k, c0:j * s - p + k]
            out[:, i, j] = reduce(window.reshape(b, -1, C), axis=1)
    return out


def _depthwise_stride2(x, conv):
    """torch's depthwise 3x3 stride-2 convolution with padding 1."""
    kernel = w(conv.kernel)[:, :, :, 0]  # (3, 3, C)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows, cols = (x.shape[1] - 1) // 2 + 1, (x.shape[2] - 1) // 2 + 1
    out = np.zeros((x.shape[0], rows, cols, x.shape[3]))
    for i in range(rows):
        for j in range(cols):
            window = padded[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
            out[:, i, j] = (window * kernel).sum((1, 2))
    return out


def torch_nearest(size_in: int, size_out: int) -> np.ndarray:
    """Source indices of torch's ``F.interpolate(mode="nearest")``: floor of
    ``i * (in / out)``, computed in float32 as torch does."""
    scale = np.float32(size_in) / np.float32(size_out)
    source = np.floor(np.arange(size_out, dtype=np.float32) * scale).astype(int)
    return np.minimum(source, size_in - 1)


def gather_excite(layer, inputs):
    x = inputs[0]
    if layer.extra_params:
        y = x
        for i, (conv, norm) in enumerate(zip(layer.gather_convs, layer.gather_norms)):
            y = batch_norm(_depthwise_stride2(y, conv), norm)
            if i < len(layer.gather_convs) - 1:
                y = relu(y)
    elif layer.extent == 0:
        y = descriptor(x, layer.add_maxpool)
    else:
        y = _pool_without_pads(x, layer.extent, np.mean)
        if layer.add_maxpool:
            y = 0.5 * y + 0.5 * _pool_without_pads(x, layer.extent, np.max)
    if layer.use_mlp:
        y = dense(relu(dense(y, layer.fc1)), layer.fc2)
    if layer.extent:
        y = y[:, torch_nearest(y.shape[1], x.shape[1])]
        y = y[:, :, torch_nearest(y.shape[2], x.shape[2])]
    gate = GATES[layer.gate](y)
    return x * gate, gate


def global_context(layer, inputs):
    """GCNet's block with timm's options: mean pooling instead of the
    attention, fusion by addition and/or by a gated scale."""
    x = inputs[0]
    b, H, W, C = x.shape
    if layer.use_attn:
        logits = dense(x, layer.attention_logits).reshape(b, H * W)
        a = softmax(logits).reshape(b, H, W, 1)
        context = (x * a).sum((1, 2), keepdims=True)
    else:
        a = np.full((b, H, W, 1), 1.0 / (H * W))
        context = x.mean((1, 2), keepdims=True)

    def transform(prefix):
        hidden = dense(context, getattr(layer, f"{prefix}_fc1"))
        hidden = relu(layer_norm(hidden, getattr(layer, f"{prefix}_norm")))
        return dense(hidden, getattr(layer, f"{prefix}_fc2"))

    out, maps = x, a
    if layer.fuse_scale:
        gate = GATES[layer.gate](transform("scale"))
        out = out * gate
        maps = {"attention": a, "gate": gate}
    if layer.fuse_add:
        out = out + transform("transform")
    return out, maps


def channel_attention(layer, x):
    def mlp(p):
        return dense(relu(dense(p, layer.fc1)), layer.fc2)

    if layer.light:
        logits = mlp(descriptor(x, add_maxpool=True))
    else:
        logits = mlp(x.mean((1, 2), keepdims=True)) + mlp(x.max((1, 2), keepdims=True))
    gate = sigmoid(logits)
    return x * gate, gate


def spatial_attention(layer, x):
    mean, peak = x.mean(-1, keepdims=True), x.max(-1, keepdims=True)
    pooled = 0.5 * mean + 0.5 * peak if layer.light else np.concatenate([mean, peak], -1)
    logits = conv2d_same(pooled, layer.conv)
    if layer.batch_norm:
        logits = batch_norm(logits, layer.bn)
    gate = sigmoid(logits)
    return x * gate, gate


def cbam(layer, inputs):
    y, gate_c = channel_attention(layer.channel, inputs[0])
    y, gate_s = spatial_attention(layer.spatial, y)
    return y, {"channel": gate_c, "spatial": gate_s}
