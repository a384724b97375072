"""The input pipeline shared by training and evaluation (tf.data).

Stages, in order:

1. :func:`scan` lists the (image, mask) pairs of a prepared folder
   (``images/``, ``masks/``, optional ``index.csv`` with a ``split`` column)
   or of a plain ``images/`` + ``masks/`` folder, assigns the train/val split
   (by file, stratified by category, seed 42: :func:`Preprocess.split.assign_split`)
   and checks every file once: an unreadable file is reported by name and its
   pair skipped. The result is a :class:`DataReport`.
2. :func:`load_pair` decodes a pair as RGB (TensorFlow's decoders for plain
   JPEG/PNG/BMP files, :mod:`RMBG.imageio` for everything else: EXIF-rotated,
   CMYK, 16-bit, TIFF, WebP, odd masks) and resizes image and mask to the
   square ``image_size`` (the mask follows the image, whatever its own size).
   Results are ``uint8`` and cached in memory when they fit.
3. Training only (:mod:`RMBG.augment`): :func:`augment` (random resized crop,
   horizontal flip, colour jitter) per image, then :func:`composite` (a
   foreground pasted on another photo of the batch) and :func:`plain_background`
   (on one flat colour; optionally only photos whose mask is not a teacher's
   map, the pair's ``teacher`` flag) per batch.
4. :func:`normalize`: exactly :meth:`RMBG.modelinfo.ModelInfo.normalize`,
   written with TensorFlow ops. Masks are float32 in [0, 1], ``NxSxSx1``.

Random draws are stateless and seeded per element, so a run repeats exactly
whatever the number of parallel calls.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from RMBG.augment import HUE_SHARE, Augment, augment, colour_jitter, composite, crop_box, plain_background  # noqa: F401
from RMBG.constants import INDEX_SPLITS, SEED
from RMBG.imageio import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    category_of,
    list_images,
    mask_from_pil,
    open_image,
    pil_to_rgb,
    read_image,
    same_aspect,
    read_mask,
)

#: Index file of a prepared dataset.
INDEX_NAME = "index.csv"
#: Image formats/modes TensorFlow decodes exactly as :mod:`RMBG.imageio` does.
NATIVE_IMAGE = {"JPEG": {"RGB", "L"}, "PNG": {"RGB", "RGBA", "L", "P"}, "BMP": {"RGB"}}
#: Mask formats/modes TensorFlow decodes exactly as :mod:`RMBG.imageio` does.
NATIVE_MASK = {"PNG": {"L"}, "JPEG": {"L"}, "BMP": {"L"}}
#: Never cache more than this many bytes of decoded data in memory.
CACHE_MAX_BYTES = 4 << 30
#: Fraction of the memory available at start that the cache may take.
CACHE_MEMORY_SHARE = 0.5
AUTOTUNE = -1  # tf.data.AUTOTUNE, without importing TensorFlow at module load


# ---------------------------------------------------------------------------
# Listing, splitting, checking
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    """One photo and its mask. ``native``: TensorFlow can decode both files as-is;
    ``teacher``: the mask is a teacher's soft map alone (``Target`` ``teacher`` in the index)."""

    image: str
    mask: str
    category: str
    split: str = "train"
    native: bool = True
    teacher: bool = False

    @property
    def name(self) -> str:
        return Path(self.image).stem


@dataclass
class DataReport:
    """What :func:`scan` found: usable pairs, skipped files (with reasons) and notes."""

    root: str
    pairs: list[Pair] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def train(self) -> list[Pair]:
        return [p for p in self.pairs if p.split == "train"]

    @property
    def val(self) -> list[Pair]:
        return [p for p in self.pairs if p.split == "val"]

    def summary(self) -> str:
        """A few lines for logs: counts, then every skipped file and why."""
        cats: dict[str, int] = {}
        for pair in self.pairs:
            cats[pair.category] = cats.get(pair.category, 0) + 1
        per_cat = ", ".join(f"{k} {v}" for k, v in sorted(cats.items()))
        tested = sum(p.split == "test" for p in self.pairs)
        held_back = f", {tested} test (left out of training and validation)" if tested else ""
        lines = [
            f"{self.root}: {len(self.pairs)} pairs ({len(self.train)} train, {len(self.val)} val{held_back}; "
            f"{per_cat or 'none'}), {len(self.skipped)} skipped"
        ]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _resolve(root: Path, text: str, folder: str) -> Path:
    """A path from ``index.csv``: absolute, relative to the dataset, to the cwd, or a bare name."""
    path = Path(text)
    if path.is_absolute():
        return path
    for candidate in (root / path, Path.cwd() / path, root / folder / path.name):
        if candidate.exists():
            return candidate
    return root / path


