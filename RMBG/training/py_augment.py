"""The training augmentations of :mod:`RMBG.training.augment` in numpy, for the input pipeline that needs
no TensorFlow (:mod:`RMBG.training.py_dataset`).

The same operations with the same settings (:class:`~RMBG.training.augment.Augment`) and the same
distributions: random resized crop (TensorFlow's ``crop_and_resize`` arithmetic, bilinear), horizontal
flip, colour jitter (brightness, contrast, saturation, hue), then per batch :func:`composite` and
:func:`plain_background`. Only the random numbers differ: each function takes a
``numpy.random.Generator``, seeded per example or per batch by the caller, so a run repeats exactly
whatever the number of worker threads. Each random step draws its values first and hands them to a
deterministic function (:func:`crop_and_resize`, :func:`apply_jitter`) that tests compare with
TensorFlow's ops on the same values.
"""

from __future__ import annotations

import numpy as np

from RMBG.training.augment import HUE_SHARE, Augment


# ---------------------------------------------------------------------------
# Deterministic operations (TensorFlow's arithmetic)
# ---------------------------------------------------------------------------
def crop_and_resize(image: np.ndarray, box, size: int) -> np.ndarray:
    """``tf.image.crop_and_resize(image[None], box[None], [0], (size, size), "bilinear")[0]`` in numpy.

    ``box`` is ``[y1, x1, y2, x2]`` in 0-1 coordinates (inside the image); ``image`` is ``HxWxC`` float32."""
    height, width = image.shape[:2]
    y1, x1, y2, x2 = (float(v) for v in box)
    steps = np.arange(size, dtype=np.float32)

    def positions(lo, hi, extent):
        if size > 1:
            return lo * (extent - 1) + steps * ((hi - lo) * (extent - 1) / (size - 1))
        return np.full(1, 0.5 * (lo + hi) * (extent - 1), np.float32)

    ys = np.clip(positions(y1, y2, height), 0, height - 1)
    xs = np.clip(positions(x1, x2, width), 0, width - 1)
    top, left = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    bottom, right = np.ceil(ys).astype(np.int64), np.ceil(xs).astype(np.int64)
    y_lerp = (ys - top).astype(np.float32)[:, None, None]
    x_lerp = (xs - left).astype(np.float32)[None, :, None]
    rows_top, rows_bottom = image[top], image[bottom]
    upper = rows_top[:, left] + (rows_top[:, right] - rows_top[:, left]) * x_lerp
    lower = rows_bottom[:, left] + (rows_bottom[:, right] - rows_bottom[:, left]) * x_lerp
    return (upper + (lower - upper) * y_lerp).astype(np.float32)


