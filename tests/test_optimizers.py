"""The recipes' optimizers: variables take their treatment (Muon steps, the
offsets' rate, the stem-bias schedule) from the model's variable groups, by
object, never by name; MuonSGD's steps; the same on JAX and PyTorch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from attention_zoo import training
from attention_zoo.training.optimizers import (SGD, AdamW, MuonSGD, VariableGroups,
                                               variable_groups)

ROOT = Path(__file__).resolve().parents[1]


def _reference_orthogonalize(matrix: np.ndarray, steps: int) -> np.ndarray:
    a, b, c = MuonSGD.NS_COEFFICIENTS
    x = matrix.T if matrix.shape[0] > matrix.shape[1] else matrix
    x = x / (np.linalg.norm(x) + 1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if matrix.shape[0] > matrix.shape[1] else x


@pytest.mark.parametrize("shape", [(72, 16), (16, 72)])
def test_orthogonalize_pushes_singular_values_towards_one(shape):
    matrix = np.random.default_rng(0).normal(size=shape).astype("float32")
    matrix[:, 0] *= 50.0  # badly conditioned: plain SGD would follow one direction
    optimizer = MuonSGD(0.1, muon_steps=5)
    result = keras.ops.convert_to_numpy(optimizer.orthogonalize(matrix))
    assert result.shape == shape
    singular = np.linalg.svd(result, compute_uv=False)
    assert singular.min() > 0.5 and singular.max() < 1.3, singular
    np.testing.assert_allclose(result, _reference_orthogonalize(matrix, 5),
                               rtol=1e-4, atol=1e-4)


class TinyNet(keras.Model):
    """A stem with a bias (the stem bias), a convolution followed by
    BatchNorm (Muon), a 1x1 convolution without a normalization after it
    (SGD) and a classifier, under any layer names."""

    def __init__(self, names: tuple[str, str, str, str, str] = (
            "stem_whiten", "body_conv", "body_bn", "gate", "logits"), **kwargs) -> None:
        stem = keras.layers.Conv2D(4, 2, name=names[0])
        conv = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name=names[1])
        norm = keras.layers.BatchNormalization(scale=False, name=names[2])
        gate = keras.layers.Conv2D(8, 1, use_bias=False, name=names[3])
        dense = keras.layers.Dense(2, name=names[4])
        inputs = keras.Input((6, 6, 3))
        x = gate(norm(conv(stem(inputs))))
        super().__init__(inputs, dense(keras.layers.GlobalAveragePooling2D()(x)), **kwargs)
        self.stem, self.conv, self.norm, self.gate, self.dense = stem, conv, norm, gate, dense

    def variable_groups(self) -> VariableGroups:
        return VariableGroups(orthogonal=(self.conv.kernel,), offsets=(self.norm.beta,),
                              stem_bias=(self.stem.bias,))


def _data(n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6, 6, 3)).astype("float32")
    return x, keras.utils.to_categorical(np.arange(n) % 2, 2)


def _plain_model() -> keras.Model:
    """A functional model with no variable_groups() of its own."""
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(8, 3, use_bias=False, name="body_conv")(inputs)
    x = keras.layers.BatchNormalization(scale=False, name="body_bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))


OPTIMIZERS = {
    "sgd": lambda groups: SGD(0.1, momentum=0.85, nesterov=True, weight_decay=0.05,
                              norm_bias_lr_scale=8.0, stem_bias_steps=3, groups=groups),
    "muon": lambda groups: MuonSGD(0.1, momentum=0.85, nesterov=True, weight_decay=0.05,
                                   norm_bias_lr_scale=8.0, stem_bias_steps=3,
                                   muon_learning_rate=0.2, groups=groups),
}


def _one_step(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> list[np.ndarray]:
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    model.train_on_batch(*_data())
    return [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_renaming_layers_does_not_change_the_treatment(kind):
    # The second set of names matches none of the patterns the optimizers
    # used to search for ("whiten", "_conv/kernel", "beta" is a variable name
    # Keras keeps, so it is the layer's class that counts).
    first = TinyNet()
    second = TinyNet(names=("a", "b", "c", "d", "e"))
    untreated = TinyNet(names=("f", "g", "h", "i", "j"))
    second.set_weights(first.get_weights())
    untreated.set_weights(first.get_weights())
    after_first = _one_step(first, OPTIMIZERS[kind](variable_groups(first)))
    after_second = _one_step(second, OPTIMIZERS[kind](variable_groups(second)))
    for a, b in zip(after_first, after_second):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    if kind == "sgd":  # without the groups the same step differs
        after_untreated = _one_step(untreated, OPTIMIZERS[kind](VariableGroups()))
        assert any(not np.allclose(a, b) for a, b in zip(after_first, after_untreated))


class MyBatchNorm(keras.layers.BatchNormalization):
    """A subclass: isinstance counts it."""


class Block(keras.layers.Layer):
    """A sublayer holding a GroupNormalization and a weight named beta that
    is no normalization's offset."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.norm = keras.layers.GroupNormalization(groups=2)

    def build(self, input_shape) -> None:
        self.norm.build(input_shape)
        self.beta = self.add_weight(shape=(input_shape[-1],), initializer="ones",
                                    name="beta")

    def call(self, x):
        return self.norm(x) * self.beta


