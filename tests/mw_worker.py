"""One worker of the MultiWorkerMirroredStrategy test: trains a small AttnCNN a
few steps with attention_zoo.training.fit and saves its weights."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attention_zoo import training  # noqa: E402

strategy = training.get_strategy("multiworker")  # before any TensorFlow work

import keras  # noqa: E402
import numpy as np  # noqa: E402

from attention_zoo import data  # noqa: E402
from attention_zoo.models import AttnCNN  # noqa: E402

rng = np.random.default_rng(0)
images = rng.integers(0, 256, (64, 32, 32, 3)).astype("uint8")
labels = (np.arange(64) % 10).astype("int32")
batches = data.pipeline(data.ImageSet(images, labels, data.CIFAR10_CLASSES), 16,
                        training=True, seed=0)
keras.utils.set_random_seed(0)
result = training.fit(lambda: AttnCNN(width=(8, 8, 8), stem_width=8), batches,
                      recipe=training.get_recipe("cifar10", epochs=2, batch_size=16),
                      precision="float32", jit_compile=False, strategy=strategy,
                      verbose=0)
np.savez(sys.argv[1], *[np.asarray(w) for w in result.model.get_weights()])
print("chief" if training.is_chief(strategy) else "worker", result.history["loss"])
