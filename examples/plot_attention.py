"""Where the shipped AttnCNN looks: classify the sample images and write
their CBAM spatial attention, overlaid, to attention.png.

    python examples/plot_attention.py [out.png]
"""

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from attention_zoo import inspect, models
from attention_zoo.data.images import CIFAR10_CLASSES

images_dir = Path(__file__).parent / "images"
paths = sorted(images_dir.glob("*.jpg"))
images = np.stack([tf.io.decode_jpeg(p.read_bytes()).numpy() for p in paths])
model = models.load("attn_cnn_cifar10")
probabilities = model.predict(images, verbose=0)
titles = [f"{CIFAR10_CLASSES[p.argmax()]} {p.max():.2f}" for p in probabilities]
out = inspect.plot_attention(model, images, sys.argv[1] if len(sys.argv) > 1
                             else "attention.png", titles=titles)
print(f"{out}: " + ", ".join(f"{p.stem} -> {t}" for p, t in zip(paths, titles)))
