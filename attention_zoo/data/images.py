"""Image data: CIFAR-10 and users' image folders (or zips of them) as tf.data.

An image folder is ``<root>/<split>/<class>/<image>`` (or ``<root>/<class>/
<image>``); a zip holds the same tree. Images are decoded once and cached as
a ``.npz`` next to nothing the user owns (``~/.cache/attention_zoo`` or
``$ATTENTION_ZOO_CACHE``), so later epochs and runs skip JPEG decoding.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from attention_zoo.data.prefetch import prefetched
from attention_zoo.files import replacing

if TYPE_CHECKING:  # for annotations; the functions import tensorflow where they use it
    import tensorflow as tf

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                   "horse", "ship", "truck")


@dataclass
class ImageSet:
    """Decoded images ``(n, H, W, 3)`` uint8 with integer labels."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> "ImageSet":
        return ImageSet(self.images[index], self.labels[index], self.class_names)


def cache_dir() -> Path:
    return Path(os.environ.get("ATTENTION_ZOO_CACHE",
                               Path.home() / ".cache" / "attention_zoo"))


def _listing(path: Path) -> list[tuple[str, str]]:
    """``(member, class)`` pairs of every image, sorted by class then name."""
    if path.is_dir():
        names = [p.relative_to(path).as_posix() for p in path.rglob("*")
                 if p.suffix.lower() in IMAGE_SUFFIXES]
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist()
                     if Path(n).suffix.lower() in IMAGE_SUFFIXES]
    else:
        raise ValueError(f"expected an image folder or a .zip of one, received "
                         f"{str(path)!r}")
    pairs = [(n, n.split("/")[-2]) for n in names if "/" in n]
    if not pairs:
        raise ValueError(f"{str(path)!r} holds no images in <class>/<image> "
                         f"folders ({', '.join(IMAGE_SUFFIXES)})")
    return sorted(pairs, key=lambda p: (p[1], p[0]))


def _read_all(path: Path, members: Iterable[str]) -> Iterable[bytes]:
    if path.is_dir():
        for m in members:
            yield (path / m).read_bytes()
    else:
        with zipfile.ZipFile(path) as archive:
            for m in members:
                yield archive.read(m)


def _decode(blobs: Iterable[bytes], size: tuple[int, int] | None,
            total: int) -> np.ndarray:
    import tensorflow as tf
    from keras.utils import Progbar

    progress = Progbar(total, unit_name="image") if total > 2000 else None
    out = []
    for i, blob in enumerate(blobs):
        image = tf.io.decode_image(blob, channels=3, expand_animations=False)
        if size is not None and tuple(image.shape[:2]) != tuple(size):
            image = tf.cast(tf.image.resize(image, size, antialias=True)
                            + 0.5, tf.uint8)
        out.append(image.numpy())
        if progress is not None and (i + 1) % 1000 == 0:
            progress.update(i + 1)
    if progress is not None:
        progress.update(total, finalize=True)
    shapes = {im.shape for im in out}
    if len(shapes) != 1:
        raise ValueError(f"images have different sizes {sorted(shapes)[:3]}...; "
                         f"pass image_size=(H, W) to resize them")
    return np.stack(out)


