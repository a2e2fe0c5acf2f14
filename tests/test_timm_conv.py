"""timm's convolution-replacing attention (``sk``, ``splat``) against the
zoo's layers: parity of from_timm's conversions, the maps, the factory
names' structure, and the settings the converters refuse."""

from functools import partial

from timm_parity import assert_converts, randomize, timm, torch  # noqa: I001

import keras
import numpy as np
import pytest

from attention_zoo.interop import from_timm
from attention_zoo.layers.registry import get
from attention_zoo.layers.selective_kernel import SelectiveKernel
from attention_zoo.layers.split_attention import SplitAttention

create_attn = timm.layers.create_attn
nn = torch.nn
SHAPE = (2, 16, 6, 5)  # H != W; even H and odd W under stride 2


# ------------------------------------------------------------------ parity --

@pytest.mark.parametrize("name, cls", [("sk", SelectiveKernel),
                                       ("splat", SplitAttention)])
def test_timm_defaults_convert(name, cls):
    layer = assert_converts(create_attn(name, SHAPE[1]), SHAPE)
    assert type(layer) is cls


@pytest.mark.parametrize("kwargs, shape", [
    ({"stride": 2, "out_channels": 24, "groups": 2}, SHAPE),
    ({"kernel_size": [3, 5, 7], "dilation": 2, "split_input": False}, (2, 8, 7, 6)),
    ({"kernel_size": 5, "keep_3x3": False, "rd_ratio": 0.5, "rd_divisor": 4,
      "stride": 2}, (2, 16, 7, 6)),
    # Strides beyond 2: timm's padding adds (stride - 1) // 2.
    ({"stride": 3, "out_channels": 8, "rd_channels": 6}, (2, 16, 8, 7)),
], ids=["stride2_out24_groups2", "three_paths_dilated_nosplit",
        "keep5x5_rd", "stride3_rd_channels"])
def test_sk_configurations_convert(kwargs, shape):
    layer = assert_converts(create_attn("sk", shape[1], **kwargs), shape, seed=1)
    assert layer.strides == kwargs.get("stride", 1)


@pytest.mark.parametrize("kwargs, shape", [
    ({"stride": 2, "out_channels": 24, "groups": 2}, SHAPE),
    ({"radix": 1, "groups": 4}, SHAPE),
    ({"radix": 4, "groups": 2, "norm_layer": nn.BatchNorm2d, "bias": True}, SHAPE),
    # ResNeSt's dilated splat pads `dilation`; radix 3 does not divide 32.
    ({"radix": 3, "dilation": 2, "padding": 2, "stride": 3, "out_channels": 12},
     (2, 12, 7, 8)),
    ({"kernel_size": 5, "rd_channels": 6, "norm_layer": nn.BatchNorm2d},
     (2, 16, 5, 6)),
], ids=["stride2_out24_groups2", "radix1_sigmoid", "radix4_bn_bias",
        "radix3_dilated_stride3", "k5_rd_channels"])
def test_splat_configurations_convert(kwargs, shape):
    assert_converts(create_attn("splat", shape[1], **kwargs), shape, seed=1)


def test_batch_norm_epsilons_carry_over():
    norm = partial(nn.BatchNorm2d, eps=1e-3)
    # timm's SelectiveKernelAttn keeps PyTorch's BatchNorm2d whatever the
    # branches use.
    sk = assert_converts(create_attn("sk", 16, norm_layer=norm), SHAPE)
    assert [bn.epsilon for bn in sk.path_bns] == pytest.approx([1e-3, 1e-3])
    assert sk.attn_bn.epsilon == pytest.approx(1e-5)
    splat = assert_converts(create_attn("splat", 16, norm_layer=norm), SHAPE)
    assert splat.bn0.epsilon == pytest.approx(1e-3)
    assert splat.bn1.epsilon == pytest.approx(1e-3)


# -------------------------------------------------------------------- maps --

def _maps(layer, x):
    _, maps = layer(x.transpose(0, 2, 3, 1), return_attention_scores=True)
    assert keras.backend.standardize_dtype(maps.dtype) == "float32"
    return keras.ops.convert_to_numpy(maps)