def adjust_hue(image: np.ndarray, delta: float) -> np.ndarray:
    """``tf.image.adjust_hue``: RGB (0-1 float) to HSV, hue moved by ``delta`` (a fraction of the circle), back."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    value = image.max(axis=-1)
    chroma = value - image.min(axis=-1)
    safe = np.where(chroma > 0, chroma, 1.0)
    saturation = np.where(value > 0, chroma / np.where(value > 0, value, 1.0), 0.0)
    hue = np.where(
        value == r, (g - b) / safe, np.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    )
    hue = np.where(chroma > 0, hue / 6.0, 0.0)
    hue = np.mod(hue + delta, 1.0) * 6.0
    sector = np.floor(hue)
    fraction = hue - sector
    sector = sector.astype(np.int64) % 6
    p = value * (1.0 - saturation)
    q = value * (1.0 - saturation * fraction)
    t = value * (1.0 - saturation * (1.0 - fraction))
    choices = [(value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value), (value, p, q)]
    out = np.empty_like(image)
    for channel in range(3):
        out[..., channel] = np.choose(sector, [c[channel] for c in choices])
    return out


def apply_jitter(image: np.ndarray, brightness: float, contrast: float, saturation: float, hue: float):
    """:func:`RMBG.training.augment.colour_jitter` with its four draws given, on a 0-1 float RGB image."""
    image = image * np.float32(brightness)
    mean = image.mean(axis=(0, 1), keepdims=True)
    image = (image - mean) * np.float32(contrast) + mean
    grey = (image * np.array([0.299, 0.587, 0.114], np.float32)).sum(axis=-1, keepdims=True)
    image = grey + (image - grey) * np.float32(saturation)
    image = np.clip(image, 0.0, 1.0)
    return np.clip(adjust_hue(image, hue), 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------
# Random draws (the distributions of RMBG.training.augment)
# ---------------------------------------------------------------------------
def crop_box(rng: np.random.Generator, scale, ratio) -> np.ndarray:
    """:func:`RMBG.training.augment.crop_box`: area fraction uniform in ``scale``, aspect log-uniform in ``ratio``."""
    area = rng.uniform(scale[0], scale[1] + 1e-9)
    aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]) + 1e-9))
    width = min(np.sqrt(area * aspect), 1.0)
    height = min(np.sqrt(area / aspect), 1.0)
    x1 = rng.uniform() * (1.0 - width)
    y1 = rng.uniform() * (1.0 - height)
    return np.array([y1, x1, y1 + height, x1 + width], np.float32)


def jitter_draws(rng: np.random.Generator, strength: float) -> tuple[float, float, float, float]:
    """Brightness, contrast and saturation factors in ``1 +- strength``, a hue shift in ``+- strength * HUE_SHARE``."""
    lo, hi = 1.0 - strength, 1.0 + strength
    delta = strength * HUE_SHARE
    return rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform(-delta, delta)


def augment(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, settings: Augment):
    """One training example, as :func:`RMBG.training.augment.augment`: uint8 ``SxSx3`` and ``SxSx1`` (0-255) in,
    float32 image 0-255 and mask 0-1 (both ``crop_size`` square) out."""
    stacked = np.concatenate([image.astype(np.float32), mask.astype(np.float32)], axis=-1)
    box = crop_box(rng, settings.crop_scale, settings.crop_ratio)
    stacked = crop_and_resize(stacked, box, settings.crop_size)
    flip = rng.uniform() < 0.5
    if settings.flip and flip:
        stacked = stacked[:, ::-1]
    image, mask = stacked[..., :3], stacked[..., 3:]
    if settings.jitter > 0:
        image = apply_jitter(image / 255.0, *jitter_draws(rng, settings.jitter)) * 255.0
    return np.clip(image, 0.0, 255.0).astype(np.float32), np.clip(mask / 255.0, 0.0, 1.0).astype(np.float32)


def composite(images: np.ndarray, masks: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
    """:func:`RMBG.training.augment.composite`: with ``probability`` a foreground is pasted on the next photo."""
    if probability <= 0:
        return images
    count = images.shape[0]
    chosen = (rng.uniform(size=(count, 1, 1, 1)) < probability) & (count > 1)
    pasted = masks * images + (1.0 - masks) * np.roll(images, 1, axis=0)
    return np.where(chosen, pasted, images).astype(np.float32)


def plain_background(images, masks, rng: np.random.Generator, probability: float, allowed=None) -> np.ndarray:
    """:func:`RMBG.training.augment.plain_background`: with ``probability`` the background becomes one flat
    colour (black or white half the time, else a random RGB); ``allowed`` limits which images may be chosen."""
    if probability <= 0:
        return images
    count = images.shape[0]
    chosen = rng.uniform(size=(count, 1, 1, 1)) < probability
    if allowed is not None:
        chosen = chosen & np.asarray(allowed, bool).reshape(count, 1, 1, 1)
    grey = np.round(rng.uniform(size=(count, 1, 1, 1))) * 255.0
    colour = rng.uniform(0.0, 255.0, size=(count, 1, 1, 3))
    black_or_white = rng.uniform(size=(count, 1, 1, 1)) < 0.5
    backdrop = np.where(black_or_white, np.broadcast_to(grey, colour.shape), colour)
    pasted = masks * images + (1.0 - masks) * backdrop
    return np.where(chosen, pasted, images).astype(np.float32)
