"""Image data: CIFAR-10 and users' image folders (or zips of them) as tf.data.

An image folder is ``<root>/<split>/<class>/<image>`` (or ``<root>/<class>/
<image>``); a zip holds the same tree. Images are decoded once and cached as
a ``.npz`` next to nothing the user owns (``~/.cache/attention_zoo`` or
``$ATTENTION_ZOO_CACHE``), so later epochs and runs skip JPEG decoding.
"""

from __future__ import annotations

import contextlib
import hashlib
import numbers
import operator
import os
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Sequence

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

    def class_counts(self) -> dict[str, int]:
        """Images per class, ``{class name: count}``, in label order."""
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, counts)}


def cache_dir() -> Path:
    return Path(os.environ.get("ATTENTION_ZOO_CACHE",
                               Path.home() / ".cache" / "attention_zoo"))


# What Python's zipfile raises for a damaged archive or member: a bad
# directory or header, a CRC mismatch, truncated or corrupt deflate data,
# an encrypted member, an unsupported compression method.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
               NotImplementedError, ValueError, struct.error)
# Bump when the cache's contents or key change meaning.
_CACHE_VERSION = 2


def _reason(error: BaseException) -> str:
    return (getattr(error, "strerror", None) or str(error)
            or type(error).__name__)


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)


@contextlib.contextmanager
def _open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(path)
    except _ZIP_ERRORS as error:
        raise ValueError(f"{str(path)!r} is not a readable zip file "
                         f"({_reason(error)}): truncated, damaged or not a "
                         f"zip; re-create it or download it again") from None
    with archive:
        yield archive


def _hidden(member: str) -> bool:
    """macOS's resource forks (``__MACOSX/``, ``._name.jpg``) carry image
    suffixes but hold no image."""
    parts = member.split("/")
    return "__MACOSX" in parts or parts[-1].startswith("._")


