"""AttnCNN: a fast CIFAR-10 convnet with a pluggable attention layer per stage."""

from __future__ import annotations

import inspect
import os
from typing import Any, Sequence

import keras

from attention_zoo import layers as zoo_layers
from attention_zoo.models import cpu_kernels
from attention_zoo.models.registry import check_matches_card, register_model
from attention_zoo.models.whitening import Dirac, PatchWhitening

#: Per-channel statistics of CIFAR-10 training pixels (0..255).
CIFAR10_MEAN = (125.3, 123.0, 113.9)
CIFAR10_STD = (63.0, 62.1, 66.7)

LOGIT_SCALE = 0.125

#: Activations after the stem and each BatchNormalization.
ACTIVATIONS = ("gelu", "relu")
#: airbench96_faster's proxy widths (see ``selection_proxy``).
SELECTION_PROXY_WIDTH = (32, 64, 64)
#: The ``training.RECIPES`` entry AttnCNN trains with by default (``attention-zoo
#: train attn_cnn``): hard-example selection for 26 epochs. At 20 epochs
#: seven runs averaged 91.34%, level with ``"cifar10"`` at matched precision;
#: 26 epochs added 0.34 points on each of two seeds, a mean of 91.54%, in
#: 36.4-40.5 minutes on a 2-core CPU with AMX (``benchmarks/cifar10_epochs.md``,
#: the ``amx_select`` rows). It needs ``selection_proxy``; ``"cifar10"``
#: trains on every example.
DEFAULT_RECIPE = "cifar10_select"

Attention = str | None | Sequence[str | None]


def _stage_attention(attention: Attention, stages: int) -> list[str | None]:
    per_stage = ([attention] * stages if attention is None or isinstance(attention, str)
                 else list(attention))
    if len(per_stage) != stages:
        raise ValueError(f"attention needs one entry per stage ({stages}), "
                         f"received {len(per_stage)}: {attention!r}")
    known = zoo_layers.names(zoo_layers.FEATURE_MAP)
    for name in per_stage:
        if name is not None and name not in known:
            raise ValueError(f"attention must be None or a feature-map layer "
                             f"name ({', '.join(known)}), received {name!r}")
    return per_stage


@keras.saving.register_keras_serializable(package="attention_zoo")
class PixelNormalization(keras.layers.Layer):
    """``(x - mean) / std`` per channel with constants written into the
    graph (not captured tensors), so every exporter freezes them."""

    def __init__(self, mean: Sequence[float], std: Sequence[float],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]

    def call(self, inputs: Any) -> Any:
        from keras import ops

        x = ops.cast(inputs, self.compute_dtype)
        mean = ops.convert_to_tensor(self.mean, self.compute_dtype)
        inverse = ops.convert_to_tensor([1.0 / s for s in self.std],
                                        self.compute_dtype)
        return (x - mean) * inverse

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "std": self.std}


def _conv_bn(x: Any, filters: int, name: str, pool: bool = False,
             momentum: float = 0.9, dirac: bool = False, scale: bool = True,
             activation: str = "gelu") -> Any:
    x = cpu_kernels.Conv2D(filters, 3, padding="same", use_bias=False,
                           kernel_initializer=Dirac() if dirac else "glorot_uniform",
                           name=f"{name}_conv")(x)
    if pool:
        x = keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    # Synchronized: under tf.distribute every replica sees the global batch
    # statistics, so all workers keep identical moving statistics. Keras
    # accepts it on the TensorFlow backend alone (JAX and PyTorch refuse it).
    x = cpu_kernels.BatchNormalization(
        momentum=momentum, scale=scale, name=f"{name}_bn",
        synchronized=keras.backend.backend() == "tensorflow")(x)
    return keras.layers.Activation(activation, name=f"{name}_{activation}")(x)


