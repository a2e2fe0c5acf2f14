"""Weights from other libraries: timm's attention modules and models."""

from attention_zoo.interop.timm import from_timm, supported

__all__ = ["from_timm", "supported"]
