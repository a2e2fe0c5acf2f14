"""The zoo's models on the Keras backend this process runs (KERAS_BACKEND):
run by tests/test_backends.py in a process per backend, not collected by
itself. Shipped presets write their predictions to $ZOO_PRESET_PREDICTIONS
for the parent to compare with TensorFlow's."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from attention_zoo import data, models, training
from attention_zoo.data.images import ImageSet

IMAGE_SEED = 7
TEXTS = ["a gripping , beautifully acted film", "dull , lifeless and far too long",
         "not bad at all", "i wanted my two hours back", "", "the the the"]
TINY = {"width": (8, 8, 8)}


def preset_inputs(name: str):
    """What each shipped preset predicts on, the same in every process."""
    if models.card(name)["model"] == "attn_cnn":
        return np.random.default_rng(IMAGE_SEED).uniform(0, 255, (6, 32, 32, 3)
                                                         ).astype("float32")
    return TEXTS


def test_shipped_presets_predict():
    out = os.environ.get("ZOO_PRESET_PREDICTIONS")
    predictions = {name: models.load(name).predict(preset_inputs(name), verbose=0)
                   for name in models.pretrained()}
    assert predictions, "no shipped presets found"
    for p in predictions.values():
        assert np.all(np.isfinite(p)) and np.allclose(p.sum(-1), 1.0, atol=1e-5)
    if out:
        np.savez(out, **predictions)


def _images(n: int = 64) -> ImageSet:
    rng = np.random.default_rng(0)
    return ImageSet(rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8),
                    rng.integers(0, 10, n), [str(i) for i in range(10)])


# Hard-example selection's train step is checked on every backend against
# NumPy in tests/test_selection.py; here the default recipe runs end to end,
# on JAX under strategy="mirrored" (one compile serves both checks).
def test_attn_cnn_trains_with_its_recipe_saves_and_loads(tmp_path):
    """``training.fit`` with the default recipe, a run folder and a ``.keras``
    file that loads safely. ``strategy="mirrored"`` is keras.distribution's
    DataParallel on JAX (the parent runs this process with two CPU devices)
    and a clear refusal on PyTorch."""
    backend = keras.backend.backend()
    strategy = None
    if backend == "torch":
        with pytest.raises(ValueError, match="tensorflow.*jax"):
            training.get_strategy("mirrored")
    else:
        strategy = training.get_strategy("mirrored")
    kind = training.get_recipe("cifar10", epochs=1, batch_size=32)
    train = data.pipeline(_images(), 32, training=True, num_classes=10, flip=kind.flip)
    val = data.pipeline(_images(32), 32, num_classes=10)
    result = training.fit(lambda: models.AttnCNN(**TINY), train, val, recipe=kind,
                          out_dir=tmp_path / "run", verbose=0, log=lambda _: None,
                          strategy=strategy)
    assert np.isfinite(result.history["loss"]).all()
    assert 0.0 <= result.val_accuracy <= 1.0
    loaded = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    x = _images(4).images.astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               result.model.predict(x, verbose=0), atol=1e-6)
    if backend == "jax":
        import jax

        assert isinstance(strategy, keras.distribution.DataParallel)
        devices = jax.devices()
        assert len(devices) == 2, "run with XLA_FLAGS=--xla_force_host_platform_device_count=2"
        kernel = result.model.backbone.trainable_weights[0].value
        assert kernel.sharding.device_set == set(devices)  # replicated on both
        with pytest.raises(ValueError, match="multi-worker"):
            training.get_strategy("multiworker")


def test_text_tasks_train_on_strings_save_and_load(tmp_path):
    texts = data.TextSet(np.array(TEXTS * 8, dtype=object), np.array([1, 0, 1, 0, 0, 1] * 8))
    vocabulary = data.build_vocabulary(texts.texts, 50)
    train = data.text_pipeline(texts, 8, training=True)
    for build, recipe in ((lambda: models.AttnTextClassifier(
            vocabulary=vocabulary, embed_dim=8, hidden=4), "text"),
            (lambda: models.NBTextClassifier(vocabulary=vocabulary, ngrams=1), "nb_text")):
        result = training.fit(build, train, train, recipe=training.get_recipe(recipe, epochs=1),
                              verbose=0, log=lambda _: None)
        path = tmp_path / f"{recipe}.keras"
        result.model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_allclose(loaded.predict(TEXTS, verbose=0),
                                   result.model.predict(TEXTS, verbose=0), atol=1e-6)


def test_export_writes_what_the_backend_can_and_refuses_the_rest(tmp_path):
    """JAX writes verified SavedModels, PyTorch verified ONNX files; the
    other formats are refused with the backend that writes them."""
    from attention_zoo import export

    backend = keras.backend.backend()
    model = models.AttnCNN(**TINY)
    for format in export.FORMATS:
        path = tmp_path / f"m.{format}"
        if format in export.BACKEND_FORMATS[backend]:
            report = export.export(model, path, format=format, log=None)
            assert report["max_abs_error"] <= 1e-4
        else:
            with pytest.raises(ValueError, match="KERAS_BACKEND=tensorflow"):
                export.export(model, path, format=format, log=None)
            assert not path.exists()
