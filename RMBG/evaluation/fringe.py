"""Measuring colour fringes at soft edges, for :mod:`RMBG.removal.foreground` (tests and ``scripts/bench_foreground.py``).

The scene: a photo ``P`` with its ground-truth mask, the mask softened by a
Gaussian blur into ``a`` (a real soft band), is composited onto a vivid
screen colour, ``S = a P + (1 - a) screen`` (a subject shot on green). A
cut-out of ``S`` with the known ``a`` is then composed onto white; the truth
it should match is ``T = a P + (1 - a) white``. In the edge band
``FRINGE_BAND[0] < a < FRINGE_BAND[1]``:

* **spill** is the mean of ``g(out) - g(T)`` with ``g = G - (R + B) / 2``:
  how much greener than the truth the output is (0 is none; a naive
  composite keeps ``a (1 - a)`` of the screen);
* **colour error** is the mean absolute difference from ``T`` over the three
  channels, in 8-bit levels.
"""

from __future__ import annotations

import cv2
import numpy as np

#: The screen colour of the scene (vivid green) and the new background (white).
SCREEN = (0, 255, 0)
WHITE = (255, 255, 255)
#: The alpha range that counts as the edge band.
FRINGE_BAND = (0.05, 0.95)
#: Gaussian sigma (px) that softens the ground-truth mask.
SOFTEN_SIGMA = 3.0


def soften(mask: np.ndarray, sigma: float = SOFTEN_SIGMA) -> np.ndarray:
    """A hard ``HxW`` mask in [0, 1] blurred into a soft one, as 8-bit alpha (``HxW`` uint8)."""
    soft = cv2.GaussianBlur(np.asarray(mask, np.float32), (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE)
    return np.clip(np.rint(soft * 255.0), 0, 255).astype(np.uint8)


def over(foreground: np.ndarray, alpha8: np.ndarray, background) -> np.ndarray:
    """``foreground`` over ``background`` (an RGB colour or an ``HxWx3`` picture) with ``alpha8``,
    exactly, as float32 ``HxWx3``."""
    a = alpha8.astype(np.float32)[..., None] / 255.0
    return np.asarray(foreground, np.float32) * a + np.asarray(background, np.float32) * (1.0 - a)


def screen_scene(photo: np.ndarray, alpha8: np.ndarray, screen=SCREEN) -> np.ndarray:
    """``photo`` shot on ``screen`` (a colour or a picture): the uint8 composite ``a P + (1 - a) screen``."""
    return np.clip(np.rint(over(photo, alpha8, screen)), 0, 255).astype(np.uint8)


def band_of(alpha8: np.ndarray, band=FRINGE_BAND) -> np.ndarray:
    """The edge band of ``alpha8`` as a bool mask."""
    a = alpha8.astype(np.float32) / 255.0
    return (a > band[0]) & (a < band[1])


def greenness(picture: np.ndarray) -> np.ndarray:
    """``G - (R + B) / 2`` per pixel, float32."""
    picture = picture.astype(np.float32)
    return picture[..., 1] - (picture[..., 0] + picture[..., 2]) / 2.0


def fringe_scores(output: np.ndarray, truth: np.ndarray, alpha8: np.ndarray, band=FRINGE_BAND) -> dict[str, float]:
    """``spill``, ``colour_error`` (see the module) and the band's size ``pixels`` of ``output``
    against ``truth`` (both ``HxWx3``) in the edge band of ``alpha8``."""
    inside = band_of(alpha8, band)
    if not inside.any():
        raise ValueError("the mask has no pixel in the edge band: nothing to measure")
    spill = (greenness(output) - greenness(truth))[inside]
    error = np.abs(output.astype(np.float32) - truth.astype(np.float32))[inside]
    return {"spill": float(spill.mean()), "colour_error": float(error.mean()), "pixels": int(inside.sum())}
