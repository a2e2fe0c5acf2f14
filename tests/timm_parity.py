"""Compares a timm module with what ``from_timm`` makes of it, on random
weights in eval mode: the Keras layer on NHWC, the module on NCHW."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from attention_zoo.interop import from_timm  # noqa: E402

#: Pixels and batch of the model parity tests.
SIZE, BATCH = 64, 2


def randomize(module: Any, seed: int = 0) -> Any:
    """Random parameters and BatchNorm statistics (not timm's zero or
    identity inits, which would hide a missing weight); eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if not tensor.is_floating_point():
                continue
            value = torch.randn(tensor.shape, generator=generator) * 0.5
            if name.endswith("running_var"):
                value = value.abs() + 0.5
            tensor.copy_(value)
    return module.eval()


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-12))


def assert_converts(module: Any, shape: tuple[int, int, int, int], seed: int = 0,
                    tol: float = 1e-4) -> keras.layers.Layer:
    """``module`` (randomized here) and ``from_timm(module)`` agree on a
    random ``(batch, C, H, W)`` input to ``tol`` relative error. Returns the
    Keras layer."""
    randomize(module, seed)
    x = np.random.default_rng(seed).standard_normal(shape).astype("float32")
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    layer = from_timm(module)
    got = keras.ops.convert_to_numpy(layer(x.transpose(0, 2, 3, 1)))
    assert relative_error(got, want) <= tol
    return layer


def randomized(model: Any, seed: int = 0) -> Any:
    """``randomize``, then every convolution and linear weight scaled to a
    standard deviation of ``fan_in ** -0.5``: at randomize's 0.5 the
    activations grow ~10x per convolution, to 1e13 by the head, where the
    attention gates saturate and float32 rounding decides the logits."""
    randomize(model, seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
                module.weight.mul_(2.0 * module.weight[0].numel() ** -0.5)
    return model


def converted(model: Any, seed: int = 0, channels: int = 3, size: int = SIZE) -> tuple:
    """``(keras model, keras output, timm output)`` of a timm model (randomized
    here) and ``from_timm`` of it on the same random ``size`` x ``size``
    pixels, logits."""
    randomized(model, seed)
    pixels = np.random.default_rng(seed).uniform(0, 255, (BATCH, size, size, channels))
    pixels = pixels.astype("float32")
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean = np.mean(cfg.get("mean", (0.485, 0.456, 0.406))) if channels == 1 else \
        np.array(cfg.get("mean", (0.485, 0.456, 0.406)), "float32")
    std = np.mean(cfg.get("std", (0.229, 0.224, 0.225))) if channels == 1 else \
        np.array(cfg.get("std", (0.229, 0.224, 0.225)), "float32")
    images = ((pixels / 255 - mean) / std).astype("float32").transpose(0, 3, 1, 2)
    with torch.no_grad():
        want = model(torch.from_numpy(images)).numpy()
    keras_model = from_timm(model)
    return keras_model, keras.ops.convert_to_numpy(keras_model(pixels)), want


class FakeHub:
    """``huggingface_hub``'s ``hf_hub_download``, writing a randomly
    initialised checkpoint of the requested architecture."""

    def __init__(self, folder, architecture: str = "resnet18", init=randomize):
        self.folder, self.architecture, self.calls = folder, architecture, []
        self.model = init(timm.create_model(architecture, pretrained=False), seed=3)

    def hf_hub_download(self, repo_id: str, filename: str) -> str:
        import safetensors.torch

        self.calls.append((repo_id, filename))
        path = self.folder / filename
        safetensors.torch.save_file(self.model.state_dict(), str(path))
        return str(path)


def timm_probabilities(model: keras.Model, torch_model: Any, pixels: np.ndarray,
                       checkpoint: str) -> np.ndarray:
    """timm's evaluation of ``pixels`` ``(batch, H, W, 3)``: resized and
    cropped by the Keras ``model``'s own layers (checked to give the
    checkpoint's input size), normalized with its statistics, then
    ``torch_model``'s softmax."""
    config = timm.models.get_pretrained_cfg(checkpoint)
    cropped = np.asarray(model.get_layer("center_crop")(
        model.get_layer("resize")(pixels.astype("float32"))))
    assert cropped.shape[1:3] == tuple(config.input_size[1:])
    normalized = (cropped / 255.0 - np.array(config.mean)) / np.array(config.std)
    with torch.no_grad():
        logits = torch_model(torch.from_numpy(
            normalized.transpose(0, 3, 1, 2).astype("float32"))).numpy()
    want = np.exp(logits - logits.max(-1, keepdims=True))
    return want / want.sum(-1, keepdims=True)
