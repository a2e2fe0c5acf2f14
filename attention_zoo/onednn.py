"""What must happen before TensorFlow is imported: preferring its oneDNN CPU
kernels, and loading triton first (``load_triton_first``).

TensorFlow turns its oneDNN kernels on by itself only on x86 CPUs with
AVX512-VNNI, AVX512-BF16 or AMX. On an AVX2-only CPU (AMD EPYC, 2 cores)
AttnCNN trained 2.3x faster with them (115 against 50 images/s,
``benchmarks/cifar10_speed.md``, section 4), so importing ``attention_zoo``
before TensorFlow sets ``TF_ENABLE_ONEDNN_OPTS=1`` on x86-64 Linux, unless
the variable is already set: ``TF_ENABLE_ONEDNN_OPTS=0`` keeps TensorFlow's
own kernels. TensorFlow reads the variable once, when it is imported, so a
program that imports TensorFlow first keeps TensorFlow's choice.

This module imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys

ENV = "TF_ENABLE_ONEDNN_OPTS"


def prefer_onednn() -> bool:
    """Sets ``TF_ENABLE_ONEDNN_OPTS=1`` where it can still act and was not
    chosen by the user; returns whether it set it."""
    if ENV in os.environ or "tensorflow" in sys.modules:
        return False
    if platform.system() != "Linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    os.environ[ENV] = "1"
    return True


def load_triton_first() -> None:
    """Imports triton, where it is installed, before TensorFlow loads.

    CUDA builds of PyTorch bring triton, and timm (``from_timm``) imports it
    through torchvision. Measured with TensorFlow 2.21 and torch 2.14.1:
    ``import tensorflow; import triton`` kills the process (a segfault in
    triton's native library), while the other order works. Costs about
    0.2 s; does nothing once TensorFlow is loaded (too late) or without triton.
    """
    if "tensorflow" in sys.modules or "triton" in sys.modules:
        return
    if importlib.util.find_spec("triton") is not None:
        import triton  # noqa: F401


def refuse_late_triton(what: str) -> None:
    """Raises ``RuntimeError`` where importing triton now would kill the
    process (TensorFlow loaded, triton installed but not loaded: see
    ``load_triton_first``), naming ``what`` needed it and the import order
    that works. Call it before importing timm or torchvision."""
    if "tensorflow" in sys.modules and "triton" not in sys.modules \
            and importlib.util.find_spec("triton") is not None:
        raise RuntimeError(
            f"{what} imports timm, whose torchvision loads triton, and triton's native "
            "library crashes the process when it loads after TensorFlow (TensorFlow "
            "2.21 with a CUDA build of torch). Import attention_zoo, or timm, before "
            "keras and tensorflow: `import attention_zoo` as the first import.")