def image_folder(path: str | os.PathLike, split: str | None = None,
                 image_size: tuple[int, int] | None = None,
                 class_names: Sequence[str] | None = None,
                 cache: bool = True) -> ImageSet:
    """Reads ``<path>/[<split>/]<class>/<image>`` from a folder or a zip.

    Args:
        path: folder or ``.zip``.
        split: keep only images under a top folder of this name (e.g.
            ``"train"``); None keeps all.
        image_size: resize to ``(H, W)``; None requires equal sizes.
        class_names: fixes the label order (default: sorted folder names).
        cache: keep the decoded arrays in the cache folder.

    Returns an ``ImageSet`` ordered by class, then file name.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no such image folder or zip: {str(path)!r}")
    pairs = _listing(path)
    if split is not None:
        pairs = [p for p in pairs if p[0].split("/")[-3:-2] == [split]]
        if not pairs:
            raise ValueError(f"{str(path)!r} has no '{split}/<class>/' images")
    found = sorted({c for _, c in pairs})
    names = tuple(class_names) if class_names is not None else tuple(found)
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise ValueError(f"folders {unknown} are not among class_names {names}")
    members = [m for m, _ in pairs]
    labels = np.array([names.index(c) for _, c in pairs], dtype="int32")
    key = hashlib.sha1(repr((str(path.resolve()), path.stat().st_mtime,
                             members, image_size)).encode()).hexdigest()[:16]
    cached = cache_dir() / f"images-{key}.npz"
    if cache and cached.exists():
        with np.load(cached) as data:
            return ImageSet(data["images"], labels, names)
    images = _decode(_read_all(path, members), image_size, len(members))
    if cache:
        # Processes that decode the same data at once (a KerasTuner chief
        # and its workers) each rename their complete, identical file into
        # place, and the last one wins.
        with replacing(cached, ".npz") as tmp:
            np.savez(tmp, images=images)
    return ImageSet(images, labels, names)


def split_last_per_class(data: ImageSet, per_class: int) -> tuple[ImageSet, ImageSet]:
    """Holds out the last ``per_class`` images of every class (in file order):
    CIFAR-10's validation split here is the last 500 of each class."""
    val = np.zeros(len(data), bool)
    for c in range(len(data.class_names)):
        index = np.flatnonzero(data.labels == c)
        if len(index) <= per_class:
            raise ValueError(f"class {data.class_names[c]!r} has {len(index)} "
                             f"images, cannot hold out {per_class}")
        val[index[-per_class:]] = True
    return data.take(~val), data.take(val)


def cifar10(path: str | os.PathLike | None = None, val_per_class: int = 500,
            ) -> tuple[ImageSet, ImageSet]:
    """CIFAR-10 as ``(train, val)``: the training images minus the last
    ``val_per_class`` of each class, and those held out.

    ``path`` is an image folder or zip (``train/<class>/*.jpg``); without it,
    ``keras.datasets.cifar10`` is used (downloads once into ``~/.keras``).
    """
    if path is None:
        import keras

        (x, y), _ = keras.datasets.cifar10.load_data()
        # Keras's order is not grouped by class; keep it, stable per class.
        data = ImageSet(x, y.reshape(-1).astype("int32"), CIFAR10_CLASSES)
    else:
        root = Path(path)
        split = "train" if _has_split(root, "train") else None
        data = image_folder(root, split=split, class_names=CIFAR10_CLASSES)
    return split_last_per_class(data, val_per_class)


def _has_split(path: Path, split: str) -> bool:
    if path.is_dir():
        return (path / split).is_dir()
    with zipfile.ZipFile(path) as archive:
        return any(n.startswith(f"{split}/") or f"/{split}/" in n
                   for n in archive.namelist()[:50])


# ------------------------------------------------------------- pipelines --

