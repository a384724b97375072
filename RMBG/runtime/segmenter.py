"""The one interface over every model: :class:`Segmenter` (photos in, full-size masks out).

The preprocessing (resize, normalise) and postprocessing (output scaling,
resize back to the photo) live here once; a runtime is a small subclass
implementing :meth:`Segmenter._infer` (:mod:`RMBG.runtime.engines`), and
:mod:`RMBG.runtime.ensemble` averages several.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from RMBG.models.info import ModelInfo

#: Photos larger than this many times the model's input size are area-averaged
#: down to it before the Lanczos resize (see :meth:`Segmenter.preprocess`).
PRESHRINK_FACTOR = 4

class Segmenter:
    """Runs a model on RGB uint8 images and returns full-size masks in [0, 1]."""

    #: short label for reports (file stem by default)
    name: str
    #: what runs the model, said once by the commands ("LiteRT int8 on CPU, 2 threads", ...)
    device_line: str = ""
    info: ModelInfo
    path: Path | None = None
    #: the PIL filter of the resize to the model's input (``info.resample``: imgly's IS-Net wants bilinear)
    resample: int = Image.LANCZOS

    def __init__(self, info: ModelInfo, name: str, path: str | os.PathLike | None = None):
        self.info = info
        self.resample = getattr(Image, info.resample.upper())
        self.name = name
        self.path = Path(path) if path is not None else None
        # one model call at a time: interpreters (TFLite, onnxruntime sessions resized per batch)
        # are not safe to call from several threads, and cached segmenters are shared
        self._lock = threading.Lock()

    # -- to implement ----------------------------------------------------
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """Normalised ``NxSxSx3`` float32 input to raw ``NxSxS`` output maps."""
        raise NotImplementedError

    # -- shared pipeline -------------------------------------------------
    @property
    def input_size(self) -> int:
        return int(self.info.input_size)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One ``HxWx3`` uint8 RGB image to the model's ``SxSx3`` float32 input.

        Resize to ``S x S`` (Lanczos unless :attr:`resample` says otherwise). Photos wider or taller than
        ``PRESHRINK_FACTOR * S`` are first area-averaged down to that bound
        (in numpy, without a full-size PIL copy), which keeps memory and time
        low for very large photos and leaves the result practically unchanged.
        """
        size = self.input_size
        image = np.ascontiguousarray(image)
        bound = PRESHRINK_FACTOR * size
        height, width = image.shape[:2]
        if height > bound or width > bound:
            image = cv2.resize(image, (min(width, bound), min(height, bound)), interpolation=cv2.INTER_AREA)
        small = Image.fromarray(image).resize((size, size), self.resample)
        return self.info.normalize(np.asarray(small))

    def predict_small(self, images: Sequence[np.ndarray], batch_size: int = 1) -> np.ndarray:
        """Masks at the model's own size, ``NxSxS`` float32 in [0, 1]."""
        outputs = []
        for start in range(0, len(images), max(1, batch_size)):
            chunk = images[start : start + max(1, batch_size)]
            outputs.append(self.masks_of_inputs(np.stack([self.preprocess(img) for img in chunk])))
        size = self.input_size
        return np.concatenate(outputs) if outputs else np.zeros((0, size, size), np.float32)

    def masks_of_inputs(self, batch: np.ndarray) -> np.ndarray:
        """Model-size masks ``NxSxS`` in [0, 1] of an already preprocessed ``NxSxSx3`` batch:
        one model call (one at a time across threads) and the output scaling."""
        with self._lock:
            maps = self._infer(np.asarray(batch, dtype=np.float32))
        return self.info.finish(maps)

    def predict(self, images: Sequence[np.ndarray], batch_size: int = 1) -> list[np.ndarray]:
        """Full-size masks, one ``HxW`` float32 array in [0, 1] per image."""
        small = self.predict_small(images, batch_size=batch_size)
        return [upsample_mask(mask, img.shape[:2]) for mask, img in zip(small, images)]

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        return self.predict([image])[0]

    @property
    def files(self) -> list[Path]:
        """The model files behind this segmenter (none for a live model)."""
        return [self.path] if self.path is not None else []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, input_size={self.input_size})"


def upsample_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a small float mask to ``(height, width)`` with bilinear interpolation."""
    height, width = int(shape[0]), int(shape[1])
    if mask.shape == (height, width):
        return mask.astype(np.float32, copy=False)
    big = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(big, 0.0, 1.0, out=big)
