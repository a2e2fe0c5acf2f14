"""Where a model looks: attention maps of every attention layer, and plots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np

from attention_zoo.files import replacing, write_text
from attention_zoo.layers import AttentionPooling1D
from attention_zoo.layers.base import FeatureMapAttention


def _network(model: keras.Model) -> keras.Model:
    """Where a model's attention layers are: a task's backbone, or the model."""
    backbone = getattr(model, "backbone", None)
    return backbone if backbone is not None else model


def attention_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The feature-map attention layers of a functional model (of a task's
    backbone), in order."""
    return [layer for layer in _network(model).layers
            if isinstance(layer, FeatureMapAttention)]


def attention_maps(model: keras.Model, images: Any) -> dict[str, Any]:
    """Runs ``images`` ``(N, H, W, C)`` (the model's input shape; refused
    with a ValueError otherwise, as are NaN pixels and an empty batch)
    through ``model`` and returns, per attention layer name,
    the maps that layer computed (arrays, or dicts of arrays for CBAM and
    coordinate attention), as ``layer(x, return_attention_scores=True)``
    returns them.
    """
    from attention_zoo.data.images import check_image_batch

    found = attention_layers(model)
    if not found:
        raise ValueError(f"model {model.name!r} has no feature-map attention "
                         f"layers")
    images = check_image_batch(images, tuple(model.inputs[0].shape[1:]))
    # Fetch each layer's input, then call the layer eagerly on it: eager calls
    # add no nodes to the model's graph.
    probe = keras.Model(_network(model).inputs, [layer.input for layer in found])
    features = probe.predict(np.asarray(images), verbose=0)
    if len(found) == 1:
        features = [features]
    maps = {layer.name: layer(x, return_attention_scores=True)[1]
            for layer, x in zip(found, features)}
    return keras.tree.map_structure(
        lambda t: keras.ops.convert_to_numpy(t).astype(np.float32), maps)


def spatial_map(maps: Any, size: tuple[int, int] | None = None) -> np.ndarray | None:
    """Reduces a layer's maps to one ``(batch, H, W)`` map in [0, 1] for
    plotting, or None for purely channel attention (SE, ECA)."""
    if isinstance(maps, dict):
        if "spatial" in maps:
            m = maps["spatial"][..., 0]
        elif "height" in maps:  # coordinate: a_h (b, H, 1, C) x a_w (b, 1, W, C)
            m = (maps["height"] * maps["width"]).mean(-1)
        else:
            return None
    elif maps.ndim == 4 and maps.shape[1] > 1:
        m = maps.mean(-1)  # BAM (C channels), GC (1 channel)
    else:
        return None
    low, high = m.min(axis=(1, 2), keepdims=True), m.max(axis=(1, 2), keepdims=True)
    m = (m - low) / np.maximum(high - low, 1e-12)
    if size is not None:
        import tensorflow as tf

        m = tf.image.resize(m[..., None], size, method="bilinear").numpy()[..., 0]
    return m


