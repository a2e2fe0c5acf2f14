"""Hard-example selection (training.HardExampleTrainer, Recipe.select)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from attention_zoo import data, training
from attention_zoo.models import AttnCNN
from attention_zoo.training import HardExampleTrainer

TINY = {"width": (8, 8, 8), "stem_width": 8}
PROXY = {"width": (4, 4, 4), "attention": None, "name": "attn_cnn_proxy"}


def _dense(name: str, bias: list[float] | None = None) -> keras.Model:
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(2, activation="softmax", name=f"{name}_dense",
                               kernel_initializer="zeros",
                               bias_initializer=keras.initializers.Constant(bias or [0, 0]))
    return keras.Model(inputs, dense(inputs), name=name)


def _trainer(keep: float, proxy_bias: list[float]) -> HardExampleTrainer:
    trainer = HardExampleTrainer(_dense("net"), _dense("proxy", proxy_bias), keep=keep)
    trainer.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                    loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
    return trainer


def test_keeps_the_examples_the_proxy_finds_hardest():
    # The proxy is sure of class 0: every class-1 example is hard for it.
    trainer = _trainer(0.5, proxy_bias=[4.0, 0.0])
    labels = np.array([0, 1, 0, 0, 1, 0, 1, 1])
    kept = np.asarray(trainer.hardest(np.ones((8, 3), "float32"),
                                      keras.utils.to_categorical(labels, 2)))
    assert sorted(kept.tolist()) == [1, 4, 6, 7]
    # An odd batch keeps ceil(keep * n) examples.
    assert len(np.asarray(trainer.hardest(np.ones((5, 3), "float32"),
                                          keras.utils.to_categorical(labels[:5], 2)))) == 3


def test_a_step_trains_the_net_and_the_proxy_on_the_kept_examples():
    trainer = _trainer(0.5, proxy_bias=[4.0, 0.0])
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    labels = np.array([0, 1, 0, 0, 1, 0, 1, 1])
    y = keras.utils.to_categorical(labels, 2)
    before = [np.array(w) for w in trainer.net.weights + trainer.proxy.weights]
    logs = trainer.train_on_batch(x, y, return_dict=True)
    after = [np.array(w) for w in trainer.net.weights + trainer.proxy.weights]
    assert all(not np.allclose(b, a) for b, a in zip(before, after))
    # Only class-1 examples were kept; the net starts uniform, so one step on
    # them moves its bias towards class 1 only.
    bias = np.array(trainer.net.get_layer("net_dense").bias)
    assert bias[1] > 0 > bias[0]
    assert logs["loss"] == pytest.approx(np.log(2), rel=1e-5)  # uniform net, before the step
    np.testing.assert_allclose(trainer.predict(x, verbose=0),
                               trainer.net.predict(x, verbose=0))


def test_keep_one_trains_like_the_net_alone():
    x = np.random.default_rng(1).normal(size=(6, 3)).astype("float32")
    y = keras.utils.to_categorical([0, 1, 1, 0, 1, 0], 2)
    trainer = _trainer(1.0, proxy_bias=[0.0, 0.0])
    alone = _dense("net")
    alone.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.CategoricalCrossentropy())
    trainer.train_on_batch(x, y)
    alone.train_on_batch(x, y)
    for mine, theirs in zip(trainer.net.weights, alone.weights):
        np.testing.assert_allclose(np.array(mine), np.array(theirs), rtol=1e-5, atol=1e-7)


def test_mixed_float16_scales_the_loss_and_keeps_rankings_in_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        net, proxy = _dense("net"), _dense("proxy", [4.0, 0.0])
    finally:
        keras.config.set_dtype_policy(previous)
    # training.fit passes the net's policy: the global one is float32 again.
    trainer = HardExampleTrainer(net, proxy, dtype=net.dtype_policy)
    trainer.compile(optimizer=keras.optimizers.SGD(0.1),
                    loss=keras.losses.CategoricalCrossentropy())
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    x = np.ones((4, 3), "float32")
    y = keras.utils.to_categorical([0, 1, 0, 1], 2)
    assert sorted(np.asarray(trainer.hardest(x, y)).tolist()) == [1, 3]
    logs = trainer.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert trainer.net.get_layer("net_dense").compute_dtype == "float16"


def test_saves_and_loads_safely(tmp_path):
    trainer = _trainer(0.25, proxy_bias=[1.0, -1.0])
    path = tmp_path / "trainer.keras"
    trainer.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, HardExampleTrainer) and loaded.keep == 0.25
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(loaded.proxy.predict(x, verbose=0),
                               trainer.proxy.predict(x, verbose=0))


@pytest.mark.parametrize("keep", [0.0, 1.5, -0.5])
def test_bad_keep_is_refused(keep):
    with pytest.raises(ValueError, match=r"keep must be in \(0, 1\]"):
        HardExampleTrainer(_dense("net"), _dense("proxy"), keep=keep)
    with pytest.raises(ValueError, match=r"select must be in \(0, 1\]"):
        training.get_recipe("cifar10", select=keep)


def test_a_proxy_that_is_not_a_model_is_refused():
    with pytest.raises(TypeError, match="proxy must be a keras.Model, received Dense"):
        HardExampleTrainer(_dense("net"), keras.layers.Dense(2))


def test_a_proxy_with_other_outputs_is_refused():
    inputs = keras.Input((3,))
    three = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    with pytest.raises(ValueError, match="proxy outputs"):
        HardExampleTrainer(_dense("net"), three)


def test_fit_needs_a_proxy_to_select(tiny_zip):
    train, val = data.cifar10(tiny_zip, val_per_class=2)
    recipe = training.get_recipe("cifar10", epochs=1, batch_size=16, select=0.5)
    with pytest.raises(ValueError, match="pass proxy="):
        training.fit(lambda: pytest.fail("built a model"), data.pipeline(train, 16),
                     data.pipeline(val, 16), recipe=recipe)


def test_fit_refuses_selection_under_multiworker_before_writing(tiny_zip, tmp_path,
                                                                monkeypatch):
    # A real MultiWorkerMirroredStrategy needs its own processes
    # (test_scale_out); the refusal only asks is_multiworker.
    monkeypatch.setattr(training, "is_multiworker", lambda strategy: True)
    train, _ = data.cifar10(tiny_zip, val_per_class=2)
    recipe = training.get_recipe("cifar10", epochs=1, batch_size=16, select=0.5)
    with pytest.raises(ValueError, match="MultiWorkerMirroredStrategy.*recipe 'cifar10'"):
        training.fit(lambda: pytest.fail("built a model"), data.pipeline(train, 16),
                     recipe=recipe, out_dir=tmp_path / "run", proxy=lambda: None)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("precision, jit", [("float32", False), ("mixed_bfloat16", True)])
def test_fit_with_selection_returns_and_saves_the_net_alone(tiny_zip, tmp_path, precision, jit):
    run = tmp_path / "run"  # a new run folder
    train, val = data.cifar10(tiny_zip, val_per_class=2)
    recipe = training.get_recipe("cifar10", epochs=2, batch_size=16, select=0.5)
    result = training.fit(lambda: AttnCNN(**TINY), data.pipeline(train, 16, training=True),
                          data.pipeline(val, 16), recipe=recipe, out_dir=run,
                          verbose=0, proxy=lambda: AttnCNN(**{**TINY, **PROXY}),
                          precision=precision, jit_compile=jit)
    assert result.model.name == "attn_cnn" and result.jit_compile is jit
    assert result.model.dtype_policy.name == precision
    assert np.all(np.isfinite(result.history["loss"]))
    saved = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert not isinstance(saved, HardExampleTrainer)
    assert saved.count_params() == result.model.count_params()
    # The per-epoch checkpoint holds both models, for a look at the proxy.
    last = keras.saving.load_model(run / "last.keras", safe_mode=True)
    assert isinstance(last, HardExampleTrainer)
    assert last.proxy.name == "attn_cnn_proxy"


def test_the_select_recipe_is_cifar10_with_selection_and_more_steps():
    default, select = training.get_recipe("cifar10"), training.get_recipe("cifar10_select")
    assert select.select == 0.5
    # The net trains on batches of cifar10's size, chosen from twice as many.
    assert select.batch_size * select.select == default.batch_size
    # 26 epochs of half-kept batches: 1.3x cifar10's steps and images (13
    # of cifar10's epochs), the length three seeds measured
    # (benchmarks/cifar10_epochs.md, amx_select_e26 rows).
    assert select.epochs * select.select == 1.3 * default.epochs
    assert select.replace(select=1.0, batch_size=2000, epochs=10) == default


def test_weight_files_restore_the_net_the_proxy_and_the_optimizer(tmp_path):
    # What BackupAndRestore writes and reads to resume a killed run.
    x = np.random.default_rng(2).normal(size=(8, 3)).astype("float32")
    y = keras.utils.to_categorical([0, 1, 0, 0, 1, 0, 1, 1], 2)
    trainer = _trainer(0.5, proxy_bias=[1.0, 0.0])
    trainer.train_on_batch(x, y)
    trainer.train_on_batch(x, y)
    trainer.save_weights(tmp_path / "backup.weights.h5")
    fresh = _trainer(0.5, proxy_bias=[1.0, 0.0])
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(tmp_path / "backup.weights.h5")
    for mine, theirs in zip(fresh.weights, trainer.weights):
        np.testing.assert_array_equal(np.array(mine), np.array(theirs))
    assert len(fresh.optimizer.variables) == len(trainer.optimizer.variables) > 1
    for mine, theirs in zip(fresh.optimizer.variables, trainer.optimizer.variables):
        np.testing.assert_array_equal(np.array(mine), np.array(theirs))


def test_the_cli_trains_attn_cnn_with_its_selection_proxy(tiny_zip, tmp_path, private_cache):
    import json

    from attention_zoo.cli import main
    from attention_zoo.models.attn_cnn import selection_proxy

    out = tmp_path / "run"
    # No --recipe: AttnCNN's default recipe selects.
    assert main(["train", "attn_cnn", "--data", str(tiny_zip), "--out", str(out),
                 "--epochs", "1", "--batch-size", "16",
                 "--width", "8", "8", "8", "--val-per-class", "2",
                 "--precision", "float32", "--jit-compile", "off"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recipe"]["select"] == 0.5
    net = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert summary["params"] == net.count_params()
    proxy = keras.saving.load_model(out / "last.keras", safe_mode=True).proxy
    assert proxy.name == "attn_cnn_proxy"
    # A proxy never outgrows its net: at width 8 it takes the net's widths.
    assert proxy.count_params() == selection_proxy(**summary["config"]).count_params()
    assert proxy.count_params() < net.count_params()


def test_the_attn_cnn_proxy_takes_airbench96_fasters_widths():
    from attention_zoo.models.attn_cnn import selection_proxy

    layers = selection_proxy().backbone.layers
    widths = [layer.filters for layer in layers if layer.name.endswith("_conv")]
    assert sorted(set(widths)) == [32, 64]
    assert all(not layer.name.endswith("attention") for layer in layers)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _crossentropy(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -np.sum(y * np.log(_softmax(x @ weights[0] + weights[1])), axis=1)


def _selection_case() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The net's and the proxy's starting weights (Dense 8 -> 3, softmax) and
    a fixed batch of 16, the same in every process."""
    rng = np.random.default_rng(7)
    weights = [rng.normal(size=shape).astype("float32")
               for shape in [(8, 3), (3,), (8, 3), (3,)]]
    x = rng.normal(size=(16, 8)).astype("float32")
    return weights, x, np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]


