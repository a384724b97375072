"""``A+B``: the pixel-wise mean of several models' maps, as one :class:`Segmenter`.

Members may want different inputs (U-2-Net 320, IS-Net 1024): each runs at
its own input size from its own preprocessing of the photo, so a member's map
is exactly the map it gives alone.

- :meth:`EnsembleSegmenter.predict` (full-size masks: ``evaluate``,
  ``label``) is the mean of the members' maps at the photo's size.
- The small-mask path that ``remove``, ``serve``, ``video``, ``stream`` and
  ``beam`` run (:meth:`~EnsembleSegmenter.preprocess` then
  :meth:`~EnsembleSegmenter.masks_of_inputs`, whose result the pipeline
  resizes to the photo) averages at the largest member's input size, each
  smaller map bilinearly resized to it first. With members of one input size
  that is the same mean (a bilinear resize is linear); otherwise the two
  differ only by the resampling of the smaller maps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from RMBG.models.info import ModelInfo
from RMBG.runtime.segmenter import Segmenter, upsample_mask


class EnsembleSegmenter(Segmenter):
    """The mean of ``members``' maps (two or more :class:`Segmenter`), named ``A+B``."""

    def __init__(self, members: Sequence[Segmenter]):
        members = list(members)
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two models")
        size = max(member.input_size for member in members)
        info = ModelInfo(arch="ensemble", input_size=size, mean=None, std=None,
                         config={"members": [member.name for member in members]},
                         notes="pixel-wise mean of the members' maps")
        super().__init__(info, "+".join(member.name for member in members))
        self.device_line = " + ".join(dict.fromkeys(member.device_line for member in members))
        self.members = members
        ends = np.cumsum([3 * member.input_size**2 for member in members])
        self._spans = list(zip([0, *ends[:-1]], ends))

    @property
    def files(self) -> list[Path]:
        return [path for member in self.members for path in member.files]

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """Every member's own input of ``image``, flattened and joined (one row per photo, so
        batches stack as any model input does; :meth:`masks_of_inputs` splits them again)."""
        return np.concatenate([member.preprocess(image).ravel() for member in self.members])

    def masks_of_inputs(self, batch: np.ndarray) -> np.ndarray:
        """The mean of the members' masks at the largest input size, ``NxSxS`` in [0, 1]."""
        batch = np.asarray(batch, dtype=np.float32)
        size, total = self.input_size, None
        for member, (start, end) in zip(self.members, self._spans):
            own = member.input_size
            masks = member.masks_of_inputs(batch[:, start:end].reshape(-1, own, own, 3))
            if own != size:
                masks = np.stack([upsample_mask(mask, (size, size)) for mask in masks])
            total = masks if total is None else total + masks
        return (total / len(self.members)).astype(np.float32)

    def predict(self, images: Sequence[np.ndarray], batch_size: int = 1) -> list[np.ndarray]:
        """Full-size masks: per photo, the mean of the members' maps at the photo's size."""
        per_member = [member.predict(images, batch_size=batch_size) for member in self.members]
        return [np.mean(maps, axis=0).astype(np.float32) for maps in zip(*per_member)]


def weighted_mean_map(maps: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """``sum(w_i * map_i) / sum(w_i)`` of maps of one size (a weighted ``A+B``), clipped to [0, 1]."""
    if len(maps) != len(weights) or not maps:
        raise ValueError(f"{len(maps)} maps but {len(weights)} weights")
    if len({np.shape(m) for m in maps}) > 1:
        raise ValueError(f"maps of different sizes: {sorted({np.shape(m) for m in maps})}")
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"weights must be >= 0 and not all 0, got {list(weights)}")
    mean = sum(float(w) * np.asarray(m, np.float32) for w, m in zip(weights, maps)) / total
    return np.clip(mean, 0.0, 1.0).astype(np.float32)
