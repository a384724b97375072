"""Foreground colours at soft edges: no halo of the old background in a cut-out.

A photo's pixel at a soft edge is a mix, ``I = a F + (1 - a) B``, of the
subject's colour ``F`` and the background's ``B``. Composing ``I`` itself
over a new background (what a plain ``I * a`` does) keeps the ``(1 - a) B``
part: a green rim on a subject shot on green. :func:`estimate_foreground`
recovers ``F`` where ``0 < a < 1`` by *blur fusion* (Forte and Pitie,
"Approximate fast foreground colour estimation", ICIP 2021), written here
with box filters:

* pass 1, wide: ``F1`` and ``B1`` are the photo's colours averaged over a wide
  window, weighted by ``a`` and ``1 - a``; these smooth fields are computed at
  most ``FOREGROUND_WORK_SIDE`` px wide (they hold no detail to lose) and
  sampled at full size only where they are needed;
* pass 2, narrow: the same averages of the pass-1 colours over a small window,
  at full size, then ``F = F2 + a (I - a F2 - (1 - a) B2)``, which puts back
  the photo's own detail and leaves opaque pixels exactly as they were.

The band where ``F`` is estimated is not only the mask's own soft pixels: a
mask predicted at the model's small size is sharper than the true edge and
may sit a model pixel or two off it, so the old background also shows just
inside the mask's opaque part. The mask is first *spread*, box-blurred over
``FOREGROUND_SPREAD_MODEL_PX`` of the model's input pixels (scaled to the
photo: ``longer side / model_side`` photo pixels each), and both passes use
that spread alpha; only the colours change, the cut-out keeps the mask's own
alpha. ``model_side=None`` trusts the alpha as exact (a known matte).

Pass 2 runs only in the tiles of the picture that hold band pixels (with a
margin of the window), so a large photo whose band is a thin line costs
little; pixels outside the band are returned unchanged.
``scripts/bench_foreground.py`` measures the spill, the colour error and the
time against the plain composite and pymatting's ``estimate_foreground_ml``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from RMBG.constants import (
    FOREGROUND_MIN_NARROW,
    FOREGROUND_MIN_WIDE,
    FOREGROUND_MODEL_SIDE,
    FOREGROUND_NARROW_FRACTION,
    FOREGROUND_SPREAD_MODEL_PX,
    FOREGROUND_TILE,
    FOREGROUND_WIDE_FRACTION,
    FOREGROUND_WORK_SIDE,
)

#: The least weight a window's average divides by (a window with no weight gives about 0, which
#: no soft pixel uses; above it the average is exact, so a flat colour stays that colour).
_MIN_WEIGHT = 1e-6


def soft_band(alpha8: np.ndarray) -> np.ndarray:
    """Pixels whose 8-bit alpha is neither 0 nor 255, as a bool ``HxW`` array."""
    return (alpha8 > 0) & (alpha8 < 255)


def window_sizes(height: int, width: int) -> tuple[int, int]:
    """The wide (pass 1) and narrow (pass 2) box widths, in full-size pixels, for a photo of this size."""
    side = max(height, width)
    wide = max(FOREGROUND_MIN_WIDE, round(FOREGROUND_WIDE_FRACTION * side))
    narrow = max(FOREGROUND_MIN_NARROW, round(FOREGROUND_NARROW_FRACTION * side))
    return wide, narrow


def _box(x: np.ndarray, size: int) -> np.ndarray:
    return cv2.blur(x, (size, size), borderType=cv2.BORDER_REFLECT)


def _weighted_mean(colour: np.ndarray, weight: np.ndarray, size: int) -> np.ndarray:
    """The box average of ``colour`` (``HxWx3``) weighted by ``weight`` (``HxW``)."""
    return _box(colour * weight[..., None], size) / np.maximum(_box(weight, size), _MIN_WEIGHT)[..., None]


def _fuse(image: np.ndarray, alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """``F = fg + a (I - a fg - (1 - a) bg)``, clipped to [0, 1]: the guess corrected by the photo."""
    a = alpha[..., None]
    return np.clip(fg + a * (image - a * fg - (1.0 - a) * bg), 0.0, 1.0)


def spread_width(height: int, width: int, model_side: int | None = FOREGROUND_MODEL_SIDE) -> int:
    """The box width (odd, photo pixels) over which the mask is spread before estimation: 1 (no
    spread) when ``model_side`` is None, else ``FOREGROUND_SPREAD_MODEL_PX`` model pixels."""
    if model_side is None:
        return 1
    if int(model_side) < 1:
        raise ValueError(f"model side {model_side}: expected the model's input size in pixels (1 or more)")
    return max(1, round(FOREGROUND_SPREAD_MODEL_PX * max(height, width) / int(model_side))) | 1


class _SmoothFields:
    """Pass 1's foreground and background colour fields of a photo, stored small.

    They are box averages over a wide window, so they are computed at most
    ``FOREGROUND_WORK_SIDE`` px wide; :meth:`region` samples them bilinearly
    at full size for one region only (no full-size float copy exists).
    """

    def __init__(self, image: np.ndarray, alpha8: np.ndarray, wide: int):
        height, width = alpha8.shape
        # a whole shrink factor: OpenCV's area resize is several times faster for those
        scale = 1.0 / math.ceil(max(height, width) / FOREGROUND_WORK_SIDE)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            alpha8 = cv2.resize(alpha8, size, interpolation=cv2.INTER_AREA)
        colour = image.astype(np.float32) / 255.0
        weight = alpha8.astype(np.float32) / 255.0
        box = max(1, round(wide * scale))
        self.small = (_weighted_mean(colour, weight, box), _weighted_mean(colour, 1.0 - weight, box))
        self.step_y = alpha8.shape[0] / height
        self.step_x = alpha8.shape[1] / width
        self.full = scale == 1.0

    def region(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """The foreground and background fields over ``rows x cols`` of the full-size photo."""
        if self.full:
            return self.small[0][rows, cols], self.small[1][rows, cols]
        ys = (np.arange(rows.start, rows.stop, dtype=np.float32) + 0.5) * self.step_y - 0.5
        xs = (np.arange(cols.start, cols.stop, dtype=np.float32) + 0.5) * self.step_x - 0.5
        map_x, map_y = np.meshgrid(xs, ys)
        fg, bg = (cv2.remap(field, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                  for field in self.small)
        return fg, bg


def spread_alpha(alpha8: np.ndarray, size: int) -> np.ndarray:
    """``alpha8`` box-blurred over ``size`` px (odd; 1 returns it as is), in 8-bit levels: the alpha
    the colours are estimated with."""
    if size <= 1:
        return alpha8
    return cv2.blur(alpha8, (size, size), borderType=cv2.BORDER_REFLECT)


def spread_band(alpha8: np.ndarray, size: int) -> np.ndarray:
    """The pixels whose colours are estimated for a mask spread over ``size`` px (:func:`spread_alpha`),
    as a bool array: :func:`soft_band` when ``size`` is 1."""
    return soft_band(spread_alpha(alpha8, size))


def _tiles(band: np.ndarray, tile: int):
    """``(rows, cols)`` slices of the ``tile``-px tiles of ``band``'s grid that hold soft pixels."""
    height, width = band.shape
    rows_with = np.flatnonzero(band.any(axis=1))
    top, bottom = int(rows_with[0]), int(rows_with[-1]) + 1
    for y in range(top, bottom, tile):
        row_band = band[y : min(bottom, y + tile)]
        cols_with = np.flatnonzero(row_band.any(axis=0))
        if cols_with.size == 0:
            continue
        for x in range(int(cols_with[0]) // tile * tile, int(cols_with[-1]) + 1, tile):
            cols = slice(x, min(width, x + tile))
            if row_band[:, cols].any():
                yield slice(y, min(bottom, y + tile)), cols


def estimate_foreground(image: np.ndarray, alpha8: np.ndarray, tile: int = FOREGROUND_TILE,
                        model_side: int | None = FOREGROUND_MODEL_SIDE) -> np.ndarray:
    """The subject's own colours of ``image`` (``HxWx3`` uint8) around the edge of ``alpha8`` (``HxW`` uint8).

    ``model_side`` is the input size of the model that predicted the mask: the
    colours are estimated with the mask spread over ``FOREGROUND_SPREAD_MODEL_PX``
    model pixels (:func:`spread_width`, :func:`spread_alpha`), in the band where
    that is soft (the mask's soft pixels grown by half of it each way);
    ``None`` estimates at the mask's own soft pixels with the mask itself (a
    matte known to be right). Returns ``image`` itself when there is no band,
    else a copy in which only the band's pixels changed.
    """
    if alpha8.dtype != np.uint8 or alpha8.shape != image.shape[:2]:
        raise ValueError(f"alpha of shape {alpha8.shape} and dtype {alpha8.dtype}: expected uint8 "
                         f"{image.shape[0]}x{image.shape[1]}")
    height, width = alpha8.shape
    alpha8 = spread_alpha(alpha8, spread_width(height, width, model_side))
    band = soft_band(alpha8)
    if not band.any():
        return image
    wide, narrow = window_sizes(height, width)
    fields = _SmoothFields(image, alpha8, wide)
    margin = narrow // 2 + 1
    out = image.copy()
    for rows, cols in _tiles(band, tile):
        lo_y, hi_y = max(0, rows.start - margin), min(height, rows.stop + margin)
        lo_x, hi_x = max(0, cols.start - margin), min(width, cols.stop + margin)
        photo = image[lo_y:hi_y, lo_x:hi_x].astype(np.float32) / 255.0
        alpha = alpha8[lo_y:hi_y, lo_x:hi_x].astype(np.float32) / 255.0
        fg1, bg1 = fields.region(slice(lo_y, hi_y), slice(lo_x, hi_x))
        first = _fuse(photo, alpha, fg1, bg1)
        fg2 = _weighted_mean(first, alpha, narrow)
        bg2 = _weighted_mean(bg1, 1.0 - alpha, narrow)
        second = _fuse(photo, alpha, fg2, bg2)
        inner = (slice(rows.start - lo_y, rows.stop - lo_y), slice(cols.start - lo_x, cols.stop - lo_x))
        soft = band[rows, cols]
        out[rows, cols][soft] = np.rint(second[inner][soft] * 255.0).astype(np.uint8)
    return out
