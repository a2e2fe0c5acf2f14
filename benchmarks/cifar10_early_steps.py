"""Per-step training loss over the first steps of the default CIFAR-10 recipe:
shows whether a seed's run takes off or collapses to chance (loss ln 10 =
2.303) before the first epoch ends.

Usage: R='{"warmup": 0.1}' python benchmarks/cifar10_early_steps.py FLIP SEED [STEPS]
  FLIP: 1 (random flips), 0 (none) or alternate; R: recipe changes as JSON.
Prints "step running-mean-loss running-accuracy" per step. The schedule is
built for the full run's 23 steps per epoch, so the steps shown are the
first steps of a full-length run.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from attention_zoo import data, training  # noqa: E402
from attention_zoo.models import AttnCNN  # noqa: E402

flip = sys.argv[1]
flip = flip if flip == "alternate" else flip == "1"
seed = int(sys.argv[2])
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 8
keras.utils.set_random_seed(seed)
train, _ = data.cifar10("../shared/data/cifar10/cifar10-train-jpeg.zip")
recipe = training.get_recipe("cifar10", flip=flip, **json.loads(os.environ.get("R", "{}")))
batches = data.pipeline(train, recipe.batch_size, training=True, flip=flip, seed=seed)
keras.config.set_dtype_policy("mixed_bfloat16")
model = AttnCNN()
training._adapt_to_data(model, batches, print)
model.compile(optimizer=training.make_optimizer(recipe, int(batches.cardinality())),
              loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
              metrics=["accuracy"])


class PrintStep(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        print(batch, round(logs["loss"], 4), round(logs["accuracy"], 4), flush=True)


model.fit(batches.take(steps), epochs=1, verbose=0, callbacks=[PrintStep()])
