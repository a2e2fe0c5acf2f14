"""from_timm parity for timm's channel and context attention: se, ese, eca,
ecam, ceca, ge, gc, gca, cbam, lcbam."""

from __future__ import annotations

import types

from timm_parity import assert_converts, randomize, relative_error, timm, torch

import keras
import numpy as np
import pytest

import attention_zoo.layers as L
from attention_zoo.interop import from_timm

create_attn = timm.layers.create_attn
NAMES = ["se", "ese", "eca", "ecam", "ceca", "ge", "gc", "gca", "cbam", "lcbam"]

#: The zoo arguments that give timm's module where the zoo's factory name
#: means something else (the layers' docstrings say the same).
TIMM_ARGS = {
    "se": dict(divisor=8),
    "eca": dict(min_kernel_size=3),
    "gc": dict(fuse_add=False, fuse_scale=True, reduction=8, min_units=1,
               divisor=1, epsilon=1e-6),
    "cbam": dict(min_units=1, divisor=1, use_bias=False, batch_norm=True),
}


@pytest.fixture(autouse=True)
def fixed_gather_excite(monkeypatch):
    """timm 1.0.31's GatherExcite passes ``*dd`` (the keys 'device' and
    'dtype') positionally to ConvMlp, create_conv2d and BatchNorm2d, so its
    MLP (the default) and its learned gather fail to build
    ("multiple values for argument"). Here those calls lose the stray
    arguments, which is what timm means (device and dtype left at None)."""
    import timm.layers.gather_excite as ge

    def first(fn, n):
        return lambda *args, **kwargs: fn(*args[:n], **kwargs)

    nn = types.SimpleNamespace(**{k: getattr(torch.nn, k) for k in dir(torch.nn)
                                  if not k.startswith("_")})
    nn.BatchNorm2d = first(torch.nn.BatchNorm2d, 1)
    monkeypatch.setattr(ge, "ConvMlp", first(ge.ConvMlp, 2))
    monkeypatch.setattr(ge, "create_conv2d", first(ge.create_conv2d, 2))
    monkeypatch.setattr(ge, "nn", nn)


def test_timm_gather_excite_without_the_fixture(monkeypatch):
    """What timm builds unpatched: the MLP-free parameter-free module only."""
    import timm.layers.gather_excite as ge
    monkeypatch.undo()
    assert_converts(ge.GatherExcite(16, use_mlp=False), (2, 16, 6, 5))
    try:
        ge.GatherExcite(16)
    except TypeError as error:
        assert "multiple values" in str(error)
    else:
        pytest.skip("timm builds GatherExcite's MLP now: the fixture can go")


@pytest.mark.parametrize("name", NAMES)
def test_default_modules_convert(name):
    layer = assert_converts(create_attn(name, 32), (2, 32, 6, 5))
    assert layer.built


