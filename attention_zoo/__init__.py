"""attention_zoo: attention layers and prebuilt attention models for Keras 3.

Importing the package registers every serializable class (layers, models,
schedules, losses), so ``keras.saving.load_model`` reads any file it wrote.
Imported before TensorFlow on x86-64 Linux, it also turns on TensorFlow's
oneDNN CPU kernels unless ``TF_ENABLE_ONEDNN_OPTS`` is set
(``attention_zoo.onednn``).
"""

__version__ = "0.1.0"

from attention_zoo.onednn import load_triton_first, prefer_onednn  # noqa: E402
from attention_zoo.quiet import running_the_command, stderr_silenced  # noqa: E402

prefer_onednn()  # before the imports below load TensorFlow
load_triton_first()  # likewise

# The command's one-line errors are not buried under TensorFlow's start-up lines.
with stderr_silenced(running_the_command()):
    from attention_zoo import layers, models, training  # noqa: E402,F401

    if running_the_command():  # TensorFlow logs its device search on first use
        import tensorflow as _tf

        _tf.config.list_physical_devices()