class Stem(keras.layers.Layer):
    """A layer that names its own groups: the walk takes them as they are."""

    def build(self, input_shape) -> None:
        self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros",
                                    name="bias")

    def call(self, x):
        return x + self.bias

    def variable_groups(self) -> VariableGroups:
        return VariableGroups(stem_bias=(self.bias,))


def test_generic_groups_find_normalization_offsets_in_nested_models():
    inner = keras.Sequential([keras.Input((4, 4, 4)), keras.layers.Conv2D(4, 1),
                              keras.layers.BatchNormalization(),
                              keras.layers.LayerNormalization()], name="inner")
    stem, block = Stem(), Block()
    mine = MyBatchNorm()
    uncentered = keras.layers.BatchNormalization(center=False)  # no beta at all
    inputs = keras.Input((4, 4, 4))
    x = uncentered(mine(block(inner(stem(inputs)))))
    outer = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    wrapper = keras.Sequential([outer])  # one model further down
    groups = variable_groups(wrapper)
    want = [inner.layers[1].beta, inner.layers[2].beta, block.norm.beta, mine.beta]
    assert {id(v) for v in groups.offsets} == {id(v) for v in want}
    assert len(groups.offsets) == 4  # once each; not block.beta, a weight named beta
    assert groups.stem_bias == (stem.bias,) and groups.orthogonal == ()
    # A model's own method wins over the walk, and it must return the groups.
    assert variable_groups(TinyNet()).orthogonal[0].path.endswith("body_conv/kernel")

    class Wrong(keras.Model):
        def variable_groups(self):
            return {"offsets": ()}

    with pytest.raises(TypeError, match="Wrong.variable_groups\\(\\) must return a "
                                        "VariableGroups, received dict"):
        variable_groups(Wrong())


def test_variable_groups_add_and_check_their_fields():
    a, b, c = (keras.Variable(np.zeros(2, "float32")) for _ in range(3))
    union = VariableGroups(offsets=(a, b)) + VariableGroups(offsets=(b, c), stem_bias=[a])
    assert union.offsets == (a, b, c) and union.stem_bias == (a,)
    with pytest.raises(TypeError, match="offsets takes a tuple of keras.Variable, "
                                        "received Variable"):
        VariableGroups(offsets=a)
    with pytest.raises(TypeError, match="orthogonal takes keras.Variable items, "
                                        "received str"):
        VariableGroups(orthogonal=("body_conv/kernel",))
    with pytest.raises(TypeError, match="use_groups takes a VariableGroups, received dict"):
        SGD(0.1, groups={"offsets": (a,)})


def _variables(*values: float) -> list[keras.Variable]:
    return [keras.Variable(np.full(3, v, "float32"), name=name)
            for v, name in zip(values, ("anything", "beta", "bias"))]


