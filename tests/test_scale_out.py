"""KerasTuner hypermodels, search, resume and chief/worker search;
tf.distribute training (Mirrored, MultiWorkerMirrored on loopback)."""

from __future__ import annotations

import json
import re
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pytest

from attention_zoo import tuning
from conftest import failures, kill_when, wait_all

HERE = Path(__file__).parent
SMALL = {"width": 8, "depth": 2, "augment_translate": 0}
RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, (40, 32, 32, 3)).astype("float32")
Y = (np.arange(40) % 10).astype("int32")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    return {**env, "ATTENTION_ZOO_CACHE": str(tmp_path / "cache"),
            "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _executions(directory: Path) -> dict[str, list[dict]]:
    found = {}
    for path in directory.rglob("executions.jsonl"):
        found[path.parent.name] = [json.loads(l) for l in path.read_text().splitlines()]
    return found


def _ended(directory: Path) -> list[str]:
    """Trials the oracle has saved as ended: what a resumed search skips. (A
    trial.json can say COMPLETED a moment before oracle.json does; a kill in
    between makes KerasTuner run that trial again.)"""
    ended = []
    for path in directory.rglob("oracle.json"):
        try:
            ended += json.loads(path.read_text()).get("end_order", [])
        except json.JSONDecodeError:  # caught mid-write
            pass
    return [f"trial_{t}" for t in ended]


def _completed(directory: Path) -> list[str]:
    done = []
    for path in directory.rglob("trial.json"):
        if json.loads(path.read_text()).get("status") == "COMPLETED":
            done.append(path.parent.name)
    return done


# ------------------------------------------------------------ hypermodels --

def test_cnn_hypermodel_works_with_a_standard_tuner_call(tmp_path):
    tuner = kt.RandomSearch(tuning.AttnCNNHyperModel(space=SMALL),
                            objective="val_accuracy", max_trials=2,
                            directory=str(tmp_path), project_name="p", seed=1)
    tuner.search(X, Y, epochs=1, validation_split=0.25, verbose=0)
    assert len(tuner.oracle.trials) == 2
    names = set(tuner.oracle.get_space().values)
    assert any("attention" in n for n in names)
    assert {"learning_rate", "weight_decay", "label_smoothing", "width", "depth",
            "augment_translate"} <= names
    best = tuner.get_best_models(1)[0]
    assert best.predict(X[:2], verbose=0).shape == (2, 10)


def test_space_overrides_narrow_the_search():
    hp = kt.HyperParameters()
    model = tuning.AttnCNNHyperModel(space={**SMALL, "attention": ["se"],
                                            "reduction": 4,
                                            "learning_rate": {"min": 0.1, "max": 0.2}}
                                     ).build(hp)
    assert hp.values["attention"] == "se" and hp.values["reduction"] == 4
    assert 0.1 <= hp.values["learning_rate"] <= 0.2
    assert [l.reduction for l in model.get_layer("attn_cnn").backbone.layers
            if "attention" in l.name] == [4, 4]
    assert "accuracy" in [m.name for m in model.metrics] or model.compiled


def test_attn_resnet_searches_attention_including_conv_replacing_kinds(tmp_path):
    """Attention is a hyperparameter of AttnResNet, the convolution-replacing
    kinds among its choices; the default space holds only layers that run at
    any map size."""
    hp = kt.HyperParameters()
    tuning.AttnResNetHyperModel(space={"depth": 10, "width": 8}).build(hp)
    choices = hp.get_config()["space"][0]["config"]["values"]
    assert {"none", "se", "cbam", "sk", "splat"} <= set(choices) and "bat" not in choices
    hypermodel = tuning.AttnResNetHyperModel(
        space={"attention": ["sk", "eca"], "depth": 10, "width": 8})
    tuner = kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=2,
                            directory=str(tmp_path), project_name="r", seed=1)
    tuner.search(X[:16], Y[:16], epochs=1, validation_data=(X[:8], Y[:8]),
                 batch_size=8, verbose=0)
    tried = {t.hyperparameters.values["attention"] for t in tuner.oracle.trials.values()}
    assert tried <= {"sk", "eca"} and len(tuner.oracle.trials) == 2
    assert tuner.get_best_models(1)[0].predict(X[:2], verbose=0).shape == (2, 10)


def test_text_hypermodel_builds_and_trains(tmp_path):
    from attention_zoo.models.text import as_text_tensor

    texts = ["great film", "awful film", "superb plot", "dull plot"] * 5
    labels = np.array([1, 0, 1, 0] * 5, "int32")
    vocabulary = ["film", "plot", "great", "awful", "superb", "dull"]
    hypermodel = tuning.TextHyperModel(vocabulary, max_length=8,
                                       space={"embed_dim": 16, "hidden": 8,
                                              "encoder": ["bigru", "none"]})
    tuner = kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=2,
                            directory=str(tmp_path), project_name="t", seed=0)
    tuner.search(as_text_tensor(texts), labels, epochs=1,
                 validation_data=(as_text_tensor(texts), labels), verbose=0)
    assert len(tuner.oracle.trials) == 2


