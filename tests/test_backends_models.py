"""The zoo's models (tests/models_on_backend.py: a recipe, save/load,
scale-out, export and the shipped presets' parity with TensorFlow) on Keras's
JAX and PyTorch backends, each in a process of its own: a process picks its
backend once, when Keras loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOISE = ("I0000", "W0000", "E0000", "WARNING: All log messages", "To enable")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_zoo_trains_saves_and_predicts_as_tensorflow_does_on(backend, tmp_path):
    """Training with the default recipes, .keras round trips, and the
    shipped presets' predictions equal to TensorFlow's (1e-4)."""
    out = tmp_path / "predictions.npz"
    env = {**os.environ, "KERAS_BACKEND": backend, "ZOO_PRESET_PREDICTIONS": str(out),
           # Two CPU devices for keras.distribution's DataParallel on JAX.
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/models_on_backend.py", "-q", "-n", "0",
         "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    output = "\n".join(line for line in (run.stdout + run.stderr).splitlines()
                       if not line.startswith(NOISE))
    assert run.returncode == 0, output[-4000:]
    import numpy as np

    from models_on_backend import preset_inputs
    from attention_zoo import models

    theirs = np.load(out)
    assert sorted(theirs.files) == models.pretrained()
    for name in theirs.files:
        ours = models.load(name).predict(preset_inputs(name), verbose=0)
        np.testing.assert_allclose(theirs[name], ours, atol=1e-4, err_msg=name)
