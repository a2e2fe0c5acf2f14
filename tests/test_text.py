"""Text data, AttnTextClassifier, token highlights and the text CLI, on tiny
generated sentiment data."""

from __future__ import annotations

import gzip
import json

import keras
import numpy as np
import pytest

from attention_zoo import inspect
from attention_zoo.cli import main
from attention_zoo.dtype_policy import global_dtype_policy
from conftest import cli_error
from attention_zoo.data.text import (build_vocabulary, read_vocabulary, standardize,
                                     stratified_split, text_tsv, write_vocabulary)
from attention_zoo.models import AttnTextClassifier

GOOD = ["great", "wonderful", "gripping", "superb", "moving"]
BAD = ["dull", "awful", "boring", "clumsy", "tedious"]
FILLER = ["the", "film", "was", "a", "story", "and", "plot", "acting"]


def sentences(n: int, seed: int = 0) -> tuple[list[str], list[int]]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(FILLER, 6)) + [rng.choice(GOOD if label else BAD)]
        rng.shuffle(words)
        texts.append(" ".join(words) + (" <br /><br />" if i % 3 == 0 else ""))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def tiny_tsv(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "train.tsv"
    texts, labels = sentences(240)
    path.write_text("label\ttext\n" + "".join(f"{l}\t{t}\n" for t, l in zip(texts, labels)))
    return path


# ------------------------------------------------------------------- data --

def test_text_tsv_reads_header_gzip_csv_and_strips_html(tiny_tsv, tmp_path):
    plain = text_tsv(tiny_tsv)
    assert len(plain) == 240 and plain.labels.dtype == np.int32
    assert not any("<br" in t for t in plain.texts)
    gz = tmp_path / "train.tsv.gz"
    gz.write_bytes(gzip.compress(tiny_tsv.read_bytes()))
    np.testing.assert_array_equal(text_tsv(gz).texts, plain.texts)
    csv_path = tmp_path / "train.csv"
    csv_path.write_text('text,label\n"a, good film",1\nbad,0\n')
    rows = text_tsv(csv_path)
    assert rows.texts.tolist() == ["a, good film", "bad"] and rows.labels.tolist() == [1, 0]


@pytest.mark.parametrize("content, match", [
    ("label\tsentence\n1\tx\n", "columns 'label' and 'text'"),
    ("label\ttext\npositive\tx\n", "label must be an integer"),
])
def test_text_tsv_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        text_tsv(path)
    with pytest.raises(ValueError, match="no such text file"):
        text_tsv(tmp_path / "missing.tsv")


def test_stratified_split_is_seeded_and_per_class(tiny_tsv):
    rows = text_tsv(tiny_tsv)
    train, val = stratified_split(rows, 0.1, seed=3)
    assert len(val) == 24 and np.bincount(val.labels).tolist() == [12, 12]
    again = stratified_split(rows, 0.1, seed=3)[1]
    np.testing.assert_array_equal(again.texts, val.texts)
    assert not set(train.texts.tolist()) & set(val.texts.tolist()) - set(
        train.texts.tolist())
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(rows, 1.5)


def test_standardize_and_vocabulary(tmp_path):
    out = standardize(np.array(["Héllo, WORLD!<br />Ça va? 😀", "a\xffb"], dtype=object))
    got = [t.decode("utf-8") for t in out.numpy()]
    assert got[0] == "héllo world ça va 😀"
    invalid = standardize(np.array([b"caf\xe9 ok"], dtype=object)).numpy()[0]
    invalid.decode("utf-8")  # repaired, valid UTF-8
    vocab = build_vocabulary(["b b b a a c", "b a"], max_tokens=4)
    assert vocab == ["b", "a"]  # most frequent first; 2 ids kept for pad/OOV
    write_vocabulary(vocab, tmp_path / "v.txt")
    assert read_vocabulary(tmp_path / "v.txt") == vocab
    with pytest.raises(ValueError, match="max_tokens"):
        build_vocabulary(["a"], max_tokens=2)


# ------------------------------------------------------------------ model --

@pytest.fixture(scope="module")
def vocabulary():
    return build_vocabulary(sentences(240)[0], max_tokens=64)


@pytest.mark.parametrize("encoder", ["bigru", "transformer", "none"])
@pytest.mark.parametrize("attention", ["pooling", "additive", "dot", "mha"])
def test_every_encoder_and_attention_builds(vocabulary, encoder, attention):
    model = AttnTextClassifier(vocabulary=vocabulary, max_length=12, encoder=encoder,
                               attention=attention, embed_dim=16, hidden=8)
    p = model.predict(["a gripping film", "dull"], verbose=0)
    assert p.shape == (2, 2) and np.allclose(p.sum(-1), 1.0, atol=1e-5)


def test_bad_inputs_get_a_prediction_or_a_clear_error(vocabulary):
    model = AttnTextClassifier(vocabulary=vocabulary, max_length=12, embed_dim=16,
                               hidden=8)
    odd = ["", "   \t\n", "great " * 20000, "caf\udce9".encode("utf-8", "surrogateescape"),
           "emoji 😀 and accents é"]
    p = model.predict(odd, verbose=0)
    assert p.shape == (5, 2) and np.all(np.isfinite(p))
    assert model.predict("one string", verbose=0).shape == (1, 2)
    for bad in ([1, 2], [None], 3.5, {"text": "x"}):
        with pytest.raises(TypeError, match="texts must be"):
            model.predict(bad, verbose=0)
    with pytest.raises(ValueError, match="empty"):
        model.predict([], verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"encoder": "lstm"}, "encoder must be"),
    ({"attention": "cbam"}, "attention must be"),
    ({"vocabulary": None}, "needs a vocabulary"),
    ({"num_classes": 1}, "num_classes"),
    ({"truncating": "middle"}, "truncating must be one of"),
    ({"truncating": "pre", "ngrams": 2}, "does not combine with ngrams"),
])
def test_bad_arguments(vocabulary, kwargs, match):
    with pytest.raises(ValueError, match=match):
        AttnTextClassifier(**{"vocabulary": vocabulary, **kwargs})


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_string_model_saves_and_loads_safely(vocabulary, tmp_path, policy):
    with global_dtype_policy(policy):
        model = AttnTextClassifier(vocabulary=vocabulary, max_length=12, embed_dim=16,
                                   hidden=8, attention="mha")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert (loaded.dtype_policy.name, loaded.backbone.dtype_policy.name) == (policy, policy)
    texts = ["a gripping film", "dull, boring plot"]
    np.testing.assert_allclose(loaded.predict(texts, verbose=0),
                               model.predict(texts, verbose=0), rtol=1e-6)


