"""An ordered three-stage pipeline for folders of photos: read | model | finish and write.

:func:`run_pipeline` overlaps the work around the model with the model
itself: a reader thread decodes and preprocesses the next photos while the
calling thread runs the model on the current batch, and a writer thread
finishes and encodes the previous outputs. The queues between the stages are
bounded (:data:`RMBG.constants.PIPELINE_DEPTH` items), so memory stays a few
photos whatever the folder's size. Items come out in their input order, and
every stage calls exactly the functions the one-at-a-time loop would, so the
outputs are the same bytes.

Each item fails on its own: an exception in ``prepare``, in the model call
for that item or in ``finish`` is handed to ``report`` as the item's outcome
and the others go on. An error outside the items (in ``report`` itself, an
interrupt) stops the three stages and is raised in the caller.

The stages run on threads: decoding (Pillow), resizing (Pillow, OpenCV),
the model (LiteRT, onnxruntime) and PNG encoding (zlib) all release the
interpreter lock while they work, so they overlap on separate cores.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from RMBG.apps.queues import Stopped, get, put
from RMBG.constants import PIPELINE_DEPTH
from RMBG.images.io import read_image
from RMBG.removal.box import Region
from RMBG.removal.pipeline import per_item_fallback
from RMBG.runtime.engines import Segmenter

#: marks the end of a stage's output
_END = object()
#: how long (seconds) an interrupted pipeline waits for its stages before it raises
_INTERRUPT_JOIN_S = 2.0


def _windows(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_pipeline(
    items: Sequence,
    prepare: Callable[[Any], Any],
    infer: Callable[[list], list],
    finish: Callable[[Any, Any, Any], Any],
    report: Callable[[Any, Any], None],
    batch_size: int = 1,
    threaded: bool = True,
    depth: int = PIPELINE_DEPTH,
) -> None:
    """Run every item through ``prepare -> infer -> finish`` and ``report`` its outcome, in order.

    ``prepare(item)`` (reader thread) returns what the model and ``finish``
    need; ``infer(prepared_list)`` (the calling thread) returns one result or
    exception per prepared item, for the items of one window of
    ``batch_size`` consecutive items that prepared without error (as the
    one-at-a-time loop batches them); ``finish(item, prepared, result)``
    (writer thread) returns the item's value; ``report(item, outcome)``
    (writer thread, input order) gets that value or the item's exception.
    ``threaded=False`` runs the same stages one after the other on the
    calling thread.
    """
    items = list(items)
    batch_size = max(1, int(batch_size))
    if not threaded:
        for window in _windows(items, batch_size):
            prepared = [_attempt(prepare, item) for item in window]
            for item, ready, result in _model_stage(window, prepared, infer):
                report(item, _finished(finish, item, ready, result))
        return

    stop = threading.Event()
    read_out: queue.Queue = queue.Queue(maxsize=max(1, depth))
    model_out: queue.Queue = queue.Queue(maxsize=max(1, depth))
    failures: list[BaseException] = []

    def guarded(work):
        def body():
            try:
                work()
            except Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                failures.append(exc)
                stop.set()

        return body

    def read():
        for item in items:
            put(read_out, (item, _attempt(prepare, item)), stop)
        put(read_out, _END, stop)

    def write():
        while True:
            entry = get(model_out, stop)
            if entry is _END:
                return
            item, ready, result = entry
            report(item, _finished(finish, item, ready, result))

    workers = [threading.Thread(target=guarded(read), name="rmbg-read", daemon=True),
               threading.Thread(target=guarded(write), name="rmbg-write", daemon=True)]
    for worker in workers:
        worker.start()
    try:
        for window in _windows(items, batch_size):
            received = [get(read_out, stop) for _ in window]
            for entry in _model_stage(window, [ready for _, ready in received], infer):
                put(model_out, entry, stop)
        put(model_out, _END, stop)
    except Stopped:
        pass
    except BaseException:
        # An interrupt: the stages see ``stop`` within ``RMBG.apps.queues.POLL_S``, unless one is inside a long call or the
        # interrupt left a queue's lock held; they are daemon threads, so wait for them only a little.
        stop.set()
        for worker in workers:
            worker.join(timeout=_INTERRUPT_JOIN_S)
        raise
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]


def _attempt(prepare, item):
    try:
        return prepare(item)
    except Exception as exc:  # noqa: BLE001 - this item's outcome
        return exc


def _model_stage(window: list, prepared: list, infer) -> list[tuple]:
    """``(item, prepared, result or exception)`` for a window; one ``infer`` call for its good items."""
    good = [ready for ready in prepared if not isinstance(ready, BaseException)]
    try:
        results = list(infer(good)) if good else []
        if len(results) != len(good):
            raise RuntimeError(f"the model returned {len(results)} results for {len(good)} photos")
    except Exception as exc:  # noqa: BLE001 - the window's outcome
        results = [exc] * len(good)
    outcomes, taken = [], iter(results)
    for item, ready in zip(window, prepared):
        outcomes.append((item, ready, ready if isinstance(ready, BaseException) else next(taken)))
    return outcomes


def _finished(finish, item, ready, result):
    if isinstance(result, BaseException):
        return result
    try:
        return finish(item, ready, result)
    except Exception as exc:  # noqa: BLE001 - this item's outcome
        return exc


# ---------------------------------------------------------------------------
# The stages of a segmenter over photo files
# ---------------------------------------------------------------------------
@dataclass
class Photo:
    """A decoded photo (``HxWx3`` uint8 RGB), its model input (``SxSx3`` float32) and the box
    region the model input was cut from (None: the whole photo)."""

    image: np.ndarray
    model_input: np.ndarray
    region: Region | None = None


def read_photo(segmenter: Segmenter, path, region_of: Callable[[np.ndarray], Region | None] | None = None) -> Photo:
    """Read stage: decode ``path`` (:func:`RMBG.images.io.read_image`) and preprocess it for ``segmenter``
    (the part ``region_of(image)`` says, e.g. :meth:`RMBG.removal.pipeline.Remover.region`, when given)."""
    image = read_image(path)
    region = region_of(image) if region_of is not None else None
    return Photo(image, segmenter.preprocess(image if region is None else region.crop(image)), region)


def photo_masks(segmenter: Segmenter, photos: list[Photo]) -> list:
    """Model stage: the small masks of ``photos`` in one model call (what
    :meth:`RMBG.removal.pipeline.Remover.try_small_masks` computes), photo by photo when the batch fails."""
    return per_item_fallback(lambda batch: segmenter.masks_of_inputs(np.stack([p.model_input for p in batch])), photos)
