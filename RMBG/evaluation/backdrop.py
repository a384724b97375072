"""Photos already cut out on a flat backdrop: the backdrop as ground truth, and what a mask leaks onto it.

A cut-out pasted on one flat colour (``seed_test/images/1.png``: a lion on
black) has a mask of its own without anyone drawing it: the pixels of the
border's colour that connect to the border are background. That region is
what a model must leave at 0 even where it is enclosed by the subject (the
gap between a tail and a leg), so :func:`backdrop_leak` is a check on
photos with no mask file.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Largest per-channel distance (0-255) from the border colour still counted as backdrop.
BACKDROP_TOLERANCE = 12
#: Share of border pixels that must be within tolerance of their median for a backdrop to count as flat.
FLAT_BORDER_SHARE = 0.9


def _border(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


def flat_backdrop(image: np.ndarray, tolerance: int = BACKDROP_TOLERANCE) -> np.ndarray | None:
    """Boolean ``HxW`` backdrop of an ``HxWx3`` uint8 photo, or ``None`` when its border is not one flat colour.

    Backdrop = pixels within ``tolerance`` of the border's median colour (every
    channel) that are 8-connected to the image border.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 photo, got {image.shape} {image.dtype}")
    border = _border(image).astype(np.int16)
    colour = np.median(border, axis=0)
    if (np.abs(border - colour).max(axis=1) <= tolerance).mean() < FLAT_BORDER_SHARE:
        return None
    near = (np.abs(image.astype(np.int16) - colour).max(axis=2) <= tolerance).astype(np.uint8)
    _, labels = cv2.connectedComponents(near, connectivity=8)
    touching = np.setdiff1d(np.unique(_border(labels)), [0])
    return np.isin(labels, touching)


@dataclass(frozen=True)
class Leak:
    """How much of a known backdrop a mask calls foreground."""

    mean_alpha: float  # mean mask value over the backdrop (0 = none leaked)
    pixels_over_half: int  # backdrop pixels the mask puts above 0.5
    backdrop_pixels: int


def backdrop_leak(mask: np.ndarray, backdrop: np.ndarray) -> Leak:
    """:class:`Leak` of a float ``HxW`` mask in [0, 1] over a boolean backdrop of the same size."""
    mask, backdrop = np.asarray(mask, np.float32), np.asarray(backdrop, bool)
    if mask.shape != backdrop.shape:
        raise ValueError(f"mask {mask.shape} and backdrop {backdrop.shape} differ in size")
    values = mask[backdrop]
    return Leak(
        mean_alpha=float(values.mean()) if values.size else 0.0,
        pixels_over_half=int((values > 0.5).sum()),
        backdrop_pixels=int(values.size),
    )
