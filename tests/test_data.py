"""Users' damaged or odd data: image folders and zips, the decode cache,
small folders' hold-outs, image batches given to models, label files and
labels (issue #36). Each test writes its own tiny data."""

from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from attention_zoo import data
from attention_zoo.data.images import ImageSet

pytestmark = pytest.mark.usefixtures("private_cache")


def jpeg(height: int = 8, width: int = 8, seed: int = 0) -> bytes:
    import tensorflow as tf

    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)
    return tf.io.encode_jpeg(pixels).numpy()


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, blob in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(blob)
    return root


def write_zip(path: Path, files: dict[str, bytes],
              compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, blob in files.items():
            archive.writestr(name, blob)
    return path


def two_classes(per_class: int = 3, **size) -> dict[str, bytes]:
    return {f"train/{c}/{i}.jpg": jpeg(seed=10 * k + i, **size)
            for k, c in enumerate(("cat", "dog")) for i in range(per_class)}


def cache_files() -> list[Path]:
    return sorted(Path(os.environ["ATTENTION_ZOO_CACHE"]).glob("images-*.npz"))


# ------------------------------------------------------------ zips, files --

def test_a_text_file_named_zip_and_a_truncated_zip_are_not_readable_zips(tmp_path):
    fake = tmp_path / "data.zip"
    fake.write_text("not a zip\n")
    with pytest.raises(ValueError, match=r"'.*data\.zip' is not a readable zip file"):
        data.image_folder(fake)
    whole = write_zip(tmp_path / "whole.zip", two_classes())
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"'.*cut\.zip' is not a readable zip file"):
        data.image_folder(cut)
    with pytest.raises(ValueError, match="not a readable zip file"):
        data.cifar10(cut)  # looks for a train/ folder first


def test_a_damaged_zip_member_is_named(tmp_path):
    files = two_classes()
    path = write_zip(tmp_path / "crc.zip", files)
    raw = bytearray(path.read_bytes())
    at = raw.index(files["train/dog/1.jpg"]) + 200  # inside the member's data
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert zipfile.is_zipfile(path)
    with pytest.raises(ValueError, match=r"cannot read 'train/dog/1\.jpg' in "
                                         r"'.*crc\.zip' \(Bad CRC-32"):
        data.image_folder(path)


