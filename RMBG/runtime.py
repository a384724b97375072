"""One interface over every model file we can run: :class:`Segmenter`.

Predict, evaluate, bench and the notebooks all go through here, so the
preprocessing (resize, normalise) and postprocessing (output scaling, resize
back to the photo) live in exactly one place. A new runtime is one small
subclass implementing :meth:`Segmenter._infer`.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from RMBG.modelinfo import ModelInfo


class Segmenter:
    """Runs a model on RGB uint8 images and returns full-size masks in [0, 1]."""

    #: short label for reports (file stem by default)
    name: str
    info: ModelInfo
    path: Path | None = None

    def __init__(self, info: ModelInfo, name: str, path: str | os.PathLike | None = None):
        self.info = info
        self.name = name
        self.path = Path(path) if path is not None else None

    # -- to implement ----------------------------------------------------
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """Normalised ``NxSxSx3`` float32 input to raw ``NxSxS`` output maps."""
        raise NotImplementedError

    # -- shared pipeline -------------------------------------------------
    @property
    def input_size(self) -> int:
        return int(self.info.input_size)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One ``HxWx3`` uint8 RGB image to the model's ``SxSx3`` float32 input."""
        size = self.input_size
        small = Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.LANCZOS)
        return self.info.normalize(np.asarray(small))

    def predict_small(self, images: Sequence[np.ndarray], batch_size: int = 1) -> np.ndarray:
        """Masks at the model's own size, ``NxSxS`` float32 in [0, 1]."""
        outputs = []
        for start in range(0, len(images), max(1, batch_size)):
            chunk = images[start : start + max(1, batch_size)]
            batch = np.stack([self.preprocess(img) for img in chunk]).astype(np.float32)
            outputs.append(self.info.finish(self._infer(batch)))
        size = self.input_size
        return np.concatenate(outputs) if outputs else np.zeros((0, size, size), np.float32)

    def predict(self, images: Sequence[np.ndarray], batch_size: int = 1) -> list[np.ndarray]:
        """Full-size masks, one ``HxW`` float32 array in [0, 1] per image."""
        small = self.predict_small(images, batch_size=batch_size)
        return [upsample_mask(mask, img.shape[:2]) for mask, img in zip(small, images)]

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        return self.predict([image])[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, input_size={self.input_size})"


def upsample_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a small float mask to ``(height, width)`` with bilinear interpolation."""
    height, width = int(shape[0]), int(shape[1])
    if mask.shape == (height, width):
        return mask.astype(np.float32, copy=False)
    big = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(big, 0.0, 1.0, out=big)


# ---------------------------------------------------------------------------
# Runtimes
# ---------------------------------------------------------------------------
class KerasSegmenter(Segmenter):
    """A ``.keras`` file written by :func:`RMBG.model.save_model` (or a live model)."""

    def __init__(self, model, info: ModelInfo, name: str, path=None):
        super().__init__(info, name, path)
        self.model = model

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "KerasSegmenter":
        from RMBG.model import load_model

        model = load_model(path)
        return cls(model, model.rmbg_info, Path(path).stem, path)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import keras

        outputs = self.model(batch, training=False)
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[self.info.output_index]
        maps = keras.ops.convert_to_numpy(outputs)
        return maps[..., 0] if maps.ndim == 4 else maps


class OnnxPeerSegmenter(Segmenter):
    """A public U-2-Net ONNX file run as rembg runs it (NCHW, divide by max, min-max out)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: peer model not found")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        shape = self.session.get_inputs()[0].shape
        size = shape[-1] if isinstance(shape[-1], int) else 320
        info = ModelInfo(
            arch="onnx-peer", input_size=size, output_index=0, output_norm="minmax", input_scale="max"
        )
        super().__init__(info, path.stem, path)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        feed = {self.session.get_inputs()[0].name: np.transpose(batch, (0, 3, 1, 2))}
        # The public export has a fixed batch of 1: run image by image.
        maps = [
            self.session.run(None, {k: v[i : i + 1] for k, v in feed.items()})[self.info.output_index]
            for i in range(batch.shape[0])
        ]
        return np.concatenate(maps)[:, 0]


# ---------------------------------------------------------------------------
# Loading by file type, with a small cache
# ---------------------------------------------------------------------------
_CACHE: "OrderedDict[tuple, Segmenter]" = OrderedDict()
_CACHE_SIZE = 3


def file_digest(path: str | os.PathLike, length: int = 16) -> str:
    """Short SHA-256 of a file's bytes (used to key prediction caches)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def default_model_path() -> Path:
    """The shipped default model, or the imported u2netp until it exists."""
    from RMBG.constants import DEFAULT_MODEL_PATH, IMPORTED_U2NETP_PATH

    for candidate in (DEFAULT_MODEL_PATH, IMPORTED_U2NETP_PATH):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no default model: {DEFAULT_MODEL_PATH} is missing (run `python -m RMBG import-weights "
        f"../shared/peers/u2netp.onnx --arch u2netp --out {IMPORTED_U2NETP_PATH}` to make one)"
    )


def _open(path: Path, peer: bool) -> Segmenter:
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return KerasSegmenter.from_file(path)
    if suffix == ".onnx" and peer:
        return OnnxPeerSegmenter(path)
    raise ValueError(f"{path}: unsupported model file type {suffix!r} (expected .keras or .onnx)")


def load_segmenter(model=None, peer: bool = False) -> Segmenter:
    """A :class:`Segmenter` for a path, a Segmenter, or ``None`` (the default model).

    Files are loaded once and kept in a small LRU cache keyed by path, size and
    modification time, so repeated calls reuse the model and memory stays bounded.
    """
    if isinstance(model, Segmenter):
        return model
    path = Path(model) if model is not None else default_model_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, peer)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    segmenter = _open(path, peer)
    _CACHE[key] = segmenter
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return segmenter


def clear_cache() -> None:
    _CACHE.clear()
