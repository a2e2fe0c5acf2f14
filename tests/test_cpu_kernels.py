"""The CPU training kernels compute what their Keras parents compute."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from attention_zoo.models import AttnCNN
from attention_zoo.models import cpu_kernels


def _train_call(layer, x):
    """Output, gradients (input, then trainable weights) and non-trainable
    weights after one training call."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, "float32") * tf.cos(tf.cast(y, "float32")))
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    return [np.asarray(t, "float32") for t in
            [y, *grads, *layer.non_trainable_weights]]


CASES = {
    "batchnorm, offset only": (cpu_kernels.BatchNormalization, keras.layers.BatchNormalization,
                               {"momentum": 0.6, "scale": False}),
    "batchnorm, scale and offset": (cpu_kernels.BatchNormalization, keras.layers.BatchNormalization,
                                    {"momentum": 0.9, "synchronized": True}),
    "conv 3x3": (cpu_kernels.Conv2D, keras.layers.Conv2D,
                 {"filters": 8, "kernel_size": 3, "padding": "same", "use_bias": False}),
    "conv 2x3": (cpu_kernels.Conv2D, keras.layers.Conv2D,
                 {"filters": 8, "kernel_size": (2, 3), "padding": "same", "use_bias": False}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_layers_train_like_their_keras_parents(case, monkeypatch):
    fast_class, keras_class, kwargs = CASES[case]
    monkeypatch.setattr(cpu_kernels.Conv2D, "taps_min_filters", 1)
    x = np.random.default_rng(0).normal(1.0, 3.0, (4, 7, 6, 16)).astype("float32")
    fast, reference = fast_class(**kwargs), keras_class(**kwargs)
    fast.build(x.shape)
    reference.build(x.shape)
    reference.set_weights([w + 0.1 * i for i, w in enumerate(fast.get_weights())])
    fast.set_weights(reference.get_weights())
    got, want = _train_call(fast, x), _train_call(reference, x)
    # Output, input gradient, weight gradients and moving statistics.
    assert len(got) == len(want) >= 3
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())
    assert fast.get_config() == {**reference.get_config(), "name": fast.name}


def test_conv_taps_gradient_is_the_native_one_in_bfloat16(monkeypatch):
    monkeypatch.setattr(cpu_kernels.Conv2D, "taps_min_filters", 1)
    x = np.random.default_rng(1).normal(size=(8, 5, 5, 32)).astype("float32")
    kwargs = {"filters": 16, "kernel_size": 3, "padding": "same", "use_bias": False,
              "dtype": "mixed_bfloat16"}
    fast, reference = cpu_kernels.Conv2D(**kwargs), keras.layers.Conv2D(**kwargs)
    fast.build(x.shape)
    reference.build(x.shape)
    reference.set_weights(fast.get_weights())
    got, want = _train_call(fast, x), _train_call(reference, x)
    for a, b in zip(got, want):  # bfloat16 keeps 8 bits of mantissa
        np.testing.assert_allclose(a, b, rtol=0.05, atol=0.02 * np.abs(b).max())


def test_fast_layers_fall_back_where_they_do_not_apply():
    strided = cpu_kernels.Conv2D(4, 3, strides=2, padding="same", use_bias=False)
    assert not strided._taps_apply(tf.zeros((1, 8, 8, 3)))
    narrow = cpu_kernels.Conv2D(4, 3, padding="same", use_bias=False)
    assert not narrow._taps_apply(tf.zeros((1, 8, 8, 3)))  # below taps_min_filters
    # Masked and non-4-D inputs take Keras's own path and still work.
    norm = cpu_kernels.BatchNormalization()
    out = norm(tf.ones((2, 5, 3)), training=True, mask=tf.ones((2, 5)))
    assert out.shape == (2, 5, 3)


def test_attn_cnn_uses_them_and_shares_weight_files_with_keras_layers(tmp_path, monkeypatch):
    model = AttnCNN(width=(8, 16, 16))
    kinds = {type(layer) for layer in model.backbone.layers}
    assert {cpu_kernels.BatchNormalization, cpu_kernels.Conv2D} <= kinds
    images = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    want = model.predict(images, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path).predict(images, verbose=0),
                               want, atol=1e-6)
    # Weight files of the same net built from Keras's layers (every
    # AttnCNN weights file written before these kernels) load both ways.
    weights = str(tmp_path / "m.weights.h5")
    model.save_weights(weights)
    monkeypatch.setattr(cpu_kernels, "Conv2D", keras.layers.Conv2D)
    monkeypatch.setattr(cpu_kernels, "BatchNormalization", keras.layers.BatchNormalization)
    plain = AttnCNN(width=(8, 16, 16))
    assert cpu_kernels.Conv2D is keras.layers.Conv2D
    plain.load_weights(weights)
    np.testing.assert_allclose(plain.predict(images, verbose=0), want, atol=1e-6)
