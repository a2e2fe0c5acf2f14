"""The layer contract (tests/test_layer_contract.py) on Keras's JAX backend,
in a process of its own: a process picks its backend once, when Keras loads.
PyTorch is not here yet: under mixed precision its symbolic trace of
MultiHeadAttention gives a float32 output where the eager call gives the
compute dtype (the rest of the harness passes there, TFLite aside)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOISE = ("I0000", "W0000", "E0000", "WARNING: All log messages", "To enable")


@pytest.mark.parametrize("backend", ["jax"])
def test_the_layer_contract_holds_on(backend):
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_layer_contract.py", "-q", "-n", "0",
         "-p", "no:cacheprovider"],
        cwd=ROOT, env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True,
        text=True, timeout=1800)
    output = "\n".join(line for line in (run.stdout + run.stderr).splitlines()
                       if not line.startswith(NOISE))
    assert run.returncode == 0, output[-4000:]
    assert " passed" in output and " failed" not in output
    # The harness really ran on that backend (conftest keeps KERAS_BACKEND).
    probe = subprocess.run([sys.executable, "-c", "import keras; print(keras.backend.backend())"],
                           env={**os.environ, "KERAS_BACKEND": backend},
                           capture_output=True, text=True, timeout=300)
    assert probe.stdout.split()[-1] == backend
