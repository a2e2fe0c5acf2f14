"""from_timm parity for timm's 2-D self-attention that replaces a
convolution: lambda (LambdaLayer), bottleneck (BoTNet's BottleneckAttn) and
halo (HaloNet's HaloAttn)."""

from __future__ import annotations

import numpy as np
import pytest
from timm_parity import assert_converts, timm, torch

from attention_zoo.interop import from_timm
from attention_zoo.layers import registry
from attention_zoo.layers.lambda_layer import LambdaLayer
from attention_zoo.layers.self_attention_2d import BottleneckSelfAttention, HaloAttention

create_attn = timm.layers.create_attn

# (timm name, channels, create_attn kwargs, input (H, W)). The first of each
# name has timm's defaults (bottleneck: timm requires a feat_size).
CONFIGS = [
    ("bottleneck", 32, dict(feat_size=8), (8, 8)),
    ("bottleneck", 16, dict(feat_size=(6, 5), num_heads=2), (6, 5)),
    ("bottleneck", 16, dict(feat_size=8, stride=2, num_heads=2, dim_head=4,
                            dim_out=32, qkv_bias=True, scale_pos_embed=True), (8, 8)),
    ("bottleneck", 32, dict(feat_size=(4, 6), num_heads=8, qk_ratio=0.5), (4, 6)),
    ("halo", 64, dict(), (16, 16)),
    ("halo", 16, dict(num_heads=2, block_size=2, halo_size=1), (4, 6)),
    # stride 2, even block: strided queries on 2 x 2 blocks
    ("halo", 16, dict(num_heads=2, block_size=4, halo_size=2, stride=2,
                      scale_pos_embed=True), (8, 12)),
    # stride 2, avg_down: full blocks then a 2x2 average pool
    ("halo", 16, dict(num_heads=2, block_size=4, halo_size=1, stride=2, avg_down=True,
                      qkv_bias=True, dim_out=32), (8, 8)),
    # stride 2, odd block: timm falls back to the average pool
    ("halo", 16, dict(num_heads=4, block_size=3, halo_size=2, stride=2, dim_head=4), (6, 6)),
    ("halo", 16, dict(num_heads=2, block_size=4, halo_size=0, qk_ratio=0.5), (4, 8)),
    ("lambda", 32, dict(), (8, 8)),
    ("lambda", 16, dict(num_heads=2, r=3), (6, 5)),
    ("lambda", 16, dict(num_heads=2, r=5, dim_head=None, qk_ratio=0.5, stride=2,
                        qkv_bias=True), (6, 8)),
    ("lambda", 16, dict(num_heads=4, r=None, feat_size=(4, 6), stride=2), (4, 6)),
]


def config_id(config) -> str:
    name, channels, kwargs, size = config
    args = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{name}-{channels}-{size[0]}x{size[1]}-{args or 'defaults'}"


@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_converts(config):
    name, channels, kwargs, (height, width) = config
    module = create_attn(name, channels, **kwargs)
    layer = assert_converts(module, (2, channels, height, width))
    assert isinstance(layer, registry.LAYERS.entry(name).target)


#: What each zoo weight stands for in timm, as ``timm name: [zoo weights]``;
#: the zoo splits timm's fused qkv projections (queries and keys float32,
#: values in the compute dtype), and halo's per-head interleaved key/values.
TIMM_WEIGHTS = {
    "bottleneck": {"qkv.weight": ["query_key", "value"],
                   "pos_embed.height_rel": ["height_rel"],
                   "pos_embed.width_rel": ["width_rel"]},
    "halo": {"q.weight": ["query"], "kv.weight": ["key", "value"],
             "pos_embed.height_rel": ["height_rel"],
             "pos_embed.width_rel": ["width_rel"]},
    "lambda": {"qkv.weight": ["qkv"], "norm_q.weight": ["norm_q"],
               "norm_v.weight": ["norm_v"], "conv_lambda.weight": ["conv_lambda"]},
}


