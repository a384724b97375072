"""Output modes: turn a photo and its alpha mask into the picture the user asked for.

Every function takes the photo as ``HxWx3`` uint8 RGB and the mask as ``HxW``
(float in [0, 1] or uint8 0-255) and returns a PIL image. At soft edges the
subject is drawn in its estimated own colours (:mod:`RMBG.removal.foreground`) unless
``foreground_estimation=False``. Blending runs in
horizontal strips with integer arithmetic, so a 100-megapixel photo needs no
full-size float copies.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageColor

from RMBG.constants import FOREGROUND_MODEL_SIDE
from RMBG.removal.cropping import subject_box
from RMBG.removal.foreground import estimate_foreground

#: Output modes, in the order the CLI lists them.
MODES = ("rgba", "mask", "side-by-side", "color", "image", "blur")
#: Modes whose output needs an alpha channel or is a mask: always written as PNG.
PNG_MODES = frozenset({"rgba", "mask"})

#: Background of the ``color`` mode when none is given.
DEFAULT_BG_COLOR = "#FFFFFF"
#: Width and grey level of the line between the two halves of ``side-by-side``.
SEPARATOR_WIDTH = 10
SEPARATOR_GREY = 128
#: The two greys of the transparency checkerboard, and its cell size as a
#: fraction of the picture's shorter side (never below ``CHECKER_MIN_CELL`` px).
CHECKER_LIGHT = 204
CHECKER_DARK = 153
CHECKER_CELL_FRACTION = 1 / 32
CHECKER_MIN_CELL = 8
#: ``blur`` mode: Gaussian sigma as a fraction of the photo's longer side, and
#: the longest side at which the blur is computed (then upsampled; a blur has
#: no fine detail to lose).
BLUR_SIGMA_FRACTION = 0.015
BLUR_WORK_SIDE = 1024
#: Rows blended per step; bounds the temporary memory of compositing.
STRIP_PIXELS = 1 << 21


def parse_color(text: str | tuple) -> tuple[int, int, int]:
    """``"#RRGGBB"``, ``"#RGB"``, a CSS colour name or an RGB tuple as three ints."""
    if isinstance(text, (tuple, list)):
        if len(text) != 3 or not all(0 <= int(v) <= 255 for v in text):
            raise ValueError(f"colour {text!r}: expected three values 0-255")
        return tuple(int(v) for v in text)
    try:
        rgb = ImageColor.getrgb(str(text).strip())
    except ValueError:
        raise ValueError(
            f"colour {text!r}: expected '#RRGGBB' (for example '#00FF00') or a colour name"
        ) from None
    return tuple(int(v) for v in rgb[:3])


def alpha_to_uint8(alpha: np.ndarray) -> np.ndarray:
    """A float mask in [0, 1] (or an 8-bit one) as ``HxW`` uint8 0-255."""
    alpha = np.asarray(alpha)
    if alpha.dtype == np.uint8:
        return alpha
    out = np.empty(alpha.shape, np.uint8)
    for rows in _strips(alpha.shape[0], alpha.shape[1]):
        out[rows] = np.rint(np.clip(alpha[rows], 0.0, 1.0) * 255.0)
    return out


def _strips(height: int, width: int):
    """Row slices covering ``height`` rows, each about ``STRIP_PIXELS`` pixels."""
    step = max(1, STRIP_PIXELS // max(1, width))
    for top in range(0, height, step):
        yield slice(top, min(height, top + step))


def alpha_over(foreground: np.ndarray, background, alpha: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``foreground * alpha + background * (1 - alpha)`` as uint8, strip by strip.

    ``background`` is an ``HxWx3`` uint8 array, one RGB colour, or a function
    ``rows -> array`` that draws the background of a slice of rows (so that a
    full-size background never has to exist). Writes into ``out`` when given.
    """
    alpha8 = alpha_to_uint8(alpha)
    height, width = alpha8.shape
    out = np.empty((height, width, 3), np.uint8) if out is None else out
    colour = None
    if not isinstance(background, np.ndarray) and not callable(background):
        colour = np.asarray(parse_color(background), np.uint16)
    for rows in _strips(height, width):
        a = alpha8[rows, :, None].astype(np.uint16)
        fg = foreground[rows].astype(np.uint16)
        if colour is not None:
            bg = colour
        else:
            bg = (background(rows) if callable(background) else background[rows]).astype(np.uint16)
        mixed = fg * a + bg * (255 - a) + 127
        out[rows] = mixed // 255
    return out


def checker_cell(height: int, width: int) -> int:
    """The checkerboard's cell size for a picture of this size."""
    return max(CHECKER_MIN_CELL, round(min(height, width) * CHECKER_CELL_FRACTION))


