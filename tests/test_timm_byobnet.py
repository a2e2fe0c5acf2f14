"""from_timm parity for timm's ByobNet attention models (byoanet's BoTNet,
HaloNet and Lambda ResNets, byobnet's attention ResNeXts): logits of the
converted ByoaNetImageClassifier on NHWC pixels against timm's on the same
images normalized NCHW, random weights, eval mode; and the whole
``models.load("timm/...")`` path for one of them."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from timm_parity import (FakeHub, converted, randomized, relative_error, timm,
                         timm_probabilities)

from attention_zoo import models
from attention_zoo.interop import from_timm
from attention_zoo.models import ByoaNetImageClassifier

byobnet = timm.models.byobnet


@pytest.mark.parametrize("name, size, kwargs, attention, self_attention", [
    ("botnet26t_256", 64, dict(img_size=64), None, ["bottleneck"] * 2),
    ("sebotnet33ts_256", 64, dict(img_size=64), "se", ["bottleneck"] * 3),
    ("eca_halonext26ts", 256, {}, "eca", ["halo"] * 2),
    ("lambda_resnet26rpt_256", 64, dict(img_size=64), None, ["lambda"] * 2),
    ("gcresnext26ts", 64, {}, "gca", []),
])
def test_timm_models_convert(name, size, kwargs, attention, self_attention):
    model = timm.create_model(name, pretrained=False, num_classes=10, **kwargs)
    keras_model, got, want = converted(model, size=size)
    assert isinstance(keras_model, ByoaNetImageClassifier)
    config = keras_model.backbone.get_config()
    assert config["attention"] == attention
    assert [s["self_attention"] for s in config["stages"]
            if s["self_attention"]] == self_attention
    assert relative_error(got, want) <= 1e-4


def test_mixed_self_attention_stages_avg_shortcuts_and_a_7x7_stem(tmp_path):
    """lamhalobotnet's mix (lambda, halo and bottleneck stages), with
    byobnet's other options: 7x7 stem, average-pool shortcuts, a final conv;
    small widths. The .keras file holds it."""
    cfg = byobnet.ByoModelCfg(
        blocks=(
            byobnet.ByoBlockCfg(type="bottle", d=1, c=32, s=1, gs=8, br=0.5),
            byobnet.interleave_blocks(types=("bottle", "self_attn"), d=2, c=64, s=2,
                                      br=0.25, self_attn_layer="lambda",
                                      self_attn_kwargs=dict(r=5)),
            byobnet.ByoBlockCfg(type="self_attn", d=1, c=64, s=2, br=0.5,
                                self_attn_layer="halo",
                                self_attn_kwargs=dict(block_size=4, halo_size=1)),
            byobnet.ByoBlockCfg(type="self_attn", d=2, c=96, s=2, br=0.5,
                                self_attn_layer="bottleneck", self_attn_kwargs={}),
        ),
        stem_chs=16, stem_type="7x7", stem_pool="maxpool", downsample="avg",
        act_layer="silu", attn_layer="ese", num_features=48)
    model = byobnet.ByobNet(cfg, num_classes=5, img_size=64)
    keras_model, got, want = converted(model)
    config = keras_model.backbone.get_config()
    assert (config["downsample"], config["activation"], config["stem_widths"]) == \
        ("avg", "silu", [16])
    assert [s["self_attention"] for s in config["stages"]] == \
        [None, "lambda", "halo", "bottleneck"]
    assert relative_error(got, want) <= 1e-4
    keras_model.save(tmp_path / "mixed.keras")
    loaded = keras.saving.load_model(tmp_path / "mixed.keras", safe_mode=True)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(pixels)), got,
                               rtol=1e-5, atol=1e-5 * np.abs(got).max())


@pytest.mark.parametrize("name, match", [
    ("haloregnetz_b", "act"),     # linear_out blocks: no activation after the sum
    ("repvgg_a0", "RepVggBlock"),  # blocks the backbone does not have
])
def test_other_byobnets_are_refused_by_name(name, match):
    model = timm.create_model(name, pretrained=False).eval()
    with pytest.raises(ValueError, match=f"(?s)cannot convert.*{match}"):
        from_timm(model)


def test_a_byoanet_checkpoint_loads_from_the_hub_path(tmp_path):
    fake = FakeHub(tmp_path, "botnet26t_256", init=randomized)
    model = models.load("timm/botnet26t_256.c1_in1k", hub=fake, cache=tmp_path / "cache")
    pixels = np.random.default_rng(0).integers(0, 256, (2, 200, 300, 3)).astype("uint8")
    probabilities = np.asarray(model.predict(pixels, verbose=0))
    want = timm_probabilities(model, fake.model, pixels, "botnet26t_256.c1_in1k")
    assert relative_error(probabilities, want) <= 1e-4
    five = models.load("timm/botnet26t_256.c1_in1k", cache=tmp_path / "cache",
                       num_classes=5)
    assert five.predict(pixels, verbose=0).shape == (2, 5) and len(fake.calls) == 1