@pytest.mark.parametrize("name, kwargs, hooked", [
    ("sk", {"kernel_size": [3, 5, 7], "split_input": False}, "attn"),
    ("splat", {"radix": 4, "groups": 2}, "rsoftmax"),
    ("splat", {"radix": 1}, "rsoftmax"),
], ids=["sk_three_paths", "splat_radix4_groups2", "splat_radix1"])
def test_maps_are_timms_branch_weights(name, kwargs, hooked):
    """The maps are timm's weights over branches / splits, (batch, n, filters)."""
    module = randomize(create_attn(name, 16, **kwargs))
    layer = from_timm(module)
    x = np.random.default_rng(2).standard_normal(SHAPE).astype("float32")
    captured = []
    handle = getattr(module, hooked).register_forward_hook(
        lambda _, __, out: captured.append(out.detach().numpy()))
    with torch.no_grad():
        module(torch.from_numpy(x))
    handle.remove()
    maps = _maps(layer, x)
    n = len(module.paths) if name == "sk" else module.radix
    assert maps.shape == (SHAPE[0], n, 16)
    np.testing.assert_allclose(maps, captured[0].reshape(maps.shape), rtol=1e-5,
                               atol=1e-6)


# --------------------------------------------------------------- structure --

def _torch_structure(module):
    """Parameter and BN statistic shapes in Keras layout, sorted."""
    shapes = []
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if name.endswith("num_batches_tracked"):
            continue
        shape = tuple(tensor.shape)
        if len(shape) == 4:  # (out, in / groups, kh, kw) -> (kh, kw, in / groups, out)
            shape = (shape[2], shape[3], shape[1], shape[0])
        shapes.append(shape)
    return sorted(shapes)


def _convs(module):
    return sorted((m.kernel_size[0], m.dilation[0], m.stride[0], m.groups,
                   m.bias is not None) for m in module.modules()
                  if isinstance(m, nn.Conv2d))


def _keras_convs(layer):
    convs = [v for v in layer._flatten_layers(include_self=False)
             if isinstance(v, keras.layers.Conv2D)]
    # A dilated strided branch runs at stride 1 and subsamples.
    return sorted((c.kernel_size[0], c.dilation_rate[0],
                   layer.strides if c.kernel_size[0] > 1 else 1, c.groups,
                   c.use_bias) for c in convs)


@pytest.mark.parametrize("name, timm_kwargs, zoo_kwargs, channels", [
    ("sk", {}, {}, 16),
    ("sk", {}, {}, 256),
    ("sk", {"stride": 2, "out_channels": 48, "groups": 4, "dilation": 2},
     {"strides": 2, "filters": 48, "groups": 4, "dilation": 2}, 32),
    ("splat", {}, {}, 16),
    ("splat", {}, {}, 256),
    ("splat", {"stride": 2, "out_channels": 48, "groups": 2, "radix": 4,
               "norm_layer": nn.BatchNorm2d},
     {"strides": 2, "filters": 48, "groups": 2, "radix": 4,
      "use_batch_norm": True}, 32),
], ids=["sk_c16", "sk_c256", "sk_kwargs", "splat_c16", "splat_c256",
        "splat_kwargs"])
def test_factory_matches_timm_structure(name, timm_kwargs, zoo_kwargs, channels):
    """``get(name)`` is ``create_attn(name, C)``: same weights, convolutions
    (kernel, dilation, stride, groups, bias) and BatchNorm epsilons;
    create_attn's ``out_channels`` / ``stride`` are ``filters`` / ``strides``."""
    module = create_attn(name, channels, **timm_kwargs)
    layer = get(name, **zoo_kwargs)
    layer.build((None, None, None, channels))
    assert sorted(tuple(v.shape) for v in layer.weights) == _torch_structure(module)
    assert _keras_convs(layer) == _convs(module)
    epsilons = {m.eps for m in module.modules() if isinstance(m, nn.BatchNorm2d)}
    assert {bn.epsilon for bn in layer._flatten_layers(include_self=False)
            if isinstance(bn, keras.layers.BatchNormalization)} == epsilons
    assert not isinstance(module, nn.Identity)


