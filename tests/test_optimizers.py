"""MuonSGD: orthogonalized steps for matched kernels, SGD for the rest."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from attention_zoo import training
from attention_zoo.training import MuonSGD


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


def _tiny_model() -> keras.Model:
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(8, 3, use_bias=False, name="body_conv")(inputs)
    x = keras.layers.BatchNormalization(scale=False, name="body_bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))


def test_muon_step_matches_the_reference_and_spares_other_variables():
    model = _tiny_model()
    optimizer = MuonSGD(0.5, momentum=0.85, nesterov=True, weight_decay=0.1,
                        muon_learning_rate=0.2, muon_momentum=0.6, muon_steps=3)
    kernel = model.get_layer("body_conv").kernel
    dense = model.get_layer("logits").kernel
    before_kernel, before_dense = kernel.numpy().copy(), dense.numpy().copy()
    x = tf.random.stateless_normal((4, 6, 6, 3), seed=(1, 2))
    y = tf.one_hot([0, 1, 0, 1], 2)
    with tf.GradientTape() as tape:
        loss = keras.losses.categorical_crossentropy(y, tf.nn.softmax(model(x)))
    grads = tape.gradient(loss, model.trainable_variables)
    gradient = {v.path: g.numpy() for v, g in zip(model.trainable_variables, grads)}
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

    # Muon: Nesterov look-ahead of a fresh buffer is 1.6 g; the kernel is
    # rescaled to norm sqrt(8) and takes no weight decay.
    g = gradient[kernel.path]
    update = _reference_orthogonalize(1.6 * g.reshape(-1, 8), 3).reshape(g.shape)
    expected = before_kernel * np.sqrt(8) / np.linalg.norm(before_kernel) - 0.2 * update
    np.testing.assert_allclose(kernel.numpy(), expected, rtol=1e-4, atol=1e-5)
    # SGD (Keras's decoupled decay, then a Nesterov step from zero momentum).
    gd = gradient[dense.path]
    decayed = before_dense * (1 - 0.5 * 0.1)
    np.testing.assert_allclose(dense.numpy(), decayed - 0.5 * (1 + 0.85) * gd,
                               rtol=1e-4, atol=1e-6)


def test_muon_recipe_compiles_trains_and_round_trips(tmp_path):
    model = _tiny_model()
    recipe = training.get_recipe("cifar10", optimizer="muon", ema=False, lookahead=0,
                                 epochs=1)
    optimizer = training.make_optimizer(recipe, steps_per_epoch=3)
    assert isinstance(optimizer, MuonSGD)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(12, 6, 6, 3)).astype("float32")
    y = keras.utils.to_categorical(np.arange(12) % 2, 2)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    norm = np.linalg.norm(model.get_layer("body_conv").kernel.numpy())
    assert 0.5 * np.sqrt(8) < norm < 2 * np.sqrt(8)  # held near sqrt(out)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(again.optimizer, MuonSGD)
    assert again.optimizer.get_config()["muon_pattern"] == recipe.muon_pattern


@pytest.mark.parametrize("kwargs, error, match", [
    ({"muon_pattern": "nothing_matches"}, ValueError, "matches none"),
    ({"muon_pattern": "body_bn/beta"}, ValueError, "2 or more dimensions"),
    ({"muon_momentum": 1.0}, ValueError, "muon_momentum"),
    ({"learning_rate": keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)},
     TypeError, "OneCycle"),
])
def test_muon_bad_arguments_are_clear(kwargs, error, match):
    model = _tiny_model()
    with pytest.raises(error, match=match):
        optimizer = MuonSGD(**{"learning_rate": 0.1, **kwargs})
        optimizer.build(model.trainable_variables)
