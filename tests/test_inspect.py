"""Attention maps and plots of a model, and `attention-zoo predict`."""

from pathlib import Path

import keras
import numpy as np
import pytest

from attention_zoo import inspect
from attention_zoo.cli import main
from conftest import cli_error
from attention_zoo.models import AttnCNN

TINY = {"width": (8, 8, 8), "stem_width": 8}
IMAGES = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("float32")


def test_attention_maps_of_every_layer():
    model = AttnCNN(attention=["cbam", "coordinate", "gc"], **TINY)
    maps = inspect.attention_maps(model, IMAGES)
    assert list(maps) == ["stage1_attention", "stage2_attention", "stage3_attention"]
    # The whitening stem (2x2, no padding) makes maps of 15, 7 and 3 pixels.
    assert maps["stage1_attention"]["spatial"].shape == (2, 15, 15, 1)
    assert maps["stage1_attention"]["channel"].shape == (2, 1, 1, 8)
    assert maps["stage2_attention"]["height"].shape == (2, 7, 1, 8)
    assert maps["stage3_attention"].shape == (2, 3, 3, 1)
    np.testing.assert_allclose(maps["stage3_attention"].sum((1, 2, 3)), 1.0, rtol=1e-5)
    # The maps are those the model computed: re-derive stage 1's by hand.
    layer = model.backbone.get_layer("stage1_attention")
    features = keras.Model(model.inputs, layer.input).predict(IMAGES, verbose=0)
    _, direct = layer(features, return_attention_scores=True)
    np.testing.assert_allclose(maps["stage1_attention"]["spatial"],
                               np.asarray(direct["spatial"]), rtol=1e-6)
    # Asking twice works (the model's graph is left as it was).
    inspect.attention_maps(model, IMAGES)
    assert len(model.layers) == len(AttnCNN(attention=["cbam", "coordinate", "gc"],
                                            **TINY).layers)


def test_spatial_map_is_normalized_and_resized():
    m = inspect.spatial_map({"spatial": np.random.rand(2, 4, 4, 1)}, (32, 32))
    assert m.shape == (2, 32, 32) and m.min() >= 0 and m.max() <= 1 + 1e-6
    assert inspect.spatial_map(np.random.rand(2, 1, 1, 8)) is None  # SE gate


def test_plot_attention_writes_a_png(tmp_path):
    model = AttnCNN(attention="cbam", **TINY)
    path = inspect.plot_attention(model, IMAGES, tmp_path / "maps.png",
                                  titles=["a", "b"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp*"))


def test_models_without_spatial_maps_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no feature-map attention"):
        inspect.attention_maps(AttnCNN(attention=None, **TINY), IMAGES)
    with pytest.raises(ValueError, match="no spatial maps"):
        inspect.plot_attention(AttnCNN(attention="se", **TINY), IMAGES,
                               tmp_path / "x.png")


def test_cli_predict_prints_classes_and_plots(tmp_path, capsys):
    model = AttnCNN(attention="cbam", **TINY)
    path = tmp_path / "m.keras"
    model.save(path)
    images = sorted(str(p) for p in (Path(__file__).parents[1] / "examples"
                                     / "images").glob("*.jpg"))[:3]
    assert main(["predict", str(path), *images, "--plot",
                 str(tmp_path / "maps.png")]) == 0
    out = capsys.readouterr().out
    assert out.count(".jpg: ") == 3 and "attention maps:" in out
    assert (tmp_path / "maps.png").is_file()
    assert "cannot read image" in cli_error(capsys, ["predict", str(path), str(path)])


def test_demo_runs_every_shipped_model_offline(tmp_path, monkeypatch, capsys):
    from attention_zoo.models.cards import ship

    monkeypatch.setenv("ATTENTION_ZOO_WEIGHTS", str(tmp_path / "zoo"))
    config = {"input_shape": [32, 32, 3], "num_classes": 10, "attention": "cbam",
              "width": [8, 8, 8], "stem_width": 8}
    ship(AttnCNN(**config), "attn_cnn_cifar10", {"model": "attn_cnn", "config": config})
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "layers built" in out and "shipped models: attn_cnn_cifar10" in out
    assert out.count(".jpg: ") == 10
    assert (tmp_path / "demo" / "attn_cnn_cifar10.png").is_file()
    # Run again: the demo replaces its own plots.
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
