"""airbench's parts: the patch-whitening stem, dirac initialization, the
normalization-offset learning rate, lookahead and the scheduled EMA."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from attention_zoo import data, training
from attention_zoo.models import AttnCNN
from attention_zoo.models.whitening import Dirac, PatchWhitening, adapt_whitening

AIRBENCH = {"width": (8, 8, 8), "stem": "whiten", "dirac": True, "bn_scale": False,
            "bn_momentum": 0.6}


pytestmark = pytest.mark.usefixtures("private_cache")


def _correlated_images(n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = rng.normal(size=(n, 17, 17, 3)).repeat(2, axis=1).repeat(2, axis=2)
    mixed = smooth[:, :32, :32] @ np.array([[1.0, 0.8, 0.6], [0, 1, 0.5], [0, 0, 1]])
    return (mixed + 0.3 * rng.normal(size=mixed.shape)).astype("float32")


def test_patch_whitening_decorrelates_patches():
    images = _correlated_images()
    layer = PatchWhitening(2, epsilon=1e-6)
    layer.adapt(images)
    out = np.asarray(layer(images))
    assert out.shape == (40, 31, 31, 24)
    flat = out.reshape(-1, 24)
    covariance = flat[:, :12].T @ flat[:, :12] / len(flat)
    np.testing.assert_allclose(covariance, np.eye(12), atol=2e-3)
    np.testing.assert_allclose(flat[:, 12:], -flat[:, :12], atol=1e-5)
    # The leading filter carries the largest variance before scaling.
    raw = np.linalg.norm(layer.kernel.numpy()[..., :12].reshape(12, 12), axis=0)
    assert raw[0] == raw.min()


def test_patch_whitening_bad_input():
    with pytest.raises(ValueError, match="kernel_size must be an int"):
        PatchWhitening(0)
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        PatchWhitening(2, epsilon=0.0)
    with pytest.raises(ValueError, match=r"adapt expects \(n, H, W, C\)"):
        PatchWhitening().adapt(np.zeros((4, 8, 8)))
    with pytest.raises(ValueError, match=r"covariance must be \(k\*k\*C, k\*k\*C\)"):
        PatchWhitening().set_covariance(np.eye(5))


def test_dirac_initializer():
    kernel = np.asarray(Dirac(seed=1)((3, 3, 4, 6)))
    for i in range(4):
        expected = np.zeros((3, 3, 4))
        expected[1, 1, i] = 1.0
        np.testing.assert_array_equal(kernel[..., i], expected)
    assert kernel[..., 4:].std() > 0 and np.abs(kernel[..., 4:]).max() <= 1 / 6
    assert Dirac.from_config(Dirac(seed=3).get_config()).seed == 3
    with pytest.raises(ValueError, match=r"\(kh, kw, in, out\)"):
        Dirac()((3, 4))


def test_airbench_attn_cnn_saves_and_loads(tmp_path):
    model = AttnCNN(**AIRBENCH)
    assert model.backbone.get_layer("stem_whiten").output.shape == (None, 31, 31, 24)
    assert model.get_layer("pool").input.shape[1:3] == (3, 3)
    assert not any(w.name == "gamma" for w in model.weights)
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("uint8")
    assert adapt_whitening(model.backbone, images) == ["stem_whiten"]
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(restored.predict(images, verbose=0),
                               model.predict(images, verbose=0), atol=1e-5)
    with pytest.raises(ValueError, match="stem must be 'conv' or 'whiten'"):
        AttnCNN(stem="patch")


def test_shipped_weights_refuse_another_stem():
    with pytest.raises(ValueError, match="stem='conv' \\(shipped: 'whiten'\\)"):
        AttnCNN(weights="cifar10", stem="conv")


def test_fit_adapts_the_whitening_to_training_images(tiny_zip, capsys):
    train, val = data.cifar10(tiny_zip, val_per_class=2)
    recipe = training.get_recipe("cifar10_sgd", epochs=1, batch_size=16,
                                 norm_bias_lr_scale=64.0, lookahead=2, ema_power=0.6,
                                 lr_end=0.07, tta=False)
    result = training.fit(lambda: AttnCNN(**AIRBENCH),
                          data.pipeline(train, 16, training=True),
                          data.pipeline(val, 16), recipe=recipe, verbose=0)
    assert "adapted stem_whiten (" in capsys.readouterr().out
    kernel = result.model.backbone.get_layer("stem_whiten").kernel.numpy()
    untouched = PatchWhitening()
    untouched.build((None, 32, 32, 3))
    assert not np.allclose(kernel, untouched.kernel.numpy())
    assert 0.0 <= result.val_accuracy <= 1.0


def _one_step(recipe: training.Recipe, steps: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Returns how far the BN offset and the dense kernel moved."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, use_bias=False),
                              keras.layers.BatchNormalization(scale=False)])
    optimizer = training.make_optimizer(recipe, steps_per_epoch=steps,
                                        groups=training.variable_groups(model))
    before = [w.numpy().copy() for w in model.trainable_variables]
    x = tf.random.normal((8, 4), seed=1)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(x, training=True) - 1.0) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
    moved = [np.abs(w.numpy() - b) for w, b in zip(model.trainable_variables, before)]
    return moved[0], moved[1]


def test_norm_bias_lr_scale_scales_only_offsets():
    plain = training.Recipe(epochs=1, momentum=0.0, weight_decay=0.0, ema=False,
                            warmup=0.0, learning_rate=0.01, decay=False, lr_start=1.0)
    kernel, beta = _one_step(plain)
    kernel64, beta64 = _one_step(plain.replace(norm_bias_lr_scale=64.0))
    np.testing.assert_allclose(kernel64, kernel, rtol=1e-5)
    np.testing.assert_allclose(beta64, 64 * beta, rtol=1e-4)


def _stem_bias_path(recipe: training.Recipe, steps: int = 4) -> list[np.ndarray]:
    """The whitening bias after each of ``steps`` optimizer steps."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 4, 3)), PatchWhitening(name="stem_whiten"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2)])
    stem = model.get_layer("stem_whiten")
    optimizer = training.make_optimizer(recipe, steps_per_epoch=steps,
                                        groups=training.VariableGroups(stem_bias=(stem.bias,)))
    x = tf.random.normal((8, 4, 4, 3), seed=1)
    path = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(x, training=True) - 1.0) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        path.append(model.get_layer("stem_whiten").bias.numpy().copy())
    return path


