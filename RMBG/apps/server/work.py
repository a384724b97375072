"""What ``python -m RMBG serve`` does with one request, away from HTTP: decode, remove, encode, in a bounded pool.

* :func:`decode_upload` turns uploaded bytes into an RGB array with exactly the
  checks (and reasons) of the CLI's :func:`RMBG.images.io.read_image`, decoded
  in memory: no upload touches the disk and no client-given name ever becomes
  a path.
* :class:`Options` checks a request's mode, colour, refinement, format,
  foreground estimation, model, box, post-processing, largest region, invert and crop margin.
* :meth:`Models.render` runs the steps of :class:`RMBG.removal.pipeline.Remover` (small mask
  of the photo or of its box's crop under the model's lock, then the output picture) and encodes the result.
* :class:`WorkPool` runs that in ``workers`` threads with at most ``max_queue``
  requests waiting; when it is full a request is refused at once
  (:class:`ApiError` 503 with ``Retry-After``) instead of piling up.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from RMBG.constants import MAX_IMAGE_PIXELS
from RMBG.images.io import ImageReadError, read_image
from RMBG.models.names import catalogue, name_of
from RMBG.removal.box import Box, parse_box
from RMBG.removal.compose import DEFAULT_BG_COLOR, MODES
from RMBG.removal.cropping import check_margin
from RMBG.removal.edges import REFINE_METHODS
from RMBG.removal.formats import OUTPUT_FORMATS, check_format, encode
from RMBG.removal.pipeline import Remover, check_output, check_refine

#: Spellings of the two values of a yes/no field (``foreground_estimation``, ``post_process``, ``largest``,
#: ``invert``).
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class ApiError(Exception):
    """An answer that is not a picture: an HTTP status, a short ``error`` and a ``detail`` for people."""

    def __init__(self, status: int, error: str, detail: str, headers: dict | None = None):
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail
        self.headers = headers or {}


# ---------------------------------------------------------------------------
# Decoding uploads in memory
# ---------------------------------------------------------------------------
def decode_upload(data: bytes, field: str = "file") -> np.ndarray:
    """Uploaded bytes as an upright ``HxWx3`` uint8 RGB array, through the CLI's reader.

    Raises :class:`ApiError`: 413 for a picture over the pixel limit, 422 for
    empty, truncated, corrupt or non-image data, each with the CLI's reason.
    """
    try:
        return read_image(field, data=data)
    except ImageReadError as exc:
        too_large = exc.reason.startswith("image too large")
        raise ApiError(413 if too_large else 422, "image too large" if too_large else "unreadable image",
                       f"{field}: {exc.reason}") from None
    except MemoryError:
        raise ApiError(413, "image too large", f"{field}: not enough memory to decode it") from None


# ---------------------------------------------------------------------------
# Request options
# ---------------------------------------------------------------------------
def flag(values: dict, name: str, default: bool) -> bool:
    """The yes/no field ``name`` of request ``values`` (``default`` when absent); 422 for another word."""
    word = (values.get(name) or ("true" if default else "false")).strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise ApiError(422, "invalid option", f"{name} {word!r}: expected true or false")
    return word in TRUE_WORDS


@dataclass(frozen=True)
class Options:
    """The checked options of one ``/api/remove`` request.

    ``box`` is four numbers (pixels or fractions, :mod:`RMBG.removal.box`) or
    None; whether it fits the photo is checked once the photo is decoded.
    ``crop_margin`` is None for no crop, else the pixels kept around the subject.
    """

    mode: str = "rgba"
    bg_color: str = DEFAULT_BG_COLOR
    refine: str = "none"
    format: str = "png"
    model: str = ""
    foreground_estimation: bool = True
    box: Box | None = None
    post_process: bool = False
    largest: bool = False
    invert: bool = False
    crop_margin: int | None = None

    @classmethod
    def parse(cls, values: dict, models: dict, has_background: bool) -> "Options":
        """Options from request values (strings or None); 422 :class:`ApiError` naming what is wrong."""
        pick = lambda name, default: (values.get(name) or default).strip()  # noqa: E731
        mode, refine = pick("mode", "rgba").lower(), pick("refine", "none").lower()
        fmt = pick("format", "png")
        model = pick("model", next(iter(models)))
        bg_color = pick("bg_color", DEFAULT_BG_COLOR)
        box_text, margin_text = pick("box", ""), pick("crop_margin", "")
        try:
            check_output(mode, bg_color, b"" if has_background else None)
            check_refine(refine)
            fmt = check_format(fmt, mode)
            box = parse_box(box_text) if box_text else None
        except ValueError as exc:
            raise ApiError(422, "invalid option", str(exc).replace("(--bg-image PATH)", "(form field 'background')"))
        try:
            margin = check_margin(int(margin_text)) if margin_text else None
        except ValueError:
            raise ApiError(422, "invalid option",
                           f"crop_margin {margin_text!r}: expected a whole number of pixels, 0 or more "
                           "(leave it out for no crop)") from None
        flags = {name: flag(values, name, default) for name, default in
                 (("foreground_estimation", True), ("post_process", False), ("largest", False), ("invert", False))}
        if model not in models:
            raise ApiError(422, "unknown model", f"unknown model {model!r}; this server has {', '.join(models)}")
        return cls(mode, bg_color, refine, fmt, model, box=box, crop_margin=margin, **flags)

    @property
    def content_type(self) -> str:
        return OUTPUT_FORMATS[self.format].content_type


# ---------------------------------------------------------------------------
# The models and the work of one request
# ---------------------------------------------------------------------------
class Models:
    """The models a server was started with, by name, each with the lock its runtime needs.

    A model runs one call at a time (:meth:`RMBG.runtime.engines.Segmenter.masks_of_inputs`);
    decoding, edge refinement, composing and encoding of other requests go on in
    parallel.
    """

    def __init__(self, removers: list[Remover]):
        self.removers: dict[str, Remover] = {}
        for remover in removers:
            if remover.name in self.removers:
                raise ValueError(f"two models are named {remover.name!r}; rename one of the files")
            self.removers[remover.name] = remover
        if not self.removers:
            raise ValueError("no model to serve")

    @property
    def names(self) -> list[str]:
        return list(self.removers)

    def describe(self) -> list[dict]:
        """The served models; ``names`` says which rows of :meth:`catalogue` each one runs."""
        return [{"name": name, "input_size": r.input_size, "default": i == 0,
                 "names": [name_of(path) for path in r.segmenter.files]}
                for i, (name, r) in enumerate(self.removers.items())]

    @staticmethod
    def catalogue() -> list[dict]:
        """Every model name ``--model`` takes (``python -m RMBG models``): size, input, licence, source, present."""
        return catalogue()

    def warm_up(self) -> None:
        """One small prediction per model, so the first request does not pay for the runtime's start."""
        for name in self.removers:
            self.small_mask(name, np.zeros((8, 8, 3), np.uint8))

    def small_mask(self, name: str, image: np.ndarray) -> np.ndarray:
        """The model-size mask (the segmenter runs one model call at a time across the workers)."""
        return self.removers[name].small_masks([image])[0]

    def remover_for(self, options: Options) -> Remover:
        """A :class:`Remover` over the loaded model of ``options`` with the request's mask and output
        choices (cheap: the model is shared, never loaded again)."""
        served = self.removers[options.model]
        return Remover(served.segmenter, runtime=served.runtime, refine=options.refine, threshold=served.threshold,
                       post_process=options.post_process, foreground_estimation=options.foreground_estimation,
                       crop_margin=options.crop_margin, largest=options.largest, invert=options.invert)

    def render(self, data: bytes, background: bytes | None, options: Options) -> bytes:
        """The encoded output picture for uploaded bytes: the pipeline of :class:`Remover`, step by step
        (the model on the box's crop when the request has a box; 422 when the box does not fit the photo)."""
        image = decode_upload(data, "file")
        back = decode_upload(background, "background") if options.mode == "image" else None
        remover = self.remover_for(options)
        try:
            region = remover.region(image, options.box)
        except ValueError as exc:
            raise ApiError(422, "invalid option", str(exc)) from None
        small = remover.small_masks([image], [region])[0]
        return encode(remover.picture(image, small, options.mode, options.bg_color, background=back, region=region),
                      options.format)