def test_offsets_take_the_scaled_step_and_nothing_else_does():
    # "beta" names the second variable: a name no longer counts.
    offset, named_beta = _variables(1.0, 1.0)[:2]
    optimizer = SGD(0.1, weight_decay=0.5, norm_bias_lr_scale=8.0,
                    groups=VariableGroups(offsets=(offset,)))
    ones = np.ones(3, "float32")
    optimizer.apply([ones, ones], [offset, named_beta])
    # Decay (lr * wd * w = 0.05) is not scaled; the gradient step is.
    np.testing.assert_allclose(offset.numpy(), 1.0 - 0.05 - 8 * 0.1, rtol=1e-5)
    np.testing.assert_allclose(named_beta.numpy(), 1.0 - 0.05 - 0.1, rtol=1e-5)
    # AdamW takes the groups the same way (its step normalizes the scale away).
    adamw = AdamW(0.1, groups=VariableGroups(offsets=(offset,)), norm_bias_lr_scale=8.0)
    adamw.build([offset, named_beta])
    assert adamw._offset_indices == {0}


def test_stem_bias_schedule_scales_then_freezes_without_weight_decay():
    stem, kernel, base = _variables(1.0, 1.0, 1.0)
    optimizer = SGD(0.1, weight_decay=0.5, norm_bias_lr_scale=4.0, stem_bias_steps=2,
                    groups=VariableGroups(stem_bias=(stem,)))
    path, decayed = [], []
    ones = np.ones(3, "float32")
    for _ in range(4):
        optimizer.apply([ones, ones], [stem, kernel])
        path.append(float(stem.numpy()[0]))
        decayed.append(float(kernel.numpy()[0]))
    # 0.1 * 4 * (1 - t / 2) at t = 0, 1, then 0; no decay at all.
    np.testing.assert_allclose(path, [0.6, 0.4, 0.4, 0.4], rtol=1e-5)
    assert not optimizer._use_weight_decay(stem) and optimizer._use_weight_decay(kernel)
    want = 1.0
    for step in range(4):  # the other variable decays and steps at the base rate
        want = want - 0.05 * want - 0.1
        assert decayed[step] == pytest.approx(want, rel=1e-5)
    # stem_bias_steps=0: the group trains as any variable.
    plain = SGD(0.1, weight_decay=0.5, norm_bias_lr_scale=4.0,
                groups=VariableGroups(stem_bias=(base,)))
    plain.apply([ones], [base])
    np.testing.assert_allclose(base.numpy(), 1.0 - 0.05 - 0.1, rtol=1e-5)


def test_muon_steps_only_the_orthogonal_kernels():
    model = TinyNet()
    optimizer = MuonSGD(0.5, momentum=0.85, nesterov=True, weight_decay=0.1,
                        muon_learning_rate=0.2, muon_momentum=0.6, muon_steps=3,
                        groups=variable_groups(model))
    rng = np.random.default_rng(1)
    variables = model.trainable_variables
    grads = [rng.normal(size=v.shape).astype("float32") for v in variables]
    before = {v.path: v.numpy().copy() for v in variables}
    gradient = {v.path: g for v, g in zip(variables, grads)}
    optimizer.apply(grads, variables)

    # Muon: the Nesterov look-ahead of a fresh buffer is 1.6 g; the kernel is
    # rescaled to norm sqrt(8) and takes no weight decay.
    kernel = model.conv.kernel
    g, w = gradient[kernel.path], before[kernel.path]
    update = _reference_orthogonalize(1.6 * g.reshape(-1, 8), 3).reshape(g.shape)
    np.testing.assert_allclose(kernel.numpy(), w * np.sqrt(8) / np.linalg.norm(w) - 0.2 * update,
                               rtol=1e-4, atol=1e-5)
    # Every other kernel, convolutions included: decoupled decay, then a
    # Nesterov step from zero momentum.
    for other in (model.gate.kernel, model.dense.kernel):
        w, g = before[other.path], gradient[other.path]
        np.testing.assert_allclose(other.numpy(), w * (1 - 0.5 * 0.1) - 0.5 * 1.85 * g,
                                   rtol=1e-4, atol=1e-6)


