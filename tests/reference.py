"""NumPy (float64) references of every layer's formula, written from the papers,
independent of the package's code. Each takes the layer (for its weights) and
the inputs, and returns ``(output, scores_or_maps)``."""

from __future__ import annotations

import math

import numpy as np


def w(variable) -> np.ndarray:
    return np.asarray(variable.numpy(), dtype=np.float64)


def softmax(s: np.ndarray, mask: np.ndarray | None = None, axis: int = -1) -> np.ndarray:
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    m = np.max(s, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(s - m)
    total = e.sum(axis=axis, keepdims=True)
    return np.where(total > 0, e / np.where(total > 0, total, 1.0), 0.0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def relu(x):
    return np.maximum(x, 0.0)


def gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def hard_swish(x):
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def dense(x, layer):
    y = x @ w(layer.kernel)
    return y + w(layer.bias) if layer.use_bias else y


def batch_norm(x, layer):
    return ((x - w(layer.moving_mean)) / np.sqrt(w(layer.moving_variance) + layer.epsilon)
            * w(layer.gamma) + w(layer.beta))


def layer_norm(x, layer):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + layer.epsilon) * w(layer.gamma) + w(layer.beta)


def conv2d_same(x, layer):
    """Stride-1 'same' convolution of (b, H, W, C) with an odd kernel."""
    kernel = w(layer.kernel)
    kh, kw = kernel.shape[:2]
    d = layer.dilation_rate[0]
    ph, pw = d * (kh - 1) // 2, d * (kw - 1) // 2
    padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    H, W = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for i in range(kh):
        for j in range(kw):
            out += padded[:, i * d:i * d + H, j * d:j * d + W, :] @ kernel[i, j]
    return out + w(layer.bias) if layer.use_bias else out


def pair_mask(query_mask, value_mask, tq, tv, batch, causal=False):
    m = np.ones((batch, tq, tv), bool)
    if query_mask is not None:
        m &= np.asarray(query_mask, bool)[:, :, None]
    if value_mask is not None:
        m &= np.asarray(value_mask, bool)[:, None, :]
    if causal:
        m &= np.tril(np.ones((tq, tv), bool))[None]
    return m


# ---- sequence layers ------------------------------------------------------

def single_head(layer, inputs, query_mask=None, value_mask=None, causal=False):
    q, v = inputs[0], inputs[1]
    k = inputs[2] if len(inputs) > 2 else v
    s = sequence_scores(layer, q, k)
    a = softmax(s, pair_mask(query_mask, value_mask, q.shape[1], v.shape[1],
                             q.shape[0], causal))
    return a @ v, a


def sequence_scores(layer, q, k):
    name = type(layer).__name__
    if name == "AdditiveAttention":
        hidden = (q @ w(layer.w_q))[:, :, None] + (k @ w(layer.w_k))[:, None]
        if layer.use_bias:
            hidden = hidden + w(layer.b)
        return np.tanh(hidden) @ w(layer.v)
    score = layer.score
    if score == "dot":
        return q @ k.transpose(0, 2, 1)
    if score == "scaled_dot":
        return q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])
    if score == "general":
        return q @ w(layer.w) @ k.transpose(0, 2, 1)
    if score == "concat":
        # v^T tanh(W [q_i; k_j]) written literally with the stacked W.
        stacked = np.concatenate([w(layer.w_q), w(layer.w_k)], axis=0)
        tq, tv = q.shape[1], k.shape[1]
        pairs = np.concatenate([np.repeat(q[:, :, None], tv, 2),
                                np.repeat(k[:, None], tq, 1)], axis=-1)
        return np.tanh(pairs @ stacked) @ w(layer.v)
    if score == "cosine":
        qn = q / np.linalg.norm(q, axis=-1, keepdims=True)
        kn = k / np.linalg.norm(k, axis=-1, keepdims=True)
        return w(layer.t) * (qn @ kn.transpose(0, 2, 1))
    raise AssertionError(score)


