"""attention_zoo: attention layers and prebuilt attention models for Keras 3."""

__version__ = "0.1.0"

from attention_zoo import layers  # noqa: E402,F401  (registers the layers)