def test_truncating_pre_keeps_the_last_tokens(tmp_path):
    from attention_zoo.data.tokenizer import Tokenizer

    vocabulary = ["the", "film", "was", "dull", "but", "ending", "great"]
    model = AttnTextClassifier(vocabulary=vocabulary, max_length=4, truncating="pre",
                               embed_dim=8, hidden=4)
    texts = ["The film was dull but the ending was GREAT", "great film", ""]
    explained = inspect.explain_text(model, texts)
    assert [t for t, _ in explained[0]] == ["the", "ending", "was", "great"]
    assert [t for t, _ in explained[1]] == ["great", "film"] and explained[2] == []
    ids = np.asarray(model.preprocessor(texts))
    np.testing.assert_array_equal(ids, Tokenizer(vocabulary, 4, truncating="pre")(texts))
    np.testing.assert_array_equal(Tokenizer(vocabulary, 4)(texts[:1])[0], [2, 3, 4, 5])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(texts, verbose=0),
                               model.predict(texts, verbose=0), rtol=1e-6)
    assert loaded.preprocessor.vectorize.get_config()["truncating"] == "pre"


def test_split_contractions_reads_raw_text_as_treebank_text(tmp_path):
    from attention_zoo.data.text import standardize_contractions
    from attention_zoo.data.tokenizer import Tokenizer
    from attention_zoo.export import _tokenizer

    raw = ["It's a film that doesn't work; I can't say they're WRONG.",
           "Ça n'a pas d'âme, we'd say: l'été", "rock'n'roll isn't dead"]
    treebank = ["it 's a film that does n't work ; i ca n't say they 're wrong .",
                "ça n'a pas d'âme , we 'd say : l'été", "rock'n'roll is n't dead"]
    words = [standardize_contractions(np.array(t, dtype=object)).numpy()
             for t in (raw, treebank)]
    assert [w.split() for w in words[0]] == [w.split() for w in words[1]]
    assert words[0][0].split()[:7] == [b"it", b"s", b"a", b"film", b"that",
                                       b"does", b"nt"]
    # Plain standardize glues them ("doesnt"), as before.
    assert b"doesnt" in standardize(np.array(raw[:1], dtype=object)).numpy()[0]
    vocabulary = build_vocabulary(treebank, 64, split_contractions=True)
    assert "nt" in vocabulary and "doesnt" not in vocabulary
    model = AttnTextClassifier(vocabulary=vocabulary, max_length=16, embed_dim=8,
                               hidden=4, split_contractions=True)
    ids = np.asarray(model.preprocessor(raw))
    python = Tokenizer(vocabulary, 16, split_contractions=True)(raw)
    np.testing.assert_array_equal(python[:, :ids.shape[1]], ids)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(raw, verbose=0),
                               model.predict(raw, verbose=0), rtol=1e-6)
    tokenizer, files = _tokenizer(loaded, "m", raw + treebank)
    config = json.loads(files["m.tokenizer.json"])
    assert config["split_contractions"] is True and tokenizer.split_contractions


