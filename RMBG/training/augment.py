"""Training augmentation: random resized crop, flip and colour jitter per photo
(:func:`augment`), then per batch a foreground pasted on another photo
(:func:`composite`) or on one flat colour (:func:`plain_background`).

Every draw is stateless and seeded per element, so a run repeats exactly
whatever the number of parallel calls. Inputs and outputs are TensorFlow
tensors; :mod:`RMBG.training.tf_data` builds the datasets around these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Colour jitter: hue moves by at most this fraction of ``jitter`` (hue is a circle).
HUE_SHARE = 0.1


@dataclass(frozen=True)
class Augment:
    """Training augmentation settings (see :class:`RMBG.training.presets.Preset`)."""

    crop_size: int
    crop_scale: tuple[float, float] = (0.5, 1.0)
    crop_ratio: tuple[float, float] = (0.75, 1.333)
    flip: bool = True
    jitter: float = 0.2
    composite: float = 0.0
    plain_background: float = 0.0
    #: ``"all"`` photos, or ``"truth"``: only photos whose mask is not a teacher's map alone.
    plain_background_on: str = "all"

    @classmethod
    def from_preset(cls, preset) -> "Augment":
        return cls(
            crop_size=preset.train_size,
            crop_scale=tuple(preset.crop_scale),
            crop_ratio=tuple(preset.crop_ratio),
            flip=preset.flip,
            jitter=preset.jitter,
            composite=preset.composite,
            plain_background=preset.plain_background,
            plain_background_on=preset.plain_background_on,
        )


def crop_box(seed, scale, ratio):
    """A random box ``[y1, x1, y2, x2]`` (0-1 coordinates) of area fraction in ``scale``
    and aspect (width / height) in ``ratio`` (log-uniform), clipped to the image."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 4)
    area = tf.random.stateless_uniform([], seeds[0], scale[0], scale[1] + 1e-9)
    log_ratio = tf.random.stateless_uniform(
        [], seeds[1], float(np.log(ratio[0])), float(np.log(ratio[1])) + 1e-9
    )
    aspect = tf.exp(log_ratio)
    width = tf.minimum(tf.sqrt(area * aspect), 1.0)
    height = tf.minimum(tf.sqrt(area / aspect), 1.0)
    x1 = tf.random.stateless_uniform([], seeds[2]) * (1.0 - width)
    y1 = tf.random.stateless_uniform([], seeds[3]) * (1.0 - height)
    return tf.stack([y1, x1, y1 + height, x1 + width])


def colour_jitter(image, seed, strength: float):
    """Brightness, contrast, saturation (factors in 1 +- strength) and a small hue shift,
    on a 0-1 float RGB image; the result stays in [0, 1]."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 4)
    lo, hi = 1.0 - strength, 1.0 + strength
    image = image * tf.random.stateless_uniform([], seeds[0], lo, hi)
    mean = tf.reduce_mean(image, axis=[0, 1], keepdims=True)
    image = (image - mean) * tf.random.stateless_uniform([], seeds[1], lo, hi) + mean
    grey = tf.reduce_sum(image * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)
    image = grey + (image - grey) * tf.random.stateless_uniform([], seeds[2], lo, hi)
    image = tf.clip_by_value(image, 0.0, 1.0)
    delta = strength * HUE_SHARE
    image = tf.image.adjust_hue(image, tf.random.stateless_uniform([], seeds[3], -delta, delta))
    return tf.clip_by_value(image, 0.0, 1.0)


def augment(image, mask, seed, settings: Augment):
    """One training example: random resized crop (image and mask together), flip, jitter.

    In: uint8 ``SxSx3`` and ``SxSx1`` (0-255). Out: float32 image 0-255 and mask 0-1,
    both ``crop_size`` square.
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 3)
    size = settings.crop_size
    stacked = tf.concat([tf.cast(image, tf.float32), tf.cast(mask, tf.float32)], axis=-1)
    box = crop_box(seeds[0], settings.crop_scale, settings.crop_ratio)
    stacked = tf.image.crop_and_resize(stacked[None], box[None], [0], (size, size), method="bilinear")[0]
    if settings.flip:
        stacked = tf.cond(
            tf.random.stateless_uniform([], seeds[1]) < 0.5,
            lambda: tf.reverse(stacked, axis=[1]),
            lambda: stacked,
        )
    image, mask = stacked[..., :3], stacked[..., 3:]
    if settings.jitter > 0:
        image = colour_jitter(image / 255.0, seeds[2], settings.jitter) * 255.0
    return tf.clip_by_value(image, 0.0, 255.0), tf.clip_by_value(mask / 255.0, 0.0, 1.0)


def composite(images, masks, seed, probability: float):
    """Per batch: with ``probability`` each foreground is pasted (through its own mask)
    onto the next photo of the batch, which becomes its background. Masks are unchanged."""
    import tensorflow as tf

    if probability <= 0:
        return images
    count = tf.shape(images)[0]
    backgrounds = tf.roll(images, shift=1, axis=0)
    chosen = tf.random.stateless_uniform([count, 1, 1, 1], seed) < probability
    pasted = masks * images + (1.0 - masks) * backgrounds
    return tf.where(chosen & (count > 1), pasted, images)


def plain_background(images, masks, seed, probability: float, allowed=None):
    """Per image, with ``probability``: the background (through the mask) replaced by one
    flat colour, black or white half the time, else a random RGB. Teaches that a backdrop
    of one colour is background, as in photos already cut out. Masks are unchanged.

    ``allowed`` (optional, one bool per image): only those images may be chosen; the
    others are kept whatever the draw (e.g. photos whose mask is a teacher's soft map,
    whose half-grey edges would paste half-backdrop pixels that the target calls
    foreground). The draws do not depend on ``allowed``."""
    import tensorflow as tf

    if probability <= 0:
        return images
    count = tf.shape(images)[0]
    seeds = [tf.stack([seed[0], seed[1] + k]) for k in range(4)]
    chosen = tf.random.stateless_uniform([count, 1, 1, 1], seeds[0]) < probability
    if allowed is not None:
        chosen = chosen & tf.reshape(tf.cast(allowed, tf.bool), [count, 1, 1, 1])
    grey = tf.round(tf.random.stateless_uniform([count, 1, 1, 1], seeds[1])) * 255.0
    colour = tf.random.stateless_uniform([count, 1, 1, 3], seeds[2], 0.0, 255.0)
    black_or_white = tf.random.stateless_uniform([count, 1, 1, 1], seeds[3]) < 0.5
    backdrop = tf.where(black_or_white, tf.broadcast_to(grey, tf.shape(colour)), colour)
    pasted = masks * images + (1.0 - masks) * backdrop
    return tf.where(chosen, pasted, images)