@register_model("attn_cnn")
def AttnCNN(input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 10,
            attention: Attention = "cbam", width: Sequence[int] = (112, 352, 352),
            stem_width: int = 32, weights: str | os.PathLike | None = None,
            attention_kwargs: dict[str, Any] | None = None,
            stem: str = "whiten", dirac: bool = True, bn_scale: bool = False,
            bn_momentum: float = 0.6, residual_attention: bool = True,
            activation: str = "relu", name: str = "attn_cnn") -> keras.Model:
    """A CIFAR-10 convnet after airbench94 (Jordan, 2024): a 2x2 patch-
    whitening stem, three stages of ``conv-pool-BN-ReLU, conv-BN-ReLU`` (31
    -> 15 -> 7 -> 3 pixels for 32x32 inputs), each followed by ``x +
    attention(x)``, global max pooling and a linear classifier whose logits
    are scaled by 1/8. Convolutions start as identities on their first channels
    (``dirac``) and BatchNormalization learns only offsets. Convolutions and
    BatchNormalizations are ``models.cpu_kernels``' layers: Keras's own,
    with faster training kernels on a CPU.

    The whitening filters come from data: ``training.fit`` sets them from
    training images; outside it call ``attention_zoo.models.adapt_whitening(
    model, images)`` before training.

    Args:
        input_shape: ``(H, W, 3)``. Inputs are raw pixels 0..255 (uint8 or
            float); normalization is inside the model, so exported files take
            raw images too.
        num_classes: outputs of the softmax.
        attention: a feature-map layer name (``attention_zoo.layers.names(
            "feature_map")``), None, or one of those per stage.
        width: filters of each stage. airbench94 has 64, 256, 256; the
            default (2.1x its 3x3-conv multiply-adds) is as wide as the
            all-examples recipe (``"cifar10"``) trains within 40 minutes on 2
            CPU cores with AVX512-BF16, with ReLU; on an AVX2-only CPU in
            float32 it took 66 minutes, and hard-example selection
            (``DEFAULT_RECIPE``) 75 at 20 epochs
            (``benchmarks/cifar10_epochs.md``).
        stem_width: filters of the first convolution (``stem="conv"``).
        weights: None, ``"cifar10"`` (the shipped weights; arguments must match
            theirs) or a path to a ``.weights.h5`` file.
        attention_kwargs: passed to every attention layer (e.g.
            ``{"reduction": 8}``).
        stem: ``"conv"`` (3x3 conv-BN-activation with ``stem_width``
            filters) or ``"whiten"`` (airbench's 2x2 ``PatchWhitening`` +
            activation, 24 filters set from training images by ``training.fit``;
            ``stem_width`` is then unused and maps shrink 32 -> 31 -> 15 ->
            7 -> 3).
        dirac: identity-initialize the first filters of each 3x3 conv.
        bn_scale: BatchNormalization learns a scale (else only an offset).
        bn_momentum: BatchNormalization's moving-average momentum.
        residual_attention: each stage outputs ``x + attention(x)`` (a gate
            ``g`` then scales by ``1 + g``) instead of ``attention(x)``, so
            the gates can emphasize but never shut a path. On the narrow
            net it scored 2.4 points above the plain form at 4 epochs
            (``benchmarks/cifar10_ablation.md``) and 0.26 below it at 10
            (``cifar10_epochs.md``); it is the default because it came with
            width 112 and ReLU in the change that gained 0.41 points on two
            seeds (``benchmarks/cifar10_history.md``).
        activation: ``"relu"`` or ``"gelu"`` (airbench's), after the stem
            and every BatchNormalization. ReLU trains 10-15% faster on a
            2-core CPU, and seeds could not tell its accuracy from GELU's
            (``benchmarks/cifar10_epochs.md``).

    Returns a functional ``keras.Model`` from ``(batch, H, W, 3)`` pixels to
    ``(batch, num_classes)`` probabilities (float32 under any policy).
    """
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (H, W, 3), received {input_shape!r}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, received {num_classes!r}")
    width = tuple(int(w) for w in width)
    if not width or min(width) <= 0:
        raise ValueError(f"width must be positive ints, received {width!r}")
    per_stage = _stage_attention(attention, len(width))
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                         f"received {activation!r}")

    inputs = keras.Input(tuple(input_shape), name="image")
    x = PixelNormalization(CIFAR10_MEAN, CIFAR10_STD, name="normalize")(inputs)
    block = {"momentum": bn_momentum, "dirac": dirac, "scale": bn_scale,
             "activation": activation}
    if stem == "conv":
        x = _conv_bn(x, stem_width, "stem", **block)
    elif stem == "whiten":
        x = PatchWhitening(2, name="stem_whiten")(x)
        x = keras.layers.Activation(activation, name=f"stem_{activation}")(x)
    else:
        raise ValueError(f"stem must be 'conv' or 'whiten', received {stem!r}")
    for i, (filters, kind) in enumerate(zip(width, per_stage), start=1):
        x = _conv_bn(x, filters, f"stage{i}a", pool=True, **block)
        x = _conv_bn(x, filters, f"stage{i}b", **block)
        if kind is not None:
            attended = zoo_layers.get(kind, name=f"stage{i}_attention",
                                      **(attention_kwargs or {}))(x)
            x = (keras.layers.Add(name=f"stage{i}_residual")([x, attended])
                 if residual_attention else attended)
    x = keras.layers.GlobalMaxPooling2D(name="pool")(x)
    x = keras.layers.Dense(num_classes, use_bias=False, name="logits")(x)
    # Damped logits (x1/8, as Myrtle's ResNet-9 and airbench do) let the
    # classifier train at the body's large learning rate.
    x = keras.layers.Rescaling(LOGIT_SCALE, name="logit_scale")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32",
                                      name="probabilities")(x)
    model = keras.Model(inputs, outputs, name=name)

    if weights == "cifar10":
        if attention_kwargs:
            raise ValueError("the shipped weights use the attention layers' "
                             f"defaults, received attention_kwargs={attention_kwargs}")
        path = check_matches_card("attn_cnn_cifar10", {
            "input_shape": list(input_shape), "num_classes": num_classes,
            "attention": attention if isinstance(attention, (str, type(None)))
            else list(attention), "width": list(width), "stem_width": stem_width,
            "stem": stem, "dirac": dirac, "bn_scale": bn_scale,
            "bn_momentum": bn_momentum, "residual_attention": residual_attention,
            "activation": activation})
        model.load_weights(path)
    elif weights is not None:
        _load_user_weights(model, weights)
    return model


