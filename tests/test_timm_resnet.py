"""from_timm parity for timm's ResNet family: logits of the converted
AttnResNetImageClassifier on NHWC pixels against timm's on the same images
normalized NCHW, random weights, eval mode."""

from __future__ import annotations

import functools

from timm_parity import BATCH, SIZE, converted, relative_error, timm, torch

import keras
import numpy as np
import pytest

from attention_zoo.interop import from_timm
from attention_zoo.models import AttnResNetImageClassifier

resnet = timm.models.resnet
def small(attn_layer=None, block=resnet.BasicBlock, **kwargs):
    """A one-block-per-stage ResNet (fast), built as timm's create_model would."""
    return resnet.ResNet(block=block, layers=[1, 1, 1, 1], num_classes=7,
                         block_args=dict(attn_layer=attn_layer), **kwargs)


@pytest.mark.parametrize("name, attention", [
    ("resnet50d", None), ("seresnet50", "se"), ("seresnext26d_32x4d", "se"),
    ("ecaresnet50d", "eca"), ("ecaresnet101d", "eca")])
def test_timm_models_convert(name, attention):
    model = timm.create_model(name, pretrained=False, num_classes=10)
    keras_model, got, want = converted(model)
    assert isinstance(keras_model, AttnResNetImageClassifier)
    assert keras_model.backbone.get_config()["attention"] == attention
    assert relative_error(got, want) <= 1e-4


# timm name -> the zoo's (name, arguments) that reproduce it.
ATTENTION = {
    "gc": ("gca", {"fuse_add": False, "fuse_scale": True}),
    "cbam": ("lcbam", {"light": False}), "ecam": ("ecam", None),
    "coord": ("coord", None), "nl": ("nl", None)}


@pytest.mark.parametrize("attn_layer", list(ATTENTION))
def test_attention_layers_convert_in_basic_blocks(attn_layer):
    keras_model, got, want = converted(small(attn_layer))
    config = keras_model.backbone.get_config()
    assert (config["attention"], config["attention_kwargs"]) == ATTENTION[attn_layer]
    assert relative_error(got, want) <= 1e-4


def test_resnetrs_layout_and_its_se_ratio():
    """resnetrs's: a deep stem, a conv-BN-ReLU for the stem's max pool,
    average-pool shortcuts and SE at 1/4 (the zoo's se needs reduction=4)."""
    se = functools.partial(timm.layers.SEModule, rd_ratio=0.25)
    model = small(se, block=resnet.Bottleneck, stem_type="deep", stem_width=32,
                  replace_stem_pool=True, avg_down=True)
    keras_model, got, want = converted(model)
    config = keras_model.backbone.get_config()
    assert (config["attention"], config["attention_kwargs"]) == ("se", {"reduction": 4})
    assert relative_error(got, want) <= 1e-4


def test_deep_tiered_stem_bottleneck_resnext_and_senet_shortcut():
    """SENet-154's layout (3x3 strided shortcut convs, halved first widths)
    in a tiered stem, grouped bottlenecks, one input channel, no head."""
    model = small("ese", block=resnet.Bottleneck, cardinality=8, base_width=4,
                  stem_type="deep_tiered", stem_width=32, down_kernel_size=3,
                  block_reduce_first=2, in_chans=1)
    model.reset_classifier(0)
    keras_model, got, want = converted(model, channels=1)
    assert keras_model.output_shape == (None, 2048) and relative_error(got, want) <= 1e-4


def test_converted_model_saves_and_loads(tmp_path):
    keras_model, got, _ = converted(small("gc"))
    keras_model.save(tmp_path / "gc.keras")
    loaded = keras.saving.load_model(tmp_path / "gc.keras", safe_mode=True)
    pixels = np.random.default_rng(0).uniform(0, 255, (BATCH, SIZE, SIZE, 3))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(pixels.astype("float32"))),
                               got, rtol=1e-5, atol=1e-5 * np.abs(got).max())


@pytest.mark.parametrize("make, where", [
    (lambda: small(drop_block_rate=0.1), "layer3.0.drop_block is a timm.layers.drop"),
    (lambda: small(aa_layer=torch.nn.AvgPool2d), "maxpool is AvgPool2d"),
    (lambda: small(output_stride=16), "layer4.0.conv2 is Conv2d"),
    (lambda: small(act_layer="silu"), "act1 is a torch.nn.modules.activation.SiLU"),
    (lambda: small(global_pool="max"), "global pooling is 'max'"),
    (lambda: small("sk"), "SelectiveKernel in the blocks' feature-map attention slot"),
    (lambda: timm.create_model("skresnet18"), "layer1.0 is a timm.models.sknet"),
])
def test_unsupported_models_are_refused_with_what_is_supported(make, where):
    with pytest.raises(ValueError, match="from_timm cannot convert this ResNet") as error:
        from_timm(make().eval())
    assert where in str(error.value)
    assert "BasicBlock or Bottleneck" in str(error.value)
    assert "anti-aliasing (aa_layer), drop_block" in str(error.value)


def test_timms_own_linear_classifier_converts():
    """timm's pruned models hold a ``timm.layers.linear.Linear`` classifier:
    nn.Linear with the same product."""
    model = timm.create_model("resnet10t", pretrained=False, num_classes=10)
    linear = timm.layers.linear.Linear(model.fc.in_features, 10)
    linear.load_state_dict(model.fc.state_dict())
    model.fc = linear
    _, got, want = converted(model)
    assert relative_error(got, want) <= 1e-4
