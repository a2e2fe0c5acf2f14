"""AttnCNNBackbone: airbench94's convnet with an attention layer per stage, up
to its last feature map."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import numpy as np

from attention_zoo import layers as zoo_layers
from attention_zoo.models import cpu_kernels
from attention_zoo.models.backbone import Backbone
from attention_zoo.models.whitening import Dirac, PatchWhitening, adapt_whitening

#: Per-channel statistics of CIFAR-10 training pixels (0..255).
CIFAR10_MEAN = (125.3, 123.0, 113.9)
CIFAR10_STD = (63.0, 62.1, 66.7)

#: Activations after the stem and each BatchNormalization.
ACTIVATIONS = ("gelu", "relu")

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


@keras.saving.register_keras_serializable(package="attention_zoo")
class AttnCNNBackbone(Backbone):
    """A CIFAR-10 convnet after airbench94 (Jordan, 2024), without its head:
    a 2x2 patch-whitening stem, three stages of ``conv-pool-BN-ReLU,
    conv-BN-ReLU`` (31 -> 15 -> 7 -> 3 pixels for 32x32 inputs), each
    followed by ``x + attention(x)``. Convolutions start as identities on
    their first channels (``dirac``); BatchNormalization learns only offsets.

    The whitening filters come from data: ``adapt(images)`` (which
    ``training.fit`` calls through the task) sets them from training images.

    Args:
        input_shape: ``(H, W, 3)``; inputs are raw pixels 0..255 (uint8 or
            float), normalized inside (so exported files take raw images).
        attention: a feature-map layer name (``attention_zoo.layers.names(
            "feature_map")``), None, or one of those per stage.
        width: filters of each stage (airbench94: 64, 256, 256).
        stem_width: filters of the first convolution (``stem="conv"``).
        attention_kwargs: passed to every attention layer.
        stem: ``"conv"`` (3x3 conv-BN-activation, ``stem_width`` filters) or
            ``"whiten"`` (a 2x2 ``PatchWhitening`` + activation, 24 filters).
        dirac: identity-initialize the first filters of each 3x3 conv.
        bn_scale: BatchNormalization learns a scale (else only an offset).
        bn_momentum: BatchNormalization's moving-average momentum.
        residual_attention: each stage outputs ``x + attention(x)`` instead
            of ``attention(x)``, so a gate can emphasize but never shut a path.
        activation: ``"relu"`` or ``"gelu"``, after the stem and every
            BatchNormalization.
        kernels: ``"auto"`` (``cpu_kernels``' training kernels where they are
            faster: TensorFlow without a GPU) or ``"keras"`` (Keras's layers
            everywhere). Both compute the same and save the same files.

    Input ``(batch, H, W, 3)`` pixels; output ``(batch, H', W', width[-1])``
    features (``(batch, 3, 3, 352)`` for 32x32 inputs and the defaults).
    """

    def __init__(self, input_shape: Sequence[int] = (32, 32, 3),
                 attention: Attention = "cbam", width: Sequence[int] = (112, 352, 352),
                 stem_width: int = 32, attention_kwargs: dict[str, Any] | None = None,
                 stem: str = "whiten", dirac: bool = True, bn_scale: bool = False,
                 bn_momentum: float = 0.6, residual_attention: bool = True,
                 activation: str = "relu", kernels: str = "auto",
                 name: str = "attn_cnn_backbone", **kwargs: Any) -> None:
        input_shape = tuple(int(d) for d in input_shape)
        if len(input_shape) != 3 or input_shape[-1] != 3:
            raise ValueError(f"input_shape must be (H, W, 3), received {input_shape!r}")
        width = tuple(int(w) for w in width)
        if not width or min(width) <= 0:
            raise ValueError(f"width must be positive ints, received {width!r}")
        per_stage = _stage_attention(attention, len(width))
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"received {activation!r}")
        if stem not in ("conv", "whiten"):
            raise ValueError(f"stem must be 'conv' or 'whiten', received {stem!r}")
        conv_class, norm_class = cpu_kernels.layer_classes(kernels)

        def conv_bn(x: Any, filters: int, prefix: str, pool: bool = False) -> Any:
            x = conv_class(filters, 3, padding="same", use_bias=False,
                           kernel_initializer=Dirac() if dirac else "glorot_uniform",
                           name=f"{prefix}_conv")(x)
            if pool:
                x = keras.layers.MaxPooling2D(2, name=f"{prefix}_pool")(x)
            # Synchronized: under tf.distribute every replica sees the global
            # batch statistics, so all workers keep identical moving
            # statistics. Keras accepts it on TensorFlow alone.
            x = norm_class(momentum=bn_momentum, scale=bn_scale, name=f"{prefix}_bn",
                           synchronized=keras.backend.backend() == "tensorflow")(x)
            return keras.layers.Activation(activation, name=f"{prefix}_{activation}")(x)

        inputs = keras.Input(input_shape, name="image")
        x = PixelNormalization(CIFAR10_MEAN, CIFAR10_STD, name="normalize")(inputs)
        if stem == "conv":
            x = conv_bn(x, stem_width, "stem")
        else:
            x = PatchWhitening(2, name="stem_whiten")(x)
            x = keras.layers.Activation(activation, name=f"stem_{activation}")(x)
        for i, (filters, kind) in enumerate(zip(width, per_stage), start=1):
            x = conv_bn(x, filters, f"stage{i}a", pool=True)
            x = conv_bn(x, filters, f"stage{i}b")
            if kind is not None:
                attended = zoo_layers.get(kind, name=f"stage{i}_attention",
                                          **(attention_kwargs or {}))(x)
                x = (keras.layers.Add(name=f"stage{i}_residual")([x, attended])
                     if residual_attention else attended)
        super().__init__(inputs=inputs, outputs=x, name=name, **kwargs)
        self._arguments = {
            "input_shape": list(input_shape),
            "attention": attention if attention is None or isinstance(attention, str)
            else list(attention),
            "width": list(width), "stem_width": stem_width,
            "attention_kwargs": attention_kwargs, "stem": stem, "dirac": dirac,
            "bn_scale": bn_scale, "bn_momentum": bn_momentum,
            "residual_attention": residual_attention, "activation": activation,
            "kernels": kernels}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._arguments}

    def variable_groups(self) -> Any:
        """airbench94_muon's split: the 3x3 convolutions (each followed by a
        BatchNormalization, which makes their scale irrelevant) take Muon
        steps; BatchNorm offsets train faster; the whitening stem's bias has
        its own schedule. The attention layers' weights are nested in their
        layers, so they take the default steps."""
        from attention_zoo.training.optimizers import VariableGroups

        own = self.layers
        return VariableGroups(
            orthogonal=tuple(l.kernel for l in own if isinstance(l, keras.layers.Conv2D)),
            offsets=tuple(l.beta for l in own
                          if isinstance(l, keras.layers.BatchNormalization) and l.center),
            stem_bias=tuple(l.bias for l in own if isinstance(l, PatchWhitening)))

    def adapt(self, images: np.ndarray,
              reduce: Callable[[np.ndarray], np.ndarray] | None = None) -> list[str]:
        """Sets the whitening filters from ``(n, H, W, 3)`` raw images (a few
        thousand are enough); ``reduce`` averages the patch covariance over
        the workers of a distributed run. Returns the layers set."""
        return adapt_whitening(self, images, reduce=reduce)
