"""Thumbnails for figures: pictures shrunk (or scaled to one height) as 8 bits.

Used by evaluate's report figures (:mod:`RMBG.evaluation.report_figures`) and the notebooks'
figures (:mod:`RMBG.viz`), so both shrink photos, masks and cut-outs the same way.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from RMBG.removal.compose import alpha_to_uint8

#: Thumbnails in grids are at most this many pixels on their longer side.
THUMB_SIDE = 256


def _resized(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """``array`` (HxW or HxWxC) as 8 bits, resized bilinearly to ``width`` x ``height``."""
    array = alpha_to_uint8(array)
    if (array.shape[1], array.shape[0]) == (width, height):
        return array
    return np.asarray(Image.fromarray(array).resize((width, height), Image.Resampling.BILINEAR))


def thumbnail(array: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """``array`` (HxW or HxWxC uint8/float) as 8 bits, shrunk so its longer side is at most ``side``.

    A picture already small enough keeps its size (it is never enlarged).
    """
    array = np.asarray(array)
    height, width = array.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return alpha_to_uint8(array)
    return _resized(array, max(1, round(width * scale)), max(1, round(height * scale)))


def thumbnail_of_height(array: np.ndarray, height: int) -> np.ndarray:
    """``array`` (HxW or HxWxC uint8/float) as 8 bits, scaled to exactly ``height`` pixels tall.

    Unlike :func:`thumbnail`, a smaller picture is enlarged, so that the
    pictures of a gallery row all share one height.
    """
    array = np.asarray(array)
    h, w = array.shape[:2]
    return _resized(array, max(1, round(w * height / h)), height)