def checkerboard_rows(rows: slice, width: int, cell: int) -> np.ndarray:
    """The rows ``rows`` of the grey transparency checkerboard, ``R x W x 3`` uint8."""
    ys = (np.arange(rows.start, rows.stop) // cell) % 2
    xs = (np.arange(width) // cell) % 2
    odd = (ys[:, None] ^ xs[None, :]).astype(bool)
    return np.repeat(np.where(odd, CHECKER_DARK, CHECKER_LIGHT).astype(np.uint8)[..., None], 3, axis=2)


def checkerboard(height: int, width: int, cell: int | None = None) -> np.ndarray:
    """The usual grey checkerboard that shows transparency, ``HxWx3`` uint8."""
    return checkerboard_rows(slice(0, height), width, cell or checker_cell(height, width))


def cover_resize(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale ``picture`` to cover ``height x width`` (keeping its aspect) and crop the centre."""
    src_h, src_w = picture.shape[:2]
    scale = max(height / src_h, width / src_w)
    new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(np.ascontiguousarray(picture), (new_w, new_h), interpolation=interp)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def blurred_background(image: np.ndarray, alpha: np.ndarray, sigma_fraction: float = BLUR_SIGMA_FRACTION) -> np.ndarray:
    """The photo's background, blurred without bleeding the subject's colours into it.

    The blur is weighted by ``1 - alpha`` (a normalised convolution), so the
    subject leaves no halo; it is computed at most ``BLUR_WORK_SIDE`` px wide
    and upsampled.
    """
    height, width = image.shape[:2]
    scale = min(1.0, BLUR_WORK_SIDE / max(height, width))
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA).astype(np.float32)
    weight = 1.0 - cv2.resize(
        np.asarray(alpha_to_uint8(alpha), np.float32) / 255.0, small_size, interpolation=cv2.INTER_AREA
    )
    sigma = max(0.5, sigma_fraction * max(height, width) * scale)

    def blur(x):
        return cv2.GaussianBlur(x, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)

    numerator = blur(small * weight[..., None])
    denominator = blur(weight)[..., None]
    plain = blur(small)
    background = np.where(denominator > 1e-3, numerator / np.maximum(denominator, 1e-3), plain)
    background = np.clip(np.rint(background), 0, 255).astype(np.uint8)
    return cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)


def load_background(bg_image) -> np.ndarray:
    """A background picture given as a path, PIL image or array, as RGB uint8."""
    from RMBG.images.io import pil_to_rgb, read_image

    if isinstance(bg_image, (str, os.PathLike, Path)):
        return read_image(bg_image)
    if isinstance(bg_image, Image.Image):
        return np.asarray(pil_to_rgb(bg_image))
    array = np.asarray(bg_image)
    if array.ndim == 3 and array.shape[2] >= 3 and array.dtype == np.uint8:
        return np.ascontiguousarray(array[..., :3])
    raise ValueError("bg_image: expected a path, a PIL image or an HxWx3 uint8 array")


def compose(
    image: np.ndarray,
    alpha: np.ndarray,
    mode: str = "rgba",
    bg_color=DEFAULT_BG_COLOR,
    bg_image=None,
    blur_sigma: float = BLUR_SIGMA_FRACTION,
    foreground_estimation: bool = True,
    crop_margin: int | None = None,
    model_side: int | None = FOREGROUND_MODEL_SIDE,
) -> Image.Image:
    """The output picture of ``mode`` for ``image`` (RGB uint8) and its ``alpha`` mask.

    With ``foreground_estimation`` (the default) every mode that shows the
    subject uses its estimated colours at soft edges
    (:func:`RMBG.removal.foreground.estimate_foreground`, over a band grown by a
    few pixels of the model of input size ``model_side``; None: the alpha is an
    exact matte), so no rim of the old background shows; ``rgba`` then stores
    those colours; the alpha itself is never changed. With ``crop_margin``
    (px) the output is cut to the subject's box (:func:`RMBG.removal.cropping.subject_box`)
    grown by the margin: the same pixels as the whole output there, and for
    ``side-by-side`` the pair of the cropped photo. A picture with no subject
    is kept whole.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    if np.asarray(alpha).shape != (height, width):
        raise ValueError(f"mask shape {np.asarray(alpha).shape} does not match image {height}x{width}")
    alpha8 = alpha_to_uint8(alpha)
    box = subject_box(alpha8, crop_margin) if crop_margin is not None else None
    cut = (lambda array: array) if box is None else (lambda array: np.ascontiguousarray(array[box]))
    if mode == "mask":
        return Image.fromarray(cut(alpha8), mode="L")
    subject = estimate_foreground(image, alpha8, model_side=model_side) if foreground_estimation else image
    if mode == "blur":
        background = cut(blurred_background(image, alpha8, blur_sigma))
    image, subject, alpha8 = cut(image), cut(subject), cut(alpha8)
    height, width = alpha8.shape
    if mode == "rgba":
        rgba = np.empty((height, width, 4), np.uint8)
        rgba[..., :3] = subject
        rgba[..., 3] = alpha8
        return Image.fromarray(rgba, mode="RGBA")
    if mode == "color":
        return Image.fromarray(alpha_over(subject, parse_color(bg_color), alpha8))
    if mode == "image":
        if bg_image is None:
            raise ValueError("mode 'image' needs a background picture (bg_image / --bg-image)")
        full_height, full_width = np.asarray(alpha).shape
        background = cut(cover_resize(load_background(bg_image), full_height, full_width))
        return Image.fromarray(alpha_over(subject, background, alpha8))
    if mode == "blur":
        return Image.fromarray(alpha_over(subject, background, alpha8))
    # side-by-side: input | grey line | cut-out on a checkerboard (the original's picture)
    canvas = np.full((height, 2 * width + SEPARATOR_WIDTH, 3), SEPARATOR_GREY, np.uint8)
    canvas[:, :width] = image
    cell = checker_cell(height, width)
    alpha_over(subject, lambda rows: checkerboard_rows(rows, width, cell), alpha8, out=canvas[:, width + SEPARATOR_WIDTH :])
    return Image.fromarray(canvas)
