"""Mask pixels: normalising any mask file to 8-bit 0-255 and resizing it without artefacts.

Shared by :mod:`Preprocess.util` (``resize``), :mod:`Preprocess.prepare` and
:mod:`Preprocess.check` (``--fix``), so that every stage turns RGB, RGBA,
16-bit, palette and 0/1-label masks into the same single-channel 0-255 array
and resizes binary masks without leaving grey fringes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from RMBG.images.io import mask_from_pil

#: PIL modes that hold one channel of integers (where 0/1 label masks can hide).
_INTEGER_GREY_MODES = {"L", "I", "I;16", "I;16B", "I;16L", "I;16N"}


def is_label_mask(img: Image.Image) -> bool:
    """True when a greyscale mask stores labels 0/1 instead of 0/255 (it looks black)."""
    if img.mode not in _INTEGER_GREY_MODES:
        return False
    array = np.asarray(img)
    return array.size > 0 and int(array.min()) >= 0 and int(array.max()) == 1


def mask_to_uint8(img: Image.Image) -> np.ndarray:
    """Any mask picture as an ``HxW`` uint8 array, 0 background to 255 foreground.

    0/1 label masks become 0/255; 16-bit masks are scaled by their depth; RGB
    uses its luminance and RGBA its alpha when the alpha is not uniform (see
    :func:`RMBG.images.io.mask_from_pil`). Soft masks keep their grey levels.
    EXIF orientation is applied.
    """
    if is_label_mask(img):
        upright = ImageOps.exif_transpose(img)
        return (np.asarray(upright) > 0).astype(np.uint8) * 255
    values = mask_from_pil(img)
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def is_binary(mask: np.ndarray) -> bool:
    """True when every pixel of a uint8 mask is 0 or 255."""
    return bool(np.all((mask == 0) | (mask == 255)))


def resize_mask(mask: np.ndarray, size: tuple[int, int], method: str = "lanczos") -> np.ndarray:
    """Resize a uint8 mask to ``size`` = ``(width, height)``.

    ``"nearest"`` copies the nearest pixel (no new values). ``"lanczos"``
    resamples smoothly; a binary (0/255) mask is then re-binarised at 128 so
    that it stays binary, while a soft mask keeps the resampled grey levels.
    """
    method = method.lower()
    if method not in {"lanczos", "nearest"}:
        raise ValueError(f"mask resize method must be 'lanczos' or 'nearest', got {method!r}")
    width, height = int(size[0]), int(size[1])
    if (mask.shape[1], mask.shape[0]) == (width, height):
        return mask.copy()
    picture = Image.fromarray(mask, mode="L")
    if method == "nearest":
        return np.asarray(picture.resize((width, height), Image.Resampling.NEAREST))
    resized = np.asarray(picture.resize((width, height), Image.Resampling.LANCZOS))
    if is_binary(mask):
        return np.where(resized >= 128, 255, 0).astype(np.uint8)
    return resized


def fit_longest_side(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """``size`` scaled so its longer side is ``longest`` (aspect kept, never upscaled)."""
    width, height = size
    scale = longest / max(width, height)
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))