@pytest.mark.parametrize("container", ["folder", "zip"])
def test_a_truncated_jpeg_is_named(container, tmp_path):
    files = two_classes()
    good = files["train/cat/1.jpg"]
    files["train/cat/1.jpg"] = good[: len(good) // 2]
    files["train/dog/2.jpg"] = np.random.default_rng(1).bytes(300)  # random bytes
    if container == "folder":
        path = write_folder(tmp_path / "images", files)
        named = r"'.*images/train/cat/1\.jpg'"
    else:
        path = write_zip(tmp_path / "images.zip", files)
        named = r"'train/cat/1\.jpg' in '.*images\.zip'"
    with pytest.raises(ValueError, match=named + r" is not a decodable image \("
                                               r"jpeg::Uncompress failed"):
        data.image_folder(path)
    files["train/cat/1.jpg"] = good
    path = (write_folder(tmp_path / "images", files) if container == "folder"
            else write_zip(tmp_path / "images.zip", files))
    with pytest.raises(ValueError, match=r"dog/2\.jpg.* is not a decodable image "
                                         r"\(Unknown image file format"):
        data.image_folder(path)
    assert cache_files() == []


def test_images_of_different_sizes_name_one_file_of_each(tmp_path):
    files = two_classes()
    files["train/dog/1.jpg"] = jpeg(12, 10)
    path = write_zip(tmp_path / "mixed.zip", files)
    with pytest.raises(ValueError, match=r"different sizes \(height x width\): "
                                         r"'train/cat/0\.jpg' is 8x8, "
                                         r"'train/dog/1\.jpg' is 12x10; pass "
                                         r"image_size=\(H, W\)"):
        data.image_folder(path)
    resized = data.image_folder(path, image_size=(8, 8))
    assert resized.images.shape == (6, 8, 8, 3)
    with pytest.raises(ValueError, match="image_size must be"):
        data.image_folder(path, image_size=8)


def test_macos_resource_forks_in_a_zip_are_skipped(tmp_path):
    files = two_classes()
    files["__MACOSX/train/cat/._0.jpg"] = b"\x00\x05\x16\x07 resource fork"
    files["train/cat/._1.jpg"] = b"\x00\x05\x16\x07 resource fork"
    assert len(data.image_folder(write_zip(tmp_path / "mac.zip", files))) == 6


# ------------------------------------------------------------------ cache --

def test_the_cache_sees_a_replaced_added_or_removed_image(tmp_path):
    root = write_folder(tmp_path / "images", two_classes())
    first = data.image_folder(root)
    assert len(cache_files()) == 1
    np.testing.assert_array_equal(data.image_folder(root).images, first.images)
    assert len(cache_files()) == 1  # read back, not decoded again

    replacement = jpeg(seed=99)
    (root / "train/cat/1.jpg").write_bytes(replacement)
    os.utime(root / "train", ns=(0, 0))  # the folders' own times say nothing
    os.utime(root / "train/cat", ns=(0, 0))
    replaced = data.image_folder(root)
    assert not np.array_equal(replaced.images[1], first.images[1])
    np.testing.assert_array_equal(replaced.images[[0, 2, 3, 4, 5]],
                                  first.images[[0, 2, 3, 4, 5]])

    (root / "train/dog/3.jpg").write_bytes(jpeg(seed=7))
    assert len(data.image_folder(root)) == 7
    (root / "train/dog/0.jpg").unlink()
    removed = data.image_folder(root)
    assert len(removed) == 6 and removed.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_the_cache_of_a_zip_follows_its_members(tmp_path):
    files = two_classes()
    path = write_zip(tmp_path / "images.zip", files)
    first = data.image_folder(path)
    stat = path.stat()
    files["train/dog/2.jpg"] = jpeg(seed=42)
    write_zip(path, files)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same time
    again = data.image_folder(path)
    assert not np.array_equal(again.images[5], first.images[5])
    np.testing.assert_array_equal(again.images[:5], first.images[:5])


def test_a_damaged_cache_file_is_rebuilt(tmp_path):
    root = write_folder(tmp_path / "images", two_classes())
    first = data.image_folder(root)
    [cached] = cache_files()
    cached.write_bytes(cached.read_bytes()[:100])  # truncated .npz
    np.testing.assert_array_equal(data.image_folder(root).images, first.images)
    with np.load(cached) as stored:  # written whole again
        np.testing.assert_array_equal(stored["images"], first.images)
    cached.write_bytes(b"")
    np.testing.assert_array_equal(data.image_folder(root).images, first.images)


# -------------------------------------------------- small folders, eval --

def test_holdout_per_class_fits_small_folders():
    big = {"cat": 5000, "dog": 5000}
    assert data.holdout_per_class(big, 500) == 500
    assert data.holdout_per_class(big, None) == 500
    assert data.holdout_per_class({"cat": 40, "dog": 25}, None) == 3
    assert data.holdout_per_class({"cat": 3, "dog": 2}, None) == 1
    assert data.holdout_per_class({"cat": 6, "dog": 6}, 5) == 5
    with pytest.raises(ValueError, match=r"class 'dog' has 6 images, cannot hold out "
                                         r"500 .* pass val_per_class=5 or less, or "
                                         r"val_per_class=None"):
        data.holdout_per_class({"cat": 9, "dog": 6}, 500)
    with pytest.raises(ValueError, match=r"pass --val-per-class 5 or less, or "
                                         r"--val-per-class auto"):
        data.holdout_per_class({"dog": 6}, 500, option="--val-per-class")
    with pytest.raises(ValueError, match=r"class 'dog' has 1 image: .*at least 2 "
                                         r"of each class.*add images of 'dog'"):
        data.holdout_per_class({"cat": 9, "dog": 1}, None)
    with pytest.raises(ValueError, match="class 'dog' has 0 images"):
        data.holdout_per_class({"cat": 9, "dog": 0}, 2)
    with pytest.raises(ValueError, match="must be a positive integer"):
        data.holdout_per_class(big, 0)


def test_cifar10_chooses_a_holdout_for_a_small_folder(tiny_zip):
    with pytest.raises(ValueError, match="has 6 images, cannot hold out 500"):
        data.cifar10(tiny_zip)  # the explicit default stays CIFAR-10's 500
    train, val = data.cifar10(tiny_zip, val_per_class=None)
    assert len(train) == 50 and len(val) == 10
    assert np.bincount(val.labels).tolist() == [1] * 10


def test_labelled_images_reads_every_split_against_the_models_classes(tmp_path):
    files = {**two_classes(2), "test/dog/9.jpg": jpeg(seed=9)}
    path = write_zip(tmp_path / "mine.zip", files)
    every = data.labelled_images(path, class_names=("bird", "cat", "dog"))
    assert every.images.shape == (5, 8, 8, 3) and every.images.dtype == np.uint8
    assert every.labels.tolist() == [1, 1, 2, 2, 2]
    assert every.class_counts() == {"bird": 0, "cat": 2, "dog": 3}
    flat = write_folder(tmp_path / "flat", {"cat/a.png": jpeg(), "cow/b.jpg": jpeg()})
    with pytest.raises(ValueError, match=r"folders \['cow'\] of '.*flat' are not "
                                         r"among the model's classes"):
        data.labelled_images(flat, class_names=("cat", "dog"))
    assert data.labelled_images(flat, image_size=(4, 4)).images.shape == (2, 4, 4, 3)


# ------------------------------------------------------ image batches --

def test_check_image_batch_accepts_and_converts():
    batch = np.zeros((2, 32, 32, 3), np.uint8)
    out = data.check_image_batch(batch, (32, 32, 3))
    assert out.dtype == np.float32 and out.shape == (2, 32, 32, 3)
    assert data.check_image_batch(batch.tolist(), (None, None, 3)).shape == (2, 32, 32, 3)


@pytest.mark.parametrize("images, error, match", [
    (np.zeros((0, 32, 32, 3)), ValueError, r"the batch is empty"),
    ([], ValueError, r"the batch is empty"),
    (np.zeros((2, 3, 32, 32)), ValueError,
     r"channels-last \(N, H, W, 3\) expected; this looks channels-first"),
    (np.zeros((2, 3, 64, 64)), ValueError, r"channels-first.*resize them"),
    (np.zeros((2, 64, 64, 3)), ValueError,
     r"the model takes images of shape \(32, 32, 3\), received \(64, 64, 3\); "
     r"resize them"),
    (np.zeros((2, 32, 32, 1)), ValueError, r"received \(32, 32, 1\); give them 3 "
                                           r"channels \(RGB\)"),
    (np.zeros((32, 32, 3)), ValueError, r"one image of shape \(32, 32, 3\); add a "
                                        r"batch axis"),
    (np.zeros((2, 32, 32)), ValueError, r"expected a batch of shape \(N, H, W, C\)"),
    (np.array([[["a"]]]), TypeError, r"must be numbers .* received dtype <U1"),
    ("cat.jpg", TypeError, r"received a str"),
    (np.zeros((2, 32, 32, 3), bool), TypeError, r"received dtype bool"),
])
def test_check_image_batch_refuses(images, error, match):
    with pytest.raises(error, match=match):
        data.check_image_batch(images, (32, 32, 3))


def test_check_image_batch_counts_nan_and_inf():
    images = np.zeros((3, 4, 4, 3), np.float32)
    images[1, 0, 0] = np.nan  # 3 values
    images[2, 1, 1, 0] = np.inf
    with pytest.raises(ValueError, match=r"photos: 3 NaN and 1 infinite pixel values "
                                         r"\(in 2 of 3 images, the first at index 1\)"):
        data.check_image_batch(images, (4, 4, 3), what="photos")
    big = np.full((1, 4, 4, 3), 1e300)  # beyond float32
    with pytest.raises(ValueError, match="48 infinite"):
        data.check_image_batch(big, (4, 4, 3))


# ------------------------------------------------------------------ text --

def write_text_file(tmp_path: Path, content: str | bytes, name: str = "rows.tsv") -> Path:
    path = tmp_path / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


@pytest.mark.parametrize("content, match", [
    ("", r"'.*rows\.tsv' holds no rows: the file is empty"),
    ("label\ttext\n", r"'.*rows\.tsv' holds no rows below its header"),
    ("label\ttext\n1\tgood\n0\n", r"'.*rows\.tsv' line 3: no 'text' column"),
    ("text\tlabel\ngood\t1\nbad\n", r"line 3: no 'label' column"),
    ("label\ttext\n\tgood\n", r"line 2: the 'label' column is empty"),
    ("label\ttext\n1\tgood\n-1\tbad\n",
     r"line 3: labels are class indices 0, 1, \.\.\., found -1"),
    ("label\ttext\n1.5\tgood\n", r"line 2: label must be an integer .*found '1\.5'"),
    ("label\ttext\npositive\tgood\n", r"label must be an integer"),
    (b"label\ttext\n1\tgo\x00od\n", r"'.*rows\.tsv' line 2 holds NUL bytes: not a "
                                    r"UTF-8 text file"),
    ("label\ttext\n1\tgood\n".encode("utf-16"), r"holds NUL bytes"),
])
def test_text_tsv_refuses_bad_rows(tmp_path, content, match):
    with pytest.raises(ValueError, match=match):
        data.text_tsv(write_text_file(tmp_path, content))


def test_text_tsv_keeps_stray_bytes_and_reads_a_bom_and_line_numbers(tmp_path):
    rows = data.text_tsv(write_text_file(
        tmp_path, b"\xef\xbb\xbflabel\ttext\n1\tcaf\xe9\n0\t\n"))
    assert rows.texts.tolist() == ["caf\ufffd", ""] and rows.labels.tolist() == [1, 0]
    quoted = write_text_file(tmp_path, 'label,text\n1,"two\nlines"\n-2,x\n', "rows.csv")
    with pytest.raises(ValueError, match=r"line 4: .*found -2"):
        data.text_tsv(quoted)


def test_text_tsv_gzip_damage(tmp_path):
    whole = gzip.compress(b"label\ttext\n" + b"1\tgood film\n" * 200)
    cut = write_text_file(tmp_path, whole[: len(whole) // 2], "cut.tsv.gz")
    with pytest.raises(ValueError, match=r"'.*cut\.tsv\.gz' is not a readable gzip "
                                         r"file"):
        data.text_tsv(cut)
    damaged = bytearray(whole)
    damaged[-6] ^= 0xFF  # the CRC
    bad_crc = write_text_file(tmp_path, bytes(damaged), "crc.tsv.gz")
    with pytest.raises(ValueError, match=r"'.*crc\.tsv\.gz' is not a readable gzip"):
        data.text_tsv(bad_crc)
    plain = write_text_file(tmp_path, "label\ttext\n1\tx\n", "plain.tsv.gz")
    with pytest.raises(ValueError, match=r"'.*plain\.tsv\.gz' is not a gzip file"):
        data.text_tsv(plain)
    unnamed = write_text_file(tmp_path, whole, "rows.tsv")  # gzip without .gz
    assert len(data.text_tsv(unnamed)) == 200


def test_check_labels_and_infer_num_classes():
    labels = np.array([0, 1, 7, 7, 7, -1, 1])
    with pytest.raises(ValueError, match=re_escape(
            "'dev.tsv': labels must be in [0, 2) for this model's 2 classes "
            "(negative, positive); found 7 (3 rows) and -1 (1 row)")):
        data.check_labels(labels, 2, "'dev.tsv'", class_names=("negative", "positive"))
    assert data.check_labels([0, 1, 1], 2, "x").dtype == np.int32
    with pytest.raises(ValueError, match="integer class indices"):
        data.check_labels([0.5, 1.0], 2, "x")

    assert data.infer_num_classes([0, 1, 1], np.array([2, 0]), where="train") == 3
    with pytest.raises(ValueError, match=re_escape(
            "'train.tsv': labels must be class indices 0..K-1 with every class "
            "present; found labels 0, 1, 7, without 2, 3, 4, 5, 6; renumber them "
            "0..2, or pass --class-names to declare all 8 classes")):
        data.infer_num_classes([0, 1, 7, 1], where="'train.tsv'")
    with pytest.raises(ValueError, match="found -1"):
        data.infer_num_classes([0, 1, -1], where="x")
    with pytest.raises(ValueError, match="one class"):
        data.infer_num_classes([0, 0], where="x")
    with pytest.raises(ValueError, match="no labels"):
        data.infer_num_classes([], where="x")


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_image_set_class_counts():
    images = np.zeros((3, 2, 2, 3), np.uint8)
    counts = ImageSet(images, np.array([0, 2, 2], "int32"), ("a", "b", "c")).class_counts()
    assert counts == {"a": 1, "b": 0, "c": 2}
