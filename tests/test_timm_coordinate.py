"""timm's coordinate attention modules (coord, scoord, ela, strip) against
the zoo's layers: converted weights give the same outputs, and the factory
names build timm's defaults."""

from functools import partial

import numpy as np
import pytest

from timm_parity import assert_converts, timm, torch  # noqa: E402

from attention_zoo.interop import from_timm  # noqa: E402
from attention_zoo.layers import coordinate  # noqa: E402
from attention_zoo.layers.registry import LAYERS, get  # noqa: E402

create_attn = timm.layers.create_attn
nn = torch.nn
SHAPE = (2, 32, 7, 9)  # H != W, odd sizes


@pytest.mark.parametrize("name", ["coord", "scoord", "ela", "strip"])
def test_timm_defaults_convert(name):
    layer = assert_converts(create_attn(name, SHAPE[1]), SHAPE)
    assert type(layer) is type(get(name))


@pytest.mark.parametrize("name,kwargs", [
    ("coord", {"rd_ratio": 1 / 8, "bias": True, "act_layer": nn.SiLU,
               "gate_layer": "hardsigmoid", "has_skip": True}),
    ("coord", {"rd_channels": 12, "norm_layer": None, "act_layer": nn.ReLU}),
    ("scoord", {"rd_channels": 12, "bias": False, "act_layer": nn.Hardswish,
                "gate_layer": "hardsigmoid", "has_skip": True}),
    ("scoord", {"rd_ratio": 1 / 2, "rd_divisor": 4}),
    ("ela", {"kernel_size": 5, "bias": True, "norm_layer": partial(nn.GroupNorm, 4),
             "act_layer": nn.ReLU, "has_skip": True}),
    ("ela", {"kernel_size": 3, "norm_layer": None, "act_layer": nn.Identity,
             "gate_layer": "hardsigmoid"}),
    ("strip", {"kernel_size": 5, "bias": True, "gate_layer": "hardsigmoid",
               "has_skip": True}),
    ("strip", {"use_conv": False}),
], ids=lambda v: v if isinstance(v, str) else None)
def test_other_configurations_convert(name, kwargs):
    assert_converts(create_attn(name, SHAPE[1], **kwargs), SHAPE, seed=1)


def test_batch_norm_hyperparameters_carry_over():
    layer = from_timm(create_attn("coord", 32, norm_layer=partial(
        nn.BatchNorm2d, eps=1e-3, momentum=0.2)))
    assert layer.bn.epsilon == pytest.approx(1e-3)
    assert layer.bn.momentum == pytest.approx(0.8)


def _sizes(tensors) -> list:
    return sorted(int(np.prod(t.shape)) for t in tensors)


@pytest.mark.parametrize("name", ["coord", "scoord", "ela", "strip"])
@pytest.mark.parametrize("channels", [16, 96, 288, 1000])
def test_factory_name_builds_timm_structure(name, channels):
    module = create_attn(name, channels)
    layer = get(name)
    layer.build((None, None, None, channels))
    assert _sizes(layer.trainable_weights) == _sizes(module.parameters())
    running = [b for n, b in module.named_buffers() if n.endswith(("mean", "var"))]
    assert _sizes(layer.non_trainable_weights) == _sizes(running)
    # The converted module is the factory's layer, hyperparameters and all
    # (the converter passes the bottleneck width explicitly).
    converted = from_timm(module).get_config()
    config = layer.get_config()
    for c in (converted, config):
        c.pop("name")
        c.pop("units", None)
    assert converted == config


def test_factory_widths_round_as_timm_for_every_channel_count():
    for name, timm_ratio in (("coord", 1 / 16), ("scoord", 0.25)):
        d = LAYERS.entry(name).defaults
        reduction = d.get("reduction", 6)  # scoord's is the class default
        for channels in range(1, 4097):
            want = timm.layers.make_divisible(channels * timm_ratio * 2 / 3, 8,
                                              round_limit=0.0)
            got = coordinate.make_divisible(channels / reduction, 8, round_limit=0.0)
            assert got == want, (name, channels)


def test_coordinate_keeps_its_meaning():
    """The zoo's own ``coordinate`` (saved files use it) is unchanged."""
    layer = get("coordinate")
    layer.build((None, None, None, 64))
    assert layer.hidden == 8 and layer.use_bias and layer.bn.epsilon == 1e-3
    assert layer.activation == "hard_swish" and layer.gate == "sigmoid"
    assert not layer.residual


@pytest.mark.parametrize("name,kwargs,what", [
    ("coord", {"act_layer": nn.GELU}, "act"),
    ("coord", {"norm_layer": nn.InstanceNorm2d}, "bn1"),
    ("scoord", {"gate_layer": "tanh"}, "gate"),
    ("ela", {"norm_layer": nn.BatchNorm2d}, "norm"),
])
def test_unsupported_settings_are_refused(name, kwargs, what):
    with pytest.raises(ValueError, match=what):
        from_timm(create_attn(name, 32, **kwargs))


def test_even_strip_kernels_are_refused():
    module = create_attn("strip", 32, kernel_size=4)
    with pytest.raises(ValueError, match="odd"):
        from_timm(module)
    with pytest.raises(ValueError, match="odd"):
        get("ela", kernel_size=4)
