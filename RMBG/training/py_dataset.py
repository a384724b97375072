"""The input pipeline that needs no TensorFlow: ``keras.utils.PyDataset`` batches decoded by PIL,
augmented in numpy, built by worker threads (any Keras backend; the JAX path's pipeline).

The stages and results of :mod:`RMBG.training.tf_data`, in numpy:

1. :func:`load_pair` decodes a pair through :mod:`RMBG.images.io` (EXIF, CMYK, 16-bit, ... as
   everywhere) and resizes image (Lanczos, antialiased) and mask (bilinear, antialiased) to the square
   ``image_size``, as ``uint8``: TensorFlow's ``resize_pair`` arithmetic within a grey level or two.
   Decoded pairs are cached in memory when they fit (:func:`RMBG.training.tf_data.cache_fits`); a pair
   that cannot be read is reported by name once and left out.
2. :class:`TrainBatches`: an endless stream of the training pairs, reshuffled on every pass, cut into
   batches; each example augmented by :func:`RMBG.training.py_augment.augment`, each batch finished by
   ``composite`` and ``plain_background``, then normalised exactly as ``ModelInfo.normalize``.
   Batch ``k`` depends only on ``(seed, k)`` (its own random generators), so a run repeats exactly
   whatever the number of worker threads and however Keras schedules them.
3. :class:`EvalBatches`: validation batches in order, ``(normalised images, masks in [0, 1])``.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Sequence

import keras
import numpy as np
from PIL import Image

from RMBG.constants import SEED
from RMBG.images.dataset import Pair
from RMBG.images.io import read_image, read_mask
from RMBG.training import py_augment
from RMBG.training.augment import Augment
from RMBG.training.tf_data import cache_fits

#: Worker threads when a preset sets none: one a core, at most this many.
MAX_AUTO_WORKERS = 8


def auto_workers(workers: int | None = None) -> int:
    """``workers``, or one thread a core (at most :data:`MAX_AUTO_WORKERS`)."""
    return int(workers) if workers else max(1, min(MAX_AUTO_WORKERS, os.cpu_count() or 1))


# ---------------------------------------------------------------------------
# Decoding and resizing
# ---------------------------------------------------------------------------
def _resize_plane(plane: np.ndarray, size: int, method) -> np.ndarray:
    """One float32 plane to ``size x size`` with PIL's antialiased filter (float, no rounding between passes)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32)).resize((size, size), method))


def resize_pair(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``HxWx3`` uint8 image (Lanczos) and ``hxw`` float mask in [0, 1] (bilinear) to ``size`` square uint8
    (``SxSx3``, ``SxSx1`` 0-255), as :func:`RMBG.training.tf_data.resize_pair`."""
    channels = [_resize_plane(image[..., c], size, Image.LANCZOS) for c in range(3)]
    resized = np.round(np.clip(np.stack(channels, axis=-1), 0.0, 255.0)).astype(np.uint8)
    small = _resize_plane(mask, size, Image.BILINEAR)
    return resized, np.round(np.clip(small, 0.0, 1.0) * 255.0).astype(np.uint8)[..., None]


def load_pair(pair: Pair, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode and resize one pair: ``(SxSx3 uint8, SxSx1 uint8 0-255)``."""
    return resize_pair(read_image(pair.image), read_mask(pair.mask), size)


class DecodedPairs:
    """Pairs decoded at ``size`` on first use, kept in memory when ``cache`` and they fit; thread-safe.

    ``get(i)`` is ``None`` for a pair that cannot be read (reported once, by name)."""

    def __init__(self, pairs: Sequence[Pair], size: int, cache: bool = True):
        if not pairs:
            raise ValueError("no pairs to load (is the dataset empty, or was every file skipped?)")
        self.pairs, self.size = list(pairs), int(size)
        self.cache = cache and cache_fits(len(self.pairs), self.size)
        self._store: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.pairs)

    def get(self, index: int):
        if index in self._store:
            return self._store[index]
        pair = self.pairs[index]
        try:
            loaded = load_pair(pair, self.size)
        except Exception as exc:  # noqa: BLE001 - any unreadable file: named once, then left out
            loaded = None
            with self._lock:
                if index not in self._store:
                    print(f"warning: {pair.image}: {exc}; pair left out", file=sys.stderr, flush=True)
                    self._store[index] = None
        if self.cache and loaded is not None:
            self._store[index] = loaded
        return loaded

    def teacher(self, index: int) -> bool:
        return self.pairs[index].teacher


