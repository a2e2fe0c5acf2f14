"""AttnCNN, the model registry and shipped-weight cards, the image data
pipeline, precision/XLA choices, training and kill-and-resume."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from attention_zoo import data, models, training
from conftest import kill_when
from attention_zoo.data.images import CIFAR10_CLASSES
from attention_zoo.models import AttnCNN
from attention_zoo.models.cards import ship

TINY = {"width": (8, 8, 8), "stem_width": 8}


pytestmark = pytest.mark.usefixtures("private_cache")


# ------------------------------------------------------------------ model --

def test_attn_cnn_is_functional_and_takes_raw_pixels():
    model = AttnCNN(**TINY)
    assert isinstance(model, keras.Model) and model.inputs
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    p = model.predict(images, verbose=0)
    assert p.shape == (3, 10)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.predict(images.astype("float32"), verbose=0), p)
    # Synchronized BatchNorm for tf.distribute; other backends refuse the option.
    norms = [layer for layer in model.backbone.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.synchronized == (keras.backend.backend() == "tensorflow")
                         for layer in norms)


@pytest.mark.parametrize("attention", [None, "se", "eca", "cbam", "coordinate",
                                       "gc", "bam", ["se", None, "cbam"]])
def test_attention_is_one_argument(attention):
    model = AttnCNN(attention=attention, **TINY)
    kinds = [type(l).__name__ for l in model.backbone.layers if "attention" in l.name]
    expected = 0 if attention is None else 2 if isinstance(attention, list) else 3
    assert len(kinds) == expected

def test_residual_attention_adds_the_input_back():
    plain = AttnCNN(attention="se", residual_attention=False, **TINY)
    residual = AttnCNN(attention="se", **TINY)  # the default
    residual.set_weights(plain.get_weights())  # same layers, one Add more each
    adds = [l.name for l in residual.backbone.layers if isinstance(l, keras.layers.Add)]
    assert adds == ["stage1_residual", "stage2_residual", "stage3_residual"]
    # x + se(x) = x * (1 + gate): a different function of the same weights.
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert not np.allclose(plain.predict(images, verbose=0),
                           residual.predict(images, verbose=0))
    body = residual.backbone
    sub = keras.Model(body.input, [body.get_layer("stage1b_relu").output,
                                   body.get_layer("stage1_attention").output,
                                   body.get_layer("stage1_residual").output])
    x, attended, out = sub.predict(images, verbose=0)
    np.testing.assert_allclose(out, x + attended, rtol=1e-5, atol=1e-5)
    # No attention: nothing to add.
    assert not any(isinstance(l, keras.layers.Add) for l in
                   AttnCNN(attention=None, residual_attention=True, **TINY).backbone.layers)


def test_activation_is_one_argument():
    """ReLU replaces GELU after the stem and every BatchNormalization and
    nothing else: the same weights fit, and give other outputs."""
    gelu, relu = AttnCNN(activation="gelu", **TINY), AttnCNN(**TINY)
    relu.set_weights(gelu.get_weights())
    acts = {l.name: l.activation.__name__ for l in relu.backbone.layers
            if isinstance(l, keras.layers.Activation) and l.name != "probabilities"}
    assert len(acts) == 7 and set(acts.values()) == {"relu"}
    images = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert not np.allclose(gelu.predict(images, verbose=0),
                           relu.predict(images, verbose=0))


@pytest.mark.parametrize("kwargs, match", [
    ({"attention": "additive"}, "feature-map layer name"),
    ({"attention": ["se", "se"]}, "one entry per stage"),
    ({"input_shape": (32, 32)}, "input_shape"),
    ({"num_classes": 1}, "num_classes"),
    ({"weights": "imagenet"}, "weights must be"),
    ({"activation": "tanh"}, "activation must be one of gelu, relu"),
])
def test_bad_arguments_are_clear(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AttnCNN(**{**TINY, **kwargs})


def test_mixed_precision_model_outputs_float32_probabilities():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = AttnCNN(**TINY)
    keras.config.set_dtype_policy("float32")
    p = model(np.full((2, 32, 32, 3), 255.0, "float32"))
    assert keras.backend.standardize_dtype(p.dtype) == "float32"
    assert np.all(np.isfinite(np.asarray(p)))


# --------------------------------------------------------------- registry --

def test_registry_creates_attn_cnn():
    assert "attn_cnn" in models.names()
    model = models.create("attn_cnn", **TINY, attention="se")
    assert model.name == "attn_cnn"
    with pytest.raises(ValueError, match="Unknown model"):
        models.create("resnet")


def test_ship_load_and_mismatch(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTENTION_ZOO_WEIGHTS", str(tmp_path))
    config = {"input_shape": [32, 32, 3], "num_classes": 10, "attention": "cbam",
              "width": [8, 8, 8], "stem_width": 8}
    model = AttnCNN(**config)
    ship(model, "attn_cnn_cifar10", {"model": "attn_cnn", "config": config,
                                     "val_accuracy": 0.5})
    assert models.pretrained() == ["attn_cnn_cifar10"]
    assert (tmp_path / "attn_cnn_cifar10" / "README.md").read_text().startswith(
        "# attn_cnn_cifar10")
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    loaded = models.load("attn_cnn_cifar10")
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               model.predict(images, verbose=0), rtol=1e-6)
    again = AttnCNN(weights="cifar10", **{k: v for k, v in config.items()})
    np.testing.assert_allclose(again.predict(images, verbose=0),
                               model.predict(images, verbose=0), rtol=1e-6)
    with pytest.raises(ValueError, match="attention='se' \\(shipped: 'cbam'\\)"):
        AttnCNN(weights="cifar10", **{**config, "attention": "se"})
    with pytest.raises(ValueError, match="num_classes=100"):
        AttnCNN(weights="cifar10", **{**config, "num_classes": 100})
    with pytest.raises(ValueError, match="Unknown pretrained model"):
        models.load("attn_cnn_imagenet")
    # A user's weights file of another architecture: a clear error.
    path = tmp_path / "other.weights.h5"
    AttnCNN(attention="se", **TINY).save_weights(path)
    with pytest.raises(ValueError, match="do not fit"):
        AttnCNN(weights=str(path), **TINY)


# ------------------------------------------------------------------- data --

def test_image_folder_from_zip_and_dir_agree(tiny_zip, tmp_path):
    from_zip = data.image_folder(tiny_zip, split="train")
    assert from_zip.images.shape == (60, 32, 32, 3)
    assert from_zip.images.dtype == np.uint8
    assert from_zip.class_names == tuple(sorted(CIFAR10_CLASSES))
    with zipfile.ZipFile(tiny_zip) as archive:
        archive.extractall(tmp_path / "folder")
    from_dir = data.image_folder(tmp_path / "folder" / "train")
    np.testing.assert_array_equal(from_dir.images, from_zip.images)
    np.testing.assert_array_equal(from_dir.labels, from_zip.labels)
    cached = data.image_folder(tiny_zip, split="train")  # from the .npz cache
    np.testing.assert_array_equal(cached.images, from_zip.images)
    assert list((Path(os.environ["ATTENTION_ZOO_CACHE"])).glob("images-*.npz"))


def test_image_cache_survives_concurrent_writers(tiny_zip, monkeypatch):
    """Two loaders decode the same zip at once (a tuner's chief and worker
    did, and one found its temporary file renamed away by the other)."""
    import threading
    import time

    from attention_zoo.data import images as images_module

    real_savez = np.savez

    def slow_savez(*args, **kwargs):
        real_savez(*args, **kwargs)
        time.sleep(0.5)  # both written before either is renamed

    monkeypatch.setattr(images_module.np, "savez", slow_savez)
    results, errors = [], []

    def load():
        try:
            results.append(data.image_folder(tiny_zip, split="train"))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    np.testing.assert_array_equal(results[0].images, results[1].images)
    cache = Path(os.environ["ATTENTION_ZOO_CACHE"])
    assert [p.name for p in cache.iterdir() if not p.name.startswith("images-")] == []
    assert len(list(cache.glob("images-*.npz"))) == 1


def test_cifar10_split_is_last_images_of_each_class(tiny_zip):
    train, val = data.cifar10(tiny_zip, val_per_class=2)
    assert len(train) == 40 and len(val) == 20
    assert train.class_names == CIFAR10_CLASSES  # the standard label order
    assert np.bincount(val.labels).tolist() == [2] * 10
    every = data.image_folder(tiny_zip, split="train", class_names=CIFAR10_CLASSES)
    for c in range(10):
        mine = every.images[every.labels == c]
        np.testing.assert_array_equal(val.images[val.labels == c], mine[-2:])


@pytest.mark.parametrize("bad, match", [
    ("missing.zip", "no such image folder"),
])
def test_image_folder_bad_paths(bad, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        data.image_folder(tmp_path / bad)


def test_image_folder_refuses_a_non_image_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ValueError, match="image folder or a .zip"):
        data.image_folder(path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        data.image_folder(empty)


def test_pipeline_augments_training_batches_only(tiny_zip):
    train, _ = data.cifar10(tiny_zip, val_per_class=2)
    plain = next(iter(data.pipeline(train, 40)))
    np.testing.assert_array_equal(plain[0].numpy(), train.images.astype("float32"))
    assert plain[1].shape == (40, 10)
    augmented = next(iter(data.pipeline(train, 40, training=True, cutout=8)))
    x = augmented[0].numpy()
    assert x.shape == (40, 32, 32, 3) and x.min() >= 0 and x.max() <= 255
    # Shuffled, flipped, shifted: not the same pixels, same label counts.
    assert not np.array_equal(np.sort(x.ravel()), np.sort(plain[0].numpy().ravel()))
    assert augmented[1].numpy().sum(0).tolist() == [4] * 10


def test_alternating_flip_mirrors_each_image_the_other_way_every_epoch():
    from attention_zoo.data.images import ImageSet

    n = 20
    images = np.zeros((n, 4, 4, 3), "uint8")
    images[:, :, :2] = np.arange(1, n + 1, dtype="uint8")[:, None, None, None]
    # Left half holds the image's number: a mirrored image has it on the right.
    train = ImageSet(images, np.arange(n), tuple(str(i) for i in range(n)))
    ds = data.pipeline(train, 8, training=True, translate=0, flip="alternate",
                       one_hot=False)
    assert int(ds.cardinality()) == 3
    mirrored = []
    for _ in range(4):  # one iterator per epoch, as model.fit makes them
        epoch = {}
        for x, y in ds:
            for image, label in zip(x.numpy(), y.numpy()):
                assert image.max() == label + 1  # the pixels stayed with their label
                epoch[int(label)] = bool(image[0, -1, 0] > 0)
        mirrored.append([epoch[i] for i in range(n)])
    first = np.array(mirrored[0])
    assert 0 < first.sum() < n  # random in the first epoch
    for e, flips in enumerate(mirrored):
        np.testing.assert_array_equal(flips, first ^ bool(e % 2), err_msg=f"epoch {e}")
    with pytest.raises(ValueError, match="flip must be"):
        data.pipeline(train, 8, training=True, flip="sometimes")
    with pytest.raises(ValueError, match="flip must be"):
        data.pipeline(train, 8, training=True, flip=1)


def test_pipelines_turn_off_the_autotune_model_that_stalls_new_epochs():
    """A fit() epoch destroys the last epoch's iterator; with tf.data's
    autotune model on, that waits out the model thread's sleep (up to 60 s)."""
    from attention_zoo.data.images import ImageSet
    from attention_zoo.data.text import TextSet

    images = ImageSet(np.zeros((8, 4, 4, 3), "uint8"), np.arange(8) % 2, ("a", "b"))
    texts = TextSet(np.array(["a b", "c"], dtype=object), np.array([0, 1], "int32"))
    for ds in (data.pipeline(images, 4, training=True, flip="alternate"),
               data.pipeline(images, 4), data.text_pipeline(texts, 2, training=True)):
        assert ds.options().autotune.enabled is False
        assert sum(1 for _ in ds) == int(ds.cardinality()) > 0


