"""The input pipeline shared by training and evaluation (tf.data).

Stages, in order:

1. :func:`scan` lists the (image, mask) pairs of a prepared folder
   (``images/``, ``masks/``, optional ``index.csv`` with a ``split`` column)
   or of a plain ``images/`` + ``masks/`` folder, assigns the train/val split
   (by file, stratified by category, seed 42: :func:`RMBG.images.dataset.assign_split`)
   and checks every file once: an unreadable file is reported by name and its
   pair skipped. The result is a :class:`DataReport`.
2. :func:`load_pair` decodes a pair as RGB (TensorFlow's decoders for plain
   JPEG/PNG/BMP files, :mod:`RMBG.images.io` for everything else: EXIF-rotated,
   CMYK, 16-bit, TIFF, WebP, odd masks) and resizes image and mask to the
   square ``image_size`` (the mask follows the image, whatever its own size).
   Results are ``uint8`` and cached in memory when they fit.
3. Training only (:mod:`RMBG.training.augment`): :func:`augment` (random resized crop,
   horizontal flip, colour jitter) per image, then :func:`composite` (a
   foreground pasted on another photo of the batch) and :func:`plain_background`
   (on one flat colour; optionally only photos whose mask is not a teacher's
   map, the pair's ``teacher`` flag) per batch.
4. :func:`normalize`: exactly :meth:`RMBG.models.info.ModelInfo.normalize`,
   written with TensorFlow ops. Masks are float32 in [0, 1], ``NxSxSx1``.

Random draws are stateless and seeded per element, so a run repeats exactly
whatever the number of parallel calls.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from RMBG.constants import SEED
from RMBG.images.dataset import Pair
from RMBG.images.io import (
    read_image,
    read_mask,
)
from RMBG.training.augment import (
    Augment,
    augment,
    composite,
    plain_background,
)

#: Never cache more than this many bytes of decoded data in memory.
CACHE_MAX_BYTES = 4 << 30

#: Fraction of the memory available at start that the cache may take.
CACHE_MEMORY_SHARE = 0.5

AUTOTUNE = -1  # tf.data.AUTOTUNE, without importing TensorFlow at module load


# ---------------------------------------------------------------------------
# Decoding and resizing
# ---------------------------------------------------------------------------
def _py_decode(image_path, mask_path):
    """numpy_function body: any image/mask through RMBG.images.io (EXIF, CMYK, 16-bit...)."""
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
    first_batch: int = 0,
):
    """Endless shuffled, augmented, normalised training batches ``(NxCxCx3, NxCxCx1)``.

    ``input_context`` (a ``tf.distribute.InputContext``) shards the files
    between input pipelines and makes ``batch`` the global batch. The stream
    starts at batch ``first_batch`` of the seeded stream (a resumed run goes on
    where it stopped instead of seeing its first epoch's batches again).
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
    # skipped before the augmentation so a resumed run does not augment what it throws away
    ds = ds.skip(int(first_batch) * batch)
    ds = ds.map(
        lambda pair, s: (*augment(pair[0], pair[1], s, settings), pair[2]),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.batch(batch, drop_remainder=True)
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed + 1).batch(2).skip(int(first_batch))))

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