def multi_head(layer, inputs, query_mask=None, value_mask=None, causal=False):
    q, v = inputs[0], inputs[1]
    k = inputs[2] if len(inputs) > 2 else v
    h, g, dk, dv = (layer.num_heads, layer.num_key_value_heads, layer.key_dim,
                    layer.value_dim)

    def proj(x, name, heads, width):
        y = x @ w(getattr(layer, f"{name}_kernel"))
        if layer.use_bias:
            y = y + w(getattr(layer, f"{name}_bias"))
        return y.reshape(x.shape[0], x.shape[1], heads, width).transpose(0, 2, 1, 3)

    qh, kh, vh = proj(q, "query", h, dk), proj(k, "key", g, dk), proj(v, "value", g, dv)
    group = h // g
    kh = np.stack([kh[:, i // group] for i in range(h)], 1)
    vh = np.stack([vh[:, i // group] for i in range(h)], 1)
    mask = pair_mask(query_mask, value_mask, q.shape[1], v.shape[1], q.shape[0],
                     causal)[:, None]
    a = softmax(qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(dk), mask)
    ctx = (a @ vh).transpose(0, 2, 1, 3).reshape(q.shape[0], q.shape[1], h * dv)
    out = ctx @ w(layer.output_kernel)
    if layer.use_bias:
        out = out + w(layer.output_bias)
    return out, a


def attention_pooling(layer, inputs, mask=None):
    x = inputs[0]
    s = np.tanh(x @ w(layer.w) + w(layer.b)) @ w(layer.u)
    a = softmax(s, None if mask is None else np.asarray(mask, bool))
    return (a[..., None] * x).sum(1), a


def positional(layer, inputs, mask=None):
    x = inputs[0]
    t, d = x.shape[1], x.shape[2]
    if layer.mode == "learned":
        table = w(layer.embeddings)[:t]
    else:
        table = np.zeros((t, d))
        for p in range(t):
            for i in range(d):
                angle = p / 10000 ** (2 * (i // 2) / d)
                table[p, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
    return x + table[None], None


def transformer(layer, inputs, mask=None):
    x = inputs[0]

    def attend(y):
        return multi_head(layer.attention, [y, y], mask, mask)

    def ff(y):
        return dense(gelu(dense(y, layer.ff1)), layer.ff2)

    if layer.norm_first:
        att, a = attend(layer_norm(x, layer.norm1))
        h = x + att
        return h + ff(layer_norm(h, layer.norm2)), a
    att, a = attend(x)
    h = layer_norm(x + att, layer.norm1)
    return layer_norm(h + ff(h), layer.norm2), a


# ---- feature-map layers ---------------------------------------------------

def squeeze_excite(layer, inputs):
    x = inputs[0]
    gate = sigmoid(dense(relu(dense(x.mean((1, 2), keepdims=True), layer.fc1)),
                         layer.fc2))
    return x * gate, gate


def channel_attention(layer, x):
    def mlp(p):
        return dense(relu(dense(p, layer.fc1)), layer.fc2)

    gate = sigmoid(mlp(x.mean((1, 2), keepdims=True)) + mlp(x.max((1, 2), keepdims=True)))
    return x * gate, gate


def channel(layer, inputs):
    return channel_attention(layer, inputs[0])


def eca(layer, inputs):
    x = inputs[0]
    kernel = w(layer.conv.kernel)[:, 0, 0]
    k = kernel.shape[0]
    y = np.pad(x.mean((1, 2)), ((0, 0), (k // 2, k // 2)))
    c = x.shape[-1]
    conv = np.stack([y[:, i:i + k] @ kernel for i in range(c)], -1)
    gate = sigmoid(conv)[:, None, None, :]
    return x * gate, gate


def spatial_attention(layer, x):
    pooled = np.concatenate([x.mean(-1, keepdims=True), x.max(-1, keepdims=True)], -1)
    gate = sigmoid(conv2d_same(pooled, layer.conv))
    return x * gate, gate


def spatial(layer, inputs):
    return spatial_attention(layer, inputs[0])


def cbam(layer, inputs):
    y, gate_c = channel_attention(layer.channel, inputs[0])
    y, gate_s = spatial_attention(layer.spatial, y)
    return y, {"channel": gate_c, "spatial": gate_s}


def coordinate(layer, inputs):
    x = inputs[0]
    H = x.shape[1]
    y = np.concatenate([x.mean(2, keepdims=True),
                        x.mean(1, keepdims=True).transpose(0, 2, 1, 3)], 1)
    y = hard_swish(batch_norm(conv2d_same(y, layer.conv), layer.bn))
    a_h = sigmoid(conv2d_same(y[:, :H], layer.conv_h))
    a_w = sigmoid(conv2d_same(y[:, H:].transpose(0, 2, 1, 3), layer.conv_w))
    return x * a_h * a_w, {"height": a_h, "width": a_w}


def global_context(layer, inputs):
    x = inputs[0]
    b, H, W, C = x.shape
    logits = dense(x, layer.attention_logits).reshape(b, H * W)
    a = softmax(logits).reshape(b, H, W, 1)
    context = (x * a).sum((1, 2), keepdims=True)
    t = dense(relu(layer_norm(dense(context, layer.transform_fc1),
                              layer.transform_norm)), layer.transform_fc2)
    return x + t, a


def bam(layer, inputs):
    x = inputs[0]
    c = dense(x.mean((1, 2), keepdims=True), layer.channel_fc1)
    c = dense(relu(batch_norm(c, layer.channel_bn)), layer.channel_fc2)
    s = x
    for conv, bn in zip(layer.spatial_convs, layer.spatial_bns):
        s = relu(batch_norm(conv2d_same(s, conv), bn))
    s = conv2d_same(s, layer.spatial_out)
    m = sigmoid(c + s)
    return x * (1 + m), m
