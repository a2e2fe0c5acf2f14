"""AttnResNet: timm's ResNet family built by depth and attention name, its
layout, saving, training with ``training.fit`` and its argument checks.
Parity with timm's weights is tests/test_timm_resnet.py's."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from attention_zoo import data, models, training
from attention_zoo.data.images import ImageSet
from attention_zoo.layers import SqueezeExcite
from attention_zoo.models import AttnResNet, AttnResNetBackbone, AttnResNetImageClassifier

#: Narrow stages for the tests that run a model.
NARROW = {"channels": (8, 16, 32, 64), "num_classes": 10}


def _layers(model: keras.Model, cls: type) -> list[keras.layers.Layer]:
    return [layer for layer in model.backbone.layers if isinstance(layer, cls)]


def _pixels(n: int = 2, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_registered_builder_gives_seresnet50_layout():
    model = models.create("attn_resnet", depth=50, attention="se")
    assert isinstance(model, AttnResNetImageClassifier)
    assert isinstance(model.backbone, AttnResNetBackbone)
    assert model.backbone.output_shape == (None, 7, 7, 2048)
    assert model.output_shape == (None, 1000)
    attention = _layers(model, SqueezeExcite)
    assert [l.name for l in attention[:2]] == ["layer1_0_se", "layer1_1_se"]
    assert len(attention) == 3 + 4 + 6 + 3
    # timm's 7x7 stem pads 3 on every side, its max pool 1: explicit pads.
    assert model.backbone.get_layer("conv1_pad").padding == ((3, 3), (3, 3))
    assert model.backbone.get_layer("layer2_0_conv2").strides == (2, 2)


def test_d_variant_resnext_has_deep_stem_and_average_pool_shortcuts():
    model = AttnResNet(26, "eca", variant="d", cardinality=32, base_width=4,
                       input_shape=(64, 64, 3))
    backbone = model.backbone
    assert backbone.get_layer("conv1_0").filters == 32
    assert backbone.get_layer("conv1_6").filters == 64
    assert isinstance(backbone.get_layer("layer2_0_downsample_0"),
                      keras.layers.AveragePooling2D)
    conv2 = backbone.get_layer("layer1_0_conv2")
    assert (conv2.filters, conv2.groups) == (128, 32)  # 64 * 4 / 64 * 32
    assert backbone.output_shape == (None, 2, 2, 2048)


def test_conv_attention_replaces_the_strided_convolution():
    sk = AttnResNet(18, "sk", input_shape=(32, 32, 3), **NARROW)
    layer = sk.backbone.get_layer("layer2_0_conv1")
    assert type(layer).__name__ == "SelectiveKernel" and layer.strides == 2
    # SelectiveKernel normalizes its own branches: no BatchNorm after it.
    assert "layer2_0_bn1" not in [l.name for l in sk.backbone.layers]
    assert isinstance(sk.backbone.get_layer("layer2_0_conv2"), keras.layers.Conv2D)

    bot = AttnResNet(26, "bottleneck", input_shape=(64, 64, 3), **NARROW)
    layer = bot.backbone.get_layer("layer4_0_conv2")
    assert type(layer).__name__ == "BottleneckSelfAttention" and layer.strides == 2
    assert isinstance(bot.backbone.get_layer("layer4_0_bn2"),
                      keras.layers.BatchNormalization)
    p = bot.predict(_pixels(size=64), verbose=0)
    assert p.shape == (2, 10) and np.allclose(p.sum(-1), 1.0, atol=1e-5)


def test_preprocessing_is_inside_and_optional():
    model = AttnResNet(10, "cbam", input_shape=(None, None, 3), **NARROW)
    pixels = _pixels()
    np.testing.assert_allclose(model.predict(pixels, verbose=0),
                               model.predict(pixels.astype("float32"), verbose=0),
                               rtol=1e-5)
    bare = AttnResNet(10, input_shape=(32, 32, 3), rescale=None, mean=None, std=None,
                      activation=None, include_top=False, **NARROW)
    assert {"rescale", "normalize", "fc"}.isdisjoint(l.name for l in bare.layers)
    assert bare.output_shape == (None, 64)


def test_keras_file_round_trip_in_safe_mode(tmp_path):
    model = AttnResNet(10, "gc", input_shape=(32, 32, 3), variant="t",
                       attention_kwargs={"reduction": 4}, **NARROW)
    path = tmp_path / "resnet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, AttnResNetImageClassifier)
    assert loaded.backbone.get_config() == model.backbone.get_config()
    pixels = _pixels()
    np.testing.assert_allclose(loaded.predict(pixels, verbose=0),
                               model.predict(pixels, verbose=0), atol=1e-6)


def test_trains_one_epoch_with_fit(tmp_path):
    rng = np.random.default_rng(0)
    images = ImageSet(_pixels(64), rng.integers(0, 10, 64), tuple(map(str, range(10))))
    recipe = training.get_recipe("cifar10_sgd", epochs=1, batch_size=32, tta=False,
                                 lookahead=0)
    train = data.pipeline(images, 32, training=True, num_classes=10, flip=recipe.flip)
    val = data.pipeline(images.take(np.arange(32)), 32, num_classes=10)
    result = training.fit(lambda: AttnResNet(10, "se", input_shape=(32, 32, 3), **NARROW),
                          train, val, recipe=recipe, out_dir=tmp_path / "run",
                          verbose=0, log=lambda _: None)
    assert np.isfinite(result.history["loss"]).all()
    assert 0.0 <= result.val_accuracy <= 1.0
    loaded = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    assert isinstance(loaded, AttnResNetImageClassifier)


@pytest.mark.parametrize("kwargs, message", [
    (dict(depth=19), "depth must be one of 10, 14, 18"),
    (dict(depth="50"), "depth must be one of"),
    (dict(attention="nope"), "attention must be None or a feature-map or conv"),
    (dict(attention="mha"), "attention must be None or a feature-map or conv"),
    (dict(variant="x"), "variant must be one of"),
    (dict(depth=18, cardinality=32), "basic blocks take cardinality=1"),
    (dict(channels=(64, 128)), "channels needs one entry per stage"),
    (dict(num_classes=0), "num_classes must be a positive int"),
    (dict(mean=(0.5, 0.5, 0.5), std=None), "mean and std go together"),
    (dict(std=(1.0, 0.0, 1.0)), "std needs one positive number per input channel"),
    (dict(activation="relu"), "activation must be 'softmax' or None"),
    (dict(input_shape=(32, 32)), "input_shape must be"),
    (dict(attention_kwargs={"reduction": 4}), "attention_kwargs"),
    (dict(attention="sk", attention_kwargs={"strides": 1}), "must not set"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AttnResNet(**{"depth": 10, "input_shape": (32, 32, 3), **NARROW, **kwargs})


def test_backbone_refuses_other_than_a_backbone_and_bad_blocks():
    with pytest.raises(TypeError, match="AttnResNetBackbone"):
        AttnResNetImageClassifier(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="block must be one of basic, bottleneck"):
        AttnResNetBackbone(block="wide")
    with pytest.raises(ValueError, match="stem_type must be one of"):
        AttnResNetBackbone(stem_type="deeper")
    with pytest.raises(ValueError, match="layers must be a non-empty list"):
        AttnResNetBackbone(layers=(2, 0, 2, 2))


def test_a_backbone_as_deep_as_timms_deepest_builds():
    """Keras maps a functional graph recursively, a frame per layer on the
    longest path; timm's seresnet269d passes Python's default limit."""
    import sys

    from attention_zoo.models.backbone import Backbone

    class Deep(Backbone):
        def __init__(self, **kwargs):
            inputs = x = keras.Input((4,))
            for _ in range(1500):
                x = keras.layers.Activation("relu")(x)
            super().__init__(inputs=inputs, outputs=x, **kwargs)

    limit = sys.getrecursionlimit()
    assert limit < 1500 and len(Deep().layers) == 1501
    assert sys.getrecursionlimit() == limit