def test_muon_refuses_a_model_that_names_no_orthogonal_kernels():
    model = _plain_model()
    recipe = training.get_recipe("cifar10", epochs=1)
    optimizer = training.make_optimizer(recipe, 3, variable_groups(model))
    assert variable_groups(model).offsets  # the generic groups hold offsets only
    with pytest.raises(ValueError, match="variable_groups\\(\\) named no orthogonal "
                                         "kernels among the 4 trainable variables"):
        optimizer.build(model.trainable_variables)
    with pytest.raises(ValueError, match="named no orthogonal kernels"):
        training.make_optimizer(recipe, 3).build(model.trainable_variables)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"groups": "one_d"}, ValueError, "Muon needs kernels of 2 or more dimensions; the "
                                      "orthogonal group holds body_bn/beta of shape \\(8,\\)"),
    ({"muon_momentum": 1.0}, ValueError, "muon_momentum"),
    ({"learning_rate": keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)},
     TypeError, "OneCycle"),
    ({"muon_pattern": "_conv/kernel$"}, ValueError, "muon_pattern"),  # gone
])
def test_muon_bad_arguments_are_clear(kwargs, error, match):
    model = _plain_model()
    if kwargs.get("groups") == "one_d":
        kwargs = {"groups": VariableGroups(orthogonal=(model.get_layer("body_bn").beta,))}
    with pytest.raises(error, match=match):
        optimizer = MuonSGD(**{"learning_rate": 0.1, **kwargs})
        optimizer.build(model.trainable_variables)


def test_groups_come_before_the_build():
    model = TinyNet()
    optimizer = SGD(0.1)
    optimizer.use_groups(variable_groups(model))
    optimizer.build(model.trainable_variables)
    with pytest.raises(ValueError, match="use_groups\\(\\) must come before SGD is built"):
        optimizer.use_groups(VariableGroups())
    assert "groups" not in optimizer.get_config()
    # Restored from a config and built (as load_model does), an optimizer
    # whose options need no groups trains; after its first step the groups
    # are fixed as for any other.
    restored = SGD.from_config(SGD(0.1).get_config())
    restored.build(model.trainable_variables)
    restored.apply([np.zeros(v.shape, "float32") for v in model.trainable_variables])
    with pytest.raises(ValueError, match="must come before SGD is built"):
        restored.use_groups(variable_groups(model))


def test_muon_recipe_trains_round_trips_and_reads_old_configs(tmp_path):
    model = _plain_model()
    kernel = model.get_layer("body_conv").kernel
    groups = variable_groups(model) + VariableGroups(orthogonal=(kernel,))
    recipe = training.get_recipe("cifar10", epochs=1)
    optimizer = training.make_optimizer(recipe, 3, groups)
    assert isinstance(optimizer, MuonSGD) and optimizer.groups is groups
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    x, y = _data(12)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    norm = np.linalg.norm(kernel.numpy())
    assert 0.5 * np.sqrt(8) < norm < 2 * np.sqrt(8)  # held near sqrt(out)
    model.save(tmp_path / "m.keras")
    # load_model builds the optimizer before it can be handed the groups:
    # it loads, and refuses to train until it has them.
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(again.optimizer, MuonSGD)
    assert "muon_pattern" not in again.optimizer.get_config()
    with pytest.raises(ValueError, match="restored from a saved config.*use_groups"):
        again.fit(x, y, batch_size=4, epochs=1, verbose=0)
    again.optimizer.use_groups(VariableGroups(
        orthogonal=(again.get_layer("body_conv").kernel,)))
    again.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert int(again.optimizer.iterations) == 6
    # Earlier runs saved the pattern that used to choose the kernels.
    config = {**optimizer.get_config(), "muon_pattern": r"_conv/kernel$"}
    old = keras.saving.deserialize_keras_object(
        {**keras.saving.serialize_keras_object(optimizer), "config": config})
    assert isinstance(old, MuonSGD) and old.muon_steps == recipe.muon_steps