def timm_shape(layer, names: list[str]) -> tuple:
    """The shape, in timm's layout, of the weight that the zoo's sublayers or
    weights ``names`` make up together."""
    weights = [getattr(layer, n) for n in names]
    weights = [getattr(w, "kernel", getattr(w, "gamma", w)) for w in weights]
    shapes = [tuple(w.shape) for w in weights]
    if "kernel" not in weights[0].path:
        return shapes[0]
    if len(shapes[0]) == 4:  # Conv2D (r, r, 1, k) of a Conv3d (k, 1, r, r, 1)
        r, _, _, k = shapes[0]
        return (k, 1, r, r, 1)
    # Dense kernels (in, out), outputs concatenated: a 1x1 Conv2d (out, in, 1, 1)
    return (sum(s[1] for s in shapes), shapes[0][0], 1, 1)


@pytest.mark.parametrize("name,kwargs,size", [
    ("bottleneck", dict(feat_size=(6, 5)), (6, 5)),
    ("halo", dict(), (16, 16)),
    ("lambda", dict(), (8, 8)),
])
def test_factory_name_builds_timm_structure(name, kwargs, size):
    """``layers.get(name)`` is ``create_attn(name, C)``: same heads, widths,
    window and position weights (timm's defaults, not ours)."""
    channels = 64
    module = create_attn(name, channels, **kwargs)
    layer = registry.get(name)
    layer.build((None, *size, channels))
    timm_shapes = {k: tuple(v.shape) for k, v in module.named_parameters()
                   if not k.endswith(".bias")}
    ours = {k: timm_shape(layer, names) for k, names in TIMM_WEIGHTS[name].items()}
    assert ours == timm_shapes
    timm_count = sum(p.numel() for p in module.parameters())
    # Keras BatchNormalization also stores its running statistics as weights.
    zoo_count = sum(int(np.prod(v.shape)) for v in layer.trainable_weights)
    assert zoo_count == timm_count


def test_converted_layers_keep_their_settings():
    module = create_attn("halo", 16, num_heads=2, block_size=4, halo_size=1, stride=2,
                         scale_pos_embed=True)
    layer = from_timm(module)
    assert isinstance(layer, HaloAttention)
    assert (layer.num_heads, layer.block_size, layer.halo_size, layer.strides,
            layer.query_stride, layer.scale_pos_embed) == (2, 4, 1, 2, 2, True)
    layer = from_timm(create_attn("bottleneck", 16, feat_size=(4, 6), num_heads=2))
    assert isinstance(layer, BottleneckSelfAttention) and layer.feat_size == (4, 6)
    layer = from_timm(create_attn("lambda", 16, num_heads=2, r=None, feat_size=4))
    assert isinstance(layer, LambdaLayer) and (layer.r, layer.feat_size) == (None, (4, 4))


def test_converter_refuses_what_it_cannot_convert():
    # timm's forward reshapes a lambda layer's output to the input width.
    with pytest.raises(ValueError, match="dim_out 32 differs from dim 16"):
        from_timm(create_attn("lambda", 16, dim_out=32))
    module = create_attn("bottleneck", 16, feat_size=4)
    module.pool = torch.nn.AvgPool2d(3, 2)
    with pytest.raises(ValueError, match="AvgPool2d"):
        from_timm(module)


@pytest.mark.parametrize("cls,kwargs,message", [
    (HaloAttention, dict(strides=3), "strides 1 or 2, received 3"),
    (BottleneckSelfAttention, dict(filters=10, num_heads=4),
     "filters=10 and num_heads=4"),
    (LambdaLayer, dict(r=4), "r must be an odd positive int, received 4"),
    (BottleneckSelfAttention, dict(feat_size=(4, 0)), "feat_size must be a positive int"),
    (HaloAttention, dict(halo_size=-1), "halo_size must be a non-negative int"),
])
def test_bad_constructor_args(cls, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        cls(**kwargs)


@pytest.mark.parametrize("layer,shape,message", [
    (lambda: HaloAttention(num_heads=2, block_size=4), (2, 6, 8, 16),
     "divisible by block_size=4"),
    (lambda: BottleneckSelfAttention(feat_size=(4, 4)), (2, 6, 4, 16), "feat_size"),
    (lambda: LambdaLayer(r=None), (2, None, 4, 16), "known height and width"),
])
def test_inputs_of_the_wrong_size_are_refused(layer, shape, message):
    layer = layer()
    with pytest.raises(ValueError, match=message) as error:
        layer.build(shape)
    assert "received shape" in str(error.value)
