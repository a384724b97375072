"""The subject's bounding box, for ``remove --crop [--margin PX]``.

The box holds every pixel whose alpha is above ``CROP_ALPHA_LEVEL`` (so the
faint noise a model leaves far from the subject does not stretch it), grown
by ``margin`` pixels on each side and clipped to the picture.
"""

from __future__ import annotations

import numpy as np

from RMBG.constants import CROP_ALPHA_LEVEL


def check_margin(margin: int | None) -> int | None:
    """``margin`` as an int of at least 0 (or None: no crop), else a ValueError."""
    if margin is None:
        return None
    if int(margin) != margin or margin < 0:
        raise ValueError(f"crop margin {margin}: expected a whole number of pixels, 0 or more")
    return int(margin)


def subject_box(alpha8: np.ndarray, margin: int = 0, level: float = CROP_ALPHA_LEVEL) -> tuple[slice, slice] | None:
    """``(rows, cols)`` slices of the box around the pixels of ``alpha8`` (``HxW`` uint8) above
    ``level`` (a fraction of 255), grown by ``margin`` px and clipped to the picture; ``None``
    when no pixel is above ``level`` (there is no subject to crop to)."""
    alpha8 = np.asarray(alpha8)
    if alpha8.dtype != np.uint8 or alpha8.ndim != 2:
        raise ValueError(f"alpha of shape {alpha8.shape} and dtype {alpha8.dtype}: expected HxW uint8")
    present = alpha8 > round(level * 255)
    rows = np.flatnonzero(present.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(present.any(axis=0))
    height, width = alpha8.shape
    margin = check_margin(margin) or 0
    top, bottom = max(0, int(rows[0]) - margin), min(height, int(rows[-1]) + 1 + margin)
    left, right = max(0, int(cols[0]) - margin), min(width, int(cols[-1]) + 1 + margin)
    return slice(top, bottom), slice(left, right)