def _train_a_selection() -> dict:
    """Two SGD steps (lr 0.1, no momentum, keep 0.5) on the fixed batch, then
    two epochs of fit on 64 random examples, on this process's backend."""
    weights, x, y = _selection_case()
    models = []
    for name, start in (("net", weights[:2]), ("proxy", weights[2:])):
        inputs = keras.Input((8,))
        model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs),
                            name=name)
        model.set_weights(start)
        models.append(model)
    trainer = HardExampleTrainer(*models, keep=0.5)
    trainer.compile(optimizer=keras.optimizers.SGD(0.1),
                    loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])

    def now() -> list[list]:
        return [np.asarray(w).tolist() for w in trainer.net.weights + trainer.proxy.weights]

    steps = []
    for _ in range(2):
        loss = trainer.train_on_batch(x, y, return_dict=True)["loss"]
        steps.append({"loss": float(loss), "weights": now()})
    rng = np.random.default_rng(8)
    before = now()
    history = trainer.fit(rng.normal(size=(64, 8)).astype("float32"),
                          np.eye(3, dtype="float32")[rng.integers(0, 3, 64)],
                          batch_size=16, epochs=2, verbose=0).history
    return {"backend": keras.backend.backend(), "steps": steps,
            "fit_loss": history["loss"], "before_fit": before, "after_fit": now()}


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_selection_trains_alike_on_every_backend(backend):
    if backend == keras.backend.backend():
        result = _train_a_selection()
    else:  # a process picks its backend once, when Keras loads
        tests = str(Path(__file__).resolve().parent)
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
        run = subprocess.run(
            [sys.executable, "-W", "ignore", "-c",
             "import json, test_selection; print(json.dumps(test_selection._train_a_selection()))"],
            cwd=Path(tests).parent, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
        result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    # By hand: the net and the proxy each take an SGD step on the mean loss
    # of the 8 examples the proxy ranked hardest, with its weights before the
    # step; the second step ranks again with the proxy's new weights.
    weights, x, y = _selection_case()
    for step in result["steps"]:
        kept = np.argsort(-_crossentropy(weights[2:], x, y))[:8]
        assert step["loss"] == pytest.approx(
            _crossentropy(weights[:2], x[kept], y[kept]).mean(), rel=1e-5)
        updated = []
        for kernel, bias in (weights[:2], weights[2:]):
            error = (_softmax(x[kept] @ kernel + bias) - y[kept]) / len(kept)
            updated += [kernel - 0.1 * x[kept].T @ error, bias - 0.1 * error.sum(axis=0)]
        weights = updated
        for mine, theirs in zip(step["weights"], weights):
            np.testing.assert_allclose(np.array(mine), theirs, atol=1e-5)
    assert np.all(np.isfinite(result["fit_loss"])) and len(result["fit_loss"]) == 2
    # Every weight of both models moved during fit.
    for before, after in zip(result["before_fit"], result["after_fit"]):
        assert not np.allclose(before, after)


def test_variable_groups_merge_the_nets_and_the_proxys():
    from attention_zoo.training.optimizers import VariableGroups

    class Grouped(keras.Model):
        def __init__(self, **kwargs):
            inputs = keras.Input((3,))
            dense = keras.layers.Dense(2, activation="softmax")
            super().__init__(inputs, dense(inputs), **kwargs)
            self.dense = dense

        def variable_groups(self) -> VariableGroups:
            return VariableGroups(orthogonal=(self.dense.kernel,), offsets=(self.dense.bias,))

    net, proxy = Grouped(name="net"), Grouped(name="proxy")
    groups = HardExampleTrainer(net, proxy).variable_groups()
    assert isinstance(groups, VariableGroups)
    assert [id(v) for v in groups.orthogonal] == [id(net.dense.kernel), id(proxy.dense.kernel)]
    assert [id(v) for v in groups.offsets] == [id(net.dense.bias), id(proxy.dense.bias)]
    assert groups.stem_bias == ()
