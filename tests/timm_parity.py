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