VARIANTS = {
    "se_rd_bias_maxpool_hard": ("se", dict(rd_ratio=1 / 4, rd_divisor=4, bias=False,
                                           add_maxpool=True, gate_layer="hard_sigmoid"),
                                (2, 24, 5, 7)),
    "se_rd_channels": ("se", dict(rd_channels=5), (2, 16, 6, 5)),
    "ese_maxpool_sigmoid": ("ese", dict(add_maxpool=True, gate_layer="sigmoid"),
                            (2, 16, 6, 5)),
    "eca_k5_hard": ("eca", dict(gate_layer="hard_sigmoid"), (2, 256, 3, 4)),
    "ecam_k5_rd": ("ecam", dict(rd_ratio=1 / 4, rd_divisor=4), (2, 256, 3, 4)),
    "ecam_rd_channels": ("ecam", dict(rd_channels=3), (2, 16, 6, 5)),
    "ceca_k5": ("ceca", dict(gate_layer="hard_sigmoid"), (2, 256, 3, 4)),
    "ge_no_mlp": ("ge", dict(use_mlp=False), (2, 16, 6, 5)),
    "ge_extent2_no_mlp_maxpool": ("ge", dict(extent=2, use_mlp=False, add_maxpool=True),
                                  (2, 16, 7, 6)),
    "ge_extent4_no_mlp": ("ge", dict(extent=4, use_mlp=False), (2, 16, 9, 5)),
    "ge_extent2_mlp": ("ge", dict(extent=2, rd_ratio=1 / 4), (2, 16, 6, 5)),
    "ge_extent4_params": ("ge", dict(extent=4, extra_params=True, use_mlp=False),
                          (2, 16, 7, 6)),
    "ge_extent2_params_mlp_hard": ("ge", dict(extent=2, extra_params=True,
                                              gate_layer="hard_sigmoid"),
                                   (2, 16, 6, 5)),
    "gc_both_rd": ("gc", dict(fuse_add=True, rd_ratio=1 / 4), (2, 16, 6, 5)),
    "gc_no_attn_hard": ("gc", dict(use_attn=False, gate_layer="hard_sigmoid",
                                   rd_channels=3), (2, 16, 6, 5)),
    "gca_rd_divisor": ("gca", dict(rd_ratio=1 / 16, rd_divisor=4), (2, 64, 5, 6)),
    "cbam_k3_bias": ("cbam", dict(rd_ratio=1 / 4, spatial_kernel_size=3,
                                  mlp_bias=True), (2, 16, 6, 5)),
    "lcbam_k5_rd": ("lcbam", dict(rd_ratio=1 / 8, spatial_kernel_size=5),
                    (2, 16, 6, 5)),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_variants_convert(variant):
    name, kwargs, shape = VARIANTS[variant]
    assert_converts(create_attn(name, shape[1], **kwargs), shape)


def test_modules_without_channel_count_convert():
    """timm's ECA modules built without ``channels`` (a fixed kernel), and
    CBAM's spatial half, record no channel count: they convert unbuilt."""
    from timm.layers import CecaModule, EcaModule
    from timm.layers.cbam import LightSpatialAttn, SpatialAttn

    for module in (EcaModule(kernel_size=7), CecaModule(kernel_size=5),
                   SpatialAttn(5), LightSpatialAttn(3)):
        layer = assert_converts(module, (2, 16, 6, 5))
        assert layer.built


def test_cbam_halves_convert():
    from timm.layers.cbam import ChannelAttn, LightChannelAttn

    assert_converts(ChannelAttn(16, rd_ratio=1 / 4), (2, 16, 6, 5))
    assert_converts(LightChannelAttn(16, mlp_bias=True), (2, 16, 6, 5))


@pytest.mark.parametrize("make, words", [
    (lambda: create_attn("se", 16, norm_layer=torch.nn.BatchNorm2d), "norm_layer"),
    (lambda: create_attn("se", 16, act_layer=torch.nn.SiLU), "SiLU"),
    (lambda: create_attn("eca", 16, gate_layer="tanh"), "gate"),
    (lambda: create_attn("ecam", 16, act_layer=torch.nn.GELU), "GELU"),
    (lambda: create_attn("ceca", 16, act_layer=torch.nn.ReLU), "bias"),
    (lambda: create_attn("gc", 16, fuse_scale=False), "neither"),
    (lambda: create_attn("ge", 16, extra_params=True, feat_size=(6, 5)), "global"),
    (lambda: create_attn("ge", 16, extent=2, extra_params=True, norm_layer=None),
     "BatchNorm2d"),
    (lambda: create_attn("cbam", 16, gate_layer="hard_sigmoid"), "Sigmoid"),
])
def test_unsupported_settings_are_refused(make, words):
    try:
        module = make()
    except TypeError:  # timm itself cannot build it
        pytest.skip("timm cannot build this module")
    with pytest.raises(ValueError, match=words):
        from_timm(module)


def _nhwc(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1)


@pytest.mark.parametrize("channels", [4, 24, 200])
@pytest.mark.parametrize("name", NAMES)
def test_factory_name_builds_timms_module(name, channels):
    """``layers.get(name)`` (with ``TIMM_ARGS`` where the zoo's name means
    its own layer) has the weights of ``create_attn(name, C)`` (widths
    rounded alike) and, holding them, computes what the module computes
    (epsilons, gates, activations alike)."""
    module = randomize(create_attn(name, channels))
    x = np.random.default_rng(1).standard_normal((2, channels, 6, 5)).astype("float32")
    with torch.no_grad():
        want = _nhwc(module(torch.from_numpy(x)).numpy())
    converted = from_timm(module)
    converted(_nhwc(x))
    layer = L.get(name, **TIMM_ARGS.get(name, {}))
    layer(_nhwc(x))
    assert type(layer) is type(converted)
    assert [tuple(v.shape) for v in layer.weights] == \
        [tuple(v.shape) for v in converted.weights]
    layer.set_weights(converted.get_weights())
    got = keras.ops.convert_to_numpy(layer(_nhwc(x)))
    assert relative_error(got, want) <= 1e-4
