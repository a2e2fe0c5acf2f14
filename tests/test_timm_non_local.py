"""timm's non-local attention (``nl``, ``bat``) against the zoo's layers:
parity of from_timm's conversions and the factory names' structure."""

from timm_parity import assert_converts, timm, torch  # noqa: I001

import keras
import numpy as np
import pytest

from attention_zoo.interop import from_timm
from attention_zoo.layers import registry
from attention_zoo.layers.non_local import BATNonLocalAttention, NonLocalAttention

create_attn = timm.layers.create_attn


# ------------------------------------------------------------------ parity --

@pytest.mark.parametrize("kwargs, shape", [
    ({}, (2, 16, 6, 5)),
    ({}, (2, 64, 5, 7)),
    ({"rd_ratio": 0.25, "use_scale": False}, (2, 64, 4, 6)),
    ({"rd_channels": 12, "rd_divisor": 4}, (2, 24, 3, 5)),
], ids=["default", "default_c64", "rd_ratio_noscale", "rd_channels"])
def test_nl_parity(kwargs, shape):
    layer = assert_converts(create_attn("nl", shape[1], **kwargs), shape)
    assert isinstance(layer, NonLocalAttention)
    assert layer.use_scale == kwargs.get("use_scale", True)


@pytest.mark.parametrize("kwargs, shape", [
    ({}, (2, 16, 14, 7)),
    ({"block_size": 4, "groups": 4, "rd_ratio": 0.5}, (2, 32, 8, 12)),
    ({"block_size": 3, "groups": 1}, (2, 16, 9, 6)),
    ({"block_size": 2, "act_layer": torch.nn.SiLU}, (2, 16, 4, 6)),
], ids=["default", "block4_groups4_rd", "block3_groups1", "silu"])
def test_bat_parity(kwargs, shape):
    layer = assert_converts(create_attn("bat", shape[1], **kwargs), shape)
    assert isinstance(layer, BATNonLocalAttention)
    assert layer.block_size == kwargs.get("block_size", 7)


def test_bat_maps_are_timms_normalized_matrices():
    """The maps are P and Q as timm computes them (before resize_mat)."""
    module = create_attn("bat", 16, block_size=2)
    layer = assert_converts(module, (1, 16, 4, 6))
    x = np.random.default_rng(0).standard_normal((1, 16, 4, 6)).astype("float32")
    captured = {}
    ba = module.ba

    def hook(_, args, __):
        out = ba.conv1(args[0])
        rp = torch.nn.functional.adaptive_max_pool2d(out, (2, 1))
        cp = torch.nn.functional.adaptive_max_pool2d(out, (1, 2))
        p = ba.conv_p(rp).view(1, 2, 2, 2).sigmoid()
        q = ba.conv_q(cp).view(1, 2, 2, 2).sigmoid()
        captured["height"] = (p / p.sum(3, keepdim=True)).numpy()
        captured["width"] = (q / q.sum(2, keepdim=True)).numpy()

    handle = ba.register_forward_hook(hook)
    with torch.no_grad():
        module(torch.from_numpy(x))
    handle.remove()
    _, maps = layer(x.transpose(0, 2, 3, 1), return_attention_scores=True)
    for key in ("height", "width"):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(maps[key]),
                                   captured[key], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------- structure --

def _torch_shapes(module):
    """Shapes of every parameter and BN statistic, in NHWC/Keras layout."""
    shapes = []
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if name.endswith("num_batches_tracked"):
            continue
        shape = tuple(tensor.shape)
        if len(shape) == 4:  # (out, in, kh, kw) -> (kh, kw, in, out)
            shape = (shape[2], shape[3], shape[1], shape[0])
            if shape[:2] == (1, 1):  # 1x1 convs are Dense layers here
                shape = shape[2:]
        shapes.append(shape)
    return sorted(shapes)


def _keras_shapes(layer):
    return sorted(tuple(v.shape) for v in layer.weights)


@pytest.mark.parametrize("channels", [16, 64, 96])
def test_nl_factory_matches_timm_structure(channels):
    module = create_attn("nl", channels)
    layer = registry.get("nl")
    layer.build((None, None, None, channels))
    assert _keras_shapes(layer) == _torch_shapes(module)
    assert layer.hidden == module.t.out_channels
    assert np.isclose(layer.norm.epsilon, module.norm.eps)
    # Both start as the identity: the BN scale is zero-initialized.
    x = np.random.default_rng(0).standard_normal((1, 4, 5, channels)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    assert not module.norm.weight.detach().any()


@pytest.mark.parametrize("channels", [16, 64, 96])
def test_bat_factory_matches_timm_structure(channels):
    module = create_attn("bat", channels)
    layer = registry.get("bat")
    layer.build((None, None, None, channels))
    assert _keras_shapes(layer) == _torch_shapes(module)
    assert layer.hidden == module.conv1.conv.out_channels
    assert (layer.block_size, layer.groups) == (module.ba.block_size, module.ba.groups)
    assert layer.drop_rate == module.dropout.p
    assert layer.activation == "relu"
    assert isinstance(module.conv1.bn.act, torch.nn.ReLU)
    assert np.isclose(layer.bn1.epsilon, module.conv1.bn.eps)


# --------------------------------------------------------------- refusals --

def test_bat_refuses_sizes_not_divisible_by_block_size():
    layer = registry.get("bat")
    with pytest.raises(ValueError, match="multiples of block_size 7"):
        layer(np.zeros((1, 14, 10, 16), "float32"))
    with pytest.raises(ValueError, match="multiples of block_size 7"):
        layer(keras.Input((10, 14, 16)))


def test_bat_refuses_groups_not_dividing_the_width():
    with pytest.raises(ValueError, match="groups must divide"):
        BATNonLocalAttention(groups=3, rd_channels=8)
    layer = BATNonLocalAttention(groups=3)  # d = 8 for C = 16
    with pytest.raises(ValueError, match="groups must divide"):
        layer.build((None, 7, 7, 16))


@pytest.mark.parametrize("kwargs, match", [
    ({"block_size": 0}, "block_size"), ({"groups": 1.5}, "groups"),
    ({"drop_rate": 1.0}, "drop_rate"), ({"activation": "nope"}, "nope"),
    ({"rd_ratio": -1}, "rd_ratio"),
])
def test_bat_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BATNonLocalAttention(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"use_scale": 1}, "use_scale"), ({"rd_divisor": 0}, "rd_divisor"),
    ({"norm_epsilon": 0}, "norm_epsilon"),
])
def test_nl_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NonLocalAttention(**kwargs)


def test_converter_refuses_an_unsupported_activation():
    module = create_attn("bat", 16, act_layer=torch.nn.ELU)
    with pytest.raises(ValueError, match="ELU"):
        from_timm(module)


def test_converter_refuses_a_strided_projection():
    module = create_attn("nl", 16)
    module.t.stride = (2, 2)
    with pytest.raises(ValueError, match="stride"):
        from_timm(module)


def test_bat_drops_whole_channels_of_the_update_while_training():
    layer = BATNonLocalAttention(block_size=2, drop_rate=0.5)
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 16)).astype("float32")
    update = keras.ops.convert_to_numpy(layer(x, training=True)) - x
    dropped = np.all(np.abs(update) < 1e-6, axis=(1, 2))  # (batch, C)
    assert dropped.any() and not dropped.all()