def test_make_divisible_is_timms():
    from timm.layers.helpers import make_divisible as timms

    from attention_zoo.layers.options import make_divisible

    for value in [0.5, 2, 7.9, 12, 13.5, 16, 24, 100.3]:
        for divisor in [1, 4, 8]:
            for min_value in [None, 32]:
                assert make_divisible(value, divisor, min_value, round_limit=0.9) \
                    == timms(value, divisor, min_value)


def test_output_shape_follows_timms_padding():
    """ceil(H / s) for strides 1 and 2; timm's size beyond (sk pads
    (s - 1) // 2 more: width 6 at stride 3 gives 3, not 2)."""
    for strides, want in [(1, (7, 6)), (2, (4, 3)), (3, (3, 3))]:
        module = create_attn("sk", 8, stride=strides)
        with torch.no_grad():
            out = module.eval()(torch.zeros(1, 8, 7, 6))
        assert tuple(out.shape[2:]) == want
        layer = get("sk", strides=strides)
        assert layer.compute_output_shape((1, 7, 6, 8)) == (1, *want, 8)
        assert tuple(layer(np.zeros((1, 7, 6, 8), "float32")).shape) == (1, *want, 8)


@pytest.mark.parametrize("layer", [
    SelectiveKernel(strides=2), SelectiveKernel(strides=3, keep_3x3=False),
    SplitAttention(strides=2, dilation=2)], ids=["sk", "sk_undilated", "splat"])
def test_unknown_spatial_size_traces(layer):
    """On ``keras.Input((None, None, C))`` (where JAX traces symbolic sizes,
    which must agree between summed branches) and then on real sizes."""
    inputs = keras.Input((None, None, 8))
    output, maps = layer(inputs, return_attention_scores=True)
    assert tuple(output.shape) == (None, None, None, 8)
    model = keras.Model(inputs, [output, maps])
    got = model.predict(np.ones((1, 9, 7, 8), "float32"), verbose=0)
    size = layer.compute_output_shape((1, 9, 7, 8))
    assert [tuple(g.shape) for g in got] == [size, (1, 2, 8)]


# --------------------------------------------------------------- refusals --

@pytest.mark.parametrize("name, kwargs, match", [
    ("sk", {"act_layer": nn.SiLU}, "paths.0.bn.act: SiLU.*supports ReLU"),
    ("splat", {"act_layer": nn.Hardswish}, "act0: Hardswish.*supports ReLU"),
    # timm's default padding k // 2 shrinks a dilated map.
    ("splat", {"dilation": 2}, "padding \\(1, 1\\); .*padding \\(2, 2\\)"),
    ("splat", {"padding": 0}, "padding \\(0, 0\\); .*padding \\(1, 1\\)"),
    ("splat", {"norm_layer": partial(nn.GroupNorm, 4)}, "BatchNorm2d"),
], ids=["sk_silu", "splat_hardswish", "splat_dilated_default_padding",
        "splat_unpadded", "splat_group_norm"])
def test_unsupported_settings_are_refused(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        from_timm(create_attn(name, 16, **kwargs))


@pytest.mark.parametrize("cls, kwargs, match", [
    (SelectiveKernel, {"kernel_size": [3, 4]}, "odd int >= 3"),
    (SelectiveKernel, {"kernel_size": 1}, "odd int >= 3"),
    (SelectiveKernel, {"strides": 0}, "strides must be a positive int"),
    (SelectiveKernel, {"keep_3x3": 1}, "keep_3x3 must be a bool"),
    (SplitAttention, {"kernel_size": 4}, "kernel_size must be odd"),
    (SplitAttention, {"radix": 0}, "radix must be a positive int"),
    (SplitAttention, {"rd_ratio": -1.0}, "rd_ratio must be a positive number"),
])
def test_bad_constructor_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("layer, channels, match", [
    (SelectiveKernel(), 9, "divisible by 2, received shape \\(None, None, None, 9\\)"),
    (SelectiveKernel(groups=4, filters=12), 12, "divisible by its 4 groups"),
    (SplitAttention(groups=2, radix=2), 6, "divisible by its 4 groups"),
    (SplitAttention(groups=3, radix=1, filters=12), 12,
     "attention width divisible by groups=3, received 32"),
])
def test_widths_the_groups_do_not_divide_are_refused(layer, channels, match):
    with pytest.raises(ValueError, match=match):
        layer.build((None, None, None, channels))
