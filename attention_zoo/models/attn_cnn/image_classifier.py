"""AttnCNN's image classifier task: the backbone, global max pooling and a
linear classifier with damped logits; ``AttnCNN(...)`` builds it."""

from __future__ import annotations

import inspect
import os
from typing import Any, Callable, Sequence

import keras
import numpy as np

from attention_zoo.models.attn_cnn.backbone import Attention, AttnCNNBackbone
from attention_zoo.models.presets import check_matches_card
from attention_zoo.models.registry import register_model
from attention_zoo.models.task import Task

LOGIT_SCALE = 0.125

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


@keras.saving.register_keras_serializable(package="attention_zoo")
class AttnCNNImageClassifier(Task):
    """``backbone`` -> global max pooling -> a bias-free linear classifier
    whose logits are scaled by 1/8 -> softmax (float32 under any policy).

    Input: the backbone's, ``(batch, H, W, 3)`` raw pixels 0..255. Output:
    ``(batch, num_classes)`` probabilities.
    """

    def __init__(self, backbone: AttnCNNBackbone, num_classes: int = 10,
                 name: str = "attn_cnn", **kwargs: Any) -> None:
        if not isinstance(backbone, AttnCNNBackbone):
            raise TypeError(f"backbone must be an AttnCNNBackbone, received "
                            f"{type(backbone).__name__}")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, received {num_classes!r}")
        self.backbone = backbone
        inputs = backbone.input
        x = backbone(inputs)
        x = keras.layers.GlobalMaxPooling2D(name="pool")(x)
        x = keras.layers.Dense(num_classes, use_bias=False, name="logits")(x)
        # Damped logits (x1/8, as Myrtle's ResNet-9 and airbench do) let the
        # classifier train at the body's large learning rate.
        x = keras.layers.Rescaling(LOGIT_SCALE, name="logit_scale")(x)
        outputs = keras.layers.Activation("softmax", dtype="float32",
                                          name="probabilities")(x)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.num_classes = num_classes

    def adapt(self, batches: Any, reduce: Callable[[np.ndarray], np.ndarray] | None = None
              ) -> list[str]:
        """Sets the backbone's whitening filters from the first
        ``ADAPT_EXAMPLES`` images of ``batches`` (``(x, y)`` or ``x``)."""
        from attention_zoo.models.whitening import ADAPT_EXAMPLES, PatchWhitening

        if not any(isinstance(l, PatchWhitening) for l in self.backbone.layers):
            return []
        images, count = [], 0
        for batch in batches:
            images.append(np.asarray(batch[0] if isinstance(batch, (tuple, list)) else batch))
            count += len(images[-1])
            if count >= ADAPT_EXAMPLES:
                break
        if not images:
            raise ValueError("adapt needs at least one batch of images")
        images = np.concatenate(images)[:ADAPT_EXAMPLES]
        return [f"{name} ({len(images)} training images)"
                for name in self.backbone.adapt(images, reduce=reduce)]

    def arguments(self) -> dict[str, Any]:
        return {"backbone": self.backbone, "num_classes": self.num_classes}


@register_model("attn_cnn")
def AttnCNN(input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 10,
            attention: Attention = "cbam", width: Sequence[int] = (112, 352, 352),
            stem_width: int = 32, weights: str | os.PathLike | None = None,
            attention_kwargs: dict[str, Any] | None = None,
            stem: str = "whiten", dirac: bool = True, bn_scale: bool = False,
            bn_momentum: float = 0.6, residual_attention: bool = True,
            activation: str = "relu", kernels: str = "auto",
            name: str = "attn_cnn") -> AttnCNNImageClassifier:
    """A CIFAR-10 convnet after airbench94 (Jordan, 2024): a 2x2 patch-
    whitening stem, three stages of ``conv-pool-BN-ReLU, conv-BN-ReLU`` (31
    -> 15 -> 7 -> 3 pixels for 32x32 inputs), each followed by ``x +
    attention(x)``, global max pooling and a linear classifier whose logits
    are scaled by 1/8. Convolutions start as identities on their first channels
    (``dirac``) and BatchNormalization learns only offsets. Convolutions and
    BatchNormalizations are ``models.cpu_kernels``' layers: Keras's own,
    with faster training kernels on a CPU.

    The whitening filters come from data: ``training.fit`` sets them from
    training images; outside it call ``model.adapt(batches)`` before
    training.

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

        kernels: ``"auto"`` or ``"keras"`` (``models.cpu_kernels.layer_classes``).

    Returns an ``AttnCNNImageClassifier`` (a functional ``keras.Model``) from ``(batch, H, W, 3)`` pixels to
    ``(batch, num_classes)`` probabilities (float32 under any policy).
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, received {num_classes!r}")
    backbone = AttnCNNBackbone(
        input_shape=input_shape, attention=attention, width=width,
        stem_width=stem_width, attention_kwargs=attention_kwargs, stem=stem,
        dirac=dirac, bn_scale=bn_scale, bn_momentum=bn_momentum,
        residual_attention=residual_attention, activation=activation,
        kernels=kernels, name=f"{name}_backbone")
    model = AttnCNNImageClassifier(backbone, num_classes, name=name)
    if weights == "cifar10":
        if attention_kwargs:
            raise ValueError("the shipped weights use the attention layers' "
                             f"defaults, received attention_kwargs={attention_kwargs}")
        arguments = {k: v for k, v in backbone.get_config().items()
                     if k not in ("name", "trainable", "dtype", "attention_kwargs",
                                   "kernels")}
        path = check_matches_card("attn_cnn_cifar10",
                                  {**arguments, "num_classes": num_classes})
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
