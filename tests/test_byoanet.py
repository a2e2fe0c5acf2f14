"""ByoaNetBackbone built from scratch (timm's byoanet layout without timm):
shapes, a training step, and clear errors for malformed stages."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from attention_zoo.models import ByoaNetBackbone, ByoaNetImageClassifier
from attention_zoo.models.torch_style import TorchMaxPooling2D

STAGES = [
    {"blocks": ["bottle"], "channels": 16, "strides": 1, "bottle_ratio": 0.5},
    {"blocks": ["bottle", "self_attn"], "channels": 32, "group_size": 4,
     "bottle_ratio": 0.5, "self_attention": "lambda",
     "self_attention_kwargs": {"r": 3, "dim_head": 4}},
]


def test_a_small_byoanet_trains_and_keeps_its_shapes():
    backbone = ByoaNetBackbone(STAGES, input_shape=(32, 32, 3), stem_widths=[8, 16],
                               activation="silu", attention="eca", num_features=24)
    # 32 -> stem /4 -> 8 -> stage 2 /2 -> 4
    assert backbone.output_shape == (None, 4, 4, 24)
    model = ByoaNetImageClassifier(backbone, num_classes=3)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    assert model(x).shape == (4, 3)
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x, np.arange(4) % 3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_the_max_pool_pads_with_minus_infinity():
    x = -np.ones((1, 4, 4, 1), "float32")  # all negative: zero padding would give 0
    got = keras.ops.convert_to_numpy(TorchMaxPooling2D(3, 2, 1)(x))
    np.testing.assert_array_equal(got, -np.ones((1, 2, 2, 1)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(stages=[]), "non-empty list"),
    (dict(stages=[{"blocks": ["dark"], "channels": 8}]), r"stages\[0\]\['blocks'\]"),
    (dict(stages=[{"blocks": ["bottle"], "channels": 8, "width": 2}]), "unknown keys"),
    (dict(stages=[{"blocks": ["self_attn"], "channels": 8}]), "self_attention"),
    (dict(stages=[{"blocks": ["self_attn"], "channels": 8, "self_attention": "se"}]),
     "conv layer name"),
    (dict(stages=STAGES, attention="halo"), "feature_map layer name"),
    (dict(stages=STAGES, activation="gelu"), "activation"),
    (dict(stages=STAGES, stem_pool="avg"), "stem_pool"),
    (dict(stages=[{"blocks": ["bottle"], "channels": 8, "group_size": 3}]),
     "group_size 3 does not divide"),
])
def test_malformed_backbones_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ByoaNetBackbone(**kwargs)


def test_the_classifier_takes_only_its_backbone():
    with pytest.raises(TypeError, match="ByoaNetBackbone"):
        ByoaNetImageClassifier(keras.Sequential([keras.layers.Dense(2)]))
