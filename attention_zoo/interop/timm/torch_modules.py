"""What the from_timm converters read off torch and timm modules, refusing
(``ValueError``: the module's path, what it holds, what the zoo layer
supports) a setting the zoo layer would compute otherwise.

torch and timm are imported when a check runs, so that importing this needs
neither.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Collection, Mapping, TypeVar

T = TypeVar("T")
Size = int | tuple[int, ...] | None

GATES = ("sigmoid", "hard_sigmoid")

# The zoo's names of the activation modules it converts; None: no activation.
_ACTIVATIONS = {
    ("torch.nn", "Identity"): None,
    ("torch.nn", "ReLU"): "relu",
    ("torch.nn", "SiLU"): "silu",
    ("timm.layers.activations", "Swish"): "silu",
    ("timm.layers.activations_me", "SwishMe"): "silu",
    ("torch.nn", "GELU"): "gelu",  # exact only: see activation()
    ("timm.layers.activations", "GELU"): "gelu",
    ("torch.nn", "Hardswish"): "hard_swish",
    ("timm.layers.activations", "HardSwish"): "hard_swish",
    ("timm.layers.activations_me", "HardSwishMe"): "hard_swish",
    ("torch.nn", "Sigmoid"): "sigmoid",
    ("timm.layers.activations", "Sigmoid"): "sigmoid",
    ("torch.nn", "Hardsigmoid"): "hard_sigmoid",
    ("timm.layers.activations", "HardSigmoid"): "hard_sigmoid",
    ("timm.layers.activations_me", "HardSigmoidMe"): "hard_sigmoid",
}
_CLASSES: dict[type, str | None] = {}


def name(module: Any) -> str:
    """The module's class name, which starts the paths in messages."""
    return type(module).__name__


def _one_line(module: Any) -> str:
    return " ".join(repr(module).split())


def refusal(path: str, found: str, supported: str) -> ValueError:
    """The error for ``path`` holding ``found`` where the zoo layer
    supports ``supported``."""
    return ValueError(f"from_timm cannot convert {path}: {found}; the zoo layer "
                      f"supports {supported}")


def activation(module: Any, path: str, supported: Collection[str | None]) -> str | None:
    """The zoo's name (None: no activation) of an activation or gate module
    (None or Identity: no activation), refused unless in ``supported``."""
    if not _CLASSES:
        for (where, cls), zoo_name in _ACTIVATIONS.items():
            try:
                _CLASSES[getattr(importlib.import_module(where), cls)] = zoo_name
            except (ImportError, AttributeError):  # another timm version
                pass
    known = next((cls for cls in type(module).__mro__ if cls in _CLASSES), None)
    zoo_name = None if module is None else _CLASSES.get(known, "unknown")
    # The zoo's gelu is exact; torch's GELU may approximate with tanh.
    if zoo_name not in supported or getattr(module, "approximate", "none") != "none":
        names = sorted({cls for (_, cls), zoo_name in _ACTIVATIONS.items()
                        if zoo_name in supported})
        raise refusal(path, _one_line(module), ", ".join(names))
    return zoo_name


def absent(module: Any, path: str) -> None:
    """Refuses a module other than None or Identity where the zoo layer has
    none (a norm, an anti-aliasing or a drop layer)."""
    activation(module, path, (None,))


def _per_dimension(value: Size, own: tuple[int, ...]) -> tuple[int, ...]:
    if value is None:
        return (own[0],) * len(own)
    return value if isinstance(value, tuple) else (value,) * len(own)


def _dilation(kernel_size: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, ...]:
    # Dilation does nothing along a kernel of size 1.
    return tuple(1 if k == 1 else d for k, d in zip(kernel_size, dilation))