def _find_mask(masks_dir: Path, stem: str) -> Path | None:
    for ext in (".png",) + tuple(e for e in IMAGE_EXTENSIONS if e != ".png"):
        for candidate in (masks_dir / f"{stem}{ext}", masks_dir / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def read_index(root: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """``(columns, rows)`` of a dataset folder's ``index.csv`` (or of the CSV file ``root``), every cell a string.

    The one reader of the index (training, :func:`list_pairs`, and
    ``RMBG.evaluate --split``). Rows are read as :class:`csv.DictReader`
    reads them: blank lines skipped, a short row's missing cells ``None``, a
    long row's extra cells listed under the key ``None``; a UTF-8 byte-order
    mark is dropped. Raises FileNotFoundError when the folder has no index.
    """
    path = Path(root)
    with open(path if path.suffix.lower() == ".csv" else path / INDEX_NAME, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def list_pairs(root: str | os.PathLike) -> tuple[list[Pair], list[tuple[str, str]]]:
    """``(pairs, skipped)`` of a dataset folder, in a stable order, before any file check.

    With ``index.csv`` its rows are used (``split`` kept when the column is
    filled for every row); without it, ``images/*`` are matched to
    ``masks/<same stem>.*``. Photos without a mask are skipped with a reason.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    pairs: list[Pair] = []
    skipped: list[tuple[str, str]] = []
    index = root / INDEX_NAME
    if index.is_file():
        _columns, rows = read_index(root)
        missing = {"Image Path", "Mask Path"} - set(rows[0] if rows else {"Image Path", "Mask Path"})
        if missing:
            raise ValueError(f"{index}: missing column(s) {', '.join(sorted(missing))}")
        with_split = bool(rows) and all((r.get("split") or "").strip() in INDEX_SPLITS for r in rows)
        for row in rows:
            image = _resolve(root, row["Image Path"], "images")
            mask = _resolve(root, row["Mask Path"], "masks")
            category = (row.get("Category") or "").strip() or category_of(image)
            split = row["split"].strip() if with_split else ""
            teacher = (row.get("Target") or "").strip() == "teacher"
            pairs.append(Pair(str(image), str(mask), category, split, teacher=teacher))
    else:
        images_dir, masks_dir = root / "images", root / "masks"
        if not images_dir.is_dir() or not masks_dir.is_dir():
            raise FileNotFoundError(f"{root}: expected images/ and masks/ folders (or an {INDEX_NAME})")
        for image in list_images(images_dir):
            mask = _find_mask(masks_dir, image.stem)
            if mask is None:
                skipped.append((str(image), f"no mask named {image.stem}.* in {masks_dir}"))
                continue
            pairs.append(Pair(str(image), str(mask), category_of(image), ""))
    pairs.sort(key=lambda p: p.name)
    return pairs, skipped


def assign_splits(pairs: Sequence[Pair], split: float, seed: int = SEED) -> list[Pair]:
    """Pairs with ``split`` set: kept from the index when every pair has one, else computed.

    The computed split is :func:`Preprocess.split.assign_split` (by file,
    stratified by category, seeded), on every listed file, so that a file
    failing its check later does not move the others between splits.
    """
    if pairs and all(p.split in INDEX_SPLITS for p in pairs):
        return list(pairs)
    from Preprocess.split import assign_split

    names = [p.name for p in pairs]
    if len(set(names)) != len(names):
        names = [p.image for p in pairs]
    labels = assign_split(names, [p.category for p in pairs], split, seed=seed)
    return [replace(p, split=label) for p, label in zip(pairs, labels)]


def _orientation(img) -> int:
    try:
        return int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block is not a reason to skip the photo
        return 1


def check_pair(pair: Pair) -> tuple[Pair | None, tuple[str, str] | None, str | None]:
    """Decode both files once: ``(pair with native flag, None, note)`` or ``(None, (file, reason), None)``."""
    files = {}
    for role, path in (("image", pair.image), ("mask", pair.mask)):
        try:
            img = open_image(path)
            files[role] = (img, img.format, img.mode, _orientation(img))
            (pil_to_rgb if role == "image" else mask_from_pil)(img)
        except ImageReadError as exc:
            return None, (exc.path, exc.reason), None
        except Exception as exc:  # anything else a decoder throws: still name the file
            return None, (str(path), f"unreadable ({type(exc).__name__}: {exc})"), None
    (image, ifmt, imode, iorient), (mask, mfmt, mmode, morient) = files["image"], files["mask"]
    native = (
        imode in NATIVE_IMAGE.get(ifmt, ())
        and mmode in NATIVE_MASK.get(mfmt, ())
        and iorient == 1
        and morient == 1
    )
    note = None
    iw, ih = image.size if iorient < 5 else image.size[::-1]
    mw, mh = mask.size if morient < 5 else mask.size[::-1]
    if not same_aspect((iw, ih), (mw, mh)):
        note = f"{pair.name}: mask {mw}x{mh} has another aspect ratio than photo {iw}x{ih} (resized to it)"
    return replace(pair, native=bool(native)), None, note


def check_pairs(pairs: Sequence[Pair], workers: int = 2, progress: bool = True):
    """Check every pair (threads: the decoders release the GIL): ``(ok, skipped, notes)``."""
    from tqdm.auto import tqdm

    ok, skipped, notes = [], [], []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(check_pair, pairs)
        for pair, bad, note in tqdm(results, total=len(pairs), desc="checking pairs", disable=not progress, leave=False):
            if pair is not None:
                ok.append(pair)
            if bad is not None:
                skipped.append(bad)
            if note:
                notes.append(note)
    return ok, skipped, notes


def scan(
    root: str | os.PathLike,
    split: float = 0.2,
    seed: int = SEED,
    check: bool = True,
    progress: bool = True,
    workers: int | None = None,
) -> DataReport:
    """List, split and check a dataset folder: the :class:`DataReport` a run starts from."""
    pairs, skipped = list_pairs(root)
    pairs = assign_splits(pairs, split, seed)
    notes: list[str] = []
    if check:
        pairs, bad, notes = check_pairs(pairs, workers or min(4, os.cpu_count() or 1), progress)
        skipped += bad
    return DataReport(str(root), pairs, skipped, notes)


def limit_pairs(pairs: Sequence[Pair], limit: int | None, seed: int = SEED) -> list[Pair]:
    """At most ``limit`` pairs, a seeded sample that keeps the categories mixed, in name order."""
    if limit is None or len(pairs) <= limit:
        return list(pairs)
    order = np.random.default_rng(seed).permutation(len(pairs))[:limit]
    return [pairs[i] for i in sorted(order)]


# ---------------------------------------------------------------------------
# Decoding and resizing
# ---------------------------------------------------------------------------
def _py_decode(image_path, mask_path):
    """numpy_function body: any image/mask through RMBG.imageio (EXIF, CMYK, 16-bit...)."""
    image = read_image(image_path.decode("utf-8"))
    mask = read_mask(mask_path.decode("utf-8"))
    return image, mask.astype(np.float32)[..., None]


def decode_pair(image_path, mask_path, native):
    """``(HxWx3 uint8 RGB, hxwx1 float32 mask in [0, 1])`` of one pair (sizes may differ)."""
    import tensorflow as tf

    def with_tf():
        image = tf.io.decode_image(tf.io.read_file(image_path), channels=3, expand_animations=False)
        mask = tf.io.decode_image(tf.io.read_file(mask_path), channels=1, expand_animations=False)
        return tf.cast(image, tf.uint8), tf.cast(mask, tf.float32) / 255.0

    def with_python():
        image, mask = tf.numpy_function(
            _py_decode, [image_path, mask_path], [tf.uint8, tf.float32], stateful=False
        )
        return tf.reshape(image, [tf.shape(image)[0], tf.shape(image)[1], 3]), tf.reshape(
            mask, [tf.shape(mask)[0], tf.shape(mask)[1], 1]
        )

    image, mask = tf.cond(native, with_tf, with_python)
    image.set_shape([None, None, 3])
    mask.set_shape([None, None, 1])
    return image, mask


def resize_pair(image, mask, size: int):
    """Image (Lanczos, antialiased, like the runtime's PIL LANCZOS) and mask (bilinear,
    antialiased) to ``size x size``, both as uint8."""
    import tensorflow as tf

    image = tf.image.resize(tf.cast(image, tf.float32), (size, size), method="lanczos3", antialias=True)
    mask = tf.image.resize(mask, (size, size), method="bilinear", antialias=True)
    image = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)
    mask = tf.cast(tf.round(tf.clip_by_value(mask, 0.0, 1.0) * 255.0), tf.uint8)
    return image, mask


def load_pair(image_path, mask_path, native, size: int):
    """Decode and resize one pair: ``(SxSx3 uint8, SxSx1 uint8 0-255)``."""
    image, mask = decode_pair(image_path, mask_path, native)
    return resize_pair(image, mask, size)


# ---------------------------------------------------------------------------
# Normalisation (ModelInfo.normalize in TensorFlow)
# ---------------------------------------------------------------------------
def normalize(images, mean=None, std=None, input_scale: str = "255"):
    """uint8/0-255 ``...xHxWx3`` RGB to model input, the same arithmetic as ``ModelInfo.normalize``."""
    import tensorflow as tf

    x = tf.cast(images, tf.float32)
    if input_scale == "max":
        peak = tf.reduce_max(x, axis=[-3, -2, -1], keepdims=True)
        x = x / tf.maximum(peak, 1e-6)
    elif input_scale == "255":
        x = x / 255.0
    else:
        raise ValueError(f"input_scale must be '255' or 'max', not {input_scale!r}")
    if mean is not None:
        x = (x - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)
    return x


def normalizer(info):
    """``normalize`` bound to a :class:`ModelInfo`'s mean, std and input scale."""
    return lambda images: normalize(images, info.mean, info.std, info.input_scale)


# ---------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------
def cache_fits(count: int, size: int, budget: int | None = None) -> bool:
    """Whether ``count`` decoded ``size``-square pairs (4 bytes a pixel) fit the memory budget."""
    if budget is None:
        try:
            import psutil

            budget = min(CACHE_MAX_BYTES, int(psutil.virtual_memory().available * CACHE_MEMORY_SHARE))
        except Exception:
            budget = CACHE_MAX_BYTES // 4
    return count * size * size * 4 <= budget


def _files(pairs: Sequence[Pair]):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(
        (
            [p.image for p in pairs],
            [p.mask for p in pairs],
            np.array([p.native for p in pairs], dtype=bool),
            np.array([p.teacher for p in pairs], dtype=bool),
        )
    )


def decoded_dataset(pairs: Sequence[Pair], size: int, cache: bool = True, with_teacher: bool = False):
    """``(uint8 SxSx3, uint8 SxSx1)`` for each pair, in order; unreadable pairs dropped (logged).

    ``with_teacher``: each element also carries the pair's ``teacher`` flag (a bool),
    kept in step with its pair when unreadable pairs are dropped."""
    import tensorflow as tf

    if not pairs:
        raise ValueError("no pairs to load (is the dataset empty, or was every file skipped?)")

    def load(image, mask, native, teacher):
        loaded = load_pair(image, mask, native, size)
        return (*loaded, teacher) if with_teacher else loaded

    ds = _files(pairs).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.ignore_errors(log_warning=True)
    if cache and cache_fits(len(pairs), size):
        ds = ds.cache()
    return ds


def train_dataset(
    pairs: Sequence[Pair],
    info,
    image_size: int,
    batch: int,
    settings: Augment,
    seed: int = SEED,
    cache: bool = True,
    input_context=None,
):
    """Endless shuffled, augmented, normalised training batches ``(NxCxCx3, NxCxCx1)``.

    ``input_context`` (a ``tf.distribute.InputContext``) shards the files
    between input pipelines and makes ``batch`` the global batch.
    """
    import tensorflow as tf

    pairs = list(pairs)
    if input_context is not None:
        batch = input_context.get_per_replica_batch_size(batch)
        count = input_context.num_input_pipelines
        pairs = pairs[input_context.input_pipeline_id :: count] if len(pairs) >= count else pairs
        seed = seed + input_context.input_pipeline_id
    norm = normalizer(info)
    ds = decoded_dataset(pairs, image_size, cache, with_teacher=True)
    ds = ds.shuffle(max(1, len(pairs)), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed).batch(2)))
    ds = ds.map(
        lambda pair, s: (*augment(pair[0], pair[1], s, settings), pair[2]),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.batch(batch, drop_remainder=True)
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed + 1).batch(2)))

    def finish(batch_pair, s):
        images, masks, teacher = batch_pair
        images = composite(images, masks, s, settings.composite)
        allowed = tf.logical_not(teacher) if settings.plain_background_on == "truth" else None
        images = plain_background(images, masks, s + 7, settings.plain_background, allowed)
        return norm(images), masks

    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return _with_options(ds.prefetch(tf.data.AUTOTUNE))


def eval_dataset(pairs: Sequence[Pair], info, image_size: int, batch: int, cache: bool = True):
    """Validation/evaluation batches in order: ``(normalised NxSxSx3, NxSxSx1 mask in [0, 1])``."""
    import tensorflow as tf

    norm = normalizer(info)
    ds = decoded_dataset(pairs, image_size, cache).batch(batch)
    ds = ds.map(
        lambda images, masks: (norm(images), tf.cast(masks, tf.float32) / 255.0),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return _with_options(ds.prefetch(tf.data.AUTOTUNE))


def _with_options(ds):
    """Files are sharded by hand (``input_context``): no automatic sharding on top."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    options.deterministic = True
    return ds.with_options(options)


def iter_numpy(ds, limit: int | None = None) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """Batches of a dataset as numpy arrays (at most ``limit`` batches)."""
    for index, (x, y) in enumerate(ds.as_numpy_iterator()):
        if limit is not None and index >= limit:
            break
        yield x, y
