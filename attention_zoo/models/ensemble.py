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

MEMBER_PREFIX = "member"


def ensemble(members: Sequence[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model whose output is the mean of ``members``' outputs.

    The members must take the same inputs (dtype and shape; each keeps its
    own preprocessing, such as a string model's vectorizer) and give
    probabilities of the same shape. They appear in the ensemble as layers
    ``member0``, ``member1``, ... (their own layers are shared, not copied).

    Inputs: those of the members. Output: ``(batch, num_classes)`` float32,
    the members' mean.
    """
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
    signature = _signature(first)
    if len(first.outputs) != 1:
        raise ValueError(f"ensemble members give one output (probabilities); "
                         f"{first.name!r} gives {len(first.outputs)}")
    for i, member in enumerate(members[1:], start=1):
        if _signature(member) != signature:
            raise ValueError(f"member {i} ({member.name!r}) takes or gives "
                             f"{_signature(member)}, member 0 ({first.name!r}) "
                             f"{signature}: members need the same inputs and "
                             f"output shape")
    inputs = [keras.Input(x.shape[1:], dtype=x.dtype, name=x.name) for x in first.inputs]
    args = inputs if len(inputs) > 1 else inputs[0]
    # A functional view with a fixed name: members often share their
    # builder's name, and layer names in a model must be unique.
    outputs = [named_view(m, f"{MEMBER_PREFIX}{i}")(args) for i, m in enumerate(members)]
    mean = keras.layers.Average(dtype="float32", name="probabilities")(outputs)
    if first.inputs[0].dtype == "string":
        from attention_zoo.models.text import TextClassifierModel

        return TextClassifierModel(args, mean, name=name)
    return keras.Model(args, mean, name=name)


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The member models of an ``ensemble`` (``[model]`` for any other)."""
    found = [layer for layer in model.layers if isinstance(layer, keras.Model)
             and layer.name.startswith(MEMBER_PREFIX)]
    return found or [model]


@register_model("ensemble")
def Ensemble(members: Sequence[Mapping[str, Any]], name: str = "ensemble") -> keras.Model:
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

