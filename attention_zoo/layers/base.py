"""What every attention layer shares: input checks, masks, float32 softmax.

Layers here use ``keras.ops`` only, so they run on every Keras backend, under
XLA and inside a TFLite file with built-in ops.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops

#: Added to masked scores before softmax. Finite, so a row whose keys are all
#: masked yields a finite uniform softmax that the mask then zeroes.
MASK_FILL = -1e9

Shape = Sequence[int | None]


class InputError(ValueError):
    """An input a layer refuses (wrong rank, width, length or dtype, an empty
    or unknown dimension); the message names the layer, what it expects and
    what it received. A ValueError, so existing handlers still catch it."""


def _describe(shape: Shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def check_shape(layer: keras.layers.Layer, shape: Shape, what: str,
                expected: Shape) -> None:
    """Raises InputError unless ``shape`` has the rank of ``expected`` and
    equals it wherever ``expected`` is not None; zero-size dims are refused."""
    shape = tuple(shape)
    where = f"{type(layer).__name__} layer '{layer.name}'"
    if len(shape) != len(expected):
        raise InputError(
            f"{where} expects {what} of rank {len(expected)} with shape "
            f"{_describe(expected)}, received shape {_describe(shape)}.")
    if any(d == 0 for d in shape):
        raise InputError(
            f"{where} expects {what} of shape {_describe(expected)} with no "
            f"zero-size dimension, received shape {_describe(shape)}.")
    for got, want in zip(shape, expected):
        if want is not None and got is not None and got != want:
            raise InputError(
                f"{where} expects {what} of shape {_describe(expected)}, "
                f"received shape {_describe(shape)}.")


def check_tensor(layer: keras.layers.Layer, x: Any, what: str,
                 expected: Shape) -> None:
    """``check_shape`` plus: ``x`` is a tensor of a floating dtype."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(
            f"{type(layer).__name__} layer '{layer.name}' expects {what} to be "
            f"a tensor of shape {_describe(expected)}, received "
            f"{type(x).__name__}.")
    check_shape(layer, x.shape, what, expected)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if not keras.backend.is_float_dtype(dtype):
        raise InputError(
            f"{type(layer).__name__} layer '{layer.name}' expects {what} of a "
            f"floating dtype with shape {_describe(expected)}, received dtype "
            f"{dtype} with shape {_describe(tuple(x.shape))}.")


def attention_mask(query_mask: Any = None, value_mask: Any = None,
                   causal: tuple[Any, Any] | None = None) -> Any:
    """Combines masks into one boolean tensor broadcastable to
    ``(batch, Tq, Tv)``; None when nothing is masked.

    Args:
        query_mask: ``(batch, Tq)``, True where the query position is real.
        value_mask: ``(batch, Tv)``, True where the key/value position is real.
        causal: ``(Tq, Tv)`` to add a causal mask (query i sees keys j <= i).
    """
    mask = None
    if query_mask is not None:
        mask = ops.expand_dims(ops.cast(query_mask, "bool"), -1)
    if value_mask is not None:
        vm = ops.expand_dims(ops.cast(value_mask, "bool"), -2)
        mask = vm if mask is None else ops.logical_and(mask, vm)
    if causal is not None:
        tq, tv = causal
        # arange/compare rather than tril: lowers to TFLite built-ins.
        rows = ops.expand_dims(ops.arange(tq), -1)
        cols = ops.expand_dims(ops.arange(tv), 0)
        cm = ops.expand_dims(ops.greater_equal(rows, cols), 0)
        mask = cm if mask is None else ops.logical_and(mask, cm)
    return mask


def masked_softmax(scores: Any, mask: Any = None, axis: int = -1) -> Any:
    """Softmax in float32; exactly 0 where ``mask`` is False, and an all-masked
    row gives all zeros (never NaN)."""
    scores = ops.cast(scores, "float32")
    if mask is None:
        return ops.softmax(scores, axis=axis)
    keep = ops.cast(mask, "float32")
    weights = ops.softmax(scores + (1.0 - keep) * MASK_FILL, axis=axis)
    return weights * keep


def float32_weight(layer: keras.layers.Layer, name: str, shape: tuple,
                   initializer: Any, trainable: bool = True) -> Any:
    """A weight of a score path: float32 and never autocast, so scores keep
    float32 precision under mixed precision."""
    return layer.add_weight(name=name, shape=shape, initializer=initializer,
                            dtype="float32", autocast=False, trainable=trainable)


#: Attention gates of feature-map layers are computed in float32 whatever the
#: policy: they pool over H*W positions, which overflows float16.
GATE_DTYPE = "float32"


