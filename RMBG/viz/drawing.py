"""How a picture is put on a figure: thumbnails, masks in grey, cut-outs on a checkerboard.

Shared by the notebook figures (:mod:`RMBG.viz.figures`) and the report
figures (:mod:`RMBG.viz.report_figures`), so that every figure shrinks and
draws photos, masks and cut-outs the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from RMBG.compose import alpha_to_uint8, checkerboard

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


def as_array(picture) -> np.ndarray:
    """A path, PIL image or array as an array (grey, RGB or RGBA)."""
    if isinstance(picture, (str, os.PathLike)):
        from RMBG.imageio import open_image

        picture = open_image(picture)
    if isinstance(picture, Image.Image):
        if picture.mode not in {"RGB", "RGBA", "L"}:
            picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
        return np.asarray(picture)
    return np.asarray(picture)


def show(ax, picture: np.ndarray) -> None:
    """Draw a photo, a mask (grey) or a cut-out (RGBA over a checkerboard) on ``ax``, as a thumbnail."""
    thumb = thumbnail(picture)
    if thumb.ndim == 2:
        ax.imshow(thumb, cmap="gray", vmin=0, vmax=255)
    elif thumb.shape[2] == 4:
        ax.imshow(checkerboard(*thumb.shape[:2], cell=max(4, min(thumb.shape[:2]) // 24)))
        ax.imshow(thumb)
    else:
        ax.imshow(thumb)
    ax.axis("off")


def picture_name(picture, k: int) -> str:
    """The file name of a picture given as a path, else ``image K`` (counted from 1)."""
    return Path(str(picture)).name if isinstance(picture, (str, os.PathLike)) else f"image {k + 1}"


def message_figure(text: str, size: tuple[float, float] = (6, 1.2), fontsize: float | None = None) -> Figure:
    """A small figure that only says ``text``: what a figure shows when it has nothing to draw."""
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=fontsize)
    return fig
