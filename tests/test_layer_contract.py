"""The contract every attention layer meets, run on every layer (tests/cases.py):
numerics against NumPy, masking, config and safe .keras round trips, mixed
precision, XLA, TFLite with built-in ops, and clear errors on bad input."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from attention_zoo.export import input_names, run_tflite, to_tflite
from attention_zoo.layers.registry import LAYERS
from cases import B, CASES, TQ, TV, Case

POLICIES = ["float32", "mixed_float16", "mixed_bfloat16"]


def npy(x, dtype=None) -> np.ndarray:
    """Any backend's tensor (a torch one that requires grad too) as NumPy."""
    return np.asarray(keras.ops.convert_to_numpy(x), dtype)


def keras_mask(tensor):
    return getattr(tensor, "_keras_mask", None)


def one_per_class(cases: list[Case]) -> list[Case]:
    """The first case of each layer class: a class's other cases vary its
    options, which do not change what a backend has to run."""
    seen: set[type] = set()
    return [c for c in cases if not (c.cls in seen or seen.add(c.cls))]


#: tests/test_backends.py runs the harness on JAX and PyTorch with one case
#: per layer class, to keep the suite within its time.
HERE = one_per_class(CASES) if os.environ.get("ZOO_ONE_CASE_PER_CLASS") else CASES


def by_case(fn):
    return pytest.mark.parametrize("case", HERE, ids=[c.id for c in HERE])(fn)


def randomize(layer, seed: int = 1) -> None:
    """Random weights everywhere (BN statistics included), so references test
    every weight rather than initial zeros and ones."""
    rng = np.random.default_rng(seed)
    for v in layer.weights:
        value = rng.standard_normal(v.shape) * 0.5
        if "variance" in v.path or "temperature" in v.path:
            value = np.abs(value) + 0.5
        v.assign(value.astype(v.dtype))


def built(case: Case, seed: int = 1, **extra):
    layer = case.make(**extra)
    layer(*case.inputs())
    randomize(layer, seed)
    return layer


def call(case: Case, layer, inputs, **kwargs):
    if case.maps:
        kwargs.setdefault("return_attention_scores", True)
    result = layer(*inputs, **case.call_kwargs, **kwargs)
    if case.maps and kwargs["return_attention_scores"]:
        return result
    return result, None


def relative_error(got, want) -> float:
    got, want = npy(got, np.float64), npy(want, np.float64)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-12))


def assert_tree_close(got, want, tol: float) -> None:
    got_leaves, want_leaves = keras.tree.flatten(got), keras.tree.flatten(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert tuple(np.shape(g)) == tuple(np.shape(w))
        assert relative_error(g, w) < tol


def functional(case: Case, layer, with_maps: bool = True) -> keras.Model:
    inputs = [keras.Input(shape) for shape in case.shapes]
    y = layer(*inputs, **case.call_kwargs,
              **({"return_attention_scores": True} if case.maps and with_maps else {}))
    return keras.Model(inputs, keras.tree.flatten(y))


# --------------------------------------------------------------- numerics --

@by_case
def test_matches_numpy_reference(case):
    layer = built(case)
    inputs = case.inputs(seed=3)
    out, maps = call(case, layer, inputs)
    want_out, want_maps = case.reference(layer, [x.astype(np.float64) for x in inputs])
    assert relative_error(out, want_out) < 1e-5
    if case.maps:
        assert_tree_close(maps, want_maps, 1e-5)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


# ---------------------------------------------------------------- masking --

def _sequence_masks():
    query_mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
    # Batch 1 has every key masked: its queries must get finite zeros.
    value_mask = np.array([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0]], bool)
    return query_mask, value_mask


def _perturb(x, keep, seed):
    noise = np.random.default_rng(seed).standard_normal(x.shape) * 100
    return np.where(keep[..., None], x, noise).astype("float32")


