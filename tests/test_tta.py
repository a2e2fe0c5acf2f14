"""Test-time augmentation: models.with_tta, load(tta=...), the CLI's --tta,
all averaging the views training.predict averages."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from attention_zoo import export, models, training
from attention_zoo.cli import main
from conftest import cli_error
from attention_zoo.models import AttnCNN, with_tta
from attention_zoo.models.tta import view

ROOT = Path(__file__).resolve().parents[1]
TINY = {"width": (8, 8, 8), "stem_width": 8}
IMAGES = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype("uint8")


@pytest.fixture(scope="module")
def model():
    return AttnCNN(**TINY)


def test_views_shift_with_reflected_borders_then_mirror():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    up_left = np.asarray(view(x, -1, -1))[0, :, :, 0]
    # The window moves up-left, so the content moves down-right by one:
    # row/column 0 are the reflections of row/column 1.
    np.testing.assert_array_equal(up_left[1:, 1:], x[0, :3, :3, 0])
    np.testing.assert_array_equal(up_left[0, 1:], x[0, 1, :3, 0])
    mirrored = np.asarray(view(x, 0, 0, mirrored=True))[0, :, :, 0]
    np.testing.assert_array_equal(mirrored, x[0, :, ::-1, 0])


@pytest.mark.parametrize("tta", ["flip", "flip_translate", True])
def test_with_tta_predicts_what_training_predict_averages(model, tta):
    batches = tf.data.Dataset.from_tensor_slices(IMAGES.astype("float32")).batch(4)
    want = training.predict(model, batches, tta=tta)
    got = with_tta(model, tta).predict(IMAGES, verbose=0)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)


def test_with_tta_shares_the_weights_and_survives_safe_saving(model, tmp_path):
    wrapped = with_tta(model)
    assert wrapped.count_params() == model.count_params()
    path = tmp_path / "tta.keras"
    wrapped.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(IMAGES, verbose=0),
                               wrapped.predict(IMAGES, verbose=0), atol=1e-6)


def test_with_tta_output_stays_float32_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        wrapped = with_tta(AttnCNN(**TINY))
    finally:
        keras.config.set_dtype_policy("float32")
    assert wrapped.get_layer("tta_mean").compute_dtype == "float32"
    assert wrapped.predict(IMAGES, verbose=0).dtype == np.float32


@pytest.mark.parametrize("args, error, match", [
    (("not a model",), TypeError, "keras.Model"),
    ((keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)]),), ValueError,
     "height, width, channels"),
    ((None, False), ValueError, "needs a TTA mode"),
    ((None, "shift"), ValueError, "tta must be one of"),
])
def test_with_tta_bad_input(model, args, error, match):
    args = (model if args[0] is None else args[0], *args[1:])
    with pytest.raises(error, match=match):
        with_tta(*args)


@pytest.mark.parametrize("format, name", [("tflite", "t.tflite"), ("onnx", "t.onnx")])
def test_tta_model_exports_with_parity(model, tmp_path, format, name):
    report = export.export(with_tta(model), tmp_path / name, format=format,
                           sample_inputs=IMAGES.astype("float32"))
    assert report["max_abs_error"] <= 1e-4 and report["top1_agreement"] == 1.0


def test_load_with_tta_matches_the_card_mode_on_the_shipped_cnn():
    paths = sorted((ROOT / "examples" / "images").glob("*.jpg"))
    images = np.stack([tf.io.decode_jpeg(p.read_bytes()).numpy() for p in paths])
    plain = models.load("attn_cnn_cifar10")
    tta = models.load("attn_cnn_cifar10", tta="flip_translate")
    assert tta.name == f"{plain.name}_tta"
    want = training.predict(plain, tf.data.Dataset.from_tensor_slices(
        images.astype("float32")).batch(len(images)), tta="flip_translate")
    np.testing.assert_allclose(tta.predict(images, verbose=0), want, atol=1e-5)
    with pytest.raises(ValueError, match="tta must be one of"):
        models.load("attn_cnn_cifar10", tta="mirror")


def test_cli_predict_and_export_take_tta(tmp_path, capsys):
    image = sorted((ROOT / "examples" / "images").glob("*.jpg"))[0]
    assert main(["predict", "attn_cnn_cifar10", str(image), "--tta", "--top", "1"]) == 0
    assert capsys.readouterr().out.startswith(f"{image}: ")
    path = tmp_path / "m.keras"
    AttnCNN(**TINY).save(path)
    assert main(["export", str(path), "--format", "tflite", "--tta", "flip",
                 "--out", str(tmp_path / "m.tflite")]) == 0
    assert json.loads(capsys.readouterr().out)["max_abs_error"] <= 1e-4
    assert "text model" in cli_error(capsys, ["predict", "attn_text_sst2", "a fine film",
                                              "--tta"])
