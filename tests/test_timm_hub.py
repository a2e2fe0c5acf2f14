"""``models.load("timm/...")`` end to end from a local safetensors file: the
download is a fake Hub client that writes what the real one would (a timm
checkpoint); everything after it is the code users run."""

from __future__ import annotations

import numpy as np
import pytest
from timm_parity import randomize, relative_error, timm, torch

from attention_zoo import models
from attention_zoo.interop import hub

NAME = "timm/resnet18.a1_in1k"


class FakeHub:
    """``huggingface_hub``'s ``hf_hub_download``, writing a randomly
    initialised checkpoint of the requested architecture."""

    def __init__(self, folder, architecture: str = "resnet18"):
        self.folder, self.architecture, self.calls = folder, architecture, []
        self.model = randomize(timm.create_model(architecture, pretrained=False), seed=3)

    def hf_hub_download(self, repo_id: str, filename: str) -> str:
        import safetensors.torch

        self.calls.append((repo_id, filename))
        path = self.folder / filename
        safetensors.torch.save_file(self.model.state_dict(), str(path))
        return str(path)


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
    # timm's evaluation preprocessing of the same pixels (resize and crop as
    # the model does them; normalization with the checkpoint's statistics).
    config = timm.models.get_pretrained_cfg("resnet18.a1_in1k")
    cropped = np.asarray(model.get_layer("center_crop")(
        model.get_layer("resize")(pixels.astype("float32"))))
    assert cropped.shape[1:3] == tuple(config.input_size[1:])
    normalized = (cropped / 255.0 - np.array(config.mean)) / np.array(config.std)
    with torch.no_grad():
        logits = fake.model(torch.from_numpy(
            normalized.transpose(0, 3, 1, 2).astype("float32"))).numpy()
    want = np.exp(logits - logits.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
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
