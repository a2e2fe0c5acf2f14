"""Precision and XLA policy: what ``"auto"`` picks on this machine, and why."""

from __future__ import annotations

from pathlib import Path

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def cpu_has_bf16() -> bool:
    """True when the CPU has native bfloat16 dot products (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


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