def _check_sequence_masking(case, layer, inputs):
    qm, vm = _sequence_masks()
    out, scores = call(case, layer, inputs, query_mask=qm, value_mask=vm)
    out, scores = npy(out), npy(scores)
    want, want_scores = case.reference(layer, [x.astype(np.float64) for x in inputs],
                                       qm, vm)
    assert relative_error(out, want) < 1e-5
    assert relative_error(scores, want_scores) < 1e-5
    pair = qm[:, :, None] & vm[:, None, :]
    if scores.ndim == 4:  # (batch, heads, Tq, Tv)
        pair = np.broadcast_to(pair[:, None], scores.shape)
    assert np.all(scores[~pair] == 0.0)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[1], np.broadcast_to(case.all_masked_output(layer),
                                                       out[1].shape), atol=1e-6)
    # Values (and keys) at masked positions, queries at masked positions: none
    # of them may change the output at a real query.
    moved = [inputs[0], _perturb(inputs[1], vm, 5)] + [
        _perturb(k, vm, 6) for k in inputs[2:]]
    moved[0] = _perturb(inputs[0], qm, 7)
    out2, _ = call(case, layer, moved, query_mask=qm, value_mask=vm)
    np.testing.assert_allclose(npy(out2)[qm], out[qm], rtol=1e-5, atol=1e-5)
    # Keras masks from an upstream layer are picked up and passed on.
    masking = keras.layers.Masking(mask_value=0.0)
    q_keras = masking(np.where(qm[..., None], inputs[0], 0.0).astype("float32"))
    v_keras = masking(np.where(vm[..., None], inputs[1], 0.0).astype("float32"))
    out3, _ = call(case, layer, [q_keras, v_keras, *inputs[2:]])
    explicit, _ = call(case, layer, [np.where(qm[..., None], inputs[0], 0.0),
                                     np.where(vm[..., None], inputs[1], 0.0),
                                     *inputs[2:]], query_mask=qm, value_mask=vm)
    np.testing.assert_allclose(npy(out3), npy(explicit), atol=1e-6)
    np.testing.assert_array_equal(npy(keras_mask(out3)), qm)


def _check_block_masking(case, layer, inputs):
    mask = np.array([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0]], bool)
    out, scores = call(case, layer, inputs, mask=mask)
    out = npy(out)
    want, want_scores = case.reference(layer, [x.astype(np.float64) for x in inputs],
                                       mask)
    assert np.all(np.isfinite(out))
    real = mask[0]
    # The fully masked sequence (batch 1) has no reference value beyond
    # "finite": compare the real steps of batch 0 (or the pooled vector).
    if out.ndim == 3:
        assert relative_error(out[0][real], want[0][real]) < 1e-5
    else:
        assert relative_error(out[0], want[0]) < 1e-5
        np.testing.assert_allclose(out[1], case.all_masked_output(layer) + 0 * out[1],
                                   atol=1e-6)
    if scores is not None:
        scores = npy(scores)
        keys = np.broadcast_to(mask.reshape((B,) + (1,) * (scores.ndim - 2) + (-1,)),
                               scores.shape)
        assert np.all(scores[~keys] == 0.0)
    moved = [_perturb(inputs[0], mask, 5)]
    out2, _ = call(case, layer, moved, mask=mask)
    out2 = npy(out2)
    if out.ndim == 3:
        np.testing.assert_allclose(out2[0][real], out[0][real], rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(out2, out, rtol=1e-5, atol=1e-5)
    keras_in = keras.layers.Masking(mask_value=0.0)(
        np.where(mask[..., None], inputs[0], 0.0).astype("float32"))
    out3 = layer(keras_in)
    got_mask = keras_mask(out3)
    if out.ndim == 3:
        np.testing.assert_array_equal(npy(got_mask), mask)
    else:
        assert got_mask is None


@by_case
def test_masking(case):
    if not case.masks:
        pytest.skip("feature-map layers take no masks")
    layer = built(case)
    inputs = case.inputs(seed=4)
    if case.kind == "sequence":
        _check_sequence_masking(case, layer, inputs)
    else:
        _check_block_masking(case, layer, inputs)


def test_causal_mask_hides_the_future():
    from attention_zoo.layers import AdditiveAttention, MultiHeadAttention

    for layer in (AdditiveAttention(4), MultiHeadAttention(4, 2, num_key_value_heads=2)):
        x = np.random.default_rng(0).standard_normal((B, 4, 8)).astype("float32")
        value = np.random.default_rng(1).standard_normal((B, 4, 6)).astype("float32")
        out, scores = layer(x, value, return_attention_scores=True,
                            use_causal_mask=True)
        future = ~np.tril(np.ones((4, 4), bool))
        assert np.all(npy(scores)[..., future] == 0.0)
        changed = value.copy()
        changed[:, -1] += 50.0  # the last step is the future of every other
        out2 = layer(x, changed, use_causal_mask=True)
        np.testing.assert_allclose(npy(out2)[:, :-1], npy(out)[:, :-1],
                                   atol=1e-5)


# ------------------------------------------------------ config and saving --

@by_case
def test_config_round_trip(case):
    layer = case.make(name="probe")
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    assert keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)).get_config() == config