def augment_batch(images: tf.Tensor | np.ndarray, translate: int = 2, flip: bool = True,
                  cutout: int = 0, seed: int | None = None,
                  flips: tf.Tensor | None = None) -> tf.Tensor:
    """Random flip, translation by up to ``translate`` pixels (reflect
    padding) and optional cutout, on a uint8 or float batch; tf ops, so it
    runs inside tf.data on the host. ``flips``: a ``(batch,)`` bool tensor
    saying which images to mirror, in place of random flips."""
    import tensorflow as tf

    x = tf.cast(images, tf.float32)
    shape = tf.shape(x)
    if flips is None and flip:
        flips = tf.random.uniform((shape[0],), seed=seed) < 0.5
    if flips is not None:
        mirror = tf.reshape(tf.cast(flips, tf.bool), (-1, 1, 1, 1))
        x = tf.where(mirror, tf.reverse(x, axis=[2]), x)
    if translate:
        t = translate
        padded = tf.pad(x, [[0, 0], [t, t], [t, t], [0, 0]], mode="REFLECT")
        dy = tf.random.uniform((shape[0],), 0, 2 * t + 1, tf.int32, seed=seed)
        dx = tf.random.uniform((shape[0],), 0, 2 * t + 1, tf.int32, seed=seed)
        rows = dy[:, None] + tf.range(shape[1])[None]
        cols = dx[:, None] + tf.range(shape[2])[None]
        x = tf.gather(padded, rows, axis=1, batch_dims=1)
        x = tf.gather(x, cols, axis=2, batch_dims=1)
    if cutout:
        cy = tf.random.uniform((shape[0], 1, 1, 1), 0, shape[1], tf.int32, seed=seed)
        cx = tf.random.uniform((shape[0], 1, 1, 1), 0, shape[2], tf.int32, seed=seed)
        ys = tf.range(shape[1])[None, :, None, None]
        xs = tf.range(shape[2])[None, None, :, None]
        hole = (tf.abs(ys - cy) <= cutout // 2) & (tf.abs(xs - cx) <= cutout // 2)
        x = tf.where(hole, 0.0, x)
    return x


FLIPS = (False, True, "alternate")


def check_flip(flip: bool | str) -> None:
    if not (isinstance(flip, bool) or flip == "alternate"):
        raise ValueError(f"flip must be one of {FLIPS}, received {flip!r}")


def _epoch_parity():
    """A dataset that yields, forever, the parity of how many iterators over
    it were created before: Keras creates one per epoch (a finite dataset
    and no ``steps_per_epoch``), so zipped with an epoch's batches it says
    whether this is an even or an odd epoch."""
    import tensorflow as tf

    started = tf.Variable(-1, dtype=tf.int64, trainable=False, name="epochs_started")
    return (tf.data.Dataset.from_tensors(0)
            .map(lambda _: started.assign_add(1) % 2 == 1)
            .flat_map(lambda odd: tf.data.Dataset.from_tensors(odd).repeat()))


def pipeline(data: ImageSet, batch_size: int = 256, training: bool = False,
             num_classes: int | None = None, translate: int = 2,
             flip: bool | str = True, cutout: int = 0, seed: int = 0,
             one_hot: bool = True) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(images float32 0..255, labels)``.

    Training: reshuffled every epoch, augmented per batch (flip, translate,
    cutout). ``flip``: False, True (each image mirrored with probability
    1/2 every epoch) or ``"alternate"`` (airbench's alternating flip: each
    image mirrored at random in the first epoch, then the opposite way to the
    epoch before, so no image is shown the same way two epochs running; the
    epoch's parity advances each time an iterator is created, i.e. each
    epoch of ``model.fit``; it counts from zero again in a new process, so a
    resumed run's first epoch may repeat the flips of the one before).
    Labels are one-hot (for label smoothing) unless ``one_hot=False``.
    Arrays stay in memory; batches are prefetched (``data.prefetch``).
    """
    import tensorflow as tf

    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, received {batch_size}")
    check_flip(flip)
    classes = num_classes or len(data.class_names)
    alternate = training and flip == "alternate"
    columns = (data.images, data.labels)
    if alternate:
        first = np.random.default_rng(seed).random(len(data)) < 0.5
        columns += (first,)
    ds = tf.data.Dataset.from_tensor_slices(columns)
    if training:
        ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=False)
    if alternate:
        # Zipped per batch, not per image: a per-image zip and map ran one
        # element at a time, took CPU from training all epoch and held up a
        # new epoch's first batch (up to 11 s beside a training run).
        batches = int(ds.cardinality())
        ds = tf.data.Dataset.zip((ds, _epoch_parity())).map(
            lambda batch, odd: (batch[0], batch[1],
                                tf.math.logical_xor(batch[2], odd)))
        ds = ds.apply(tf.data.experimental.assert_cardinality(batches))

    def prepare(x, y, flips=None):
        if training:
            x = augment_batch(x, translate, bool(flip), cutout, flips=flips)
        else:
            x = tf.cast(x, tf.float32)
        return x, (tf.one_hot(y, classes) if one_hot else y)

    return prefetched(ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE))
