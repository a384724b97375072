"""A box prompt: which subject of a photo to cut out (``remove --box X0,Y0,X1,Y1``, ``Remover.alpha(image, box=...)``).

A box is four numbers, left, top, right and bottom: pixels of the photo, or
fractions of its width and height when all four are between 0 and 1 (a box of
one pixel or less means nothing, so ``0,0,1,1`` is the whole photo). The model
runs on the box's crop grown by ``BOX_MARGIN_FRACTION`` of the box's size on
each side (clipped to the photo), so a small subject gets the model's full
resolution and still some context; its mask is pasted back at the crop's place
and everything outside the box is cleared (:class:`Region`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: The crop the model sees: the box grown by this fraction of its width and height on each side.
#: Chosen on the 58 validation people photos (box = the truth's box grown 10 % on each side;
#: ``scripts/bench_box.py --margins 0.05,0.1,0.2``): MAE 0.0162/0.0154/0.0157 (no box: 0.0290).
BOX_MARGIN_FRACTION = 0.1

Box = tuple[float, float, float, float]


def parse_box(text: str) -> Box:
    """``"X0,Y0,X1,Y1"`` (pixels, or fractions 0-1) as four floats, checked by :func:`check_box`."""
    parts = [part.strip() for part in str(text).split(",")]
    if len(parts) != 4:
        raise ValueError(f"box {text!r}: expected four numbers X0,Y0,X1,Y1 (pixels, or fractions 0-1)")
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        raise ValueError(f"box {text!r}: expected four numbers X0,Y0,X1,Y1, got {', '.join(map(repr, parts))}") from None
    return check_box(values, text)


def _show(box) -> str:
    return ",".join(f"{v:g}" for v in box)


def check_box(box, text: str | None = None) -> Box | None:
    """``box`` (four numbers, or None) as a tuple of floats, else a ValueError naming it: every value finite
    and not negative, right of left, below top, and an area above zero."""
    if box is None:
        return None
    shown = text if text is not None else str(box)
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"box {shown!r}: expected four numbers X0,Y0,X1,Y1") from None
    if len(values) != 4:
        raise ValueError(f"box {shown!r}: expected four numbers X0,Y0,X1,Y1, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"box {shown!r}: every value must be a finite number")
    if min(values) < 0:
        raise ValueError(f"box {shown!r}: lies outside the photo (a negative coordinate)")
    x0, y0, x1, y1 = values
    if x1 < x0 or y1 < y0:
        raise ValueError(f"box {shown!r}: inverted corners (expected X0 <= X1 and Y0 <= Y1, left-top then right-bottom)")
    if x1 == x0 or y1 == y0:
        raise ValueError(f"box {shown!r}: zero area")
    return values


def is_fractional(box: Box) -> bool:
    """Whether ``box`` is given in fractions of the photo (all four values between 0 and 1)."""
    return max(box) <= 1.0


def box_pixels(box: Box, height: int, width: int) -> tuple[int, int, int, int]:
    """``box`` as whole pixels ``(x0, y0, x1, y1)`` (right and bottom exclusive) of a ``height x width``
    photo; a ValueError naming the box when it reaches past the photo or covers no whole pixel."""
    box = check_box(box)
    if is_fractional(box):
        x0, x1 = (round(v * width) for v in box[0::2])
        y0, y1 = (round(v * height) for v in box[1::2])
    else:
        if box[2] > width or box[3] > height:
            raise ValueError(f"box {_show(box)}: lies outside the photo ({width}x{height} px)")
        x0, y0 = math.floor(box[0]), math.floor(box[1])
        x1, y1 = math.ceil(box[2]), math.ceil(box[3])
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {_show(box)}: covers no whole pixel of the {width}x{height} photo (zero area)")
    return x0, y0, x1, y1


@dataclass(frozen=True)
class Region:
    """Where the model looks in a photo of ``shape``: the ``box`` (whole pixels) and the crop ``window``
    around it that the model runs on."""

    box: tuple[int, int, int, int]
    window: tuple[slice, slice]
    shape: tuple[int, int]

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The part of ``image`` the model runs on."""
        return np.ascontiguousarray(image[self.window])

    def paste(self, alpha: np.ndarray) -> np.ndarray:
        """The crop's ``alpha`` (float or uint8) at its place in a full-size alpha, cleared outside the box."""
        full = np.zeros(self.shape, alpha.dtype)
        full[self.window] = alpha
        return keep_inside(full, self.box)


def keep_inside(alpha: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``alpha`` with everything outside the pixel ``box`` cleared (in place; returned)."""
    x0, y0, x1, y1 = box
    alpha[:y0] = 0
    alpha[y1:] = 0
    alpha[:, :x0] = 0
    alpha[:, x1:] = 0
    return alpha


def region_of(box: Box | None, height: int, width: int, margin: float = BOX_MARGIN_FRACTION) -> Region | None:
    """The :class:`Region` of ``box`` in a ``height x width`` photo (None for no box): the crop is the box
    grown by ``margin`` of its width and height on each side, clipped to the photo."""
    if box is None:
        return None
    x0, y0, x1, y1 = box_pixels(box, height, width)
    grow_x, grow_y = round(margin * (x1 - x0)), round(margin * (y1 - y0))
    window = (slice(max(0, y0 - grow_y), min(height, y1 + grow_y)), slice(max(0, x0 - grow_x), min(width, x1 + grow_x)))
    return Region((x0, y0, x1, y1), window, (height, width))