def _padding(conv: Any) -> tuple[int, ...] | str:
    """The zeros the convolution adds on each side, per dimension; a string
    where torch's ``"same"`` pads one side more."""
    if conv.padding == "valid":
        return (0,) * len(conv.kernel_size)
    if conv.padding == "same":
        total = [d * (k - 1) for k, d in zip(conv.kernel_size, conv.dilation)]
        return "same" if any(t % 2 for t in total) else tuple(t // 2 for t in total)
    return tuple(conv.padding)


def check_conv(conv: Any, path: str, *, kernel_size: Size = 1, stride: Size = 1,
               dilation: Size = 1,
               padding: Size | Callable[[int, int, int], int] = None,
               groups: int = 1, depthwise: bool = False,
               odd: bool = False) -> tuple[int, int, int]:
    """Refuses a convolution other than the zoo layer's: each size an int
    for every spatial dimension, a tuple per dimension, or None (the
    convolution's own, the same in every dimension). ``padding`` None: half
    the dilated kernel (the size kept at stride 1); a callable: ``padding(k,
    s, d)``. ``depthwise``: as many groups and outputs as inputs. ``odd``:
    odd kernel sizes only. Returns the kernel size, stride and dilation (of
    the first dimension)."""
    import torch

    # Subclasses compute otherwise: timm's Conv2dSame pads in forward,
    # StdConv2d standardises its weight.
    if type(conv) not in (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d):
        raise refusal(path, name(conv), "a plain torch Conv1d, Conv2d or Conv3d")
    found: dict[str, Any] = {
        "kernel_size": tuple(conv.kernel_size), "stride": tuple(conv.stride),
        "dilation": _dilation(conv.kernel_size, conv.dilation),
        "padding": _padding(conv), "groups": conv.groups}
    if odd and any(size % 2 == 0 for size in conv.kernel_size):
        raise refusal(path, f"kernel_size {found['kernel_size']}", "odd kernel sizes")
    want = {key: _per_dimension(value, found[key]) for key, value in
            (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation))}
    want["dilation"] = _dilation(want["kernel_size"], want["dilation"])
    k, s, d = (want[key][0] for key in ("kernel_size", "stride", "dilation"))
    want["padding"] = (
        tuple(d * (k - 1) // 2 for k, d in zip(want["kernel_size"], want["dilation"]))
        if padding is None else
        _per_dimension(padding(k, s, d) if callable(padding) else padding,
                       found["kernel_size"]))
    want["groups"] = conv.in_channels if depthwise else groups
    if depthwise:
        found["out_channels"], want["out_channels"] = conv.out_channels, conv.in_channels
    # The padding mode matters only where there is padding.
    padded = found["padding"] != (0,) * len(found["kernel_size"])
    found["padding_mode"] = conv.padding_mode if padded else "zeros"
    want["padding_mode"] = "zeros"
    wrong = [key for key in want if found[key] != want[key]]
    if wrong:
        raise refusal(path, ", ".join(f"{key} {found[key]}" for key in wrong),
                      ", ".join(f"{key} {value}" for key, value in want.items()))
    return k, s, d


def norm_act(norm: Any, path: str,
             activations: Collection[str | None]) -> tuple[float, str | None]:
    """Checks an affine BatchNorm2d with running statistics (timm's
    BatchNormAct2d: no drop layer); returns its epsilon and the zoo's name
    of its activation, one of ``activations``."""
    import torch

    if not isinstance(norm, torch.nn.BatchNorm2d) or not norm.affine \
            or not norm.track_running_stats:
        raise refusal(path, _one_line(norm),
                      "an affine BatchNorm2d with running statistics")
    # timm's BatchNormAct2d drops and activates after normalising.
    absent(getattr(norm, "drop", None), f"{path}.drop")
    return norm.eps, activation(getattr(norm, "act", None), f"{path}.act", activations)


def batch_norm(norm: Any, path: str) -> float:
    """The epsilon of an affine BatchNorm2d with running statistics (and,
    for timm's BatchNormAct2d, no activation or drop layer)."""
    return norm_act(norm, path, (None,))[0]


def conv_norm_act(block: Any, path: str, activations: Collection[str | None],
                  **geometry: Any) -> tuple[float, str | None]:
    """Checks timm's ConvNormAct (a convolution of ``geometry``, see
    ``check_conv``, a BatchNormAct2d, no anti-aliasing); returns the norm's
    epsilon and the zoo's name of its activation, one of ``activations``."""
    check_conv(block.conv, f"{path}.conv", **geometry)
    absent(getattr(block, "aa", None), f"{path}.aa")
    return norm_act(block.bn, f"{path}.bn", activations)


def same(path: str, what: str, values: Mapping[str, T]) -> T:
    """The one value of ``values`` (keyed by part of ``path``), refused
    where they differ: the zoo layer has one ``what`` for all its parts."""
    distinct = set(values.values())
    if len(distinct) > 1:
        raise refusal(path, f"{what} differ ({dict(values)})", "one for all")
    return distinct.pop()


def per_channel(stats: Any, channels: int) -> list[float]:
    """``pretrained_cfg``'s mean or std for ``channels`` inputs: RGB
    statistics averaged where the model takes another number of channels
    (``in_chans=1``)."""
    stats = [float(v) for v in stats]
    return stats if len(stats) == channels else [sum(stats) / len(stats)] * channels