def _load_user_weights(model: keras.Model, path: str | os.PathLike) -> None:
    if not os.path.isfile(path):
        raise ValueError(f"weights must be None, 'cifar10' or a path to a "
                         f".weights.h5 file, received {str(path)!r}")
    try:
        model.load_weights(path)
    except Exception as error:  # Keras raises several types for mismatches
        raise ValueError(f"the weights in {str(path)!r} do not fit this "
                         f"model ({model.name}): {error}") from error


def selection_proxy(**config: Any) -> keras.Model:
    """The AttnCNN that ranks each batch's examples when a recipe trains on
    the hardest (``Recipe.select``, ``training.HardExampleTrainer``): the
    net's arguments ``config`` with airbench96_faster's proxy widths (32, 64,
    64 per stage, or the net's own where narrower, so a proxy never outgrows
    its net) and no attention. At the default net's widths its 3x3
    convolutions take 17 M multiply-adds per image against the net's 248 M.
    """
    width = list(config.get("width", inspect.signature(AttnCNN).parameters["width"].default))
    proxy_width = [min(w, SELECTION_PROXY_WIDTH[min(i, len(SELECTION_PROXY_WIDTH) - 1)])
                   for i, w in enumerate(width)]
    return AttnCNN(**{**config, "width": proxy_width, "attention": None, "weights": None,
                      "name": "attn_cnn_proxy"})
