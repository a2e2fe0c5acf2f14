"""NBTextClassifier (NBSVM) and its layers, on tiny generated texts."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from attention_zoo import export, inspect, models, training
from attention_zoo.cli import main
from attention_zoo.data.text import TextSet, build_vocabulary, pipeline
from attention_zoo.models import AttnTextClassifier, NBTextClassifier, ensemble
from attention_zoo.models.naive_bayes import (DistinctTokens, NaiveBayesLogits,
                                              adapt_naive_bayes)

POSITIVE = ["great", "superb", "moving", "fun"]
NEGATIVE = ["dull", "tedious", "bad", "flat"]
FILLER = ["the", "film", "plot", "was", "a", "very"]


def tiny_texts(count: int = 160, seed: int = 0) -> TextSet:
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    texts = [" ".join([*rng.choice(FILLER, 4), rng.choice(POSITIVE if y else NEGATIVE),
                       *rng.choice(FILLER, 2)]) for y in labels]
    return TextSet(np.array(texts, dtype=object), labels.astype(np.int32))


def trained(data: TextSet, **kwargs) -> keras.Model:
    vocabulary = build_vocabulary(data.texts, 400, kwargs.get("ngrams", 3))
    keras.utils.set_random_seed(0)
    return training.fit(lambda: NBTextClassifier(vocabulary=vocabulary, **kwargs),
                        pipeline(data, 16, training=True,
                                 num_classes=kwargs.get("num_classes", 2)), None,
                        recipe=training.get_recipe("nb_text", learning_rate=0.05),
                        precision="float32", jit_compile=False, verbose=0).model


def test_distinct_tokens_keeps_each_id_once():
    ids = np.array([[5, 3, 5, 0, 3, 9], [7, 0, 0, 0, 0, 0]], np.int32)
    out = np.asarray(DistinctTokens()(ids))
    for row, got in zip(ids, out):
        assert sorted(got[got != 0]) == sorted(set(row) - {0})
    # One column (a batch of one-word texts) is kept as it is.
    np.testing.assert_array_equal(DistinctTokens()(np.array([[4], [0]], np.int32)),
                                  [[4], [0]])


def test_set_counts_gives_naive_bayes_log_count_ratios():
    layer = NaiveBayesLogits(5, 2, init=1.0)
    layer.build((None, None))
    counts = np.array([[9, 9], [3, 1], [0, 4], [2, 2], [5, 0]], np.float64)
    layer.set_counts(counts, np.array([6, 4]))
    ratios = layer.ratios.numpy()
    p, q = counts[1:, 1] + 1, counts[1:, 0] + 1  # padding row 0 is no evidence
    want = np.log(p / p.sum()) - np.log(q / q.sum())  # NBSVM's r
    np.testing.assert_allclose(ratios[1:, 1] - ratios[1:, 0], want, rtol=1e-5)
    np.testing.assert_allclose(ratios.sum(axis=1), 0.0, atol=1e-6)
    assert not ratios[0].any()
    # init=1: the logits are multinomial naive Bayes on binarized features.
    logits = np.asarray(layer(np.array([[2, 4, 0]], np.int32)))[0]
    prior = np.log([6, 4])
    np.testing.assert_allclose(logits[1] - logits[0],
                               want[1] + want[3] + prior[1] - prior[0], rtol=1e-5)
    with pytest.raises(ValueError, match=r"counts must have shape \(5, 2\)"):
        layer.set_counts(np.zeros((4, 2)), np.ones(2))


def test_fit_sets_the_ratios_and_learns():
    data = tiny_texts()
    model = trained(data)
    nb = model.naive_bayes
    vocabulary = model.preprocessor.vectorize.get_vocabulary()
    ratios = nb.ratios.numpy()
    assert ratios[vocabulary.index("great"), 1] > 0 > ratios[vocabulary.index("dull"), 1]
    p = model.predict(["the film was superb", "the plot was tedious", "great"],
                      verbose=0)
    assert list(p.argmax(-1)) == [1, 0, 1]
    # The same counts from a second pass: adapt is deterministic.
    before = ratios.copy()
    adapt_naive_bayes(model, pipeline(data, 32))
    np.testing.assert_allclose(nb.ratios.numpy(), before, atol=1e-6)


def test_three_classes():
    rng = np.random.default_rng(1)
    cues = ["red", "green", "blue"]
    labels = np.arange(90) % 3
    texts = np.array([f"{rng.choice(FILLER)} {cues[y]} {rng.choice(FILLER)}"
                      for y in labels], dtype=object)
    model = trained(TextSet(texts, labels.astype(np.int32)), num_classes=3, ngrams=2)
    assert list(model.predict(["a red film", "green", "the blue plot"],
                              verbose=0).argmax(-1)) == [0, 1, 2]


def test_bad_inputs_and_arguments(tmp_path):
    model = trained(tiny_texts(40))
    odd = ["", "   \t\n", "great " * 20000, "caf\udce9".encode("utf-8", "surrogateescape"),
           "emoji 😀 and accents é"]
    p = model.predict(odd, verbose=0)
    assert p.shape == (5, 2) and np.all(np.isfinite(p))
    with pytest.raises(TypeError, match="texts must be"):
        model.predict([1, 2], verbose=0)
    with pytest.raises(ValueError, match="needs a vocabulary"):
        NBTextClassifier()
    with pytest.raises(ValueError, match="ngrams must be"):
        NBTextClassifier(vocabulary=["a"], ngrams=0)
    with pytest.raises(ValueError, match="num_classes must be"):
        NaiveBayesLogits(10, 1)
    assert not inspect.has_token_attention(model)
    with pytest.raises(ValueError, match="explain|token attention"):
        inspect.explain_text(model, ["great"])
    # Two naive-Bayes members must be adapted before they are combined.
    with pytest.raises(ValueError, match="before combining"):
        adapt_naive_bayes(ensemble([model, trained(tiny_texts(40))]),
                          pipeline(tiny_texts(40), 8))


def test_saves_loads_safely_and_ensembles_with_an_attention_model(tmp_path):
    data = tiny_texts()
    nb = trained(data)
    nb.save(tmp_path / "nb.keras")
    loaded = keras.saving.load_model(tmp_path / "nb.keras", safe_mode=True)
    texts = ["the film was superb", "", "flat plot"]
    np.testing.assert_allclose(loaded.predict(texts, verbose=0),
                               nb.predict(texts, verbose=0), atol=1e-6)
    keras.utils.set_random_seed(0)
    words = AttnTextClassifier(vocabulary=build_vocabulary(data.texts, 64),
                               max_length=12, embed_dim=8, hidden=4)
    both = ensemble([nb, words])
    # explain_text skips the naive-Bayes member and explains the attention one.
    assert inspect.has_token_attention(both) and inspect.has_token_attention(words)
    tokens = inspect.explain_text(both, ["the film was superb"])[0]
    assert [t for t, _ in tokens] == ["the", "film", "was", "superb"]
    report = export.export(both, tmp_path / "e.tflite", "tflite", batch_size=None,
                           sample_inputs=texts)
    assert report["max_abs_error"] < 1e-4
    onnx = export.export(nb, tmp_path / "nb.onnx", "onnx", batch_size=None,
                         sample_inputs=texts)
    assert onnx["max_abs_error"] < 1e-4


def test_cli_trains_nb_text_and_ensembles_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ATTENTION_ZOO_WEIGHTS", str(tmp_path / "zoo"))
    data = tiny_texts(120)
    path = tmp_path / "t.tsv"
    path.write_text("label\ttext\n" + "".join(
        f"{y}\t{t}\n" for y, t in zip(data.labels, data.texts)))
    split = ["--data", str(path), "--val-fraction", "0.25"]
    common = [*split, "--epochs", "2", "--batch-size", "16", "--precision", "float32",
              "--jit-compile", "off"]
    assert main(["train", "nb_text", *common, "--lr", "0.05", "--vocab-size", "300",
                 "--out", str(tmp_path / "nb")]) == 0
    summary = json.loads((tmp_path / "nb" / "summary.json").read_text())
    assert summary["model"] == "nb_text" and summary["val_accuracy"] >= 0.9
    assert summary["config"] == {"num_classes": 2, "ngrams": 3, "max_length": 8000,
                                 "split_contractions": False, "vocabulary": "vocab.txt"}
    assert main(["train", "attn_text", *common, "--lr", "0.01", "--vocab-size", "32",
                 "--max-length", "8", "--embed-dim", "8", "--hidden", "4",
                 "--out", str(tmp_path / "gru")]) == 0
    capsys.readouterr()
    assert main(["ensemble", str(tmp_path / "gru"), str(tmp_path / "nb"), *split,
                 "--out", str(tmp_path / "ens"), "--ship", "tiny_nb_ens"]) == 0
    shipped = models.load("tiny_nb_ens")
    assert shipped.predict(["the film was superb"], verbose=0)[0].argmax() == 1
    capsys.readouterr()
    # A lone naive-Bayes model predicts without attention highlights.
    assert main(["predict", str(tmp_path / "nb" / "model.keras"), "so dull"]) == 0
    assert "'so dull': 0 " in capsys.readouterr().out
