"""Export to SavedModel, TFLite (float, float16, int8) and ONNX, verified."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from attention_zoo import export
from attention_zoo.cli import main
from attention_zoo.models import AttnCNN

TINY = {"width": (8, 8, 8), "stem_width": 8}
IMAGES = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")


@pytest.fixture(scope="module")
def model():
    m = AttnCNN(attention="cbam", **TINY)
    # Non-trivial BN statistics, so exports are compared on real numbers.
    m.predict(IMAGES, verbose=0)
    for layer in m.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.random.default_rng(1).normal(0, 0.1, layer.moving_mean.shape))
    return m


@pytest.mark.parametrize("format, name", [("saved_model", "m_saved"),
                                          ("tflite", "m.tflite"), ("onnx", "m.onnx")])
def test_float_exports_match_keras(model, tmp_path, format, name):
    report = export.export(model, tmp_path / name, format=format,
                           sample_inputs=IMAGES)
    assert (tmp_path / name).exists()
    assert report["max_abs_error"] <= 1e-4 and report["top1_agreement"] == 1.0
    assert report["file_bytes"] > 0 and report["batch1_latency_ms"] > 0
    written = json.loads((tmp_path / f"{name}.report.json").read_text())
    assert written["format"] == format
    assert not list(tmp_path.glob(".*tmp*"))


def test_tflite_has_no_flex_ops_and_a_dynamic_batch(model, tmp_path):
    report = export.export(model, tmp_path / "d.tflite", batch_size=None,
                           sample_inputs=IMAGES)
    assert report["max_abs_error"] <= 1e-4
    assert not any(op.startswith("FlexDelegate") or op == "DELEGATE"
                   for op in report["ops"]["ops"])
    from ai_edge_litert.interpreter import Interpreter
    detail = Interpreter(model_path=str(tmp_path / "d.tflite")).get_input_details()[0]
    assert detail["shape_signature"][0] == -1


def test_float16_and_int8(model, tmp_path):
    f16 = export.export(model, tmp_path / "h.tflite", quantize="float16",
                        sample_inputs=IMAGES)
    assert f16["max_abs_error"] < 0.05
    int8 = export.export(model, tmp_path / "q.tflite", quantize="int8",
                         representative_data=[IMAGES], sample_inputs=IMAGES)
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(tmp_path / "q.tflite"))
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    assert interpreter.get_output_details()[0]["dtype"] == np.uint8
    # By default the attention path (gates: MUL) stays float, convolutions int8.
    assert "MUL" in int8["ops"]["float_ops"] and "CONV_2D" not in int8["ops"]["float_ops"]
    assert int8["file_bytes"] < f16["file_bytes"] * 1.2
    with pytest.raises(ValueError, match="representative_data"):
        export.to_tflite(model, quantize="int8")


def test_a_wrong_export_fails_loudly_and_leaves_nothing(model, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "FLOAT_TOLERANCE", -1.0)  # any difference fails
    with pytest.raises(export.ExportError, match="differs from Keras"):
        export.export(model, tmp_path / "bad.tflite", sample_inputs=IMAGES)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, error, match", [
    ({"format": "coreml"}, ValueError, "format must be one of"),
    ({"quantize": "int4"}, ValueError, "quantize must be one of"),
    ({"format": "onnx", "quantize": "int8"}, ValueError, "format=.tflite. only"),
    ({"batch_size": 4}, ValueError, "batch_size must be 1"),
    ({"float_ops": ["SOFTMAX"]}, ValueError, "quantize='int8' only"),
    ({"quantize": "int8", "float_ops": "SOFTMAX"}, TypeError, "list of names"),
    ({"quantize": "int8", "float_layers": ["nope"]}, ValueError, "names no layer"),
])
def test_bad_arguments(model, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        export.export(model, tmp_path / "x", **kwargs)


def test_bad_paths(model, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        export.export(model, tmp_path / "missing" / "m.tflite")
    with pytest.raises(TypeError, match="keras.Model"):
        export.export("attn_cnn", tmp_path / "m.tflite")


def test_cli_export(model, tmp_path, capsys):
    path = tmp_path / "m.keras"
    model.save(path)
    assert main(["export", str(path), "--format", "tflite", "--out",
                 str(tmp_path / "m.tflite")]) == 0
    assert json.loads(capsys.readouterr().out)["max_abs_error"] <= 1e-4
    with pytest.raises(SystemExit, match="needs --data"):
        main(["export", str(path), "--format", "tflite", "--quantize", "int8",
              "--out", str(tmp_path / "q.tflite")])


# ------------------------------------------------------------------- text --

@pytest.fixture(scope="module")
def text_model():
    from attention_zoo.data.text import build_vocabulary
    from attention_zoo.models import AttnTextClassifier

    corpus = ["a gripping beautifully acted film", "dull lifeless and long",
              "not bad at all", "an instant classic"] * 5
    return AttnTextClassifier(vocabulary=build_vocabulary(corpus, 40, ngrams=2),
                              ngrams=2, max_length=16, embed_dim=16, hidden=8,
                              attention="mha")


def test_text_saved_model_takes_raw_strings(text_model, tmp_path):
    import tensorflow as tf

    # Sample inputs given as a plain list of texts (one string input).
    report = export.export(text_model, tmp_path / "text_saved", format="saved_model",
                           sample_inputs=["a gripping film", "", "dull"])
    assert report["max_abs_error"] <= 1e-4 and report["samples"] == 3
    serve = tf.saved_model.load(str(tmp_path / "text_saved")).signatures["serving_default"]
    (out,) = serve(text=tf.constant(["a gripping film", ""])).values()
    np.testing.assert_allclose(out.numpy(), text_model.predict(["a gripping film", ""],
                                                               verbose=0), atol=1e-5)


@pytest.mark.parametrize("format, name", [("tflite", "t.tflite"), ("onnx", "t.onnx")])
def test_text_mobile_exports_take_ids_with_a_tokenizer(text_model, tmp_path, format,
                                                      name):
    report = export.export(text_model, tmp_path / name, format=format)
    assert report["max_abs_error"] <= 1e-4
    assert sorted(report["tokenizer_files"]) == ["t.tokenizer.json", "t.tokenizer.py",
                                                 "t.vocab.txt"]
    import importlib.util
    spec = importlib.util.spec_from_file_location("shipped_tokenizer",
                                                  tmp_path / "t.tokenizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tokenizer = module.Tokenizer.from_files(tmp_path / "t.tokenizer.json")
    texts = ["A GRIPPING film!!", "", "Émile's 😀 <br/> film", "long " * 5000,
             "tab\tand\u00a0nbsp"]
    ids = tokenizer(texts)
    vectorize = text_model.get_layer("vectorize")
    from attention_zoo.models.text import as_text_tensor
    np.testing.assert_array_equal(ids, np.asarray(vectorize(as_text_tensor(texts))))
    if format == "tflite":
        got = export.run_tflite((tmp_path / name).read_bytes(), [ids[:1]])[0]
        want = text_model.predict(texts[:1], verbose=0)
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_bigru_text_model_converts_with_a_dynamic_batch_and_to_int8(tmp_path):
    """The GRU loop is unrolled for a dynamic batch (no Flex tensor lists);
    int8 is calibrated on token ids; the exported tokenizer keeps the last
    tokens like the model (export checks them equal)."""
    from attention_zoo.models import AttnTextClassifier

    keras.utils.set_random_seed(0)
    vocabulary = ["good", "bad", "film", "not", "great", "dull"]
    model = AttnTextClassifier(vocabulary=vocabulary, max_length=8, embed_dim=8,
                               hidden=4, encoder="bigru", truncating="pre")
    texts = ["good film", "not a good film at all", "dull", "", "great great film",
             "bad bad bad film not good either, dull dull and not great"]
    report = export.export(model, tmp_path / "g.tflite", batch_size=None,
                           sample_inputs=texts)
    assert report["max_abs_error"] <= 1e-4
    assert not any(op.startswith("Flex") or op == "DELEGATE"
                   for op in report["ops"]["ops"])
    int8 = export.export(model, tmp_path / "q.tflite", quantize="int8",
                         representative_data=[texts], sample_inputs=texts)
    # The attention layer stays float (export.default_float_layers), the GRU
    # is int8. (Untrained: probabilities near 0.5, so the error, not the
    # argmax, is what is checked.)
    assert int8["max_abs_error"] < 0.05
    assert export.default_float_layers(model.get_layer("token_classifier")) == (
        "token_attention",)
    assert "SOFTMAX" in int8["ops"]["float_ops"]
    assert "LOGISTIC" not in int8["ops"]["float_ops"]
    config = json.loads((tmp_path / "q.tokenizer.json").read_text())
    assert config["truncating"] == "pre"
