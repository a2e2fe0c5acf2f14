"""Export to SavedModel, TFLite (float, float16, int8) and ONNX, verified;
nothing of the user's is replaced without overwrite=True, and a SavedModel
folder only if this package wrote it."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from attention_zoo import export, files
from attention_zoo.cli import main
from attention_zoo.models import AttnCNN

TINY = {"width": (8, 8, 8), "stem_width": 8}
IMAGES = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
COLORS = np.array([[230, 40, 40], [40, 230, 40], [40, 40, 230], [128, 128, 128]],
                  "float32")


def colored(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy one-color images of 4 classes (red, green, blue, gray)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    noise = rng.normal(0, 40, (n, 32, 32, 3))
    return np.clip(COLORS[labels][:, None, None, :] + noise, 0, 255).astype("float32"), labels


@pytest.fixture(scope="module")
def model():
    m = AttnCNN(attention="cbam", **TINY)
    # Non-trivial BN statistics, so exports are compared on real numbers.
    m.predict(IMAGES, verbose=0)
    for layer in m.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.random.default_rng(1).normal(0, 0.1, layer.moving_mean.shape))
    return m


@pytest.fixture(scope="module")
def trained():
    """A tiny AttnCNN that tells the 4 colors apart (100% on new images):
    an int8 file of it has real decisions to agree with."""
    keras.utils.set_random_seed(0)
    m = AttnCNN(attention="cbam", num_classes=4, **TINY)
    m.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
              jit_compile=False)
    m.fit(*colored(128, 1), epochs=2, batch_size=16, verbose=0)
    x, y = colored(40, 2)
    assert np.mean(m.predict(x, verbose=0).argmax(-1) == y) >= 0.9
    return m


def listing(folder: Path) -> dict[str, bytes | None]:
    """Names in ``folder`` with the bytes of each file (None for folders)."""
    return {p.name: p.read_bytes() if p.is_file() else None for p in folder.iterdir()}


def cli_error(capsys, argv) -> str:
    """Runs ``attention-zoo argv`` expecting an input error: status 2 and one
    line on stderr; returns it."""
    capsys.readouterr()
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("attention-zoo export: error: "), lines
    return lines[-1]


# ------------------------------------------------------------- exporting --

@pytest.mark.parametrize("format, name", [("saved_model", "m_saved"),
                                          ("tflite", "m.tflite"), ("onnx", "m.onnx")])
def test_float_exports_match_keras_with_the_formats_batch(model, tmp_path, format, name):
    lines = []
    report = export.export(model, tmp_path / name, format=format,
                           sample_inputs=IMAGES, log=lines.append)
    assert (tmp_path / name).exists()
    assert report["max_abs_error"] <= 1e-4 and report["top1_agreement"] == 1.0
    assert report["agreement_samples"] == 8 and report["agreement_on"] == "sample_inputs"
    assert report["file_bytes"] > 0 and report["batch1_latency_ms"] > 0
    written = json.loads((tmp_path / f"{name}.report.json").read_text())
    assert written["format"] == format
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # A few progress lines: the step and the elapsed time.
    assert 2 <= len(lines) <= 5 and all(re.search(r"\[\d+\.\d+s\]$", l) for l in lines)
    assert "converting" in lines[0] and "verifying" in lines[1] and "wrote" in lines[-1]
    # batch_size="auto": TFLite batch 1 (mobile), ONNX and SavedModel dynamic.
    assert report["batch_size"] == (1 if format == "tflite" else "dynamic")
    if format == "onnx":
        import onnxruntime
        shape = onnxruntime.InferenceSession(str(tmp_path / name)).get_inputs()[0].shape
        assert not isinstance(shape[0], int) and shape[1:] == [32, 32, 3]
    elif format == "saved_model":
        import tensorflow as tf
        serve = tf.saved_model.load(str(tmp_path / name)).signatures["serving_default"]
        (spec,) = serve.structured_input_signature[1].values()
        assert spec.shape[0] is None
        marker = json.loads((tmp_path / name / export.MARKER).read_text())
        assert marker["format"] == "saved_model" and marker["model"] == model.name
    else:
        from ai_edge_litert.interpreter import Interpreter
        detail = Interpreter(model_path=str(tmp_path / name)).get_input_details()[0]
        assert list(detail["shape_signature"]) == [1, 32, 32, 3]


def test_tflite_has_no_flex_ops_and_a_dynamic_batch(model, tmp_path):
    report = export.export(model, tmp_path / "d.tflite", batch_size=None,
                           sample_inputs=IMAGES, log=None)
    assert report["max_abs_error"] <= 1e-4 and report["batch_size"] == "dynamic"
    assert not any(op.startswith("FlexDelegate") or op == "DELEGATE"
                   for op in report["ops"]["ops"])
    from ai_edge_litert.interpreter import Interpreter
    detail = Interpreter(model_path=str(tmp_path / "d.tflite")).get_input_details()[0]
    assert detail["shape_signature"][0] == -1


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_precision_model_exports_in_float32(model, tmp_path, policy):
    """What training.fit returns on a bfloat16 CPU: TFLite has no bfloat16
    kernels, so the file holds a float32 copy with the same weights."""
    keras.config.set_dtype_policy(policy)
    try:
        mixed = AttnCNN(attention="cbam", **TINY)
    finally:
        keras.config.set_dtype_policy("float32")
    mixed.set_weights(model.get_weights())
    lines = []
    report = export.export(mixed, tmp_path / "m.tflite", sample_inputs=IMAGES,
                           log=lines.append)
    assert report["precision"] == f"float32 (the model's {policy} computed in float32)"
    assert f"computes in {policy}" in lines[0]
    from ai_edge_litert.interpreter import Interpreter
    runner = Interpreter(model_path=str(tmp_path / "m.tflite"))
    runner.allocate_tensors()
    runner.set_tensor(runner.get_input_details()[0]["index"], IMAGES[:1])
    runner.invoke()
    got = runner.get_tensor(runner.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, model.predict(IMAGES[:1], verbose=0), atol=1e-4)
    assert mixed.dtype_policy.name == policy  # the user's model is left as it was
    assert export.export(model, tmp_path / "f.tflite", log=None)["precision"] == "float32"


def test_float16_and_int8(model, tmp_path):
    f16 = export.export(model, tmp_path / "h.tflite", quantize="float16",
                        sample_inputs=IMAGES, log=None)
    assert f16["max_abs_error"] < 0.05
    # Batches of images; an untrained model's near-ties: agreement not checked.
    int8 = export.export(model, tmp_path / "q.tflite", quantize="int8",
                         representative_data=[IMAGES[:4], IMAGES[4:]],
                         sample_inputs=IMAGES, min_agreement=0, log=None)
    assert int8["calibration_samples"] == 8 and int8["agreement_on"] == "sample_inputs"
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(tmp_path / "q.tflite"))
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    assert interpreter.get_output_details()[0]["dtype"] == np.uint8
    # By default the attention path (gates: MUL) stays float, convolutions int8.
    assert "MUL" in int8["ops"]["float_ops"] and "CONV_2D" not in int8["ops"]["float_ops"]
    assert int8["file_bytes"] < f16["file_bytes"] * 1.2
    with pytest.raises(ValueError, match="representative_data"):
        export.to_tflite(model, quantize="int8")


def test_int8_is_checked_on_held_back_calibration_images(trained, tmp_path):
    images, _ = colored(40, 3)  # (N, H, W, C): N samples
    lines = []
    report = export.export(trained, tmp_path / "q.tflite", quantize="int8",
                           representative_data=images, log=lines.append)
    # Every 5th image is held back: 8 compared, 32 calibrate.
    assert report["agreement_on"] == "held-back calibration data"
    assert report["agreement_samples"] == 8 and report["calibration_samples"] == 32
    assert report["top1_agreement"] >= 0.9 and report["min_agreement"] == 0.9
    assert "calibrating on 32 samples" in lines[0]
    assert "8 inputs (held-back calibration data)" in lines[1]


def test_int8_calibrated_on_garbage_fails_and_leaves_nothing(trained, tmp_path):
    images, _ = colored(40, 3)
    # Calibrated on black images, every activation range is 0: a constant output.
    with pytest.raises(export.ExportError, match=(
            r"agrees with the float Keras model on only \d+\.\d% of the 40 inputs "
            r"compared \(sample_inputs\), below min_agreement=0.9; nothing was "
            r"written to .*--min-agreement")):
        export.export(trained, tmp_path / "q.tflite", quantize="int8",
                      representative_data=np.zeros((8, 32, 32, 3), "float32"),
                      sample_inputs=images, log=None)
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_export_fails_loudly_and_leaves_nothing(model, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "FLOAT_TOLERANCE", -1.0)  # any difference fails
    with pytest.raises(export.ExportError, match="differs from Keras"):
        export.export(model, tmp_path / "bad.tflite", sample_inputs=IMAGES, log=None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("data, error, match", [
    (IMAGES[0], ValueError, r"received an array of shape \(32, 32, 3\) float32"),
    (IMAGES[:, :16], ValueError, r"received an array of shape \(8, 16, 32, 3\)"),
    ([IMAGES, IMAGES[:, :, :, :1]], ValueError, r"item 1 is an array of shape \(8, 32, 32, 1\)"),
    ({"image": IMAGES}, TypeError, "received a dict"),
    ("images.npy", TypeError, "received a single str"),
    (np.array(["a", "b"]), ValueError, r"received an array of shape \(2,\) <U1"),
    (IMAGES[:1], ValueError, "holds 1 sample; an int8 export needs at least 2"),
    (None, ValueError, "quantize='int8' needs representative_data"),
])
def test_bad_representative_data_is_named(model, tmp_path, data, error, match):
    with pytest.raises(error, match=match) as caught:
        export.export(model, tmp_path / "q.tflite", quantize="int8",
                      representative_data=data, log=None)
    if "holds 1" not in match and data is not None:
        assert str(caught.value).startswith("representative_data must hold samples of "
                                            "the model's inputs ('image': (N, 32, 32, 3) "
                                            "float32)")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, error, match", [
    ({"format": "coreml"}, ValueError, "format must be one of"),
    ({"quantize": "int4"}, ValueError, "quantize must be one of"),
    ({"format": "onnx", "quantize": "int8"}, ValueError, "format=.tflite. only"),
    ({"batch_size": 4}, ValueError, "batch_size must be 1"),
    ({"float_ops": ["SOFTMAX"]}, ValueError, "quantize='int8' only"),
    ({"quantize": "int8", "float_ops": "SOFTMAX"}, TypeError, "list of names"),
    ({"quantize": "int8", "float_layers": ["nope"], "representative_data": IMAGES},
     ValueError, "names no layer"),
    ({"representative_data": IMAGES}, ValueError, "applies to quantize='int8' only"),
    ({"min_agreement": 1.5}, ValueError, r"min_agreement must be a number in \[0, 1\]"),
    ({"overwrite": "yes"}, TypeError, "overwrite must be True or False"),
    ({"log": "stdout"}, TypeError, "log must be a function"),
])
def test_bad_arguments(model, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        export.export(model, tmp_path / "x", **kwargs)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------- nothing of the user's is lost --

def test_bad_paths(model, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="does not exist"):
        export.export(model, tmp_path / "missing" / "m.tflite")
    with pytest.raises(TypeError, match="keras.Model"):
        export.export("attn_cnn", tmp_path / "m.tflite")
    # (As root os.access is always True: the check is simulated.)
    monkeypatch.setattr(export.os, "access", lambda *args, **kwargs: False)
    with pytest.raises(ValueError, match=re.escape(
            f"cannot write in the folder '{tmp_path.resolve()}'")):
        export.export(model, tmp_path / "m.tflite")


@pytest.mark.parametrize("format", ["tflite", "onnx"])
def test_a_file_export_refuses_folders_and_removes_nothing(model, tmp_path, monkeypatch,
                                                          format):
    folder = tmp_path / "project" / "some_folder"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    before = listing(tmp_path / "project")
    with pytest.raises(ValueError, match=(
            f"'{re.escape(str(folder))}' is an existing folder .*give a file name inside "
            f"it, e.g. '{re.escape(str(folder))}/attn_cnn.{format}'. Nothing was changed")):
        export.export(model, folder, format=format, log=None)
    # .., . and the like are resolved: the folders they are.
    monkeypatch.chdir(folder)
    for path in ("..", ".", "../some_folder/", "../.."):
        with pytest.raises(ValueError, match=f"'{re.escape(path)}' is an existing folder"):
            export.export(model, path, format=format, log=None)
    assert listing(tmp_path / "project") == before
    assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(folder)) == ["notes.txt"]


def test_an_existing_file_is_replaced_only_with_overwrite(model, tmp_path):
    target = tmp_path / "m.tflite"
    target.write_bytes(b"mine")
    with pytest.raises(ValueError, match=r"'.*m\.tflite' already exists; pass "
                                         r"overwrite=True \(CLI: --overwrite\)"):
        export.export(model, target, log=None)
    assert listing(tmp_path) == {"m.tflite": b"mine"}
    # The report beside a new path is checked before converting, too.
    (tmp_path / "n.tflite.report.json").write_text("{}")
    lines = []
    with pytest.raises(ValueError, match=r"n\.tflite\.report\.json' \(written beside "
                                         r"the export\) already exists"):
        export.export(model, tmp_path / "n.tflite", log=lines.append)
    assert lines == [] and sorted(os.listdir(tmp_path)) == ["m.tflite",
                                                            "n.tflite.report.json"]
    report = export.export(model, target, sample_inputs=IMAGES, overwrite=True, log=None)
    assert report["max_abs_error"] <= 1e-4
    assert target.read_bytes()[4:8] == b"TFL3"
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~files.umask())
    assert sorted(os.listdir(tmp_path)) == ["m.tflite", "m.tflite.report.json",
                                            "n.tflite.report.json"]


def test_saved_model_never_replaces_what_it_did_not_write(model, tmp_path):
    folder = tmp_path / "serving"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"someone else's")
    (tmp_path / "plain").write_text("a file")
    before = listing(folder)
    for path in (folder, tmp_path / "plain", tmp_path / ".."):
        with pytest.raises(ValueError, match=(
                "exists and is not a SavedModel folder written by attention_zoo "
                "\\(it has no attention_zoo_export.json\\); it is never replaced, not "
                "even with overwrite=True")):
            export.export(model, path, format="saved_model", overwrite=True, log=None)
    assert listing(folder) == before and (tmp_path / "plain").read_text() == "a file"
    assert sorted(os.listdir(tmp_path)) == ["plain", "serving"]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "rename-aside"])
def test_saved_model_replaces_its_own_export_with_overwrite(model, tmp_path, monkeypatch,
                                                            exchange):
    import tensorflow as tf

    if not exchange:  # the fallback: old folder renamed aside, new one in
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    path = tmp_path / "sm"
    first = AttnCNN(attention="cbam", **TINY)
    export.export(first, path, format="saved_model", sample_inputs=IMAGES[:2], log=None)
    with pytest.raises(ValueError, match="holds an earlier attention_zoo SavedModel "
                                         "export; pass overwrite=True"):
        export.export(model, path, format="saved_model", log=None)
    export.export(model, path, format="saved_model", sample_inputs=IMAGES[:2],
                  overwrite=True, log=None)
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    (got,) = serve(**{export.input_names(model)[0]: tf.constant(IMAGES[:2])}).values()
    np.testing.assert_allclose(got.numpy(), model.predict(IMAGES[:2], verbose=0),
                               atol=1e-5)
    assert sorted(os.listdir(tmp_path)) == ["sm", "sm.report.json"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o777 & ~files.umask())


KILLED_EXPORT = """
import sys
from attention_zoo import export
from attention_zoo.models import AttnCNN
model = AttnCNN(attention="cbam", width=(8, 8, 8), stem_width=8)
export.export(model, sys.argv[1], format=sys.argv[2], overwrite=True,
              log=lambda line: print(line, flush=True))
