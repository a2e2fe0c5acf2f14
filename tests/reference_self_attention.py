"""NumPy (float64) references of the lambda, bottleneck (BoTNet) and halo
(HaloNet) layers, written from the papers and timm's formulas with explicit
indices (relative offsets looked up per query/key pair, windows cut block by
block), independent of the package's reshape/pad arithmetic."""

from __future__ import annotations

import numpy as np

from reference import batch_norm, conv2d_same, dense, softmax, w


def avg_pool_2x2_same(x: np.ndarray) -> np.ndarray:
    """2x2 average pooling, stride 2, 'same' padding: a window at the
    border averages the positions it covers."""
    b, height, width, c = x.shape
    out = np.zeros((b, -(-height // 2), -(-width // 2), c))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            out[:, i, j] = x[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean((1, 2))
    return out


def heads(x: np.ndarray, n: int) -> np.ndarray:
    """(b, ..., n * d) as (b, n, positions, d)."""
    b, c = x.shape[0], x.shape[-1]
    return x.reshape(b, -1, n, c // n).transpose(0, 2, 1, 3)


def merge_heads(x: np.ndarray, height: int, width: int) -> np.ndarray:
    b, n, _, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, height, width, n * d)


def relative_embeddings(layer, query_grid, key_grid) -> np.ndarray:
    """``height_rel[kh - 1 + r - i] + width_rel[kw - 1 + s - j]`` for every
    query ``(i, j)`` of a ``query_grid`` and key ``(r, s)`` of a
    ``key_grid``: ``(queries, keys, d)``."""
    qi, qj = np.divmod(np.arange(query_grid[0] * query_grid[1]), query_grid[1])
    kr, ks = np.divmod(np.arange(key_grid[0] * key_grid[1]), key_grid[1])
    rows = kr[None, :] - qi[:, None] + key_grid[0] - 1
    cols = ks[None, :] - qj[:, None] + key_grid[1] - 1
    return w(layer.height_rel)[rows] + w(layer.width_rel)[cols]


def attention(layer, q, k, rel):
    """softmax(q k^T / sqrt(d) + q . rel) (or (q k^T + q . rel) / sqrt(d))."""
    scale = q.shape[-1] ** -0.5
    content = q @ k.swapaxes(-1, -2)
    position = np.einsum("...nd,nmd->...nm", q, rel)
    if layer.scale_pos_embed:
        return softmax((content + position) * scale)
    return softmax(content * scale + position)


def bottleneck(layer, inputs):
    x = inputs[0]
    _, height, width, _ = x.shape
    n = layer.num_heads
    q, k = np.split(dense(x, layer.query_key), 2, axis=-1)
    v = heads(dense(x, layer.value), n)
    rel = relative_embeddings(layer, (height, width), (height, width))
    a = attention(layer, heads(q, n), heads(k, n), rel)
    out = merge_heads(a @ v, height, width)
    if layer.strides == 2:
        out = avg_pool_2x2_same(out)
    return out, a


def halo(layer, inputs):
    x = inputs[0]
    b, height, width, _ = x.shape
    n, block, halo_size = layer.num_heads, layer.block_size, layer.halo_size
    window = block + 2 * halo_size
    avg_pool = layer.strides == 2 and (layer.avg_down or block % 2)
    step = 1 if avg_pool else layer.strides  # strided queries otherwise
    qb = block // step
    q = dense(x[:, ::step, ::step], layer.query)
    pad = ((0, 0), (halo_size, halo_size), (halo_size, halo_size), (0, 0))
    k = np.pad(dense(x, layer.key), pad)    # zero keys and values beyond
    v = np.pad(dense(x, layer.value), pad)  # the border, after projection
    rel = relative_embeddings(layer, (qb, qb), (window, window))
    rows, cols = height // block, width // block
    out = np.zeros((b, height // step, width // step, layer.out_channels))
    maps = np.zeros((b, n, rows * cols, qb * qb, window * window))
    for i in range(rows):
        for j in range(cols):
            qi = heads(q[:, i * qb:(i + 1) * qb, j * qb:(j + 1) * qb], n)
            keys = (slice(None), slice(i * block, i * block + window),
                    slice(j * block, j * block + window))
            a = attention(layer, qi, heads(k[keys], n), rel)
            out[:, i * qb:(i + 1) * qb, j * qb:(j + 1) * qb] = merge_heads(
                a @ heads(v[keys], n), qb, qb)
            maps[:, :, i * cols + j] = a
    if avg_pool:
        out = avg_pool_2x2_same(out)
    return out, maps


def lambda_layer(layer, inputs):
    x = inputs[0]
    b, height, width, _ = x.shape
    n, dk, dv = layer.num_heads, layer.key_width, layer.value_width
    positions = height * width
    qkv = dense(x, layer.qkv)
    q = batch_norm(qkv[..., :n * dk], layer.norm_q).reshape(b, positions, n, dk)
    keys = qkv[..., n * dk:n * dk + dk].reshape(b, positions, dk)
    v = batch_norm(qkv[..., n * dk + dk:], layer.norm_v)
    keys = softmax(keys, axis=1)  # normalised over positions
    content = np.einsum("bmk,bmv->bkv", keys, v.reshape(b, positions, dv))
    if layer.r is None:
        # E[n, m] = pos_emb[offset of m from n]
        hq, wq = np.divmod(np.arange(positions), width)
        table = w(layer.pos_emb)[hq[None, :] - hq[:, None] + height - 1,
                                 wq[None, :] - wq[:, None] + width - 1]
        position = np.einsum("nmk,bmv->bnkv", table, v.reshape(b, positions, dv))
    else:
        # the (r, r, 1) Conv3d: the same r x r convolution of each value channel
        position = np.stack([conv2d_same(v[..., c:c + 1], layer.conv_lambda)
                             for c in range(dv)], axis=-1)
        position = position.reshape(b, positions, dk, dv)
    y = np.einsum("bnhk,bkv->bnhv", q, content) + np.einsum("bnhk,bnkv->bnhv", q, position)
    out = y.reshape(b, height, width, n * dv)
    if layer.strides == 2:
        out = avg_pool_2x2_same(out)
    return out, keys.reshape(b, height, width, dk)
