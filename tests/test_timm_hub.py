"""``models.load("timm/...")`` end to end from a local safetensors file: the
download is a fake Hub client that writes what the real one would (a timm
checkpoint); everything after it is the code users run."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from timm_parity import FakeHub, relative_error, timm_probabilities

from attention_zoo import models
from attention_zoo.interop import hub

NAME = "timm/resnet18.a1_in1k"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub")
    fake = FakeHub(folder)
    cache = folder / "cache"
    model = models.load(NAME, hub=fake, cache=cache)
    return fake, cache, model


def test_a_checkpoint_converts_once_and_predicts_as_timm_on_raw_pixels(loaded):
    fake, cache, model = loaded
    assert fake.calls == [("timm/resnet18.a1_in1k", "model.safetensors")]
    pixels = np.random.default_rng(0).integers(0, 256, (2, 90, 120, 3)).astype("uint8")
    probabilities = np.asarray(model.predict(pixels, verbose=0))
    assert probabilities.shape == (2, 1000)
    want = timm_probabilities(model, fake.model, pixels, "resnet18.a1_in1k")
    assert relative_error(probabilities, want) <= 1e-4
    assert len(model.class_names) == 1000 and model.class_names[0].startswith("tench")
    # The second load reads the cache: no download, same predictions.
    again = models.load(NAME, hub=None, cache=cache)
    assert len(fake.calls) == 1
    np.testing.assert_allclose(again.predict(pixels, verbose=0), probabilities, atol=1e-6)


def test_new_heads_and_feature_extractors_keep_the_backbone(loaded):
    fake, cache, model = loaded
    pixels = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3)).astype("uint8")
    five = models.load(NAME, cache=cache, num_classes=5)
    assert five.predict(pixels, verbose=0).shape == (2, 5) and five.class_names is None
    features = models.load(NAME, cache=cache, include_top=False, input_shape=(64, 64, 3))
    assert features.input_shape == (None, 64, 64, 3)
    assert features.predict(pixels, verbose=0).shape == (2, 512)
    assert len(fake.calls) == 1


@pytest.mark.parametrize("name, error, match", [
    ("timm/", ValueError, "timm/<architecture>"),
    ("timm/resnet18.", ValueError, "timm/<architecture>"),
    ("timm/a/b", ValueError, "timm/<architecture>"),
    ("timm/resnet18.no_such_tag", ValueError, "no Hub checkpoint"),
])
def test_bad_names_are_clear_errors(name, error, match, tmp_path):
    with pytest.raises(error, match=match):
        models.load(name, hub=FakeHub(tmp_path), cache=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_split_tag():
    assert hub.split_tag("timm/seresnet50.a1_in1k") == ("seresnet50", "a1_in1k")
    assert hub.split_tag("ecaresnet50d") == ("ecaresnet50d", None)


@pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                    reason="triton (a CUDA build of torch) is not installed")
def test_timm_after_tensorflow_is_a_clear_error_not_a_crash(tmp_path):
    """With TensorFlow loaded first, importing timm (torchvision, triton)
    kills the process; the hub path says so before it imports timm."""
    code = ("import tensorflow\nfrom attention_zoo import models\n"
            f"models.load({NAME!r}, cache={str(tmp_path / 'cache')!r})\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])
    assert "RuntimeError" in run.stderr and "before keras and tensorflow" in run.stderr
    assert not (tmp_path / "cache").exists()