def test_translate_moves_pixels_by_at_most_the_pad():
    from attention_zoo.data.images import augment_batch

    image = np.zeros((1, 8, 8, 1), "float32")
    image[0, 4, 4, 0] = 255
    for _ in range(10):
        out = augment_batch(image, translate=2, flip=False).numpy()[0, ..., 0]
        y, x = np.unravel_index(out.argmax(), out.shape)
        assert abs(y - 4) <= 2 and abs(x - 4) <= 2 and out.max() == 255


# ------------------------------------------------------- precision and XLA --

def test_auto_precision_and_xla(monkeypatch):
    monkeypatch.setattr(training.policy, "has_gpu", lambda: True)
    assert training.choose_precision("auto")[0] == "mixed_float16"
    assert training.choose_jit("auto")[0] is True
    monkeypatch.setattr(training.policy, "has_gpu", lambda: False)
    monkeypatch.setattr(training.policy, "cpu_has_bf16", lambda: True)
    assert training.choose_precision("auto")[0] == "mixed_bfloat16"
    assert training.choose_jit("auto")[0] is False
    monkeypatch.setattr(training.policy, "cpu_has_bf16", lambda: False)
    assert training.choose_precision("auto")[0] == "float32"
    assert training.choose_precision("mixed_float16") == ("mixed_float16", "forced")
    assert training.choose_jit(True) == (True, "forced")
    with pytest.raises(ValueError, match="precision must be one of"):
        training.choose_precision("float64")
    with pytest.raises(ValueError, match="jit_compile must be"):
        training.choose_jit("sometimes")


