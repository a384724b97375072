"""Prompts for measuring the box prompt (:mod:`RMBG.removal.box`): held-out photos and boxes from their truth.

:func:`validation_pairs` lists the photos of a shared set that the default
model never trained on (its validation list); :func:`truth_box` is the box a
person would draw around the true subject, a little loose.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def validation_pairs(data_root: str | os.PathLike, set_name: str, val_list: str | os.PathLike,
                     limit: int | None = None) -> list[tuple[Path, Path]]:
    """``(photo, mask)`` paths of ``set_name`` (``people``, ``ecssd``, ``cats``) listed in ``val_list``
    (lines relative to ``data_root``, such as ``people/images/person_0007.jpg``), in its order."""
    root = Path(data_root)
    found = []
    for line in Path(val_list).read_text().splitlines():
        line = line.strip()
        if not line.startswith(f"{set_name}/images/"):
            continue
        photo = root / line
        mask = root / set_name / "masks" / f"{photo.stem}.png"
        if photo.is_file() and mask.is_file():
            found.append((photo, mask))
    return found[:limit] if limit else found


def truth_box(mask: np.ndarray, shape: tuple[int, int], grow: float = 0.1) -> tuple[int, int, int, int]:
    """The box ``(x0, y0, x1, y1)`` in pixels of a photo of ``shape`` around the foreground of ``mask``
    (above half, at any size of the same aspect), grown by ``grow`` of its width and height on each
    side and clipped to the photo; a ValueError when the mask has no foreground."""
    mask = np.asarray(mask, np.float32)
    fg = mask >= 0.5 * (255.0 if mask.max() > 1.0 else 1.0)
    rows, cols = np.flatnonzero(fg.any(axis=1)), np.flatnonzero(fg.any(axis=0))
    if rows.size == 0:
        raise ValueError("the mask has no foreground to box")
    height, width = shape[:2]
    sy, sx = height / mask.shape[0], width / mask.shape[1]
    x0, x1 = cols[0] * sx, (cols[-1] + 1) * sx
    y0, y1 = rows[0] * sy, (rows[-1] + 1) * sy
    gx, gy = grow * (x1 - x0), grow * (y1 - y0)
    return (max(0, int(x0 - gx)), max(0, int(y0 - gy)), min(width, int(np.ceil(x1 + gx))),
            min(height, int(np.ceil(y1 + gy))))
