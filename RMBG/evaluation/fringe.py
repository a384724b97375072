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

:func:`model_mask_fringe` measures it the way people run ``remove``: the model
predicts its own mask of ``S`` and the output of ``--mode color --bg-color
"#FFFFFF"`` is scored against the naive composite with that same mask
(``--no-foreground-estimation``). There the colour error also holds the mask's
own error, which no colour can undo, so the colours are scored alone too:
the cut-out's colours laid with the true alpha, where the model's alpha shows
them.
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


def fringe_scores(output: np.ndarray, truth: np.ndarray, alpha8: np.ndarray, band=FRINGE_BAND,
                  where: np.ndarray | None = None) -> dict[str, float]:
    """``spill``, ``colour_error`` (see the module) and the band's size ``pixels`` of ``output``
    against ``truth`` (both ``HxWx3``) in the edge band of ``alpha8`` (and ``where``, when given)."""
    inside = band_of(alpha8, band) if where is None else band_of(alpha8, band) & where
    if not inside.any():
        raise ValueError("the mask has no pixel in the edge band: nothing to measure")
    spill = (greenness(output) - greenness(truth))[inside]
    error = np.abs(output.astype(np.float32) - truth.astype(np.float32))[inside]
    return {"spill": float(spill.mean()), "colour_error": float(error.mean()), "pixels": int(inside.sum())}


def model_mask_fringe(photo: np.ndarray, mask: np.ndarray, remover) -> dict[str, dict[str, float]]:
    """Fringe scores of ``photo`` (its hard true ``mask``, softened) shot on green and cut out by
    ``remover`` (a :class:`RMBG.removal.pipeline.Remover`) with its own mask, onto white:

    * ``naive`` / ``estimated``: the output without / with foreground estimation, against the truth;
    * ``naive_colours`` / ``estimated_colours``: those outputs' colours laid with the true alpha,
      where the model's alpha is above 0 (the colours alone, without the mask's error).
    """
    from RMBG.removal.compose import alpha_to_uint8

    alpha8 = soften(mask)
    scene = screen_scene(photo, alpha8)
    truth = over(photo, alpha8, WHITE)
    small = remover.small_masks([scene])[0]
    model8 = alpha_to_uint8(remover.finish(scene, small))
    scores = {}
    for name, estimate in (("naive", False), ("estimated", True)):
        output = np.asarray(remover.picture(scene, small, "color", bg_color=WHITE, foreground_estimation=estimate))
        scores[name] = fringe_scores(output, truth, alpha8)
        colour = np.asarray(remover.picture(scene, small, "rgba", foreground_estimation=estimate))[..., :3]
        scores[f"{name}_colours"] = fringe_scores(over(colour, alpha8, WHITE), truth, alpha8, where=model8 > 0)
    return scores


def pooled(rows: list[dict[str, float]]) -> dict[str, float]:
    """Fringe scores of several photos pooled over all their band pixels."""
    pixels = sum(r["pixels"] for r in rows)
    return {key: sum(r[key] * r["pixels"] for r in rows) / pixels for key in ("spill", "colour_error")}
