"""Precision and XLA policy: what ``"auto"`` picks on this machine, and why."""

from __future__ import annotations

import os
import platform
from pathlib import Path

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux
        return ""


def cpu_has_bf16() -> bool:
    """True when the CPU has native bfloat16 dot products (AVX512-BF16 or AMX)."""
    flags = _cpuinfo()
    return "avx512_bf16" in flags or "amx_bf16" in flags


#: Vector extensions that decide CPU training speed, widest first.
CPU_ISAS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2", "neon", "asimd")


def cpu_description() -> str:
    """The CPU's model name and its widest vector extension of ``CPU_ISAS``
    (``"AMD EPYC (avx2)"``). Timings need both: AttnCNN trained at 241
    images/s on 2 cores with AVX512-BF16 and at 115 on 2 AVX2-only cores
    (benchmarks/cifar10_speed.md, section 4)."""
    info = _cpuinfo()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                 if line.lower().startswith(("model name", "cpu model"))),
                platform.processor() or platform.machine() or "CPU")
    flags = set(info.split())
    isa = next((isa for isa in CPU_ISAS if isa in flags), None)
    return f"{name} ({isa})" if isa else name


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN CPU kernels. TensorFlow turns them
    on by itself only on CPUs with AVX512-VNNI/BF16 or AMX;
    ``TF_ENABLE_ONEDNN_OPTS=1`` turns them on elsewhere, read once when
    TensorFlow is imported."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # the private probe moved
        return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "") == "1"


def choose_precision(precision: str = "auto") -> tuple[str, str]:
    """Returns ``(policy, why)``. ``"auto"``: mixed_float16 on a GPU;
    mixed_bfloat16 on a CPU with native bf16 (measured faster there, see
    benchmarks/cifar10_speed.md); float32 otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, received "
                         f"{precision!r}")
    if precision != "auto":
        return precision, "forced"
    if has_gpu():
        return "mixed_float16", "GPU found: float16 tensor cores"
    if cpu_has_bf16():
        return "mixed_bfloat16", "CPU has native bfloat16 (avx512_bf16/amx)"
    return "float32", "CPU without native bfloat16"


def choose_jit(jit_compile: bool | str = "auto") -> tuple[bool, str]:
    """Returns ``(use_xla, why)``. ``"auto"``: XLA on a GPU; off on a CPU,
    where it trains this package's convnets slower (benchmarks/)."""
    if isinstance(jit_compile, bool):
        return jit_compile, "forced"
    if jit_compile != "auto":
        raise ValueError(f"jit_compile must be True, False or 'auto', received "
                         f"{jit_compile!r}")
    if has_gpu():
        return True, "GPU found: XLA fuses the attention ops"
    return False, "CPU: XLA measured slower here"