@by_case
def test_keras_file_round_trip_safe_mode(case, tmp_path):
    layer = built(case)
    model = functional(case, layer)
    inputs = case.inputs(seed=5)
    before = model.predict(inputs, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    after = loaded.predict(inputs, verbose=0)
    for b, a in zip(keras.tree.flatten(before), keras.tree.flatten(after)):
        np.testing.assert_array_equal(a, b)
    assert isinstance(loaded.layers[-1], type(layer))


# --------------------------------------------------------------- symbolic --

#: Cases whose functional model with nested ``[output, maps]`` outputs also
#: goes through a .keras file: dict maps, heads, a pooled block. (Every case
#: saves its flattened outputs in test_keras_file_round_trip_safe_mode.)
NESTED_ROUND_TRIP = ("cbam", "coordinate", "mha_gqa", "attention_pooling")


def specs(result, unbatched: bool = False):
    """``(shape, dtype)`` of every tensor of a call's result, in its structure
    (a tuple, a dict of maps, ...); ``unbatched`` writes the batch as None."""
    def spec(t):
        shape = tuple(t.shape)
        if unbatched:
            shape = (None, *shape[1:])
        return shape, keras.backend.standardize_dtype(t.dtype)

    return keras.tree.map_structure(spec, result)


def with_maps(case: Case, layer, inputs):
    """The layer's result with maps where it has them, else the output alone."""
    kwargs = {"return_attention_scores": True} if case.maps else {}
    return layer(*inputs, **case.call_kwargs, **kwargs)


@by_case
def test_symbolic_call_matches_eager(case, tmp_path):
    """On ``keras.Input`` a layer returns what it returns eagerly (output, or
    ``(output, maps)`` with float32 maps, dicts included), and a functional
    model exposing the maps predicts the eager values."""
    layer = built(case)
    arrays = case.inputs(seed=10)
    eager = with_maps(case, layer, arrays)
    symbolic_inputs = [keras.Input(shape) for shape in case.shapes]
    symbolic = with_maps(case, layer, symbolic_inputs)
    # Same structure and dtypes; same shapes, batch aside: every other
    # dimension is static here, so the symbolic shapes must know them.
    assert specs(symbolic) == specs(eager, unbatched=True)
    output = keras.tree.flatten(symbolic)[0]
    if case.maps:
        assert isinstance(symbolic, tuple) and len(symbolic) == 2
        for m in keras.tree.flatten(symbolic[1]):
            assert keras.backend.standardize_dtype(m.dtype) == "float32"
    # compute_output_shape, for callers that ask it directly, agrees.
    assert tuple(layer.compute_output_shape(
        *[tuple(x.shape) for x in symbolic_inputs])) == tuple(output.shape)

    outputs = list(symbolic) if case.maps else symbolic
    model = keras.Model(symbolic_inputs, outputs)
    want = list(eager) if case.maps else eager
    predicted = model.predict(arrays, verbose=0)
    assert specs(predicted) == specs(want)
    assert_tree_close(predicted, want, 1e-5)
    if case.id in NESTED_ROUND_TRIP:
        path = tmp_path / "model.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        after = loaded.predict(arrays, verbose=0)
        assert specs(after) == specs(predicted)
        for a, b in zip(keras.tree.flatten(after), keras.tree.flatten(predicted)):
            np.testing.assert_array_equal(a, b)


# -------------------------------------------------------- mixed precision --

@by_case
@pytest.mark.parametrize("policy", POLICIES)
def test_dtype_policy(case, policy):
    layer = built(case, dtype=policy)
    compute = keras.dtype_policies.get(policy).compute_dtype
    # Activations in the hundreds: float16 dot products of such vectors
    # overflow. (An output of degree 2 grows as the square: its inputs are
    # scaled so the output grows as a linear layer's does.)
    out, maps = call(case, layer, case.inputs(seed=6, scale=300.0 ** (1 / case.degree)))
    assert keras.backend.standardize_dtype(out.dtype) == compute
    assert np.all(np.isfinite(npy(out, np.float32)))
    for m in ([] if maps is None else keras.tree.flatten(maps)):
        assert keras.backend.standardize_dtype(m.dtype) == "float32"
        assert np.all(np.isfinite(npy(m)))
    # On keras.Input too: output in the compute dtype, maps in float32.
    symbolic = with_maps(case, layer, [keras.Input(s) for s in case.shapes])
    assert specs(symbolic) == specs(with_maps(case, layer, case.inputs()),
                                    unbatched=True)
    # Same weights, unit-scale inputs: the policy computes the same function.
    reference_layer = built(case)
    reference_layer.set_weights(layer.get_weights())
    inputs = case.inputs(seed=7)
    got, _ = call(case, layer, inputs)
    want, _ = call(case, reference_layer, inputs)
    assert relative_error(npy(got, np.float32), want) < 0.05


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the claim is about the TensorFlow backend; on JAX (an "
                    "H100, benchmarks/gpu_check_h100.md) Keras's MHA stays finite")
def test_keras_mha_overflows_where_ours_does_not():
    """The README's claim: on the TensorFlow backend, Keras's MultiHeadAttention
    computes scores in float16 under mixed_float16 and overflows on
    activations in the hundreds."""
    from attention_zoo.layers import MultiHeadAttention

    x = np.random.default_rng(0).uniform(100, 300, (2, 6, 32)).astype("float32")
    ones = keras.initializers.Constant(0.05)
    theirs = keras.layers.MultiHeadAttention(2, 16, dtype="mixed_float16",
                                             kernel_initializer=ones)
    ours = MultiHeadAttention(2, 16, dtype="mixed_float16", kernel_initializer=ones)
    assert not np.all(np.isfinite(npy(theirs(x, x), np.float32)))
    assert np.all(np.isfinite(npy(ours(x, x), np.float32)))


# -------------------------------------------------------------------- XLA --

@by_case
def test_xla_fit_and_parity(case):
    layer = built(case)
    model = functional(case, layer, with_maps=False)
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse",
                  jit_compile=True)
    inputs = case.inputs(seed=8)
    target = np.zeros((B, *model.outputs[0].shape[1:]), "float32")
    history = model.fit(inputs, target, batch_size=B, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    eager = npy(model(inputs, training=False))
    compiled = model.predict(inputs, verbose=0)
    assert relative_error(compiled, eager) < 1e-5


# ----------------------------------------------------------------- TFLite --

@pytest.mark.skipif(keras.backend.backend() == "torch",
                    reason="Keras writes SavedModels (the TFLite converter's input) "
                    "from the TensorFlow and JAX backends only")
@by_case
def test_tflite_builtin_ops_parity(case):
    layer = built(case)
    model = functional(case, layer)
    flatbuffer = to_tflite(model, batch_size=B)
    inputs = case.inputs(seed=9)
    want = keras.tree.flatten(model.predict(inputs, verbose=0))
    got = run_tflite(flatbuffer, inputs, input_names(model))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=0)


