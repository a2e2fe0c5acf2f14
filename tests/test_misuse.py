"""The misuse suite: what a user may get wrong, through the command line and
the API. Each case asserts the error type (the CLI: exit status 2, one line
on stderr, no traceback), the key words of the message, and that every file
that existed before is untouched. Kill tests: SIGKILL during ``ship`` and
``train`` leaves the previous state intact (export's is in test_export.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from attention_zoo.cli import main
from conftest import kill_when, write_tiny_cifar_zip

TEXT_RUN = ["--val-fraction", "0.25", "--epochs", "1", "--batch-size", "16",
            "--max-length", "8", "--vocab-size", "40", "--embed-dim", "8",
            "--hidden", "4", "--precision", "float32", "--jit-compile", "off"]


def _rows(pairs) -> str:
    return "label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in pairs)


def _good_rows(n: int = 48) -> list[tuple[int, str]]:
    words = ["superb film", "dull plot", "great acting", "awful story"]
    return [(i % 2, f"the {words[i % 4]} {i}") for i in range(n)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A user's folder: data files good and bad, a finished training run,
    a shipped model (``zoo/tiny``) and files of their own."""
    root = tmp_path_factory.mktemp("world")
    with pytest.MonkeyPatch.context() as patch:  # restored for the next module
        patch.setenv("ATTENTION_ZOO_CACHE", str(root / ".cache"))
        patch.setenv("ATTENTION_ZOO_WEIGHTS", str(root / "zoo"))
        _make_world(root)
    return root


