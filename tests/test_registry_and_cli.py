"""The layer factory, the shared registry and the ``attention-zoo`` command."""

import argparse
import re
import subprocess
import sys

import pytest

import attention_zoo.layers as L
from attention_zoo.cli import main
from attention_zoo.registry import Registry

REQUIRED = ["additive", "dot", "mha", "se", "eca", "spatial", "cbam",
            "coordinate", "gc", "bam"]


def test_required_names_are_registered():
    assert set(REQUIRED) <= set(L.names())


@pytest.mark.parametrize("name, cls, attrs", [
    ("additive", L.AdditiveAttention, {"units": 3}),
    ("general", L.DotProductAttention, {"score": "general"}),
    ("luong", L.DotProductAttention, {"score": "general"}),
    ("cosine", L.DotProductAttention, {"score": "cosine"}),
    ("cbam", L.CBAM, {"reduction": 16}),
    ("Squeeze-Excite", L.SqueezeExcite, {}),
])
def test_get_builds_the_named_layer(name, cls, attrs):
    layer = L.get(name, **({"units": 3} if name == "additive" else {}))
    assert type(layer) is cls
    for key, value in attrs.items():
        assert getattr(layer, key) == value


def test_get_passes_kwargs_over_alias_defaults():
    assert L.get("general", score="dot").score == "dot"


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="Unknown layer 'cbma'.*cbam.*coordinate"):
        L.get("cbma")
    with pytest.raises(TypeError, match="must be a str"):
        L.get(3)


def test_names_by_kind():
    assert set(L.names(L.FEATURE_MAP)) >= {"se", "eca", "spatial", "cbam",
                                            "coordinate", "gc", "bam"}
    assert "additive" not in L.names(L.FEATURE_MAP)
    assert set(L.names(L.SEQUENCE)) >= {"additive", "dot", "mha"}


def test_registry_refuses_duplicates():
    reg = Registry("thing")
    reg.add("a", dict)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("A", list)


@pytest.mark.parametrize("bad", [
    lambda: L.AdditiveAttention(0), lambda: L.AdditiveAttention(2.5),
    lambda: L.DotProductAttention(score="bilinear"),
    lambda: L.MultiHeadAttention(4, 8, num_key_value_heads=3),
    lambda: L.MultiHeadAttention(4, 8, dropout=1.0),
    lambda: L.SqueezeExcite(reduction=0), lambda: L.PositionalEmbedding(0),
    lambda: L.PositionalEmbedding(8, mode="rotary"),
])
def test_bad_hyperparameters_raise_value_error(bad):
    with pytest.raises(ValueError):
        bad()


def test_dot_scores_need_equal_widths():
    import numpy as np
    with pytest.raises(ValueError, match="same last dimension"):
        L.DotProductAttention()(np.zeros((1, 2, 4), "float32"),
                                np.zeros((1, 3, 5), "float32"))


def test_positional_refuses_sequences_longer_than_max_length():
    import numpy as np
    with pytest.raises(ValueError, match="max_length=4"):
        L.PositionalEmbedding(4)(np.zeros((1, 5, 8), "float32"))


def test_cli_layers_prints_every_layer(capsys):
    assert main(["layers", "--width", "16"]) == 0
    out = capsys.readouterr().out
    for name in L.names():
        assert f"\n{name} " in out
    assert f"{len(L.names())} layers built" in out


def test_console_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "attention_zoo", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "layers" in result.stdout


def test_train_cli_takes_attn_cnn_defaults_from_the_model():
    """The card records every architecture argument; those not given come
    from AttnCNN's signature, so a changed default cannot drift from the CLI."""
    import inspect

    from attention_zoo.cli.parser import build_parser
    from attention_zoo.cli.train import _attn_cnn_arguments
    from attention_zoo.models import AttnCNN

    parse = build_parser().parse_args
    defaults = inspect.signature(AttnCNN).parameters
    config = _attn_cnn_arguments(parse(["train", "attn_cnn", "--out", "x"]))
    assert config == {name: (list(defaults[name].default) if name == "width"
                             else defaults[name].default) for name in config}
    given = _attn_cnn_arguments(parse(["train", "attn_cnn", "--out", "x", "--width",
                                       "80", "288", "288", "--no-dirac",
                                       "--no-residual-attention", "--activation", "gelu"]))
    assert given["width"] == [80, 288, 288]
    assert given["dirac"] is False and given["residual_attention"] is False
    assert given["activation"] == "gelu"
    # The parser keeps its own list (importing the model would load Keras
    # for --help); it must offer exactly the model's activations.
    from attention_zoo.models.attn_cnn import ACTIVATIONS
    for name in ACTIVATIONS:
        assert _attn_cnn_arguments(parse(["train", "attn_cnn", "--out", "x",
                                          "--activation", name]))["activation"] == name
    with pytest.raises(SystemExit):
        parse(["train", "attn_cnn", "--out", "x", "--activation", "tanh"])
    # --help states the defaults in words (it must not import Keras): the
    # same values as the signature.
    words = {True: "on", False: "off"}
    train = next(a for a in build_parser()._actions
                 if isinstance(a, argparse._SubParsersAction)).choices["train"]
    stated = {a.dest: re.search(r"\(default ([^)]*)\)", a.help).group(1)
              for a in train._actions if a.dest in config and a.help
              and "(default " in a.help}
    assert {"width", "residual_attention", "activation"} <= set(stated)
    for name, text in stated.items():
        value = defaults[name].default
        want = (" ".join(map(str, value)) if name == "width"
                else words.get(value, str(value)) if isinstance(value, bool) else str(value))
        assert text == want, f"--help says {name} defaults to {text!r}, AttnCNN to {want!r}"