# -------------------------------------------------------------- bad input --

def _expect_clear_error(layer, inputs, received_shape, **kwargs):
    with pytest.raises(ValueError) as error:
        layer(*inputs, **kwargs)
    message = str(error.value)
    assert layer.name in message and type(layer).__name__ in message
    assert "expects" in message
    assert "received" in message
    assert str(tuple(received_shape)).replace(",)", ")") in message, message
    return message


@by_case
def test_bad_input_is_a_clear_value_error(case):
    inputs = case.inputs()
    first = inputs[0]
    # Wrong rank, on a fresh layer (fails in build) and on a built one.
    wrong_rank = [first[..., 0]] + inputs[1:]
    _expect_clear_error(case.make(), wrong_rank, wrong_rank[0].shape)
    layer = built(case)
    _expect_clear_error(layer, wrong_rank, wrong_rank[0].shape)
    # A width that does not match the built weights, eagerly and on
    # keras.Input (where the call is traced, and Keras would reword the error).
    wider = [np.concatenate([first, first[..., :1]], -1)] + inputs[1:]
    _expect_clear_error(layer, wider, wider[0].shape)
    symbolic = [keras.Input(x.shape[1:]) for x in wider]
    message = _expect_clear_error(layer, symbolic, symbolic[0].shape)
    assert "Could not automatically infer" not in message
    # Integers where floats are expected.
    ints = [keras.ops.convert_to_tensor(first.astype("int32"))] + inputs[1:]
    _expect_clear_error(layer, ints, first.shape)
    # A zero-size dimension, on a fresh and on a built layer.
    empty = [first[:, :0]] + inputs[1:]
    _expect_clear_error(case.make(), empty, empty[0].shape)
    _expect_clear_error(layer, empty, empty[0].shape)


def test_sequence_layers_reject_key_value_length_mismatch():
    case = next(c for c in CASES if c.id == "additive")
    layer = built(case)
    q, v, k = case.inputs()
    with pytest.raises(ValueError, match="key"):
        layer(q, v, k[:, :TV - 1])


# --------------------------------------------------------------- coverage --

def test_every_registered_layer_is_in_the_harness():
    covered = {case.cls for case in CASES}
    registered = {entry.target for entry in LAYERS}
    assert registered <= covered, registered - covered
    assert TQ != TV  # cross-attention shapes, not only self-attention
