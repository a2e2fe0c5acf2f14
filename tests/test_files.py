"""attention_zoo.files: whole files or none, temporary names of their own."""

import os

import keras
import numpy as np
import pytest

from attention_zoo.files import replacing, write_text
from attention_zoo.training import save_atomically


def test_write_text_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "deep" / "card.json"
    assert write_text(target, "first") == target
    write_text(target, "second")
    assert target.read_text(encoding="utf-8") == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["card.json"]
    # Readable as a plain open() would have left it, not mkstemp's 0600.
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = tmp_path / "vocab.txt"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError, match="killed"):
        with replacing(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vocab.txt"]


def test_concurrent_writers_get_temporaries_of_their_own(tmp_path):
    target = tmp_path / "images.npz"
    with replacing(target, ".npz") as first, replacing(target, ".npz") as second:
        assert first != second and first.name.endswith(".npz")
        np.savez(first, images=np.zeros(2))
        np.savez(second, images=np.ones(2))
    with np.load(target) as data:  # the last one to finish wins, whole
        assert data["images"].tolist() == [0.0, 0.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.npz"]


@pytest.mark.parametrize("name", ["model.keras", "model.weights.h5"])
def test_save_atomically_writes_keras_files_through_a_temporary(tmp_path, name):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    save_atomically(model, tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    copy = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    if name.endswith(".weights.h5"):
        copy.load_weights(tmp_path / name)
    else:
        copy = keras.models.load_model(tmp_path / name)
    np.testing.assert_array_equal(copy.get_weights()[0], model.get_weights()[0])