def plot_attention(model: keras.Model, images: Any, path: str | os.PathLike,
                   titles: Sequence[str] | None = None) -> Path:
    """Writes a PNG: one row per image, the image, then each attention layer's
    spatial map overlaid on it. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attention_zoo.data.images import check_image_batch

    images = check_image_batch(images, tuple(model.inputs[0].shape[1:]))
    maps = attention_maps(model, images)
    spatial = {name: spatial_map(m, images.shape[1:3]) for name, m in maps.items()}
    spatial = {name: m for name, m in spatial.items() if m is not None}
    if not spatial:
        raise ValueError("the model's attention layers have no spatial maps "
                         "(SE and ECA gate channels only)")
    cols = 1 + len(spatial)
    fig, axes = plt.subplots(len(images), cols, figsize=(1.8 * cols, 1.8 * len(images)),
                             squeeze=False)
    shown = np.clip(images, 0, 255).astype("uint8")
    for i, image in enumerate(shown):
        axes[i, 0].imshow(image)
        axes[i, 0].set_title(titles[i] if titles else "image", fontsize=8)
        for j, (name, m) in enumerate(spatial.items(), start=1):
            axes[i, j].imshow(image)
            axes[i, j].imshow(m[i], cmap="jet", alpha=0.5, vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(name, fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    try:
        with replacing(path, ".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return path


# ------------------------------------------------------------------- text --

def has_token_attention(model: keras.Model) -> bool:
    """Whether ``explain_text`` can explain ``model``: a string-input
    AttnTextClassifier, or an ensemble holding one."""
    return _find_text_parts(model) is not None


def _find_text_parts(model: keras.Model
                     ) -> tuple[Any, keras.Model, keras.layers.Layer] | None:
    """The vectorizer, backbone and token attention layer of a string
    AttnTextClassifier, or of an ensemble's first member with token
    attention (an ensemble may hold an ``NBTextClassifier``, which has
    none); None if there is none."""
    from attention_zoo.models.attn_text import AttnTextBackbone
    from attention_zoo.models.ensemble import ensemble_members

    for member in ensemble_members(model):
        backbone = getattr(member, "backbone", None)
        preprocessor = getattr(member, "preprocessor", None)
        if isinstance(backbone, AttnTextBackbone) and preprocessor is not None:
            return preprocessor.vectorize, backbone, backbone.token_attention
    return None


def _text_parts(model: keras.Model) -> tuple[Any, keras.Model, keras.layers.Layer]:
    parts = _find_text_parts(model)
    if parts is None:
        raise ValueError(f"model {model.name!r} is not a string-input "
                         f"AttnTextClassifier or an ensemble holding one: it has "
                         f"no token attention to explain")
    return parts


def explain_text(model: keras.Model, texts: Any) -> list[list[tuple[str, float]]]:
    """Each text's tokens (as the model's vectorizer produced them, n-grams
    included) with the attention weight the pooling gave them; padding left
    out. Weights of one text sum to 1 (0 for an empty text). An ensemble is
    explained by its first member with token attention."""
    from attention_zoo.models.text import as_text_tensor

    vectorize, backbone, attention = _text_parts(model)
    ids = keras.ops.convert_to_numpy(vectorize(as_text_tensor(texts)))
    vocabulary = vectorize.get_vocabulary()
    mask = ids != 0
    node_inputs = attention.input
    node_inputs = node_inputs if isinstance(node_inputs, list) else [node_inputs]
    features = keras.Model(backbone.inputs, node_inputs).predict(ids, verbose=0)
    if isinstance(attention, AttentionPooling1D):
        _, weights = attention(features[0], mask=mask, return_attention_scores=True)
    else:  # a sequence layer: (learned query, token states)
        _, weights = attention(features[0], features[1], value_mask=mask,
                               return_attention_scores=True)
    # (batch, T), (batch, 1, T) or (batch, heads, 1, T): mean over heads.
    weights = keras.ops.convert_to_numpy(weights).astype(np.float32).reshape(len(ids), -1, ids.shape[1])
    weights = weights.mean(1)
    return [[(str(vocabulary[t]), float(w)) for t, w, keep in zip(row, ws, m) if keep]
            for row, ws, m in zip(ids, weights, mask)]


def highlight_html(explanations: Sequence[Sequence[tuple[str, float]]],
                   path: str | os.PathLike,
                   captions: Sequence[str] | None = None) -> Path:
    """Writes an HTML page with each text's tokens shaded by attention weight
    (darkest = the text's most attended token). Returns the path."""
    import html

    rows = []
    for i, tokens in enumerate(explanations):
        top = max((w for _, w in tokens), default=0.0) or 1.0
        spans = " ".join(
            f'<span title="{w:.3f}" style="background: rgba(220, 40, 40, '
            f'{w / top:.3f})">{html.escape(t)}</span>' for t, w in tokens)
        caption = f"<div class=c>{html.escape(captions[i])}</div>" if captions else ""
        rows.append(f"<p>{caption}{spans or '<i>(no tokens)</i>'}</p>")
    page = ("<!doctype html><meta charset=utf-8><title>attention</title>"
            "<style>body{font:15px/1.9 sans-serif;max-width:50em;margin:2em auto}"
            "span{padding:2px 1px;border-radius:3px}.c{color:#666;font-size:12px}"
            "</style>\n" + "\n".join(rows) + "\n")
    return write_text(path, page)
