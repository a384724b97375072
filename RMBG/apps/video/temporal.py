"""Masks that stay still from frame to frame: entropy-weighted smoothing with scene-cut reset.

Each new mask is blended with the previous (smoothed) one only where the new
mask is unsure, as MediaPipe's segmentation smoothing does::

    w = smooth * H(p)                  # H: binary entropy in bits, 0 where p is 0 or 1, 1 at p = 0.5
    out = p + (previous - p) * w

A confident pixel follows the new frame at once (no ghost on a moving edge,
which a plain running average leaves), an unsure one, the source of flicker,
leans on its past. A scene cut (the frame's thumbnail changes a lot) resets
the history, so a mask never bleeds into the next shot.

:func:`flicker` and :func:`mask_error` are the two measures the default
``smooth`` was chosen with (see :data:`DEFAULT_SMOOTH`).
"""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

#: Default weight of the previous mask at fully unsure pixels (0 turns smoothing off).
#: Measured with the default model on 48-frame 160x120 clips (24 fps, H.264) of
#: ../shared/data/people person_0010 (RMBG.apps.video.clips), smoothing the 320x320 masks:
#:   static clip (fresh noise each frame), flicker mean|a_t - a_t-1|:
#:     smooth 0: 0.00065   0.5: 0.00043   0.7: 0.00035   0.85: 0.00029   0.95: 0.00024
#:   pan and zoom clip, mean |alpha - ground truth|:
#:     smooth 0: 0.0114    0.5: 0.0113    0.7: 0.0113    0.85: 0.0115    0.95: 0.0117
#: 0.7 halves the flicker (-46%) at no loss of accuracy; above 0.85 moving edges lag.
#: Smoothing the full-size alphas instead gave the same figures (within 0.00003)
#: at a cost that grows with the frame size, so the small masks are smoothed.
DEFAULT_SMOOTH = 0.7
#: Mean absolute difference (0-1) between consecutive frames' grey thumbnails
#: above which the frame starts a new shot. A pan at 24 fps changes the
#: thumbnail by about 0.01-0.03; a cut between two photos by 0.15 and more.
CUT_THRESHOLD = 0.1
#: Side of the grey thumbnail compared for scene cuts.
THUMB_SIDE = 32
_EPS = 1e-6


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """``-(p log2 p + (1 - p) log2 (1 - p))`` per pixel, float32 in [0, 1]."""
    p = np.clip(np.asarray(p, np.float32), _EPS, 1.0 - _EPS)
    q = 1.0 - p
    return np.clip(-(p * np.log2(p) + q * np.log2(q)), 0.0, 1.0)


def check_smooth(smooth: float) -> float:
    """``smooth`` as a float in [0, 1), else a ValueError."""
    if not 0.0 <= float(smooth) < 1.0:
        raise ValueError(f"smooth {smooth}: expected a value from 0 (off) up to, not including, 1")
    return float(smooth)


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """A ``THUMB_SIDE``-square grey float32 (0-1) thumbnail of an RGB frame, for cut detection."""
    grey = frame if frame.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


class TemporalSmoother:
    """Smooths a sequence of masks, one call per frame, in order.

    ``smooth`` in [0, 1) is the weight of the previous mask where the new one
    is fully unsure (0: masks pass unchanged); ``cut_threshold`` is
    :data:`CUT_THRESHOLD`. Masks may be of any fixed size (the small
    model-size ones are cheapest); a change of size also resets.
    """

    def __init__(self, smooth: float = DEFAULT_SMOOTH, cut_threshold: float = CUT_THRESHOLD):
        self.smooth = check_smooth(smooth)
        self.cut_threshold = float(cut_threshold)
        self.cuts = 0
        self.reset()

    def reset(self) -> None:
        self._previous: np.ndarray | None = None
        self._thumb: np.ndarray | None = None

    def is_cut(self, frame: np.ndarray | None) -> bool:
        """True when ``frame`` starts a new shot (remembers its thumbnail for the next call)."""
        if frame is None:
            return False
        thumb = thumbnail(frame)
        cut = self._thumb is not None and float(np.mean(np.abs(thumb - self._thumb))) > self.cut_threshold
        self._thumb = thumb
        return cut

    def __call__(self, mask: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
        """The smoothed ``mask`` (float32 in [0, 1]) of ``frame`` (RGB, used to see scene cuts)."""
        mask = np.asarray(mask, np.float32)
        if self.is_cut(frame):
            self.cuts += 1
            self._previous = None
        previous = self._previous
        if self.smooth == 0.0 or previous is None or previous.shape != mask.shape:
            out = mask
        else:
            weight = self.smooth * binary_entropy(mask)
            out = mask + (previous - mask) * weight
        self._previous = out
        return out

    def run(self, masks: Iterable[np.ndarray], frames: Iterable[np.ndarray | None] | None = None) -> list[np.ndarray]:
        """Every mask of a sequence smoothed, in order (``frames`` for cut detection)."""
        masks = list(masks)
        frames = [None] * len(masks) if frames is None else list(frames)
        return [self(mask, frame) for mask, frame in zip(masks, frames)]


def flicker(alphas: Iterable[np.ndarray]) -> float:
    """Mean ``|alpha_t - alpha_t-1|`` over a sequence (float masks in [0, 1] or uint8)."""
    values, previous = [], None
    for alpha in alphas:
        alpha = np.asarray(alpha, np.float32)
        alpha = alpha / 255.0 if alpha.max(initial=0.0) > 1.0 else alpha
        if previous is not None:
            values.append(float(np.mean(np.abs(alpha - previous))))
        previous = alpha
    return float(np.mean(values)) if values else 0.0


def mask_error(alphas: Iterable[np.ndarray], truths: Iterable[np.ndarray]) -> float:
    """Mean ``|alpha - truth|`` over a sequence of masks and their ground truths (both in [0, 1])."""
    errors = [float(np.mean(np.abs(np.asarray(a, np.float32) - np.asarray(t, np.float32))))
              for a, t in zip(alphas, truths)]
    return float(np.mean(errors)) if errors else 0.0
