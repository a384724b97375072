"""How a picture is put on a figure: masks in grey, cut-outs on a checkerboard.

The notebook figures (:mod:`RMBG.viz.figures`) shrink pictures with the report figures'
thumbnails (:mod:`RMBG.evaluation.thumbnails`), so every figure shrinks and draws photos,
masks and cut-outs the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from RMBG.evaluation.thumbnails import thumbnail
from RMBG.removal.compose import checkerboard


def as_array(picture) -> np.ndarray:
    """A path, PIL image or array as an array (grey, RGB or RGBA)."""
    if isinstance(picture, (str, os.PathLike)):
        from RMBG.images.io import open_image

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