def _make_world(root: Path) -> None:
    (root / "good.tsv").write_text(_rows(_good_rows()))
    (root / "labels_out.tsv").write_text(_rows(_good_rows(8) + [(7, "odd"), (-1, "neg")]))
    (root / "gap.tsv").write_text(_rows(_good_rows(8) + [(7, "odd one")]))
    (root / "seven.tsv").write_text(_rows(_good_rows(8) + [(7, "odd one")] * 2))
    (root / "header_only.tsv").write_text("label\ttext\n")
    (root / "empty.tsv").write_text("")
    (root / "no_text.tsv").write_text("label\ttext\n1\tfine\n0\n")
    (root / "no_header.tsv").write_text("1\tfine\n0\tbad\n")
    (root / "corrupt.tsv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    write_tiny_cifar_zip(root / "tiny.zip", per_class=3)
    (root / "not_a.zip").write_text("this is not a zip\n")
    blob = (root / "tiny.zip").read_bytes()
    (root / "truncated.zip").write_bytes(blob[:len(blob) // 2])
    with zipfile.ZipFile(root / "tiny.zip") as archive:
        archive.extractall(root / "images")
    jpeg = root / "images" / "train" / "cat" / "0000.jpg"
    (root / "broken_images").mkdir()
    import shutil
    shutil.copytree(root / "images", root / "broken_images", dirs_exist_ok=True)
    broken = root / "broken_images" / "train" / "cat" / "0001.jpg"
    broken.write_bytes(jpeg.read_bytes()[:40])
    (root / "noise.jpg").write_bytes(np.random.default_rng(0).bytes(300))
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("my own notes\n")
    (root / "a_file.txt").write_text("a user's file\n")
    from attention_zoo.models import AttnCNN
    AttnCNN(width=(8, 8, 8), stem_width=8).save(root / "cnn.keras")
    assert main(["train", "attn_text", "--data", str(root / "good.tsv"),
                 "--out", str(root / "run"), *TEXT_RUN, "--ship", "tiny"]) == 0


def snapshot(root: Path) -> dict[str, tuple]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns,
                                       hashlib.sha1(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()
            and ".cache" not in p.parts}


@pytest.fixture
def user(world, monkeypatch):
    monkeypatch.setenv("ATTENTION_ZOO_CACHE", str(world / ".cache"))
    monkeypatch.setenv("ATTENTION_ZOO_WEIGHTS", str(world / "zoo"))
    monkeypatch.chdir(world)
    before = snapshot(world)
    yield world
    after = snapshot(world)
    assert after == before, "files changed: " + ", ".join(
        sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)))


# ------------------------------------------------------------------ CLI --

def _train(*more: str) -> list[str]:
    return ["train", "attn_text", "--data", "good.tsv", "--out", "new_run", *TEXT_RUN,
            *more]


#: (id, argv, words the one-line message contains). Paths are relative to
#: the user's folder (the tests run there).
CLI_CASES = [
    ("epochs_zero", _train("--epochs", "0"), ["--epochs", "positive integer"]),
    ("epochs_negative", _train("--epochs", "-1"), ["--epochs", "positive integer"]),
    ("lr_negative", _train("--lr", "-1"), ["--lr", "positive number"]),
    ("lr_nan", _train("--lr", "nan"), ["--lr", "positive number"]),
    ("batch_zero", _train("--batch-size", "0"), ["--batch-size", "positive integer"]),
    ("top_zero", ["predict", "tiny", "fine", "--top", "0"], ["--top", "positive integer"]),
    ("val_fraction", _train("--val-fraction", "1.5"), ["--val-fraction", "between 0 and 1"]),
    ("set_float_type", _train("--set", "ema_momentum=abc"),
     ["--set ema_momentum", "float", "'abc'"]),
    ("set_int_type", _train("--set", "muon_steps=2.5"), ["--set muon_steps", "int"]),
    ("set_bool_type", _train("--set", "ema=maybe"), ["--set ema", "true or false"]),
    ("set_unknown_field", _train("--set", "speed=11"), ["recipe field", "speed=11"]),
    ("set_value_range", _train("--set", "momentum=1.5"), ["momentum", "[0, 1)"]),
    ("unknown_model", ["train", "gpt", "--out", "x"], ["unknown model", "gpt"]),
    ("out_is_a_file", _train()[:4] + ["--out", "a_file.txt"] + TEXT_RUN,
     ["a_file.txt", "existing file"]),
    ("out_under_a_file", _train()[:4] + ["--out", "a_file.txt/run"] + TEXT_RUN,
     ["a_file.txt", "is a file"]),
    ("out_is_a_users_folder", _train()[:4] + ["--out", "mine"] + TEXT_RUN,
     ["not an attention_zoo run folder", "notes.txt"]),
    ("rerun_finished", _train()[:4] + ["--out", "run"] + TEXT_RUN,
     ["finished run", "--epochs", "--overwrite"]),
    ("resume_other_arguments", _train()[:4] + ["--out", "run"] + TEXT_RUN
     + ["--hidden", "6"], ["other arguments", "hidden: 6 (the run: 4)"]),
    ("ship_existing_before_training", _train("--ship", "tiny"), ["already shipped", "tiny"]),
    ("labels_negative", ["train", "attn_text", "--data", "labels_out.tsv", "--out", "r"],
     ["labels_out.tsv", "-1"]),
    ("labels_with_a_gap", ["train", "attn_text", "--data", "seven.tsv", "--out", "r",
                           "--val-fraction", "0.2"], ["labels", "7"]),
    ("labels_beyond_class_names", _train("--class-names", "neg")[:4]
     + ["--out", "r", "--class-names", "neg"], ["class", "1"]),
    ("evaluate_labels_outside_model", ["evaluate", "tiny", "--data", "gap.tsv"],
     ["7", "2 classes"]),
    ("tsv_without_text_column", ["evaluate", "tiny", "--data", "no_text.tsv"],
     ["no_text.tsv", "line 3"]),
    ("tsv_header_only", ["evaluate", "tiny", "--data", "header_only.tsv"],
     ["header_only.tsv", "no rows"]),
    ("tsv_empty", ["evaluate", "tiny", "--data", "empty.tsv"], ["empty.tsv"]),
    ("tsv_without_header", ["evaluate", "tiny", "--data", "no_header.tsv"],
     ["no_header.tsv", "header"]),
    ("tsv_corrupt_gzip", ["evaluate", "tiny", "--data", "corrupt.tsv.gz"],
     ["corrupt.tsv.gz"]),
    ("text_model_needs_data", ["evaluate", "tiny"], ["needs --data"]),
    ("tta_on_a_text_model", ["predict", "tiny", "a fine film", "--tta"], ["text model"]),
    ("unknown_shipped_model", ["predict", "no_such_model", "x"],
     ["no_such_model", "tiny"]),
    ("zip_that_is_not_a_zip", ["train", "attn_cnn", "--data", "not_a.zip", "--out", "r"],
     ["not_a.zip"]),
    ("truncated_zip", ["train", "attn_cnn", "--data", "truncated.zip", "--out", "r"],
     ["truncated.zip"]),
    ("truncated_image_in_a_folder", ["train", "attn_cnn", "--data", "broken_images",
                                     "--out", "r"], ["0001.jpg"]),
    ("holdout_too_large", ["train", "attn_cnn", "--data", "tiny.zip", "--out", "r",
                           "--val-per-class", "3"],
     ["has 3 images", "--val-per-class 2 or less", "--val-per-class auto"]),
    ("missing_data", ["train", "attn_cnn", "--data", "nowhere", "--out", "r"],
     ["nowhere"]),
    ("predict_a_non_image", ["predict", "cnn.keras", "noise.jpg"], ["noise.jpg"]),
    ("predict_a_missing_image", ["predict", "cnn.keras", "nowhere.jpg"],
     ["nowhere.jpg"]),
    ("evaluate_a_folder_of_other_classes", ["evaluate", "cnn.keras", "--data", "mine"],
     ["mine"]),
    ("ship_name_with_a_separator", ["ship", "run", "a/b"], ["plain folder name", "a/b"]),
    ("ship_name_dotdot", ["ship", "run", ".."], ["plain folder name"]),
    ("ship_empty_name", ["ship", "run", ""], ["plain folder name"]),
    ("ship_existing_name", ["ship", "run", "tiny"], ["already shipped", "--overwrite"]),
    ("ship_not_a_run", ["ship", "mine", "x"], ["has no summary.json"]),
    ("ensemble_over_a_runs_summary", ["ensemble", "run", "run", "--out", "run",
                                      "--data", "good.tsv"], ["not an ensemble"]),
    ("export_to_a_folder", ["export", "tiny", "--format", "tflite", "--out", "mine"],
     ["mine", "folder"]),
    ("export_to_dotdot", ["export", "tiny", "--format", "onnx", "--out", ".."], [".."]),
    ("export_over_a_file", ["export", "tiny", "--format", "tflite", "--out",
                            "a_file.txt"], ["a_file.txt", "--overwrite"]),
    ("export_saved_model_over_a_folder", ["export", "tiny", "--format", "saved_model",
                                          "--out", "mine", "--overwrite"], ["mine"]),
    ("export_int8_without_data", ["export", "tiny", "--format", "tflite", "--quantize",
                                  "int8", "--out", "q.tflite"], ["--data"]),
    ("export_into_a_missing_folder", ["export", "tiny", "--format", "tflite", "--out",
                                      "nowhere/m.tflite"], ["nowhere"]),
    ("predict_plot_over_a_file", ["predict", "tiny", "fine", "--plot", "a_file.txt"],
     ["a_file.txt", "--overwrite"]),
    ("tune_space_not_json", ["tune", "attn_text", "--data", "good.tsv", "--dir", "t",
                             "--space", "{attention: se"], ["--space", "JSON"]),
    ("tune_dir_of_a_users_files", ["tune", "attn_text", "--data", "good.tsv", "--dir",
                                   "mine"], ["mine", "notes.txt", "not a search"]),
    ("tune_dir_is_a_file", ["tune", "attn_text", "--data", "good.tsv", "--dir",
                            "a_file.txt"], ["a_file.txt"]),
]


@pytest.mark.parametrize("argv, words", [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_cli_misuse_gets_one_line_and_status_2(user, capsys, argv, words):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("attention-zoo"), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (user / "new_run").exists() and not (user / "r").exists()


def test_the_cli_command_itself_prints_one_line_without_tensorflows_noise(world):
    result = subprocess.run([sys.executable, "-m", "attention_zoo", "train", "attn_text",
                             "--data", "good.tsv", "--out", "run", *TEXT_RUN],
                            cwd=world, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "finished run" in result.stderr


def test_debug_shows_the_traceback(user):
    with pytest.raises(ValueError, match="positive|finished"):
        main(["--debug", *_train()[:4], "--out", "run", *TEXT_RUN])


def test_a_bug_is_one_line_with_status_1(user, capsys, monkeypatch):
    from attention_zoo.cli import use

    def broken(args, model):
        raise KeyError("bug")

    monkeypatch.setattr(use, "_predict_text", broken)
    assert main(["predict", "tiny", "fine"]) == 1
    err = capsys.readouterr().err.strip()
    assert "internal error" in err and "--debug" in err and "\n" not in err


# ------------------------------------------------------------------ API --

def _api_cases():
    from attention_zoo import data, models, training
    from attention_zoo.models.cards import ship
    from attention_zoo.training import run_folder

    images = np.zeros((2, 32, 32, 3), "float32")
    nan = images.copy()
    nan[0, 0, 0, 0] = np.nan
    return [
        ("recipe_epochs_zero", lambda w: training.get_recipe("text", epochs=0),
         ValueError, ["epochs", "positive"]),
        ("recipe_lr_negative", lambda w: training.Recipe(learning_rate=-1.0),
         ValueError, ["learning_rate"]),
        ("recipe_wrong_type", lambda w: training.Recipe(epochs="3"), TypeError,
         ["epochs", "int"]),
        ("load_a_path_as_a_name", lambda w: models.load("../zoo/tiny"), ValueError,
         ["../zoo/tiny"]),
        ("ship_a_path", lambda w: ship(None, "../x", {"model": "m", "config": {}}),
         ValueError, ["plain folder name"]),
        ("run_folder_unwritable", lambda w: _unwritable(w, run_folder), ValueError,
         ["cannot write"]),
        ("images_empty_batch", lambda w: data.check_image_batch(images[:0], (32, 32, 3)),
         ValueError, ["empty"]),
        ("images_channels_first",
         lambda w: data.check_image_batch(np.zeros((2, 3, 32, 32)), (32, 32, 3)),
         ValueError, ["channels"]),
        ("images_wrong_size",
         lambda w: data.check_image_batch(np.zeros((2, 64, 64, 3)), (32, 32, 3)),
         ValueError, ["(32, 32, 3)"]),
        ("images_nan", lambda w: data.check_image_batch(nan, (32, 32, 3)), ValueError,
         ["NaN"]),
        ("attention_maps_channels_first",
         lambda w: _maps(w, np.zeros((1, 3, 32, 32), "float32")), ValueError,
         ["channels-first", "transpose"]),
        ("attention_maps_nan", lambda w: _maps(w, nan), ValueError, ["NaN"]),
        ("evaluate_an_empty_dataset", lambda w: _evaluate_empty(w), ValueError,
         ["no batches"]),
        ("export_empty_sample_inputs",
         lambda w: _export(w, sample_inputs=images[:0]), ValueError,
         ["sample_inputs is empty"]),
        ("export_channels_first_sample_inputs",
         lambda w: _export(w, sample_inputs=np.zeros((2, 3, 32, 32), "float32")),
         ValueError, ["sample_inputs", "channels-first"]),
        ("text_labels_outside",
         lambda w: data.check_labels(np.array([0, 1, 7]), 2, "x.tsv"), ValueError,
         ["7"]),
    ]


def _cnn(world):
    import keras

    return keras.saving.load_model(world / "cnn.keras", safe_mode=True)


def _evaluate_empty(world):
    import tensorflow as tf

    from attention_zoo import training
    empty = tf.data.Dataset.from_tensor_slices(
        (np.zeros((0, 32, 32, 3), "float32"), np.zeros((0,), "int32"))).batch(4)
    return training.evaluate(_cnn(world), empty)


def _export(world, **kwargs):
    from attention_zoo import export
    return export.export(_cnn(world), world / "e.tflite", log=None, **kwargs)


def _maps(world, images):
    from attention_zoo import inspect
    return inspect.attention_maps(_cnn(world), images)


def _unwritable(world, run_folder):
    real = os.access
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "access", lambda p, mode: False if Path(p) == world / "mine"
                      else real(p, mode))
        run_folder.check(world / "mine" / "run", {}, 1)


API_CASES = _api_cases()


@pytest.mark.parametrize("call, error, words", [c[1:] for c in API_CASES],
                         ids=[c[0] for c in API_CASES])
def test_api_misuse_raises_a_clear_error(user, call, error, words):
    with pytest.raises(error) as raised:
        call(user)
    for word in words:
        assert word in str(raised.value), (word, str(raised.value))


def test_there_are_at_least_forty_misuse_cases():
    assert len(CLI_CASES) + len(API_CASES) >= 40


# ------------------------------------------------------- small folders --

def test_evaluate_reads_all_of_a_small_folder_and_train_picks_a_holdout(user, capsys,
                                                                        tmp_path):
    capsys.readouterr()
    assert main(["evaluate", "cnn.keras", "--data", "images"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 30  # 3 of each class
    assert main(["evaluate", "cnn.keras", "--data", "images",
                 "--val-per-class", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 10
    out = tmp_path / "cnn_run"
    assert main(["train", "attn_cnn", "--data", "tiny.zip", "--out", str(out),
                 "--recipe", "cifar10", "--epochs", "1", "--batch-size", "10",
                 "--width", "8", "8", "8", "--stem-width", "8", "--precision",
                 "float32", "--jit-compile", "off"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "validation = last 1 images of each class (10)" in summary["data"]


# --------------------------------------------------------------- kills --

def test_ship_killed_mid_way_keeps_the_shipped_model(world, tmp_path):
    """A re-ship paused after writing the new weights, then SIGKILLed: the
    old model loads as before and no temporary folder is listed."""
    zoo = tmp_path / "zoo"
    import shutil
    shutil.copytree(world / "zoo", zoo)
    before = snapshot(zoo)
    marker = tmp_path / "paused"
    code = (
        "import sys, time, pathlib\n"
        "import attention_zoo.models.cards as cards\n"
        "from attention_zoo.cli import main\n"
        "real = cards.write_text\n"
        "def slow(path, text):\n"
        "    real(path, text)\n"
        f"    pathlib.Path({str(marker)!r}).write_text('x')\n"
        "    time.sleep(120)\n"
        "cards.write_text = slow\n"
        "sys.exit(main(['ship', sys.argv[1], 'tiny', '--overwrite']))\n")
    env = {**os.environ, "ATTENTION_ZOO_WEIGHTS": str(zoo)}
    process = subprocess.Popen([sys.executable, "-c", code, str(world / "run")], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(process, marker.exists, "ship")
    assert any(p.name.startswith(".tiny.") for p in zoo.iterdir())  # killed mid-way
    visible = {k: v for k, v in snapshot(zoo).items() if not k.startswith(".")}
    assert visible == before
    from attention_zoo import models
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATTENTION_ZOO_WEIGHTS", str(zoo))
        assert models.pretrained() == ["tiny"]
        assert models.load("tiny").predict(["a superb film"], verbose=0).shape == (1, 2)


def test_train_killed_while_continuing_keeps_the_finished_run(world, tmp_path):
    """A finished run continued with more epochs and SIGKILLed during them:
    its model, card and summary are those of the finished run, and running
    the command again finishes the continuation."""
    import shutil
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    kept = {name: (run / name).read_bytes() for name in ("model.keras", "summary.json")}
    command = [sys.executable, "-m", "attention_zoo", "train", "attn_text", "--data",
               str(world / "good.tsv"), "--out", str(run), *TEXT_RUN[:2],
               "--epochs", "12", *TEXT_RUN[4:]]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    meta = run / "backup" / "training_metadata.json"
    kill_when(process, lambda: meta.is_file() and json.loads(
        meta.read_text() or "{}").get("epoch", 0) >= 2, "training")
    for name, content in kept.items():
        assert (run / name).read_bytes() == content
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert json.loads((run / "summary.json").read_text())["epochs"] == 12
