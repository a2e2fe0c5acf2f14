"""Ensembles: several trained models, one model that averages their class
probabilities.

Members trained separately make partly different mistakes; their mean is
the cheapest accuracy to add after training (IMDB: a BiGRU over whole
reviews and an n-gram attention model, 90.1% each, average to 91.0%;
benchmarks/text_ensembles_imdb.md).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras

from attention_zoo.models.registry import create, register_model
from attention_zoo.models.task import Task

MEMBER_PREFIX = "member"


@keras.saving.register_keras_serializable(package="attention_zoo")
class MemberPreprocessors(keras.layers.Layer):
    """The preprocessors of an ensemble's members side by side: raw inputs
    in, one preprocessed tensor per member out (a tuple), so members with
    different vocabularies or n-grams share one ``predict`` call."""

    def __init__(self, preprocessors: Sequence[keras.layers.Layer], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.preprocessors = list(preprocessors)
        self.takes_text = any(getattr(p, "takes_text", False) for p in self.preprocessors)

    def check_inputs(self, x: Any) -> Any:
        return self.preprocessors[0].check_inputs(x)

    def call(self, x: Any) -> tuple:
        return tuple(p(x) for p in self.preprocessors)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "preprocessors": [
            keras.saving.serialize_keras_object(p) for p in self.preprocessors]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MemberPreprocessors":
        config = dict(config)
        config["preprocessors"] = [keras.saving.deserialize_keras_object(p)
                                   for p in config["preprocessors"]]
        return cls(**config)


@keras.saving.register_keras_serializable(package="attention_zoo")
class EnsembleClassifier(Task):
    """The mean of ``members``' class probabilities.

    Members with a preprocessor (text tasks) each keep theirs: the ensemble
    takes one id input per member, and its preprocessor
    (``MemberPreprocessors``) feeds each member its own ids, so
    ``predict(texts)`` works on every backend. Members without one (image
    models) share the ensemble's input. ``members`` holds the member
    models; in the graph they are layers ``member0``, ``member1``, ...
    (their own layers are shared, not copied).

    Inputs: the members' (one per member for text tasks). Output:
    ``(batch, num_classes)`` float32, the members' mean.
    """

    def __init__(self, members: Sequence[keras.Model], name: str = "ensemble",
                 **kwargs: Any) -> None:
        members = _checked(members)
        preprocessors = [getattr(m, "preprocessor", None) for m in members]
        if any(p is None for p in preprocessors) and any(p is not None for p in preprocessors):
            raise ValueError("ensemble members either all have a preprocessor (text "
                             "tasks) or none has (image models)")
        self.members = list(members)
        if preprocessors[0] is not None:
            self.preprocessor = MemberPreprocessors(preprocessors, name="preprocessors")
            inputs = [keras.Input(m.inputs[0].shape[1:], dtype=m.inputs[0].dtype,
                                  name=f"{MEMBER_PREFIX}{i}_{m.inputs[0].name}")
                      for i, m in enumerate(members)]
            outputs = [named_view(m, f"{MEMBER_PREFIX}{i}")(x)
                       for i, (m, x) in enumerate(zip(members, inputs))]
            args: Any = inputs
        else:
            first = members[0]
            inputs = [keras.Input(x.shape[1:], dtype=x.dtype, name=x.name)
                      for x in first.inputs]
            args = inputs if len(inputs) > 1 else inputs[0]
            # A functional view with a fixed name: members often share their
            # builder's name, and layer names in a model must be unique.
            outputs = [named_view(m, f"{MEMBER_PREFIX}{i}")(args)
                       for i, m in enumerate(members)]
        mean = keras.layers.Average(dtype="float32", name="probabilities")(outputs)
        super().__init__(inputs=args, outputs=mean, name=name, **kwargs)

    def arguments(self) -> dict[str, Any]:
        return {"members": list(self.members)}


def _checked(members: Any) -> list[keras.Model]:
    if isinstance(members, keras.Model) or not isinstance(members, (list, tuple)):
        raise TypeError(f"members must be a list of keras.Model, received "
                        f"{type(members).__name__}")
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, received "
                         f"{len(members)}")
    for i, member in enumerate(members):
        if not isinstance(member, keras.Model):
            raise TypeError(f"members must be keras.Model instances, received "
                            f"{type(member).__name__} at position {i}")
    first = members[0]
    if len(first.outputs) != 1:
        raise ValueError(f"ensemble members give one output (probabilities); "
                         f"{first.name!r} gives {len(first.outputs)}")
    signature = _signature(first)
    for i, member in enumerate(members[1:], start=1):
        if _signature(member) != signature:
            raise ValueError(f"member {i} ({member.name!r}) takes or gives "
                             f"{_signature(member)}, member 0 ({first.name!r}) "
                             f"{signature}: members need the same inputs and "
                             f"output shape")
    return list(members)


def ensemble(members: Sequence[keras.Model], name: str = "ensemble") -> EnsembleClassifier:
    """One model whose output is the mean of ``members``' outputs
    (``EnsembleClassifier``). The members must take the same inputs (dtype
    and shape) and give probabilities of the same shape."""
    return EnsembleClassifier(members, name=name)


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The member models of an ensemble (``[model]`` for any other)."""
    return list(model.members) if isinstance(model, EnsembleClassifier) else [model]


@register_model("ensemble")
def Ensemble(members: Sequence[Mapping[str, Any]], name: str = "ensemble"
             ) -> EnsembleClassifier:
    """Builds each member from ``{"model": zoo name, "config": {...}}`` (as
    in a model card) and averages them (see ``ensemble``)."""
    if not isinstance(members, (list, tuple)):
        raise TypeError(f"members must be a list of {{'model', 'config'}} dicts, "
                        f"received {type(members).__name__}")
    built = []
    for i, spec in enumerate(members):
        if not isinstance(spec, Mapping) or set(spec) != {"model", "config"}:
            raise ValueError(f"member {i} must be a dict with keys 'model' and "
                             f"'config', received {spec!r:.80}")
        built.append(create(spec["model"], **spec["config"]))
    return ensemble(built, name=name)


def named_view(model: keras.Model, name: str) -> keras.Model:
    """A functional model over ``model``'s layers (shared, not copied) under
    another name; one input and one output stay unwrapped."""
    inputs = model.inputs if len(model.inputs) > 1 else model.inputs[0]
    outputs = model.outputs if len(model.outputs) > 1 else model.outputs[0]
    return keras.Model(inputs, outputs, name=name)


def _signature(model: keras.Model) -> tuple:
    return (tuple((str(x.dtype), tuple(x.shape[1:])) for x in model.inputs),
            tuple(tuple(y.shape[1:]) for y in model.outputs))