def test_cpu_description_names_model_and_widest_isa(monkeypatch):
    from attention_zoo.models.cards import machine

    info = "processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t\t: fpu sse2 avx2 avx512f\n"
    monkeypatch.setattr(training.policy, "_cpuinfo", lambda: info)
    assert training.policy.cpu_description() == "Some CPU 9000 (avx512f)"
    assert "Some CPU 9000 (avx512f), " in machine()
    monkeypatch.setattr(training.policy, "_cpuinfo",
                        lambda: info.replace("avx512f", "avx512_bf16 avx512f"))
    assert training.policy.cpu_description().endswith("(avx512_bf16)")
    assert training.policy.cpu_has_bf16()
    monkeypatch.setattr(training.policy, "_cpuinfo", lambda: "")
    assert "(" not in training.policy.cpu_description()
    assert not training.policy.cpu_has_bf16()


def test_one_cycle_schedule_shape():
    schedule = training.OneCycle(1.0, total_steps=100, warmup_steps=20)
    values = [float(schedule(s)) for s in (0, 10, 20, 60, 100, 120)]
    assert values[0] == pytest.approx(0.1) and values[2] == pytest.approx(1.0)
    assert values[1] < values[2] and values[3] == pytest.approx(0.5)
    assert values[4] == 0.0 and values[5] == 0.0
    clone = training.OneCycle.from_config(schedule.get_config())
    assert float(clone(60)) == pytest.approx(0.5)