class TracedLayer(keras.layers.Layer):
    """Base of this package's layers: called on ``keras.Input``, a layer
    returns what its eager call returns, and refuses what it refuses.

    With ``return_attention_scores=True`` that is ``(output, maps)``, where
    ``maps`` is a float32 tensor or a dict of them. Keras builds the symbolic
    result from ``compute_output_shape`` whenever a layer defines one, and
    that path knows nothing of the call's arguments: it returns one tensor of
    the compute dtype, so ``y, maps = layer(x, return_attention_scores=True)``
    fails on a ``keras.Input``, and it runs none of the call's input checks.
    Here the symbolic result is ``call`` itself traced on placeholders (what
    Keras does for layers without ``compute_output_shape``), so structure,
    shapes and dtypes match the eager call by construction, in every
    subclass. ``compute_output_shape`` still answers for the main output, for
    callers that ask for it directly.
    """

    def compute_output_spec(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return keras.Operation.compute_output_spec(self, *args, **kwargs)
        except InputError as error:
            # Keras rewords any failed trace as "could not infer the output
            # shape, implement compute_output_spec()", keeping the original
            # as the context: an input the layer refuses should read as it
            # does eagerly.
            original = error.__context__
            raise (original if isinstance(original, InputError) else error) from None


class SequenceAttention(TracedLayer):
    """Base of the single-head sequence attention layers.

    Call: ``layer(query, value, key=None, query_mask=None, value_mask=None,
    return_attention_scores=False, training=None)`` with query
    ``(batch, Tq, dq)``, value ``(batch, Tv, dv)`` and key ``(batch, Tv, dk)``
    (default: value). Returns the context ``sum_j a_ij v_j`` of shape
    ``(batch, Tq, dv)``, and with ``return_attention_scores=True`` also the
    weights ``a`` of shape ``(batch, Tq, Tv)``. Scores and softmax run in
    float32. Keras masks on query and value are honoured; masked weights are 0,
    a query with every key masked gets a zero context. The output carries the
    query's mask.

    ``use_causal_mask=True`` lets query ``i`` see keys ``j <= i`` only.

    Subclasses implement ``build_weights()`` and ``scores(query, key)`` on
    float32 tensors.
    """

    def __init__(self, dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dropout = check_rate("dropout", dropout)
        self.supports_masking = True
        self._dropout = keras.layers.Dropout(self.dropout)

    def build(self, query_shape: Shape, value_shape: Shape,
              key_shape: Shape | None = None) -> None:
        key_shape = value_shape if key_shape is None else key_shape
        check_shape(self, query_shape, "query", (None, None, None))
        check_shape(self, value_shape, "value", (None, None, None))
        check_shape(self, key_shape, "key", (None, value_shape[1], None))
        if None in (query_shape[-1], key_shape[-1], value_shape[-1]):
            raise InputError(
                f"{type(self).__name__} layer '{self.name}' needs known last "
                f"dimensions, received query {_describe(query_shape)}, value "
                f"{_describe(value_shape)} and key {_describe(key_shape)}.")
        self.query_width = int(query_shape[-1])
        self.key_width = int(key_shape[-1])
        self.value_width = int(value_shape[-1])
        self.build_weights()
        self.built = True

    def build_weights(self) -> None:
        """Creates the weights, knowing ``query_width``, ``key_width`` and
        ``value_width`` (the inputs' last dimensions)."""

    def scores(self, query: Any, key: Any) -> Any:
        raise NotImplementedError

    def score_weight(self, name: str, shape: tuple, initializer: Any,
                     trainable: bool = True) -> Any:
        return float32_weight(self, name, shape, initializer, trainable)

    def checked_inputs(self, query: Any, value: Any, key: Any) -> Any:
        """Validates the call's tensors against the built weights; returns key."""
        key = value if key is None else key
        check_tensor(self, query, "query", (None, None, self.query_width))
        check_tensor(self, value, "value", (None, None, self.value_width))
        check_tensor(self, key, "key", (None, value.shape[1], self.key_width))
        return key

    def mask(self, query: Any, value: Any, query_mask: Any, value_mask: Any,
             use_causal_mask: bool) -> Any:
        causal = None
        if use_causal_mask:
            causal = (ops.shape(query)[1], ops.shape(value)[1])
        return attention_mask(query_mask, value_mask, causal)

    def call(self, query: Any, value: Any, key: Any = None,
             query_mask: Any = None, value_mask: Any = None,
             return_attention_scores: bool = False, training: Any = None,
             use_causal_mask: bool = False) -> Any:
        key = self.checked_inputs(query, value, key)
        scores = self.scores(ops.cast(query, "float32"), ops.cast(key, "float32"))
        weights = masked_softmax(
            scores, self.mask(query, value, query_mask, value_mask, use_causal_mask))
        dropped = self._dropout(weights, training=training)
        context = ops.matmul(ops.cast(dropped, value.dtype), value)
        if return_attention_scores:
            return context, weights
        return context

    def compute_output_shape(self, query_shape: Shape, value_shape: Shape,
                             key_shape: Shape | None = None) -> tuple:
        return (query_shape[0], query_shape[1], value_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dropout": self.dropout}


class FeatureMapAttention(TracedLayer):
    """Base of the channels-last feature-map attention layers.

    Call: ``layer(x, return_attention_scores=False, training=None)`` with ``x``
    of shape ``(batch, H, W, C)``; returns a tensor of the same shape and, with
    ``return_attention_scores=True``, ``(output, maps)``: the float32 attention
    maps the layer computed.

    Subclasses implement ``build_gate(input_shape)`` and
    ``attend(x, x32, training) -> (output, maps)``; ``x32`` is ``x`` in float32.
    """

    def build(self, input_shape: Shape) -> None:
        check_shape(self, input_shape, "inputs", (None, None, None, None))
        if input_shape[-1] is None:
            raise InputError(
                f"{type(self).__name__} layer '{self.name}' needs a known "
                f"channel count, received shape {_describe(input_shape)}.")
        self.channels = int(input_shape[-1])
        self.build_gate(tuple(input_shape))
        self.built = True

    def build_gate(self, input_shape: tuple) -> None:
        raise NotImplementedError

    def attend(self, x: Any, x32: Any, training: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def call(self, inputs: Any, return_attention_scores: bool = False,
             training: Any = None) -> Any:
        check_tensor(self, inputs, "inputs", (None, None, None, self.channels))
        output, maps = self.attend(inputs, ops.cast(inputs, GATE_DTYPE), training)
        if return_attention_scores:
            return output, maps
        return output

    def compute_output_shape(self, input_shape: Shape) -> tuple:
        return tuple(input_shape)

    def gate_sublayer(self, cls: type, *args: Any, **kwargs: Any) -> Any:
        """A float32 sublayer of the gate path."""
        return cls(*args, dtype=GATE_DTYPE, **kwargs)


class ConvAttention(FeatureMapAttention):
    """Base of attention layers that replace a convolution (timm's ``sk``,
    ``splat``, ``lambda``, ``bottleneck``, ``halo``). Like ``Conv2D`` they
    take ``filters`` (None: as many as the input has) and ``strides``.

    Input ``(batch, H, W, C)``; output ``(batch, ceil(H / strides),
    ceil(W / strides), filters)``. Subclasses implement ``build_gate`` and
    ``attend`` as feature-map layers do, reading ``self.out_channels``.
    """

    def __init__(self, filters: int | None = None, strides: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = None if filters is None else check_positive("filters", filters)
        self.strides = check_positive("strides", strides)

    def build(self, input_shape: Shape) -> None:
        if input_shape[-1] is not None:  # FeatureMapAttention reports None
            self.out_channels = self.filters or int(input_shape[-1])
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> tuple:
        def strided(size: int | None) -> int | None:
            return None if size is None else -(-size // self.strides)

        return (input_shape[0], strided(input_shape[1]), strided(input_shape[2]),
                self.filters or input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters,
                "strides": self.strides}


def check_positive(name: str, value: Any, integer: bool = True) -> Any:
    """Refuses non-positive (or, when ``integer``, non-int) hyperparameters."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        want = "a positive int" if integer else "a positive number"
        raise ValueError(f"{name} must be {want}, received {value!r}")
    return value


class BottleneckAttention2D(FeatureMapAttention):
    """A feature-map layer whose gate squeezes ``C`` channels to
    ``hidden = max(min_units, C // reduction)`` (at most ``C``)."""

    def __init__(self, reduction: float = 16, min_units: int = 8,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reduction = check_positive("reduction", reduction, integer=False)
        self.min_units = check_positive("min_units", min_units)

    @property
    def hidden(self) -> int:
        squeezed = max(self.min_units, int(self.channels // self.reduction))
        return max(1, min(self.channels, squeezed))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reduction": self.reduction,
                "min_units": self.min_units}


def check_rate(name: str, value: Any) -> float:
    """Refuses a dropout rate outside [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), received {value!r}")
    return float(value)