def _listing(path: Path) -> tuple[list[tuple[str, str]],
                                  dict[str, zipfile.ZipInfo] | None]:
    """``(member, class)`` pairs of every image, sorted by class then name,
    and a zip's members' ``ZipInfo`` by name (None for a folder)."""
    if not path.exists():
        raise ValueError(f"no such image folder or zip: {str(path)!r}")
    infos = None
    if path.is_dir():
        names = [p.relative_to(path).as_posix() for p in path.rglob("*")
                 if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    elif _is_zip(path):
        with _open_zip(path) as archive:
            infos = {i.filename: i for i in archive.infolist()}
        names = [n for n in infos if not n.endswith("/")
                 and os.path.splitext(n)[1].lower() in IMAGE_SUFFIXES]
    else:
        raise ValueError(f"expected an image folder or a .zip of one, received "
                         f"{str(path)!r}")
    pairs = [(n, n.split("/")[-2]) for n in names if "/" in n and not _hidden(n)]
    if not pairs:
        raise ValueError(f"{str(path)!r} holds no images in <class>/<image> "
                         f"folders ({', '.join(IMAGE_SUFFIXES)})")
    return sorted(pairs, key=lambda p: (p[1], p[0])), infos


def _where(path: Path, member: str) -> str:
    """A file of a dataset, for messages: its path, or the member and zip."""
    if path.is_dir():
        return repr(str(path / member))
    return f"{member!r} in {str(path)!r}"


@contextlib.contextmanager
def _naming(path: Path, member: str) -> Iterator[None]:
    """Turns an OSError on a file of a folder into a ValueError naming it."""
    try:
        yield
    except OSError as error:
        raise ValueError(f"cannot read {_where(path, member)}: "
                         f"{_reason(error)}") from None


def _read_all(path: Path, members: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """``(member, bytes)`` of each member; ValueError naming one that cannot
    be read."""
    if path.is_dir():
        for m in members:
            with _naming(path, m):
                blob = (path / m).read_bytes()
            yield m, blob
    else:
        with _open_zip(path) as archive:
            for m in members:
                try:
                    blob = archive.read(m)
                except _ZIP_ERRORS as error:
                    raise ValueError(
                        f"cannot read {_where(path, m)} ({_reason(error)}): the "
                        f"zip is damaged; re-create it or download it again"
                    ) from None
                yield m, blob


def _decode_reason(error: Exception) -> str:
    """TensorFlow's message without its op and function-node decorations."""
    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\{\{.*?\}\}|\[Op:\w+\]", "", text).strip().rstrip(".")
    return text or type(error).__name__


def _decode(path: Path, members: Sequence[str],
            size: tuple[int, int] | None) -> np.ndarray:
    import tensorflow as tf
    from keras.utils import Progbar

    total = len(members)
    progress = Progbar(total, unit_name="image") if total > 2000 else None
    out = []
    first_of_size: dict[tuple[int, ...], str] = {}
    for i, (member, blob) in enumerate(_read_all(path, members)):
        try:
            image = tf.io.decode_image(blob, channels=3, expand_animations=False)
        except tf.errors.OpError as error:
            raise ValueError(f"{_where(path, member)} is not a decodable image "
                             f"({_decode_reason(error)}): truncated, damaged or "
                             f"not an image; replace or remove it") from None
        if size is not None and tuple(image.shape[:2]) != tuple(size):
            image = tf.cast(tf.image.resize(image, size, antialias=True)
                            + 0.5, tf.uint8)
        image = image.numpy()
        first_of_size.setdefault(image.shape, member)
        out.append(image)
        if progress is not None and (i + 1) % 1000 == 0:
            progress.update(i + 1)
    if progress is not None:
        progress.update(total, finalize=True)
    if len(first_of_size) > 1:
        examples = [f"{m!r} is {h}x{w}"
                    for (h, w, _), m in list(first_of_size.items())[:4]]
        more = (f" and {len(first_of_size) - 4} more sizes"
                if len(first_of_size) > 4 else "")
        raise ValueError(f"images of {str(path)!r} have different sizes (height x "
                         f"width): {', '.join(examples)}{more}; pass "
                         f"image_size=(H, W) to resize them to one size")
    return np.stack(out)


def _fingerprint(path: Path, members: Sequence[str],
                 infos: dict[str, zipfile.ZipInfo] | None) -> list[tuple]:
    """What the decoded arrays depend on: each file's size and modification
    time (a folder), or each member's CRC-32 and size plus the zip's own
    size and modification time (a zip). A replaced, added or removed image
    changes it."""
    if path.is_dir():
        entries = []
        for m in members:
            with _naming(path, m):
                stat = (path / m).stat()
            entries.append((m, stat.st_size, stat.st_mtime_ns))
        return entries
    stat = path.stat()
    return [(stat.st_size, stat.st_mtime_ns)] + [
        (m, infos[m].CRC, infos[m].file_size) for m in members]


def _load_cached(cached: Path, count: int) -> np.ndarray | None:
    """The cached images, or None where the file is missing, unreadable
    (a truncated or damaged ``.npz``) or not what was expected."""
    try:
        with np.load(cached, allow_pickle=False) as stored:
            images = stored["images"]
    except Exception:  # noqa: BLE001 - missing, or any damage to our own cache
        return None
    if (images.dtype != np.uint8 or images.ndim != 4 or len(images) != count
            or images.shape[-1] != 3):
        return None
    return images


def _decoded(path: Path, members: Sequence[str],
             infos: dict[str, zipfile.ZipInfo] | None,
             size: tuple[int, int] | None, cache: bool) -> np.ndarray:
    """The images of ``members`` decoded, through the cache folder."""
    if not cache:
        return _decode(path, members, size)
    key = hashlib.sha1(repr((_CACHE_VERSION, str(path.resolve()), path.is_dir(),
                             _fingerprint(path, members, infos), size)
                            ).encode()).hexdigest()[:16]
    cached = cache_dir() / f"images-{key}.npz"
    images = _load_cached(cached, len(members))
    if images is not None:
        return images
    images = _decode(path, members, size)
    # Processes that decode the same data at once (a KerasTuner chief and
    # its workers) each rename their complete, identical file into place,
    # and the last one wins; a damaged file is replaced the same way.
    with replacing(cached, ".npz") as tmp:
        np.savez(tmp, images=images)
    return images


def _check_size(image_size: Sequence[int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    try:
        height, width = (operator.index(n) for n in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (height, width) in pixels, received "
                         f"{image_size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, received {image_size!r}")
    return height, width


def _load(path: str | os.PathLike, split: str | None,
          image_size: Sequence[int] | None, class_names: Sequence[str] | None,
          cache: bool, among: str, listing: tuple | None = None) -> ImageSet:
    path = Path(path)
    size = _check_size(image_size)
    pairs, infos = listing or _listing(path)
    if split is not None:
        pairs = [p for p in pairs if p[0].split("/")[-3:-2] == [split]]
        if not pairs:
            raise ValueError(f"{str(path)!r} has no '{split}/<class>/' images")
    found = sorted({c for _, c in pairs})
    names = tuple(class_names) if class_names is not None else tuple(found)
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise ValueError(f"folders {unknown} of {str(path)!r} are not among "
                         f"{among} {names}")
    members = [m for m, _ in pairs]
    labels = np.array([names.index(c) for _, c in pairs], dtype="int32")
    return ImageSet(_decoded(path, members, infos, size, cache), labels, names)


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
        cache: keep the decoded arrays in the cache folder (keyed on each
            file's size and modification time, or each zip member's CRC-32
            and size: a replaced, added or removed image is seen).

    Returns an ``ImageSet`` ordered by class, then file name: ``images``
    ``(n, H, W, 3)`` uint8, ``labels`` ``(n,)`` int32.

    Raises ValueError naming the path for a missing path, a file that is not
    a readable zip, a folder without ``<class>/<image>`` images, and naming
    the file (the member of a zip) for one that cannot be read or decoded;
    for images of different sizes it names one file of each size.
    """
    return _load(path, split, image_size, class_names, cache, "class_names")


def labelled_images(path: str | os.PathLike, class_names: Sequence[str] | None = None,
                    image_size: tuple[int, int] | None = None,
                    cache: bool = True) -> ImageSet:
    """Every image of a user's folder or zip with its label, to evaluate a
    model on all of it.

    The class of an image is the folder holding it, at any depth:
    ``<path>/<class>/<image>`` and ``<path>/<split>/<class>/<image>`` (with
    ``train/``, ``test/`` or other split folders, all of them) both work.

    Args:
        path: folder or ``.zip``.
        class_names: the model's classes, in its label order; every class
            folder must be one of them (classes without images are fine).
            None: the sorted folder names.
        image_size: resize to ``(H, W)`` (the model's input size); None
            requires all images to have one size.
        cache: as in ``image_folder``.

    Returns an ``ImageSet``: ``images`` ``(n, H, W, 3)`` uint8, ``labels``
    ``(n,)`` int32 indices into ``class_names``, ordered by class, then file.
    Raises ValueError as ``image_folder`` does, and for a class folder that
    is not among ``class_names``.
    """
    return _load(path, None, image_size, class_names, cache, "the model's classes")


def _setting(option: str, value: object) -> str:
    """How to pass ``value``: ``val_per_class=5`` or ``--val-per-class 5``."""
    if option.startswith("-"):
        return f"{option} {'auto' if value is None else value}"
    return f"{option}={value}"


def holdout_per_class(class_counts: Mapping[str, int], requested: int | None,
                      preferred: int = 500, option: str = "val_per_class") -> int:
    """How many images of each class to hold out for validation.

    Args:
        class_counts: images per class, ``{class name: count}``
            (``ImageSet.class_counts()``).
        requested: a number asked for: returned if every class has more
            images than that (one at least is left to train on), else
            ValueError. None chooses: ``preferred`` where every class has
            more than that (CIFAR-10: 500 of its 5000), else about a tenth
            of the smallest class, at least 1 and leaving at least 1 to
            train on.
        preferred: the automatic choice for large classes.
        option: the setting's name in messages: ``"val_per_class"``, or a
            command-line option such as ``"--val-per-class"`` (whose
            automatic choice the messages spell ``auto``).

    Raises ValueError naming the class that cannot hold the hold-out, and
    what to pass; a class with fewer than 2 images can hold out none.
    """
    if requested is not None and (isinstance(requested, bool) or not isinstance(
            requested, numbers.Integral) or requested < 1):
        raise ValueError(f"{option} must be a positive integer, or None to choose "
                         f"one that fits, received {requested!r}")
    if not class_counts:
        raise ValueError("no classes to hold out validation images from")
    name, smallest = min(class_counts.items(), key=lambda item: item[1])
    smallest = int(smallest)
    if requested is not None and smallest > requested:
        return int(requested)
    if smallest < 2:
        raise ValueError(
            f"class {name!r} has {smallest} image{'' if smallest == 1 else 's'}: "
            f"a validation split needs at least 2 of each class (one to train "
            f"on, one to validate); add images of {name!r} or remove its folder")
    if requested is not None:
        raise ValueError(
            f"class {name!r} has {smallest} images, cannot hold out {requested} "
            f"for validation and keep one to train on; pass "
            f"{_setting(option, smallest - 1)} or less, or {_setting(option, None)} "
            f"to choose a hold-out that fits")
    if smallest > preferred:
        return preferred
    return max(1, min(smallest - 1, (smallest + 5) // 10))


def split_last_per_class(data: ImageSet, per_class: int) -> tuple[ImageSet, ImageSet]:
    """Holds out the last ``per_class`` images of every class (in file order):
    CIFAR-10's validation split here is the last 500 of each class. Every
    class must have more than ``per_class`` images (``holdout_per_class``
    chooses a number that fits)."""
    per_class = holdout_per_class(data.class_counts(), per_class)
    val = np.zeros(len(data), bool)
    for c in range(len(data.class_names)):
        val[np.flatnonzero(data.labels == c)[-per_class:]] = True
    return data.take(~val), data.take(val)


def cifar10(path: str | os.PathLike | None = None, val_per_class: int | None = 500,
            option: str = "val_per_class") -> tuple[ImageSet, ImageSet]:
    """CIFAR-10 as ``(train, val)``: the training images minus the last
    ``val_per_class`` of each class, and those held out.

    ``path`` is an image folder or zip (``[train/]<class>/*.jpg``, classes
    named as ``CIFAR10_CLASSES``); without it, ``keras.datasets.cifar10`` is
    used (downloads once into ``~/.keras``). ``val_per_class=None`` chooses:
    500 where every class has more (CIFAR-10's split), else a hold-out that
    fits a small folder (``holdout_per_class``; ``option`` names the setting
    in its messages, e.g. ``"--val-per-class"``). Images ``(n, 32, 32, 3)``
    uint8 for CIFAR-10 itself.
    """
    if path is None:
        import keras

        (x, y), _ = keras.datasets.cifar10.load_data()
        # Keras's order is not grouped by class; keep it, stable per class.
        data = ImageSet(x, y.reshape(-1).astype("int32"), CIFAR10_CLASSES)
    else:
        root = Path(path)
        listing = _listing(root)  # once: listing a 50000-image zip takes 0.3 s
        split = "train" if _has_split(listing[0], "train") else None
        data = _load(root, split, None, CIFAR10_CLASSES, True, "class_names",
                     listing)
    per_class = holdout_per_class(data.class_counts(), val_per_class, option=option)
    return split_last_per_class(data, per_class)


def _has_split(pairs: Sequence[tuple[str, str]], split: str) -> bool:
    """Whether images lie in ``<split>/<class>/`` folders."""
    return any(m.split("/")[-3:-2] == [split] for m, _ in pairs)


def check_image_batch(images: object, input_shape: Sequence[int | None],
                      what: str = "images") -> np.ndarray:
    """A batch of images for a model that takes ``input_shape`` ``(H, W, C)``
    (None for any height or width), checked, as a float32 array.

    Args:
        images: array-like ``(N, H, W, C)``, channels last, uint8 or float
            pixels (a NumPy array, a tensor, nested lists).
        input_shape: the model's image shape ``(H, W, C)``.
        what: names the batch in messages (e.g. ``"images"``, a file name).

    Returns ``np.ndarray`` ``(N, H, W, C)`` float32 (the same values).

    Raises TypeError for values that are not numbers (strings, objects,
    booleans), ValueError for an empty batch, a shape that is not
    ``(N, H, W, C)``, channels-first images, images of another size or
    channel count than the model takes, and NaN or infinite pixels (counted).
    """
    expected = tuple(None if n is None else int(n) for n in input_shape)
    if len(expected) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), received "
                         f"{tuple(input_shape)}")
    height, width, channels = expected
    wanted = "(N, " + ", ".join("?" if n is None else str(n) for n in expected) + ")"
    if isinstance(images, (str, bytes)):
        raise TypeError(f"{what} must be an array of pixel numbers {wanted}, "
                        f"received a {type(images).__name__}")
    try:
        array = np.asarray(images)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{what} must form one array {wanted}; received images "
                         f"of different shapes ({error})") from None
    if not (np.issubdtype(array.dtype, np.integer)
            or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{what} must be numbers (uint8 0..255 or float pixels), "
                        f"received dtype {array.dtype}")
    if array.ndim >= 1 and array.shape[0] == 0:
        raise ValueError(f"{what}: the batch is empty (shape {array.shape}); pass "
                         f"at least one image")
    if array.ndim == 3 and _fits(array.shape, expected):
        raise ValueError(f"{what}: expected a batch {wanted}, received one image of "
                         f"shape {array.shape}; add a batch axis (images[None])")
    if array.ndim != 4:
        raise ValueError(f"{what}: expected a batch of shape (N, H, W, C) = "
                         f"{wanted}, received shape {array.shape}")
    image = tuple(array.shape[1:])
    if not _fits(image, expected):
        shown = "(" + ", ".join("any" if n is None else str(n) for n in expected) + ")"
        if channels is not None and image[0] == channels and image[2] != channels:
            last = (image[1], image[2], image[0])
            resize = ("" if _fits(last, expected) else
                      f", and the model takes images of shape {shown}: resize them")
            raise ValueError(
                f"{what}: channels-last (N, H, W, {channels}) expected; this looks "
                f"channels-first: shape {array.shape}; transpose it with "
                f"np.transpose(images, (0, 2, 3, 1)){resize}")
        if _fits(image[:2], expected[:2]):
            raise ValueError(f"{what}: the model takes images of shape {shown}, "
                             f"received {image}; give them {channels} channel"
                             f"{'' if channels == 1 else 's'}"
                             f"{' (RGB)' if channels == 3 else ''}")
        raise ValueError(f"{what}: the model takes images of shape {shown}, "
                         f"received {image}; resize them")
    with np.errstate(over="ignore", invalid="ignore"):
        out = array.astype(np.float32, copy=False)
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(out)
        if not finite.all():
            nan = int(np.isnan(out).sum())
            infinite = int(out.size - finite.sum()) - nan
            bad = np.flatnonzero(~finite.reshape(len(out), -1).all(axis=1))
            counts = [f"{nan} NaN"] * bool(nan) + [f"{infinite} infinite"] * bool(infinite)
            raise ValueError(f"{what}: {' and '.join(counts)} pixel value"
                             f"{'' if nan + infinite == 1 else 's'} (in {len(bad)} "
                             f"of {len(out)} images, the first at index {bad[0]}); "
                             f"pixels must be finite numbers")
    return out


def _fits(shape: Sequence[int], expected: Sequence[int | None]) -> bool:
    return len(shape) == len(expected) and all(
        e is None or s == e for s, e in zip(shape, expected))


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
