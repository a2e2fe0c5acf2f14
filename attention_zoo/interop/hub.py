"""timm checkpoints from the Hugging Face Hub as ready Keras classifiers:
``models.load("timm/seresnet50.a1_in1k")``.

The first load downloads ``model.safetensors`` (through ``huggingface_hub``),
builds timm's model on it, converts it with ``from_timm`` and caches the Keras
model (``~/.cache/attention_zoo/timm/<name>.keras``, or
``$ATTENTION_ZOO_CACHE``); later loads read the cache and need neither the
network nor timm. The classifier takes raw ``(batch, H, W, 3)`` pixels,
uint8 or float 0..255, of any size: timm's evaluation preprocessing from the
checkpoint's pretrained config (resize the shorter side to ``size /
crop_pct``, center-crop ``size``, normalize) runs inside it, and
``model.class_names`` holds the ImageNet class descriptions.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import keras

from attention_zoo.files import replacing, write_text
from attention_zoo.onednn import refuse_late_triton

PREFIX = "timm/"
WEIGHTS_FILE = "model.safetensors"
INTERPOLATIONS = {"bicubic": "bicubic", "bilinear": "bilinear", "nearest": "nearest"}


def cache_dir() -> Path:
    """Where converted checkpoints are kept: ``$ATTENTION_ZOO_CACHE`` or
    ``~/.cache/attention_zoo``, then ``timm/``."""
    root = os.environ.get("ATTENTION_ZOO_CACHE") or Path.home() / ".cache" / "attention_zoo"
    return Path(root) / "timm"


def split_tag(name: str) -> tuple[str, str | None]:
    """``"timm/seresnet50.a1_in1k"`` (or without ``timm/``) as
    ``("seresnet50", "a1_in1k")``; the tag is None when not given."""
    if not isinstance(name, str):
        raise TypeError(f"a timm model name must be a str, received {type(name).__name__}")
    name = name[len(PREFIX):] if name.startswith(PREFIX) else name
    architecture, _, tag = name.partition(".")
    if not architecture or "/" in name or (_ and not tag):
        raise ValueError(f"a timm model is named 'timm/<architecture>[.<tag>]', e.g. "
                         f"'timm/seresnet50.a1_in1k', received {PREFIX}{name!r}")
    return architecture, tag or None


def load_timm(name: str, num_classes: int | None = None, include_top: bool = True,
              input_shape: Sequence[int | None] | None = None, hub: Any = None,
              cache: str | os.PathLike | None = None) -> keras.Model:
    """A timm checkpoint as a Keras classifier on raw pixels.

    Args:
        name: ``"timm/<architecture>[.<tag>]"``, e.g.
            ``"timm/ecaresnet50d.miil_in1k"``; any architecture ``from_timm``
            converts (``attention_zoo.interop.supported()``).
        num_classes: a new, freshly initialised classifier of this many
            classes on the pretrained backbone, for fine-tuning.
        include_top: False ends the model at the pooled features
            ``(batch, C)``.
        input_shape: ``(H, W, 3)`` the model takes instead of any size
            (None dimensions keep "any").
        hub: what downloads: an object with ``hf_hub_download(repo_id,
            filename)`` returning a local path (default: ``huggingface_hub``).
        cache: the cache folder (default ``cache_dir()``).

    Returns a ``keras.Model`` from ``(batch, H, W, 3)`` pixels to class
    probabilities ``(batch, num_classes)`` (or features), with
    ``class_names`` set for ImageNet heads.
    """
    architecture, tag = split_tag(name)
    folder = Path(cache) if cache is not None else cache_dir()
    stem = architecture + (f".{tag}" if tag else "")
    path = folder / f"{stem}.keras"
    if not path.is_file():
        converted, class_names = _convert(architecture, tag, hub)
        write_text(folder / f"{stem}.json", json.dumps({"class_names": class_names}))
        with replacing(path, suffix=".keras") as tmp:
            converted.save(tmp)
    model = keras.saving.load_model(path, safe_mode=True)
    info_path = folder / f"{stem}.json"
    class_names = json.loads(info_path.read_text())["class_names"] if info_path.is_file() else None
    if num_classes is None and include_top and input_shape is None:
        model.class_names = class_names
        return model
    return _variant(model, num_classes, include_top, input_shape, class_names)


def _convert(architecture: str, tag: str | None, hub: Any) -> tuple[keras.Model, list | None]:
    """Downloads, builds timm's model, converts it; wraps it with timm's
    evaluation preprocessing. Returns the model and its class names."""
    refuse_late_triton(f"converting timm/{architecture}")
    try:
        import safetensors.torch
        import timm
    except ImportError as error:
        raise ImportError("converting a timm checkpoint needs timm and safetensors: "
                          "pip install 'attention-zoo[timm]'") from error
    from attention_zoo.interop.timm import from_timm

    full = architecture + (f".{tag}" if tag else "")
    try:
        config = timm.models.get_pretrained_cfg(full)
    except RuntimeError:
        config = None
    if config is None or not config.hf_hub_id:
        raise ValueError(f"timm knows no Hub checkpoint {PREFIX}{full!r}; its "
                         f"pretrained tags: timm.list_pretrained('{architecture}*')")
    if hub is None:
        import huggingface_hub as hub
    weights = hub.hf_hub_download(repo_id=config.hf_hub_id,
                                  filename=config.hf_hub_filename or WEIGHTS_FILE)
    torch_model = timm.create_model(architecture, pretrained=False,
                                    num_classes=config.num_classes)
    torch_model.load_state_dict(safetensors.torch.load_file(weights))
    classifier = from_timm(torch_model.eval())
    model = with_preprocessing(classifier, config.input_size[1:], config.crop_pct,
                               config.interpolation)
    return model, _class_names(config)


def with_preprocessing(classifier: keras.Model, size: Sequence[int], crop_pct: float,
                       interpolation: str = "bicubic") -> keras.Model:
    """``classifier`` (on ``size`` images, normalized inside, giving logits
    as timm's models do) behind timm's evaluation resize, the shorter side
    to ``floor(size / crop_pct)`` and the center ``size``, and followed by a
    float32 softmax when it has a head. Input: any ``(batch, H, W, 3)``."""
    height, width = (int(s) for s in size)
    scale = math.floor(min(height, width) / crop_pct)
    images = keras.Input((None, None, 3), name="pixels")
    # The largest centered square resized to scale x scale is the shorter
    # side resized to scale, center-cropped to a square.
    x = keras.layers.Resizing(scale, scale, interpolation=INTERPOLATIONS.get(
        interpolation, "bilinear"), crop_to_aspect_ratio=True, name="resize")(images)
    x = keras.layers.CenterCrop(height, width, name="center_crop")(x)
    return _finish(images, classifier(x), classifier)


def _finish(images: Any, outputs: Any, classifier: keras.Model) -> keras.Model:
    if classifier.include_top:
        outputs = keras.layers.Activation("softmax", dtype="float32",
                                          name="probabilities")(outputs)
    return keras.Model(images, outputs, name=classifier.name)


def _class_names(config: Any) -> list[str] | None:
    if config.num_classes != 1000:
        return None
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i) for i in range(1000)]


def _variant(model: keras.Model, num_classes: int | None, include_top: bool,
             input_shape: Sequence[int | None] | None, class_names: list | None
             ) -> keras.Model:
    """The cached model with a new head, no head, or a fixed input shape;
    the backbone's weights are the checkpoint's."""
    from attention_zoo.models.image_classifier import ImageClassifier

    wrapped = next(layer for layer in model.layers if isinstance(layer, ImageClassifier))
    head = type(wrapped)(
        wrapped.backbone, num_classes=num_classes or wrapped.num_classes,
        include_top=include_top, activation=None, rescale=wrapped.rescale,
        mean=wrapped.mean, std=wrapped.std, dropout=wrapped.dropout,
        name=wrapped.name)
    if num_classes is None and include_top:
        head.get_layer("fc").set_weights(wrapped.get_layer("fc").get_weights())
    images = keras.Input(tuple(input_shape) if input_shape is not None else (None, None, 3),
                         name="pixels")
    x = model.get_layer("center_crop")(model.get_layer("resize")(images))
    variant = _finish(images, head(x), head)
    variant.class_names = class_names if num_classes is None and include_top else None
    return variant
