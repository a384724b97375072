"""The Beam ``ModelHandler`` of the removal pipeline, and the record that travels through it.

Beam's own TensorFlow handler expects TF Hub / SavedModel files; ours runs
any model :func:`RMBG.runtime.engines.load_segmenter` runs (``.keras`` through the
default runtime, ``.tflite``, ``.onnx``) by loading it through
:class:`RMBG.removal.pipeline.Remover`, once per worker process (Beam keeps the loaded
model in a per-process ``Shared`` handle, and ``load_segmenter`` caches it, so
the other steps of the pipeline that build a ``Remover`` on the same worker
reuse that one model).

The examples are ``(photo, model_input)`` pairs: ``photo`` is a
:class:`Photo` (the decoded picture and where its output goes), carried past
the model untouched; ``model_input`` is the ``SxSx3`` float32 tensor of
:meth:`RMBG.runtime.engines.Segmenter.preprocess`. A batch of them is stacked into one
model call; the predictions are ``(photo, small mask)`` pairs, or
``(photo, exception)`` for a photo the model failed on, so that one bad
photo becomes a failed record instead of a crashed bundle.

Only :mod:`RMBG.apps.beam.pipeline` and this module import Apache Beam.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler

from RMBG.models.info import SIDECAR_SUFFIX
from RMBG.removal.pipeline import Remover, per_item_fallback
from RMBG.runtime.engines import DEFAULT_RUNTIME

#: Metrics namespace of the pipeline's counters (``model_calls``, ``ok``, ``skipped``, ``failed``).
METRICS_NAMESPACE = "RMBG"
#: Photos stacked into one model call at most (``--batch-size``).
DEFAULT_MAX_BATCH_SIZE = 8


@dataclass
class Photo:
    """One input on its way through the pipeline."""

    source: str
    target: str
    image: np.ndarray
    #: seconds spent on this photo so far (its share of the batch's model call included)
    seconds: float = 0.0


def is_local(path: str) -> bool:
    """True for a path on this machine's file system (no ``scheme://``)."""
    return FileSystems.get_scheme(path) is None


@functools.lru_cache(maxsize=8)
def local_copy(path: str | None) -> str | None:
    """``path`` as a local file: itself when local, else a copy (with a sidecar
    ``FILE.json`` when there is one) in a temporary folder, made once per process."""
    if path is None or is_local(path):
        return path
    folder = tempfile.mkdtemp(prefix="rmbg-beam-")
    name = path.rstrip("/").rsplit("/", 1)[-1]
    for remote, local in ((path, name), (path + SIDECAR_SUFFIX, name + SIDECAR_SUFFIX)):
        if remote != path and not FileSystems.exists(remote):
            continue
        with FileSystems.open(remote) as source, open(os.path.join(folder, local), "wb") as target:
            for block in iter(lambda: source.read(1 << 20), b""):
                target.write(block)
    return os.path.join(folder, name)


@dataclass(frozen=True)
class RemoverSpec:
    """How to build the :class:`~RMBG.removal.pipeline.Remover` of a worker (picklable: strings and numbers only)."""

    model: Optional[str] = None
    runtime: str = DEFAULT_RUNTIME
    refine: str = "none"
    threshold: Optional[float] = None
    device: str = "auto"

    def build(self, batch_size: int = 1) -> Remover:
        """The worker's remover; its model is loaded once per process (:func:`RMBG.runtime.engines.load_segmenter`)."""
        return Remover(local_copy(self.model), self.runtime, self.refine, self.threshold, batch_size, device=self.device)


class RemovalModelHandler(ModelHandler):
    """RunInference over ``(photo, model_input)`` pairs with the removal pipeline's model.

    ``min_batch_size`` / ``max_batch_size`` bound the batches Beam's
    ``BatchElements`` forms (it grows them from the minimum while a model
    call stays short).
    """

    def __init__(self, spec: RemoverSpec, min_batch_size: int = 1, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE):
        super().__init__()
        if not 1 <= int(min_batch_size) <= int(max_batch_size):
            raise ValueError(f"batch sizes {min_batch_size}..{max_batch_size}: need 1 <= min <= max")
        self.spec = spec
        self.min_batch_size = int(min_batch_size)
        self.max_batch_size = int(max_batch_size)

    def load_model(self) -> Remover:
        return self.spec.build(self.max_batch_size)

    def run_inference(
        self, batch: Sequence[tuple[Photo, np.ndarray]], model: Remover, inference_args: Optional[dict[str, Any]] = None
    ) -> Iterable[tuple[Photo, Any]]:
        """One model call per input size in ``batch`` (one for a single model); a failing
        call is retried photo by photo, and a photo that still fails gets its exception."""
        by_shape: dict[tuple, list[int]] = {}
        for index, (_, tensor) in enumerate(batch):
            by_shape.setdefault(np.shape(tensor), []).append(index)
        results: list[Any] = [None] * len(batch)
        for indices in by_shape.values():
            started = time.perf_counter()
            masks = self._masks(model, [batch[i][1] for i in indices])
            share = (time.perf_counter() - started) / len(indices)
            for index, mask in zip(indices, masks):
                batch[index][0].seconds += share
                results[index] = mask
        return [(photo, result) for (photo, _), result in zip(batch, results)]

    def _masks(self, model: Remover, tensors: list[np.ndarray]) -> list[Any]:
        """Small masks of preprocessed model inputs: one model call for them all, photo by photo when
        it fails (:func:`RMBG.removal.pipeline.per_item_fallback`); a photo that still fails gets its exception."""

        def call(inputs):
            Metrics.counter(METRICS_NAMESPACE, "model_calls").inc()
            return model.segmenter.masks_of_inputs(np.stack(inputs))

        return per_item_fallback(call, tensors)

    def get_num_bytes(self, batch: Sequence[tuple[Photo, np.ndarray]]) -> int:
        return int(sum(np.asarray(tensor).nbytes for _, tensor in batch))

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE

    def batch_elements_kwargs(self) -> dict[str, int]:
        return {"min_batch_size": self.min_batch_size, "max_batch_size": self.max_batch_size}