print("finished", flush=True)
"""


@pytest.mark.parametrize("format, name", [("saved_model", "sm"), ("tflite", "m.tflite")])
def test_a_killed_export_leaves_the_previous_one(model, tmp_path, format, name):
    path = tmp_path / name
    export.export(model, path, format=format, sample_inputs=IMAGES[:2], log=None)
    before = listing(tmp_path)
    files = {p.relative_to(path): p.read_bytes() for p in path.rglob("*") if p.is_file()
             } if format == "saved_model" else None
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_EXPORT, str(path), format], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in process.stdout],
                     daemon=True).start()
    output = []
    try:
        deadline = time.time() + 240
        while not any(l.startswith("export: converting") for l in output):
            output.append(lines.get(timeout=max(1.0, deadline - time.time())))
        # Killed mid-conversion: its temporary file or folder is there.
        assert any(p.startswith(f".{name}.") for p in os.listdir(tmp_path))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, "".join(output)
    assert "finished\n" not in output
    after = listing(tmp_path)
    # Only the export's own temporary names may have appeared.
    strays = set(after) - set(before)
    assert all(re.fullmatch(rf"\.{re.escape(name)}\.\w+\.tmp(\.tflite)?", s)
               for s in strays), strays
    if format == "saved_model":
        assert {p.relative_to(path): p.read_bytes() for p in path.rglob("*")
                if p.is_file()} == files
        import tensorflow as tf
        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        (got,) = serve(**{export.input_names(model)[0]: tf.constant(IMAGES[:2])}).values()
        got = got.numpy()
    else:
        assert after[name] == before[name]
        got = export.run_tflite(path.read_bytes(), [IMAGES[:1]])[0]
    np.testing.assert_allclose(got, model.predict(IMAGES[:len(got)], verbose=0),
                               atol=1e-4)
    # The next export (not killed) replaces it; strays are the user's to delete.
    export.export(model, path, format=format, sample_inputs=IMAGES[:2], overwrite=True,
                  log=None)


# ------------------------------------------------------------------- CLI --

def test_cli_export(model, tmp_path, capsys):
    path = tmp_path / "m.keras"
    model.save(path)
    folder = tmp_path / "some_folder"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    error = cli_error(capsys, ["export", str(path), "--format", "tflite", "--out",
                               str(folder)])
    assert f"'{folder}' is an existing folder" in error
    assert f"e.g. '{folder}/attn_cnn.tflite'" in error
    assert sorted(os.listdir(folder)) == ["keep.txt"]
    out = str(tmp_path / "m.tflite")
    assert main(["export", str(path), "--format", "tflite", "--out", out]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # stdout: the report only
    assert report["max_abs_error"] <= 1e-4 and report["batch_size"] == 1
    assert "export: converting" in captured.err  # progress on stderr
    error = cli_error(capsys, ["export", str(path), "--format", "tflite", "--out", out])
    assert "already exists; pass overwrite=True (CLI: --overwrite)" in error
    assert main(["export", str(path), "--format", "tflite", "--out", out,
                 "--overwrite", "--dynamic-batch"]) == 0
    assert json.loads(capsys.readouterr().out)["batch_size"] == "dynamic"
    assert "--quantize int8 needs --data" in cli_error(
        capsys, ["export", str(path), "--format", "tflite", "--quantize", "int8",
                 "--out", str(tmp_path / "q.tflite")])
    for bad, message in ((["--min-agreement", "0"], "expected a fraction in (0, 1]"),
                         (["--min-agreement", "1.5"], "expected a fraction in (0, 1]"),
                         (["--dynamic-batch", "--fixed-batch"], "not allowed with")):
        capsys.readouterr()
        try:  # argparse's errors: status 2, whether main returns it or exits
            status = main(["export", str(path), "--format", "tflite", "--out", out, *bad])
        except SystemExit as done:
            status = done.code
        assert status == 2 and message in capsys.readouterr().err


def test_cli_int8_export_checks_held_back_images(trained, tmp_path, capsys, monkeypatch):
    import tensorflow as tf
    import zipfile

    from attention_zoo.data.images import CIFAR10_CLASSES

    images, _ = colored(60, 4)
    with zipfile.ZipFile(tmp_path / "colors.zip", "w") as archive:
        # Every class folder gets images (the loader holds some out of each).
        for i, x in enumerate(images.astype(np.uint8)):
            archive.writestr(f"train/{CIFAR10_CLASSES[i % 10]}/{i:04d}.png",
                             tf.io.encode_png(x).numpy())
    path = tmp_path / "c.keras"
    trained.save(path)
    argv = ["export", str(path), "--format", "tflite", "--quantize", "int8", "--data",
            str(tmp_path / "colors.zip"), "--calibration", "40"]
    assert main([*argv, "--out", str(tmp_path / "q.tflite")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["agreement_on"] == "held-back calibration data"
    assert report["agreement_samples"] == 8 and report["top1_agreement"] >= 0.9
    # Demanding more than an int8 file gives fails, and writes nothing.
    report_before = listing(tmp_path)
    capsys.readouterr()
    monkeypatch.setattr(export, "_compare", lambda got, want: {
        "max_abs_error": 0.5, "max_rel_error": 0.5, "top1_agreement": 0.5})
    assert main([*argv, "--min-agreement", "0.95", "--out",
                 str(tmp_path / "r.tflite")]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("attention-zoo export: error: the int8 file's top-1 class "
                            "agrees with the float Keras model on only 50.0% of the 8 "
                            "inputs compared (held-back calibration data), below "
                            "min_agreement=0.95; nothing was written to ")
    assert listing(tmp_path) == report_before


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
    vectorize = text_model.preprocessor.vectorize
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
                         representative_data=[texts], sample_inputs=texts,
                         min_agreement=0)
    # The attention layer stays float (export.default_float_layers), the GRU
    # is int8. (Untrained: probabilities near 0.5, so the error, not the
    # argmax, is what is checked.)
    assert int8["max_abs_error"] < 0.05
    assert export.default_float_layers(model) == (
        "token_attention",)
    assert "SOFTMAX" in int8["ops"]["float_ops"]
    assert "LOGISTIC" not in int8["ops"]["float_ops"]
    config = json.loads((tmp_path / "q.tokenizer.json").read_text())
    assert config["truncating"] == "pre"


def test_text_tokenizer_files_are_not_overwritten(text_model, tmp_path):
    (tmp_path / "t.vocab.txt").write_text("my words\n")
    with pytest.raises(ValueError, match=r"t\.vocab\.txt' \(written beside the "
                                         r"export\) already exists"):
        export.export(text_model, tmp_path / "t.tflite", log=None)
    assert listing(tmp_path) == {"t.vocab.txt": b"my words\n"}
    report = export.export(text_model, tmp_path / "t.tflite", overwrite=True, log=None)
    assert report["tokenizer_files"] == ["t.tokenizer.json", "t.tokenizer.py",
                                         "t.vocab.txt"]
    assert (tmp_path / "t.vocab.txt").read_text() != "my words\n"
    # The same tokenizer files, as another format writes them, are no conflict.
    export.export(text_model, tmp_path / "t.onnx", log=None)
    assert sorted(os.listdir(tmp_path)) == [
        "t.onnx", "t.onnx.report.json", "t.tflite", "t.tflite.report.json",
        "t.tokenizer.json", "t.tokenizer.py", "t.vocab.txt"]