class ArrayPairs:
    """Pairs already decoded at one size (``NxSxSx3`` uint8 images, ``NxSxSx1`` uint8 masks 0-255, e.g. an
    ``.npz`` slice of a dataset), in :class:`DecodedPairs`' place."""

    def __init__(self, images: np.ndarray, masks: np.ndarray):
        if len(images) != len(masks) or not len(images):
            raise ValueError(f"{len(images)} images and {len(masks)} masks: need as many, at least one")
        self.images, self.masks = images, masks.reshape(*masks.shape[:3], 1)

    def __len__(self) -> int:
        return len(self.images)

    def get(self, index: int):
        return self.images[index], self.masks[index]

    def teacher(self, index: int) -> bool:
        return False


# ---------------------------------------------------------------------------
# Training batches
# ---------------------------------------------------------------------------
class TrainBatches(keras.utils.PyDataset):
    """Endless shuffled, augmented, normalised training batches ``(NxCxCx3 float32, NxCxCx1 float32)``.

    Batch ``k`` takes examples ``k*N .. k*N+N-1`` of a stream made of one seeded permutation of the pairs
    after another (pass ``p`` shuffled by ``(seed, p)``); unreadable pairs are skipped in the stream."""

    def __init__(self, pairs: Sequence[Pair] | ArrayPairs, info, image_size: int, batch: int, settings: Augment,
                 seed: int = SEED, cache: bool = True, workers: int | None = None, first_batch: int = 0):
        workers = auto_workers(workers)
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max(2, 2 * workers))
        self.decoded = pairs if isinstance(pairs, ArrayPairs) else DecodedPairs(pairs, image_size, cache)
        self.info, self.batch, self.settings = info, int(batch), settings
        self.seed, self.first_batch = int(seed), int(first_batch)
        self._orders: dict[int, np.ndarray] = {}

    @property
    def num_batches(self):
        return None  # endless: fit's steps_per_epoch cuts the epochs

    def order(self, epoch_pass: int) -> np.ndarray:
        """The shuffled pair indices of one pass over the data."""
        order = self._orders.get(epoch_pass)
        if order is None:
            order = np.random.default_rng([self.seed, 0, epoch_pass]).permutation(len(self.decoded))
            self._orders[epoch_pass] = order
            self._orders.pop(epoch_pass - 4, None)
        return order

    def examples(self, index: int):
        """``(position in the stream, pair index, (image, mask))`` of batch ``index``'s examples."""
        count = len(self.decoded)
        position = (self.first_batch + index) * self.batch
        found, tried = [], 0
        while len(found) < self.batch:
            if tried > 2 * count and not found:
                raise ValueError(f"none of the {count} training pairs can be read")
            pair_index = int(self.order(position // count)[position % count])
            loaded = self.decoded.get(pair_index)
            if loaded is not None:
                found.append((position, pair_index, loaded))
            position, tried = position + 1, tried + 1
        return found

    def __getitem__(self, index: int):
        settings, images, masks, teacher = self.settings, [], [], []
        for position, pair_index, (image, mask) in self.examples(index):
            rng = np.random.default_rng([self.seed, 1, position])
            x, y = py_augment.augment(image, mask, rng, settings)
            images.append(x)
            masks.append(y)
            teacher.append(self.decoded.teacher(pair_index))
        images, masks = np.stack(images), np.stack(masks)
        rng = np.random.default_rng([self.seed, 2, self.first_batch + index])
        images = py_augment.composite(images, masks, rng, settings.composite)
        allowed = ~np.array(teacher) if settings.plain_background_on == "truth" else None
        images = py_augment.plain_background(images, masks, rng, settings.plain_background, allowed)
        return self.info.normalize(images), masks


# ---------------------------------------------------------------------------
# Validation batches
# ---------------------------------------------------------------------------
class EvalBatches:
    """Validation/evaluation batches in order: ``(normalised NxSxSx3, NxSxSx1 mask in [0, 1])``;
    iterable any number of times (decoded once when the pairs fit in memory)."""

    def __init__(self, pairs: Sequence[Pair] | ArrayPairs, info, image_size: int, batch: int, cache: bool = True):
        self.decoded = pairs if isinstance(pairs, ArrayPairs) else DecodedPairs(pairs, image_size, cache)
        self.info, self.batch = info, int(batch)

    def __len__(self) -> int:
        return -(-len(self.decoded) // self.batch)

    def __iter__(self):
        images, masks = [], []
        for index in range(len(self.decoded)):
            loaded = self.decoded.get(index)
            if loaded is None:
                continue
            images.append(loaded[0])
            masks.append(loaded[1])
            if len(images) == self.batch:
                yield self._finish(images, masks)
                images, masks = [], []
        if images:
            yield self._finish(images, masks)

    def _finish(self, images, masks):
        return self.info.normalize(np.stack(images)), np.stack(masks).astype(np.float32) / 255.0