# One short fit on another backend: the trainer there applies the optimizer
# its own way (JAX: stateless_apply inside jit), with the same keras.Variable
# objects the groups hold.
_FIT = r"""
import json, sys
import numpy as np, keras
from attention_zoo.training.optimizers import MuonSGD, SGD, VariableGroups, variable_groups

keras.utils.set_random_seed(0)
inputs = keras.Input((6, 6, 3))
conv = keras.layers.Conv2D(8, 3, use_bias=False)
norm = keras.layers.BatchNormalization(scale=False)
other = keras.layers.Conv2D(8, 1, use_bias=False)
x = keras.layers.GlobalAveragePooling2D()(other(norm(conv(inputs))))
model = keras.Model(inputs, keras.layers.Dense(2)(x))
for layer in (conv, other):  # far from norm sqrt(8): Muon's rescaling shows
    layer.kernel.assign(layer.kernel * 10.0)
groups = variable_groups(model) + VariableGroups(orthogonal=(conv.kernel,))
# A tiny Muon rate: after a step the kernel's norm is sqrt(out) to 1e-5.
optimizer = MuonSGD(0.05, momentum=0.85, nesterov=True, weight_decay=0.01,
                    muon_learning_rate=1e-6, norm_bias_lr_scale=4.0, groups=groups)
model.compile(optimizer=optimizer, loss="categorical_crossentropy")
rng = np.random.default_rng(0)
data = rng.normal(size=(16, 6, 6, 3)).astype("float32")
labels = keras.utils.to_categorical(np.arange(16) % 2, 2)
loss = model.fit(data, labels, batch_size=8, epochs=1, verbose=0).history["loss"]
# The offsets' rate through the backend's own path.
offset, plain = (keras.Variable(np.zeros(3, "float32")) for _ in range(2))
sgd = SGD(0.1, norm_bias_lr_scale=8.0, groups=VariableGroups(offsets=(offset,)))
sgd.build([offset, plain])
ones = [np.ones(3, "float32")] * 2
if keras.backend.backend() == "jax":
    moved, _ = sgd.stateless_apply([v.value for v in sgd.variables], ones,
                                   [offset.value, plain.value])
else:
    sgd.apply(ones, [offset, plain])
    moved = [offset.value, plain.value]
print(json.dumps({
    "backend": keras.backend.backend(), "loss": [float(v) for v in loss],
    "steps": int(keras.ops.convert_to_numpy(optimizer.iterations)),
    "kernel": float(np.linalg.norm(keras.ops.convert_to_numpy(conv.kernel))),
    "other": float(np.linalg.norm(keras.ops.convert_to_numpy(other.kernel))),
    "moved": [float(keras.ops.convert_to_numpy(v)[0]) for v in moved]}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_muon_fits_on(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-c", _FIT], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend and result["steps"] == 2
    assert all(np.isfinite(result["loss"]))
    assert result["kernel"] == pytest.approx(np.sqrt(8), rel=1e-4)
    assert result["other"] > 2 * np.sqrt(8)  # SGD's, not rescaled
    assert result["moved"] == pytest.approx([-0.8, -0.1], rel=1e-5)


def test_a_run_recorded_with_the_retired_muon_pattern_still_resumes(tmp_path):
    """Runs written while recipes named Muon's variables by a pattern
    (``recipe.muon_pattern``) resume; another recorded value is a change."""
    from attention_zoo import training
    from attention_zoo.training import run_folder

    recipe = training.get_recipe("cifar10")
    now = training.run_arguments(recipe)
    out = tmp_path / "run"
    run_folder.claim(out, {**now, "recipe.muon_pattern": "_conv/kernel$"}, recipe.epochs)
    (out / "history.csv").write_text("epoch,loss\n0,1.0\n")
    assert run_folder.check(out, now, recipe.epochs) == "resume"
    run_folder.claim(out, {**now, "recipe.muon_pattern": "conv"}, recipe.epochs,
                     overwrite=True)
    with pytest.raises(ValueError, match="muon_pattern"):
        run_folder.check(out, now, recipe.epochs)