def test_weight_ema_warms_up():
    """After 5 steps at momentum 0.99 the EMA follows the weights; Keras's
    own EMA would still be 95% the initial weights."""
    import keras
    import numpy as np
    import tensorflow as tf

    recipe = training.get_recipe("cifar10_sgd", epochs=1, learning_rate=0.1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    optimizer = training.make_optimizer(recipe, steps_per_epoch=5)
    assert isinstance(optimizer, training.SGD) and optimizer.use_ema
    optimizer.build(model.trainable_variables)
    start = model.get_weights()[0].copy()
    x, y = tf.ones((5, 4)), tf.fill((5, 1), 10.0)
    for _ in range(5):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(x) - y) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    raw = model.get_weights()[0]
    ema = optimizer._model_variables_moving_average[0].numpy()
    assert np.abs(ema - raw).max() < 0.5 * np.abs(start - raw).max()
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(optimizer))
    assert type(restored) is training.SGD


def test_test_time_augmentation_views(tiny_zip, tmp_path, capsys):
    from attention_zoo.cli import main

    keras.utils.set_random_seed(0)
    model = AttnCNN(**TINY)
    _, val = data.cifar10(tiny_zip, val_per_class=2)
    batches = data.pipeline(val, 8)
    x = val.images.astype("float32")

    def mean_flip(images):
        return (model.predict(images, verbose=0)
                + model.predict(images[:, :, ::-1], verbose=0)) / 2

    def shift(dy, dx):
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
        return padded[:, 1 + dy:33 + dy, 1 + dx:33 + dx]

    np.testing.assert_allclose(training.predict(model, batches, tta="flip"), mean_flip(x),
                               atol=1e-5)
    want = 0.5 * mean_flip(x) + 0.25 * mean_flip(shift(-1, -1)) + 0.25 * mean_flip(shift(1, 1))
    np.testing.assert_allclose(training.predict(model, batches, tta="flip_translate"),
                               want, atol=1e-5)
    with pytest.raises(ValueError, match="tta must be one of"):
        training.predict(model, batches, tta="rotate")
    model.save(tmp_path / "m.keras")
    assert main(["evaluate", str(tmp_path / "m.keras"), "--data", str(tiny_zip),
                 "--val-per-class", "2", "--tta", "flip_translate"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["tta"] == "flip_translate" and 0.0 <= report["val_accuracy"] <= 1.0


def test_default_cifar10_recipe_warms_up_over_its_first_epoch():
    # From the peak at step 0 some seeds collapsed to chance at step 4
    # (benchmarks/cifar10_early_steps.md); the default ramps up instead.
    recipe = training.get_recipe("cifar10")
    assert recipe.flip == "alternate"
    optimizer = training.make_optimizer(recipe, steps_per_epoch=23)
    rates = []
    for step in (0, 11, 23, 229):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    peak = recipe.learning_rate
    assert rates[0] == pytest.approx(0.1 * peak, rel=1e-5)
    assert rates[0] < rates[1] < rates[2] == pytest.approx(peak, rel=1e-5)
    assert rates[3] < 0.01 * peak


def test_recipes():
    assert training.get_recipe("cifar10", epochs=3).epochs == 3
    with pytest.raises(ValueError, match="Unknown recipe"):
        training.get_recipe("imagenet")
    with pytest.raises(ValueError, match="unknown recipe fields"):
        training.get_recipe("cifar10", epoch=3)
    # The default TTA is airbench's flips plus shifts; --set parses its modes.
    from attention_zoo.cli.train import _recipe_field

    recipe = training.get_recipe("cifar10")
    assert recipe.tta == "flip_translate" and training.get_recipe("text").tta is False
    assert _recipe_field(recipe, "tta=off") == ("tta", False)
    assert _recipe_field(recipe, "tta=flip") == ("tta", "flip")
    assert [training.tta_name(t) for t in training.TTA_MODES] == [
        "none", "flip", "flip", "flip_translate"]
    assert _recipe_field(recipe, "validate_every=0") == ("validate_every", 0)
    # flip: False, True or "alternate"; a plain bool field takes only bools.
    assert _recipe_field(recipe, "flip=alternate") == ("flip", "alternate")
    assert _recipe_field(recipe, "flip=off") == ("flip", False)
    assert _recipe_field(recipe, "ema=on") == ("ema", True)
    with pytest.raises(ValueError, match="--set ema takes true or false"):
        _recipe_field(recipe, "ema=sometimes")
    with pytest.raises(ValueError, match="flip must be one of"):
        recipe.replace(flip="sometimes")
    for bad in (-1, 1.5, True):
        with pytest.raises((TypeError, ValueError), match="validate_every"):
            recipe.replace(validate_every=bad)


def test_a_bad_tta_fails_before_training(tiny_zip):
    train, val = data.cifar10(tiny_zip, val_per_class=2)
    recipe = training.get_recipe("cifar10", epochs=1, batch_size=16, tta="rotate")
    with pytest.raises(ValueError, match="recipe.tta must be one of"):
        training.fit(lambda: pytest.fail("built a model"), data.pipeline(train, 16),
                     data.pipeline(val, 16), recipe=recipe)


@pytest.mark.parametrize("precision, jit", [("mixed_bfloat16", False),
                                            ("float32", True)])
def test_fit_trains_under_a_policy(tiny_zip, tmp_path, precision, jit):
    run = tmp_path / "run"  # a new run folder
    train, val = data.cifar10(tiny_zip, val_per_class=2)
    recipe = training.get_recipe("cifar10", epochs=2, batch_size=16)
    result = training.fit(lambda: AttnCNN(**TINY), data.pipeline(train, 16, training=True),
                          data.pipeline(val, 16), recipe=recipe, out_dir=run,
                          precision=precision, jit_compile=jit, verbose=0)
    assert result.precision == precision and result.jit_compile is jit
    assert result.model.dtype_policy.name == precision
    assert 0.0 <= result.val_accuracy <= 1.0
    assert len(result.history["loss"]) == 2
    assert np.all(np.isfinite(result.history["loss"]))
    for name in ("model.keras", "last.keras", "history.csv", "result.json"):
        assert (run / name).is_file()
    assert list((run / "logs").rglob("*tfevents*"))
    assert not list(run.glob(".*tmp*"))  # nothing half-written left
    # The file keeps the policy the model trained under, and its predictions.
    loaded = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert keras.config.dtype_policy().name == "float32"
    assert {layer.dtype_policy.name for layer in loaded.backbone.layers} == {precision}
    assert loaded.dtype_policy.name == precision
    np.testing.assert_array_equal(loaded.predict(val.images, verbose=0),
                                  result.model.predict(val.images, verbose=0))


@pytest.mark.parametrize("every, validated", [(2, [False, True, False]),
                                              (0, [False, False, False])])
def test_validate_every_skips_epochs_and_still_reports(tiny_zip, tmp_path, every,
                                                       validated):
    run = tmp_path / "run"  # a new run folder
    from attention_zoo.cli.train import _history_csv

    train, val = data.cifar10(tiny_zip, val_per_class=2)
    val_ds = data.pipeline(val, 16)
    recipe = training.get_recipe("cifar10", epochs=3, batch_size=16,
                                 validate_every=every)
    result = training.fit(lambda: AttnCNN(**TINY), data.pipeline(train, 16, training=True),
                          val_ds, recipe=recipe, out_dir=run, verbose=0)
    history = _history_csv(run / "history.csv")
    assert len(history["loss"]) == 3  # the CSV keeps its val columns, "NA" when skipped
    assert [not np.isnan(v) for v in history["val_accuracy"]] == validated
    # The evaluation after training gives both figures from one set of views.
    assert result.val_accuracy_plain == pytest.approx(
        training.evaluate(result.model, val_ds, tta=False))
    assert result.val_accuracy == pytest.approx(
        training.evaluate(result.model, val_ds, tta=recipe.tta))


# --------------------------------------------------------- kill and resume --

def _train_command(data_path: Path, out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "attention_zoo", "train", "attn_cnn",
            "--data", str(data_path), "--out", str(out), "--epochs", str(epochs),
            "--batch-size", "8", "--width", "8", "8", "8", "--stem-width", "8",
            "--val-per-class", "2", "--precision", "float32",
            "--jit-compile", "off"]


def test_training_killed_mid_way_resumes_without_losing_epochs(tiny_zip, tmp_path):
    out, epochs = tmp_path / "run", 12
    env = {**os.environ, "ATTENTION_ZOO_CACHE": str(tmp_path / "cache")}
    process = subprocess.Popen(_train_command(tiny_zip, out, epochs), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meta = out / "backup" / "training_metadata.json"
    kill_when(process, lambda: meta.is_file() and json.loads(
        meta.read_text() or "{}").get("epoch", -1) >= 1, "training")
    done_before = int(json.loads(meta.read_text())["epoch"])  # epochs completed
    assert 1 <= done_before < epochs
    assert not (out / "model.keras").exists()
    with (out / "history.csv").open() as f:
        assert {int(r["epoch"]) for r in csv.DictReader(f)} >= set(range(done_before))

    resumed = subprocess.run(_train_command(tiny_zip, out, epochs), env=env,
                             capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["initial_epoch"] >= done_before
    with (out / "history.csv").open() as f:
        logged = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert sorted(set(logged)) == list(range(epochs))  # every epoch, once done
    assert len(logged) <= epochs + 1  # at most the interrupted epoch again
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == epochs


def test_prefer_onednn_only_where_it_can_act(monkeypatch):
    import platform

    from attention_zoo import onednn

    monkeypatch.setenv(onednn.ENV, "unset")  # so that teardown restores it
    monkeypatch.delenv(onednn.ENV)
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert "tensorflow" in sys.modules  # TensorFlow already read the variable
    assert not onednn.prefer_onednn() and onednn.ENV not in os.environ
    monkeypatch.delitem(sys.modules, "tensorflow")
    assert onednn.prefer_onednn() and os.environ[onednn.ENV] == "1"
    monkeypatch.setenv(onednn.ENV, "0")  # the user's choice stands
    assert not onednn.prefer_onednn() and os.environ[onednn.ENV] == "0"
    monkeypatch.delenv(onednn.ENV)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert not onednn.prefer_onednn() and onednn.ENV not in os.environ


def test_importing_the_package_first_turns_onednn_on():
    """In a fresh interpreter without the variable, on x86-64 Linux."""
    import platform

    if platform.system() != "Linux" or platform.machine() != "x86_64":
        pytest.skip("oneDNN is preferred on x86-64 Linux only")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    code = ("import attention_zoo, os; from attention_zoo.training import onednn_enabled; "
            "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], onednn_enabled())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-2:] == ["1", "True"]