def test_explain_text_weights_cover_real_tokens(vocabulary, tmp_path):
    model = AttnTextClassifier(vocabulary=vocabulary, max_length=12, embed_dim=16,
                               hidden=8)
    explained = inspect.explain_text(model, ["The film was GRIPPING!", ""])
    assert [t for t, _ in explained[0]] == ["the", "film", "was", "gripping"]
    assert sum(w for _, w in explained[0]) == pytest.approx(1.0, abs=1e-5)
    assert explained[1] == []
    page = inspect.highlight_html(explained, tmp_path / "h.html", ["x", "<y>"])
    html = page.read_text()
    assert "gripping" in html and "&lt;y&gt;" in html and "(no tokens)" in html
    with pytest.raises(ValueError, match="not a string-input"):
        from attention_zoo.models import AttnCNN
        inspect.explain_text(AttnCNN(width=(8, 8, 8), stem_width=8), ["x"])


# -------------------------------------------------------------------- CLI --

def test_train_ship_and_predict_from_the_cli(tiny_tsv, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ATTENTION_ZOO_WEIGHTS", str(tmp_path / "zoo"))
    out = tmp_path / "run"
    assert main(["train", "attn_text", "--data", str(tiny_tsv), "--out", str(out),
                 "--val-fraction", "0.2", "--epochs", "4", "--batch-size", "16",
                 "--lr", "0.01", "--max-length", "12", "--vocab-size", "64",
                 "--embed-dim", "16", "--hidden", "8", "--dropout", "0.0",
                 "--precision", "float32", "--jit-compile", "off",
                 "--class-names", "negative", "positive", "--ship", "tiny_text"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["val_accuracy"] >= 0.9  # the cue words are easy to learn
    assert summary["config"]["vocabulary"] == "vocab.txt"
    from attention_zoo import models

    model = models.load("tiny_text")
    p = model.predict(["the film was superb", "the film was tedious"], verbose=0)
    assert p[0].argmax() == 1 and p[1].argmax() == 0
    # Shipping the finished run afterwards gives the same model and card.
    assert main(["ship", str(out), "tiny_text_again"]) == 0
    again = models.load("tiny_text_again")
    np.testing.assert_allclose(again.predict(["the film was superb"], verbose=0), p[:1],
                               rtol=1e-6)
    assert models.card("tiny_text_again")["command"] == summary["command"]
    assert "has no summary.json" in cli_error(capsys, ["ship", str(tmp_path), "nothing"])
    capsys.readouterr()
    assert main(["predict", "tiny_text", "the plot was wonderful", "--top", "2",
                 "--plot", str(tmp_path / "h.html")]) == 0
    printed = capsys.readouterr().out
    assert "positive" in printed and "most attended:" in printed
    assert (tmp_path / "h.html").is_file()
    capsys.readouterr()
    assert main(["evaluate", "tiny_text", "--data", str(tiny_tsv),
                 "--val-fraction", "0.2"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["val_accuracy"] == pytest.approx(summary["val_accuracy"], abs=1e-3)
    from attention_zoo import data
    held_out = data.stratified_split(data.text_tsv(tiny_tsv), 0.2)[1]
    assert evaluated["texts"] == len(held_out)
    assert "needs --data" in cli_error(capsys, ["evaluate", "tiny_text"])
    report_path = tmp_path / "t8.tflite"
    assert main(["export", "tiny_text", "--format", "tflite", "--quantize", "int8",
                 "--data", str(tiny_tsv), "--dynamic-batch", "--out",
                 str(report_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["quantize"] == "int8" and "SOFTMAX" in report["ops"]["float_ops"]
    assert (tmp_path / "t8.tokenizer.py").is_file()


def test_extra_data_adds_training_texts_only(tiny_tsv, tmp_path, capsys):
    extra = tmp_path / "more.tsv.gz"
    held_out = stratified_split(text_tsv(tiny_tsv), 0.2)[1].texts[0]
    with gzip.open(extra, "wt") as f:
        f.write("label\ttext\n1\tthe acting wasn't bad<br />it's marvellous\n"
                f"0\tthe plot doesn't hold, it's shoddy\n1\t{held_out}\n")
    out = tmp_path / "run"
    assert main(["train", "nb_text", "--data", str(tiny_tsv), "--extra-data", str(extra),
                 "--split-contractions", "--val-fraction", "0.2", "--epochs", "1",
                 "--vocab-size", "400", "--ngrams", "2", "--precision", "float32",
                 "--jit-compile", "off", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert f"more training texts: {extra}" in summary["data"]
    # 192 of tiny_tsv + 2; the extra copy of a validation text is left out.
    assert "194 training texts" in summary["data"]
    assert "1 validation texts among them left out" in summary["data"]
    assert summary["config"]["split_contractions"] is True
    vocabulary = read_vocabulary(out / "vocab.txt")
    assert {"marvellous", "shoddy", "nt", "does nt"} <= set(vocabulary)
    assert "doesnt" not in vocabulary
    assert "no such text file" in cli_error(
        capsys, ["train", "nb_text", "--data", str(tiny_tsv), "--extra-data",
                 str(tmp_path / "missing.tsv"), "--out", str(tmp_path / "x")])