def test_whiten_bias_epochs_decays_then_freezes_the_stem_bias():
    plain = training.Recipe(epochs=1, momentum=0.0, weight_decay=0.5, ema=False,
                            warmup=0.0, learning_rate=0.01, decay=False, lr_start=1.0)
    base = _stem_bias_path(plain.replace(weight_decay=0.0))
    path = _stem_bias_path(plain.replace(norm_bias_lr_scale=8.0, whiten_bias_epochs=0.5))
    # Step 1 at the offsets' rate, step 2 at half of it, then frozen: no
    # gradient step and no weight decay (0.5 would move it).
    np.testing.assert_allclose(path[0], 8 * base[0], rtol=1e-4)
    assert not np.allclose(path[1], path[0])
    np.testing.assert_array_equal(path[2], path[1])
    np.testing.assert_array_equal(path[3], path[1])
    # Without the option it keeps training (and decaying) at the base rate.
    assert not np.allclose(_stem_bias_path(plain)[3], _stem_bias_path(plain)[2])
    with pytest.raises(ValueError, match="whiten_bias_epochs must be >= 0"):
        plain.replace(whiten_bias_epochs=-1)


def test_stem_bias_steps_round_trips_and_keeps_muon_kernels_undecayed():
    recipe = training.get_recipe("cifar10", whiten_bias_epochs=3.0)
    model = AttnCNN(**AIRBENCH)
    optimizer = training.make_optimizer(recipe, steps_per_epoch=10,
                                        groups=training.variable_groups(model))
    assert optimizer.stem_bias_steps == 30
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(optimizer))
    assert restored.stem_bias_steps == 30
    optimizer.build(model.trainable_variables)
    skipped = {v.path for v in model.trainable_variables
               if not optimizer._use_weight_decay(v)}
    assert "stem_whiten/bias" in skipped
    assert any(p.endswith("_conv/kernel") for p in skipped)
    with pytest.raises(ValueError, match="stem_bias_steps must be an int >= 0"):
        training.SGD(0.1, stem_bias_steps=-2)


def test_ema_power_schedules_the_ema_momentum():
    recipe = training.Recipe(epochs=1, ema_momentum=0.9, ema_power=1.0)
    optimizer = training.make_optimizer(recipe, steps_per_epoch=8)
    optimizer.build([keras.Variable(np.zeros(2, "float32"))])
    optimizer.iterations.assign(4)
    assert float(optimizer._ema_momentum_now()) == pytest.approx(0.45)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(optimizer))
    assert (restored.ema_power, restored.total_steps) == (1.0, 8)
    with pytest.raises(ValueError, match="ema_power needs total_steps"):
        training.SGD(0.1, use_ema=True, ema_power=1.0)


def _fit_with_lookahead(period: int, steps: int = 8) -> np.ndarray:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    recipe = training.Recipe(epochs=1, batch_size=5, learning_rate=0.05,
                             ema_momentum=0.9, lookahead=period)
    model.compile(optimizer=training.make_optimizer(recipe, steps_per_epoch=steps),
                  loss="mse")
    x, y = np.ones((5 * steps, 4), "float32"), np.full((5 * steps, 1), 10.0, "float32")
    model.fit(x, y, batch_size=5, epochs=1, verbose=0,
              callbacks=[training.Lookahead(period)] if period else [])
    return model.trainable_variables[0].numpy()


def test_lookahead_copies_the_ema_back_every_period_steps():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=training.make_optimizer(
        training.Recipe(ema_momentum=0.9, lookahead=4), steps_per_epoch=8), loss="mse")
    model.optimizer.build(model.trainable_variables)
    average = model.optimizer._model_variables_moving_average[0]
    average.assign(np.full((4, 1), 7.0, "float32"))
    callback = training.Lookahead(4)
    callback.set_model(model)
    model.optimizer.iterations.assign(3)
    callback.on_train_batch_end(0)
    assert not np.allclose(model.trainable_variables[0].numpy(), 7.0)
    model.optimizer.iterations.assign(4)
    callback.on_train_batch_end(1)
    np.testing.assert_allclose(model.trainable_variables[0].numpy(), 7.0)
    # In training it changes the path the weights take.
    assert np.abs(_fit_with_lookahead(4) - _fit_with_lookahead(0)).max() > 1e-4
    with pytest.raises(ValueError, match="lookahead copies the weight EMA"):
        training.make_optimizer(training.Recipe(lookahead=5, ema=False), 8)
    with pytest.raises(ValueError, match="period must be an int >= 1"):
        training.Lookahead(0)


def test_one_cycle_ends_at_a_fraction_of_the_peak():
    schedule = training.OneCycle(1.0, total_steps=100, warmup_steps=20, start=0.2,
                                 end=0.07)
    assert float(schedule(0)) == pytest.approx(0.2)
    assert float(schedule(100)) == pytest.approx(0.07)
    assert float(schedule(60)) == pytest.approx(0.07 + 0.93 * 0.5)
    assert training.OneCycle.from_config(schedule.get_config()).end == 0.07
