"""Ensembles, variable-length text batches and length bucketing, on tiny
generated data."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from attention_zoo import export, inspect, models
from attention_zoo.cli import main
from conftest import cli_error
from attention_zoo.data.text import TextSet, pipeline
from attention_zoo.models import AttnTextClassifier, ensemble

VOCAB = ["the", "film", "was", "great", "dull", "plot", "a", "very"]
TEXTS = ["the film was great", "", "a very very dull plot the film was dull " * 3,
         "great", "Ça va? <br /> the PLOT!"]


def word_model(seed: int, **kwargs) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return AttnTextClassifier(vocabulary=VOCAB, max_length=kwargs.pop("max_length", 10),
                              embed_dim=8, hidden=4, **kwargs)


def gram_model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return AttnTextClassifier(vocabulary=VOCAB + ["the film", "film was"], ngrams=2,
                              max_length=16, encoder="none", embed_dim=8)


# -------------------------------------------------- variable-length batches --

@pytest.mark.parametrize("truncating", ["post", "pre"])
def test_a_batch_is_padded_to_its_longest_text_only(truncating):
    model = word_model(0, truncating=truncating, max_length=6)
    vectorize = model.preprocessor.vectorize
    ids = lambda texts: np.asarray(vectorize(keras.ops.convert_to_tensor(texts)))
    assert ids(["the film", "great"]).shape == (2, 2)
    assert ids(["", ""]).shape == (2, 1) and not ids(["", ""]).any()
    long = ids(["the film was great " * 3, "dull"])
    assert long.shape == (2, 6)
    want = [2, 3, 4, 5, 2, 3] if truncating == "post" else [4, 5, 2, 3, 4, 5]
    assert long[0].tolist() == want and long[1].tolist() == [6, 0, 0, 0, 0, 0]
    # Padding does not change a prediction: alone or beside a longer text.
    alone = model.predict(["dull"], verbose=0)
    beside = model.predict(["dull", "the film was great " * 3], verbose=0)[:1]
    np.testing.assert_allclose(alone, beside, atol=1e-6)


def test_bucketed_pipeline_covers_every_text_once_in_similar_lengths():
    texts = np.array(["w " * n for n in range(300)] + ["x\u00a0y"], dtype=object)
    data = TextSet(texts, (np.arange(len(texts)) % 2).astype("int32"))
    ds = pipeline(data, 16, training=True, seed=1)
    for _ in range(2):  # reshuffled each epoch, the count fit() plans with
        batches = [x.numpy() for x, _ in ds]
        assert len(batches) == int(ds.cardinality())
        seen = sorted(len(t.decode().split()) for b in batches for t in b)
        assert seen == sorted(len(str(t).split()) for t in texts)
    spans = [np.ptp([len(t.split()) for t in b]) for b in batches]
    assert np.median(spans) < 60  # plain batching: ~250 words apart
    plain = pipeline(data, 16, bucket=False)
    assert int(plain.cardinality()) == -(-len(texts) // 16)
    x, y = next(iter(pipeline(data, 4, one_hot=False, bucket=False)))
    assert y.numpy().tolist() == [0, 1, 0, 1]


def test_constant_schedule_holds_the_peak_after_warmup():
    from attention_zoo.training.recipes import OneCycle

    hold = OneCycle(1.0, total_steps=100, warmup_steps=10, decay=False)
    decay = OneCycle(1.0, total_steps=100, warmup_steps=10)
    assert float(hold(5)) == pytest.approx(0.55) == pytest.approx(float(decay(5)))
    assert float(hold(99)) == 1.0 and float(decay(99)) == pytest.approx(1 / 90)
    assert OneCycle(**hold.get_config()).decay is False


# ---------------------------------------------------------------- ensemble --

def test_ensemble_averages_its_members():
    members = [word_model(0), word_model(1), gram_model(2)]
    model = ensemble(members, name="trio")
    assert all(a is b for a, b in zip(models.ensemble_members(model), members, strict=True))
    want = np.mean([m.predict(TEXTS, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(model.predict(TEXTS, verbose=0), want, atol=1e-6)
    # An ensemble explains itself with its first member's attention.
    assert inspect.explain_text(model, TEXTS[:1]) == inspect.explain_text(
        members[0], TEXTS[:1])


@pytest.mark.parametrize("members, error, match", [
    ("not a list", TypeError, "list of keras.Model"),
    ([], ValueError, "at least 2"),
    (["x", "y"], TypeError, "at position 0"),
])
def test_ensemble_bad_members(members, error, match):
    with pytest.raises(error, match=match):
        ensemble(members)


def test_ensemble_members_must_agree():
    cnn = models.AttnCNN(width=(8, 8, 8), stem_width=8)
    with pytest.raises(ValueError, match="member 1 .* same inputs"):
        ensemble([word_model(0), cnn])
    with pytest.raises(ValueError, match="same inputs and output shape"):
        ensemble([word_model(0), AttnTextClassifier(3, vocabulary=VOCAB)])
    with pytest.raises(ValueError, match="keys 'model' and 'config'"):
        models.create("ensemble", members=[{"model": "attn_text"}, {}])


def test_ensemble_saves_loads_and_ships(tmp_path, monkeypatch):
    from attention_zoo.data.text import write_vocabulary
    from attention_zoo.models.cards import ship

    model = ensemble([word_model(0), gram_model(1)])
    model.save(tmp_path / "e.keras")
    loaded = keras.saving.load_model(tmp_path / "e.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(TEXTS, verbose=0),
                               model.predict(TEXTS, verbose=0), atol=1e-6)
    # Shipped: the card names each member's builder and vocabulary file.
    for i, words in enumerate((VOCAB, VOCAB + ["the film", "film was"])):
        write_vocabulary(words, tmp_path / f"v{i}.txt")
    configs = [{"vocabulary": "member0.vocab.txt", "max_length": 10, "embed_dim": 8,
                "hidden": 4},
               {"vocabulary": "member1.vocab.txt", "ngrams": 2, "max_length": 16,
                "encoder": "none", "embed_dim": 8}]
    card = {"model": "ensemble", "config": {"members": [
        {"model": "attn_text", "config": c} for c in configs]}}
    ship(model, "tiny_ensemble", card, root=tmp_path / "zoo",
         files={f"member{i}.vocab.txt": tmp_path / f"v{i}.txt" for i in range(2)})
    monkeypatch.setenv("ATTENTION_ZOO_WEIGHTS", str(tmp_path / "zoo"))
    shipped = models.load("tiny_ensemble")
    np.testing.assert_allclose(shipped.predict(TEXTS, verbose=0),
                               model.predict(TEXTS, verbose=0), atol=1e-6)
    # Re-shipped as a single model: the folder keeps no member vocabulary.
    ship(word_model(0), "tiny_ensemble", {"model": "attn_text", "config": configs[0]
                                          | {"vocabulary": "vocab.txt"}},
         root=tmp_path / "zoo", files={"vocab.txt": tmp_path / "v0.txt"}, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "zoo").iterdir()) == ["tiny_ensemble"]
    assert sorted(p.name for p in (tmp_path / "zoo" / "tiny_ensemble").iterdir()) == [
        "README.md", "card.json", "model.weights.h5", "vocab.txt"]
    assert models.load("tiny_ensemble").predict(TEXTS, verbose=0).shape == (5, 2)


def test_ensemble_exports_with_one_tokenizer_per_member(tmp_path):
    from attention_zoo.data.tokenizer import Tokenizer

    model = ensemble([word_model(0), gram_model(1)])
    report = export.export(model, tmp_path / "e.tflite", "tflite", batch_size=None)
    assert report["max_abs_error"] < 1e-4
    names = sorted(p.name for p in tmp_path.iterdir())
    assert {"e.member0.tokenizer.json", "e.member1.tokenizer.json", "e.tokenizer.py",
            "e.member1.vocab.txt"} <= set(names)
    ids = [Tokenizer.from_files(tmp_path / f"e.member{i}.tokenizer.json")(TEXTS)
           for i in range(2)]
    got = export.run_tflite((tmp_path / "e.tflite").read_bytes(), ids,
                            [f"token_ids_{i}" for i in range(2)])[0]
    np.testing.assert_allclose(got, model.predict(TEXTS, verbose=0), atol=1e-4)
    # token_inputs feeds the file by input name, from the same tokenizers.
    feed = export.token_inputs(model)(TEXTS)
    assert sorted(feed) == ["token_ids_0", "token_ids_1"]
    np.testing.assert_array_equal(feed["token_ids_1"], ids[1])
    np.testing.assert_allclose(export.run_tflite((tmp_path / "e.tflite").read_bytes(),
                                                 feed)[0], got, atol=1e-6)
    single = export.token_inputs(word_model(0))(TEXTS)
    assert list(single) == export.input_names(word_model(0))
    int8 = export.export(model, tmp_path / "e8.tflite", "tflite", quantize="int8",
                         representative_data=[TEXTS, TEXTS[::-1]])
    assert int8["quantize"] == "int8" and int8["top1_agreement"] >= 0.5
    # ONNX takes the members' ids as separate inputs too; a SavedModel strings.
    for path, format in (("e.onnx", "onnx"), ("sm", "saved_model")):
        report = export.export(model, tmp_path / path, format, batch_size=None)
        assert report["max_abs_error"] < 1e-4, format


# --------------------------------------------------------------------- CLI --

def test_cli_ensemble_evaluates_and_ships(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ATTENTION_ZOO_WEIGHTS", str(tmp_path / "zoo"))
    rng = np.random.default_rng(0)
    rows = [(i % 2, " ".join(rng.choice(["the", "film", "plot"], 5))
             + (" great" if i % 2 else " dull")) for i in range(120)]
    data = tmp_path / "t.tsv"
    data.write_text("label\ttext\n" + "".join(f"{y}\t{t}\n" for y, t in rows))
    common = ["--data", str(data), "--val-fraction", "0.25", "--epochs", "2",
              "--batch-size", "16", "--lr", "0.01", "--embed-dim", "8", "--hidden", "4",
              "--vocab-size", "32", "--max-length", "8", "--precision", "float32",
              "--jit-compile", "off"]
    extra = tmp_path / "more.tsv"
    extra.write_text("label\ttext\n1\tthe plot great\n0\tthe film dull\n")
    for seed, more in ((0, []), (1, ["--extra-data", str(extra)])):
        assert main(["train", "attn_text", *common, *more, "--seed", str(seed),
                     "--out", str(tmp_path / f"r{seed}")]) == 0
    capsys.readouterr()
    # Members may train on different texts if they held out the same ones.
    runs = [str(tmp_path / f"r{s}") for s in (0, 1)]
    assert main(["ensemble", *runs, "--data", str(data), "--val-fraction", "0.25",
                 "--out", str(tmp_path / "ens"), "--ship", "tiny_ens"]) == 0
    summary = json.loads((tmp_path / "ens" / "summary.json").read_text())
    assert summary["model"] == "ensemble" and summary["val_texts"] == 30
    assert [m["config"]["vocabulary"] for m in summary["config"]["members"]] == [
        "member0.vocab.txt", "member1.vocab.txt"]
    assert summary["wall_seconds"] == pytest.approx(
        sum(m["wall_seconds"] for m in summary["members"]), abs=0.2)
    shipped = models.load("tiny_ens")
    assert shipped.predict(["the film great"], verbose=0).shape == (1, 2)
    assert "more.tsv" in summary["data"] and "validation" in summary
    assert "has no summary.json" in cli_error(
        capsys, ["ensemble", runs[0], str(tmp_path), "--out", str(tmp_path / "x")])
    other = ["--data", str(data), "--val-fraction", "0.5", *common[4:]]
    assert main(["train", "attn_text", *other, "--out", str(tmp_path / "r2")]) == 0
    assert "share the held-out split" in cli_error(
        capsys, ["ensemble", runs[0], str(tmp_path / "r2"), "--data", str(data),
                 "--out", str(tmp_path / "x")])