def test_bad_tuner_and_model_names():
    with pytest.raises(ValueError, match="tuner must be one of"):
        tuning.make_tuner(tuning.AttnCNNHyperModel(), tuner="grid")
    with pytest.raises(ValueError, match="Unknown hypermodel"):
        tuning.search("resnet", (X, Y), (X, Y))


# ------------------------------------------------------- search and resume --

def _tune_command(data: Path, directory: Path, trials: int, tuner: str = "random",
                  distributed: bool = False) -> list[str]:
    command = [sys.executable, "-m", "attention_zoo", "tune", "attn_cnn", "--data",
               str(data), "--tuner", tuner, "--max-trials", str(trials),
               "--max-epochs", "1", "--dir", str(directory), "--space",
               json.dumps({**SMALL, "attention": ["none", "se", "cbam"]}),
               "--batch-size", "16", "--val-per-class", "2"]
    return command + (["--distributed"] if distributed else [])


def test_killed_search_resumes_without_rerunning_finished_trials(tiny_zip, tmp_path):
    directory, trials = tmp_path / "s", 3
    process = subprocess.Popen(_tune_command(tiny_zip, directory, trials),
                               env=_env(tmp_path), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    kill_when(process, lambda: bool(_ended(directory)), "the search")
    finished_before = set(_ended(directory))
    assert 1 <= len(finished_before) < trials
    run = subprocess.run(_tune_command(tiny_zip, directory, trials), env=_env(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    executions = _executions(directory)
    assert len(_completed(directory)) == trials
    for trial in finished_before:
        assert len(executions[trial]) == 1  # not run again
    # Progress while it works: each trial's start and end, with the time.
    assert re.search(r"\[0:\d\d:\d\d\] trial \w+ of 3 started, 1 epochs: .*attention=",
                     run.stdout), run.stdout[-2000:]
    assert re.search(r"trial \w+ ended: val_accuracy \d\.\d{4}", run.stdout)
    # The finished search prints its results table and saves the best model.
    assert "| trial | attention |" in run.stdout and "val_accuracy" in run.stdout
    assert "best model:" in run.stdout
    model = keras.saving.load_model(directory / "best.keras", safe_mode=True)
    assert model.predict(X[:1], verbose=0).shape == (1, 10)


def test_distributed_search_runs_every_trial_exactly_once(tiny_zip, tmp_path):
    directory, trials, port = tmp_path / "d", 3, free_port()
    common = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    command = _tune_command(tiny_zip, directory, trials, distributed=True)
    processes = [subprocess.Popen(command, env=_env(tmp_path, KERASTUNER_TUNER_ID=tid,
                                                    **common),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
                 for tid in ("chief", "tuner0", "tuner1")]
    outputs = wait_all(processes, timeout=400)
    assert all(p.returncode == 0 for p in processes), failures(
        ("chief", "tuner0", "tuner1"), processes, outputs)
    executions = _executions(directory)
    assert len(executions) == trials
    assert all(len(runs) == 1 for runs in executions.values())
    workers = {runs[0]["tuner_id"] for runs in executions.values()}
    assert workers <= {"tuner0", "tuner1"} and workers
    assert "| trial |" in outputs[0]


def test_distributed_flag_needs_the_variables(tiny_zip, tmp_path):
    run = subprocess.run(_tune_command(tiny_zip, tmp_path / "x", 1, distributed=True),
                         env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "KERASTUNER_TUNER_ID" in run.stderr


# ------------------------------------------------------------ tf.distribute --

@pytest.mark.parametrize("select", [1.0, 0.5])
def test_mirrored_strategy_trains_with_fit(tmp_path, select):
    from attention_zoo import data, training
    from attention_zoo.models import AttnCNN
    from attention_zoo.models.attn_cnn import selection_proxy

    # Alternating flip: its epoch counter lives in the dataset, which the
    # strategy rewrites to split batches over the replicas.
    batches = data.pipeline(data.ImageSet(X.astype("uint8"), Y, data.CIFAR10_CLASSES),
                            8, training=True, flip="alternate")
    config = {"width": (8, 8, 8), "stem_width": 8}
    result = training.fit(lambda: AttnCNN(**config), batches,
                          recipe=training.get_recipe("cifar10", epochs=2, batch_size=8,
                                                     select=select),
                          precision="float32", jit_compile=False, strategy="mirrored",
                          verbose=0, proxy=lambda: selection_proxy(**config))
    assert np.isfinite(result.history["loss"]).all() and len(result.history["loss"]) == 2
    assert result.model.name == "attn_cnn"  # the net, not the selection trainer
    with pytest.raises(ValueError, match="strategy must be"):
        training.get_strategy("parameter_server")


def test_multiworker_training_ends_with_identical_weights(tmp_path):
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    processes = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                          "index": index}})
        processes.append(subprocess.Popen(
            [sys.executable, str(HERE / "mw_worker.py"), str(tmp_path / f"w{index}.npz")],
            env=_env(tmp_path, TF_CONFIG=config), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    outputs = wait_all(processes, timeout=300)
    assert all(p.returncode == 0 for p in processes), failures(
        ("worker0", "worker1"), processes, outputs)
    first, second = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(first.files) > 10
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key])
    assert "chief" in outputs[0] and "worker" in outputs[1]