# ---------------------------------------------------------------------------
# The bounded pool
# ---------------------------------------------------------------------------
class Slot:
    """A place in the pool, held from admission until the job is done (or never started)."""

    def __init__(self, pool: "WorkPool"):
        self._pool, self._held = pool, True
        #: True once a job owns the slot (it is then released when the job ends)
        self.started = False

    def release(self) -> None:
        if self._held:
            self._held = False
            self._pool._release()


class WorkPool:
    """``workers`` threads and at most ``max_queue`` waiting requests; beyond that, 503 at once."""

    def __init__(self, workers: int, max_queue: int, timeout_s: float):
        if workers < 1 or max_queue < 0 or timeout_s <= 0:
            raise ValueError("workers must be at least 1, max_queue at least 0 and the timeout positive")
        self.workers, self.max_queue, self.timeout_s = workers, max_queue, timeout_s
        self.capacity = workers + max_queue
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rmbg-work")
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self._mean_s = 1.0  # running mean of a job's time, for Retry-After

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    @property
    def admitted(self) -> int:
        """Requests holding a place: waiting for a worker or being worked on."""
        return self._admitted

    @property
    def running(self) -> int:
        """Jobs a worker is on (one past its timeout included, until it ends)."""
        return self._running

    @property
    def queued(self) -> int:
        """Requests admitted and waiting for a worker."""
        return max(0, self._admitted - self._running)

    def retry_after(self) -> int:
        """Seconds after which a refused client may try again: about the time to drain the queue."""
        return max(1, math.ceil(self._mean_s * self.capacity / self.workers))

    def admit(self) -> Slot:
        """A slot, or a 503 :class:`ApiError` with ``Retry-After`` when the pool is full."""
        with self._lock:
            if self._admitted >= self.capacity:
                wait = self.retry_after()
                raise ApiError(503, "server busy",
                               f"{self.workers} working and {self.max_queue} waiting already; retry in {wait} s",
                               {"Retry-After": str(wait)})
            self._admitted += 1
        return Slot(self)

    def _timed(self, job, *args):
        with self._lock:
            self._running += 1
        start = time.perf_counter()
        try:
            return job(*args)
        finally:
            self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - start)
            with self._lock:
                self._running -= 1

    async def run(self, slot: Slot, job, *args):
        """``job(*args)`` in a worker thread within the per-request timeout (504 past it).

        The slot is released when the job ends, also after a timeout, so work
        that is still running keeps counting against the pool.
        """
        future: Future = self._executor.submit(self._timed, job, *args)
        slot.started = True
        future.add_done_callback(lambda _: slot.release())
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except asyncio.TimeoutError:
            future.cancel()  # only takes effect while it still waits
            raise ApiError(504, "timeout", f"the picture took over {self.timeout_s:g} s; try a smaller one") from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def choices() -> dict:
    """What ``/api/models`` lists besides the models: modes, formats, refinements, the pixel limit."""
    return {"modes": list(MODES), "formats": list(OUTPUT_FORMATS), "refine": list(REFINE_METHODS),
            "max_image_pixels": MAX_IMAGE_PIXELS}
