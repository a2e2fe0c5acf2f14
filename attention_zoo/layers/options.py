"""Argument checks and timm's arithmetic shared by the layer families:
channel rounding, padding, gates, PyTorch's BatchNorm constants."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from keras import ops

from attention_zoo.layers.base import check_positive

#: Gate functions by name (timm's ``gate_layer``).
GATES: dict[str, Callable[[Any], Any]] = {
    "sigmoid": ops.sigmoid,
    "hard_sigmoid": ops.hard_sigmoid,  # relu6(x + 3) / 6, as torch's
}


def make_divisible(value: float, divisor: int, min_value: int | None = None,
                   round_limit: float = 0.9) -> int:
    """timm's channel rounding (``timm.layers.make_divisible``, same
    defaults): ``value`` to the nearest multiple of ``divisor``, at least
    ``min_value`` (default ``divisor``), one multiple more where rounding lost
    more than ``1 - round_limit`` of ``value`` (``round_limit=0``: never, as
    timm's coordinate modules round)."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < round_limit * value:
        rounded += divisor
    return rounded


def check_choice(name: str, value: Any, choices: Mapping[Any, Any]) -> Any:
    """Refuses a value that is not a key of ``choices``."""
    if not isinstance(value, (str, type(None))) or value not in choices:
        known = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {known}, received {value!r}")
    return value


def check_odd(name: str, value: Any) -> int:
    """A positive odd int: strip convolutions pad ``k // 2`` on both sides
    (as timm's do), which keeps the length only for odd ``k``."""
    check_positive(name, value)
    if value % 2 == 0:
        raise ValueError(f"{name} must be an odd positive int, received {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Refuses anything but True or False (a 0/1 or a string is a mistake)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, received {value!r}")
    return value


#: PyTorch's BatchNorm2d epsilon: timm's norm layer, so converted weights
#: normalize the same.
TORCH_BN_EPSILON = 1e-5
#: Keras's moving-average momentum is PyTorch's ``1 - momentum`` (0.1 there).
TORCH_BN_MOMENTUM = 0.9


def timm_padding(kernel_size: int, strides: int = 1, dilation: int = 1) -> int:
    """timm's symmetric padding (``timm.layers.get_padding``):
    ``((strides - 1) + dilation * (kernel_size - 1)) // 2`` on every side."""
    return ((strides - 1) + dilation * (kernel_size - 1)) // 2


def softmax_over(logits: Any, axis: int) -> Any:
    """Softmax over a non-last axis, spelled out as max / exp / sum so it
    lowers to TFLite built-ins without transposes."""
    logits = logits - ops.max(logits, axis=axis, keepdims=True)
    weights = ops.exp(logits)
    return weights / ops.sum(weights, axis=axis, keepdims=True)
