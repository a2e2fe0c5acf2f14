"""attention_zoo: attention layers and prebuilt attention models for Keras 3.

Importing the package registers every serializable class (layers, models,
schedules, losses), so ``keras.saving.load_model`` reads any file it wrote.
"""

__version__ = "0.1.0"

from attention_zoo import layers, models, training  # noqa: E402,F401
