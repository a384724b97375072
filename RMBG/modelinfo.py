"""What a model file records about itself, and the preprocessing it implies.

A saved model carries a :class:`ModelInfo` (architecture, build arguments,
input size, normalisation, which output is the final mask, how to scale that
output, project version), so that loading it needs nothing else. The
normalisation here is the single definition used by training, inference and
export.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from RMBG import __version__
from RMBG.constants import IMAGENET_MEAN, IMAGENET_STD

#: Name of the JSON entry stored inside ``.keras`` archives.
INFO_ENTRY = "rmbg_info.json"


@dataclass
class ModelInfo:
    """Self-description of a segmentation model.

    ``mean``/``std`` of ``None`` mean plain 0-1 scaling. ``output_norm`` is
    ``"none"`` (the output is already a probability) or ``"minmax"`` (stretch
    each map to 0-1, as rembg does for U-2-Net). ``input_scale`` is ``"255"``
    (pixels / 255) or ``"max"`` (pixels / the image's brightest value, as rembg
    feeds U-2-Net).
    """

    arch: str
    input_size: int
    mean: tuple[float, float, float] | None = IMAGENET_MEAN
    std: tuple[float, float, float] | None = IMAGENET_STD
    output_index: int = 0
    output_norm: str = "none"
    input_scale: str = "255"
    config: dict[str, Any] = field(default_factory=dict)
    version: str = __version__
    notes: str = ""

    def __post_init__(self):
        if self.output_norm not in {"none", "minmax"}:
            raise ValueError(f"output_norm must be 'none' or 'minmax', not {self.output_norm!r}")
        if self.input_scale not in {"255", "max"}:
            raise ValueError(f"input_scale must be '255' or 'max', not {self.input_scale!r}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std must both be given or both be None")
        if self.mean is not None:
            self.mean = tuple(float(v) for v in self.mean)
            self.std = tuple(float(v) for v in self.std)

    # -- preprocessing -------------------------------------------------
    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 (or 0-255 float) ``...xHxWx3`` RGB to the model's float32 input."""
        x = np.asarray(images, dtype=np.float32)
        if self.input_scale == "max":
            peak = x.max(axis=(-3, -2, -1), keepdims=True)
            x = x / np.maximum(peak, 1e-6)
        else:
            x = x / 255.0
        if self.mean is not None:
            x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return x

    def finish(self, maps: np.ndarray) -> np.ndarray:
        """Raw output maps ``NxHxW`` to masks in [0, 1] per ``output_norm``."""
        maps = np.asarray(maps, dtype=np.float32)
        if self.output_norm == "minmax":
            lo = maps.min(axis=(-2, -1), keepdims=True)
            hi = maps.max(axis=(-2, -1), keepdims=True)
            maps = (maps - lo) / np.maximum(hi - lo, 1e-8)
        return np.clip(maps, 0.0, 1.0)

    # -- serialisation -------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelInfo":
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
