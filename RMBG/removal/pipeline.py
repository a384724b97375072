"""The one removal pipeline: :class:`Remover`.

Every consumer that turns photos into cut-outs (``remove``, ``demo``, the
notebooks, and the server, video and Beam front ends) goes through this
chain, written here once:

1. load the model (:func:`RMBG.runtime.engines.load_segmenter`, cached, through the
   default runtime :data:`RMBG.runtime.engines.DEFAULT_RUNTIME`);
2. predict the mask at the model's size (one model call per batch);
3. bring it to the photo's full size (:func:`RMBG.runtime.engines.upsample_mask`);
4. refine its edges (:mod:`RMBG.removal.edges`), optionally clean it
   (:mod:`RMBG.removal.cleanup`) and threshold it;
5. compose the output picture of a mode (:mod:`RMBG.removal.compose`), with the
   subject's estimated colours at soft edges (:mod:`RMBG.removal.foreground`) and
   optionally cropped to the subject (:mod:`RMBG.removal.cropping`).

With a box prompt (:mod:`RMBG.removal.box`) step 2 runs on the box's crop and
step 3 pastes the mask back, cleared outside the box; ``largest`` keeps the
largest region of the mask (:func:`RMBG.removal.cleanup.keep_largest`);
``invert`` keeps the background instead of the subject (the alpha turned
over, ``255 - alpha``, after everything else).

Steps 2-5 are separate methods, so that a consumer that keeps the small mask
(a widget that recomposes on every change, a video that smooths masks over
time) calls only the steps it needs.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from PIL import Image

from RMBG.constants import FOREGROUND_MODEL_SIDE
from RMBG.images.io import _to_uint8, pil_to_rgb, read_image
from RMBG.removal.box import Region, check_box, region_of
from RMBG.removal.cleanup import clean_mask, keep_largest
from RMBG.removal.compose import (
    DEFAULT_BG_COLOR,
    MODES,
    alpha_to_uint8,
    compose,
    load_background,
    parse_color,
)
from RMBG.removal.cropping import check_margin
from RMBG.removal.edges import REFINE_METHODS
from RMBG.removal.edges import refine as refine_edges
from RMBG.runtime.engines import (
    DEFAULT_RUNTIME,
    Segmenter,
    load_segmenter,
    upsample_mask,
)


def to_rgb(image) -> np.ndarray:
    """A path, PIL image or array (grey, RGB or RGBA; any dtype) as ``HxWx3`` uint8 RGB.

    Paths go through :func:`RMBG.images.io.read_image` (EXIF orientation, CMYK,
    16-bit, palette, clear errors); RGBA keeps its colour and drops its alpha.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return np.asarray(pil_to_rgb(image), dtype=np.uint8)
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(_to_uint8(array)[..., None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = _to_uint8(array)
        array = np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array[..., :3]
    else:
        raise ValueError(f"image array of shape {array.shape}: expected HxW, HxWx1, HxWx3 or HxWx4")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"image array of shape {array.shape} has no pixels")
    return np.ascontiguousarray(array)


def check_threshold(threshold: float | None) -> float | None:
    """``threshold`` as a float in [0, 1] (or None), else a ValueError."""
    if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold {threshold}: expected a value between 0 and 1")
    return None if threshold is None else float(threshold)


def check_refine(refine: str) -> str:
    if refine not in REFINE_METHODS:
        raise ValueError(f"unknown refine {refine!r}; choose one of {', '.join(REFINE_METHODS)}")
    return refine


def check_output(mode: str, bg_color=DEFAULT_BG_COLOR, bg_image=None) -> str:
    """``mode`` when it is a known output mode whose options are usable, else a ValueError."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "color":
        parse_color(bg_color)
    if mode == "image" and bg_image is None:
        raise ValueError("mode 'image' needs a background picture (--bg-image PATH)")
    return mode


def finish_mask(image: np.ndarray, small_mask: np.ndarray, refine: str = "none", threshold: float | None = None,
                post_process: bool = False) -> np.ndarray:
    """The model-size mask of ``image`` as a full-size alpha: upsampled, edge-refined, cleaned
    of small islands and holes when ``post_process`` (:func:`RMBG.removal.cleanup.clean_mask`),
    thresholded."""
    alpha = upsample_mask(small_mask, image.shape[:2])
    alpha = refine_edges(image, alpha, refine)
    if post_process:
        alpha = clean_mask(alpha)
    if threshold is not None:
        alpha = (alpha >= threshold).astype(np.float32)
    return alpha


def per_item_fallback(call, items: Sequence) -> list:
    """``call(items)`` (one result per item, e.g. one model call for a batch) as a list; when the
    batch fails, ``call([item])`` item by item, an item that still fails getting its exception."""
    items = list(items)
    if not items:
        return []
    try:
        return list(call(items))
    except Exception as exc:  # noqa: BLE001 - reported per item below
        if len(items) == 1:
            return [exc]
    results: list = []
    for item in items:
        try:
            results.append(call([item])[0])
        except Exception as exc:  # noqa: BLE001
            results.append(exc)
    return results


class Remover:
    """A model and the mask options, turning photos into masks and output pictures.

    ``model`` is a model file (``.keras``, ``.tflite``, ``.onnx``), a model name
    (``default``, ``u2netp``, ``u2net``, ``isnet``; :mod:`RMBG.models.names`) or
    ``A+B`` for the mean of their maps, a :class:`~RMBG.runtime.engines.Segmenter`,
    or ``None`` for the shipped default;
    ``runtime`` says how ``.keras`` files run (:data:`RMBG.runtime.engines.KERAS_RUNTIMES`);
    ``refine`` is one of :data:`RMBG.removal.edges.REFINE_METHODS`; ``threshold`` in
    [0, 1] makes the mask hard; ``batch_size`` photos go to the model per call.
    ``post_process`` cleans the mask of small islands and holes
    (:mod:`RMBG.removal.cleanup`; off by default: it measured neutral);
    ``foreground_estimation`` (on by default) draws the subject's estimated
    colours at soft edges; ``crop_margin`` (px, or None for no crop) cuts
    outputs to the subject's box grown by that margin.
    ``box`` (four numbers, :mod:`RMBG.removal.box`) says where the subject is:
    the model runs on that part of each photo and nothing outside it is kept;
    ``largest`` keeps only the mask's largest region; ``invert`` keeps the
    background and makes the subject transparent.
    Loaded models are cached by :func:`RMBG.runtime.engines.load_segmenter`, so
    building several removers over one file costs one load.
    """

    def __init__(
        self,
        model=None,
        runtime: str = DEFAULT_RUNTIME,
        refine: str = "none",
        threshold: float | None = None,
        batch_size: int = 1,
        post_process: bool = False,
        foreground_estimation: bool = True,
        crop_margin: int | None = None,
        box=None,
        largest: bool = False,
        invert: bool = False,
        device: str = "auto",
    ):
        self.refine = check_refine(refine)
        self.box = check_box(box)
        self.largest = bool(largest)
        self.invert = bool(invert)
        self.threshold = check_threshold(threshold)
        self.post_process = bool(post_process)
        self.foreground_estimation = bool(foreground_estimation)
        self.crop_margin = check_margin(crop_margin)
        if int(batch_size) < 1:
            raise ValueError(f"batch size {batch_size}: must be at least 1")
        self.batch_size = int(batch_size)
        self.runtime = runtime
        self.segmenter: Segmenter = load_segmenter(model, runtime=runtime, device=device)

    @property
    def name(self) -> str:
        return self.segmenter.name

    @property
    def input_size(self) -> int:
        return self.segmenter.input_size

    # -- masks -----------------------------------------------------------
    def region(self, image: np.ndarray, box=None) -> Region | None:
        """Where the model looks in ``image`` (RGB array): ``box``, else this remover's box; None for
        the whole photo. A ValueError naming the box when it does not fit the photo."""
        box = self.box if box is None else check_box(box)
        return region_of(box, *image.shape[:2])

    def small_masks(self, images: Sequence[np.ndarray], regions: Sequence[Region | None] | None = None) -> np.ndarray:
        """Masks at the model's own size, ``NxSxS`` float32 in [0, 1], ``batch_size`` per model call
        (of each photo's region when ``regions`` are given)."""
        if regions is not None:
            images = [image if region is None else region.crop(image) for image, region in zip(images, regions)]
        return self.segmenter.predict_small(list(images), batch_size=self.batch_size)

    def try_small_masks(self, images: Sequence[np.ndarray]) -> list:
        """:meth:`small_masks` for a batch where one bad photo must not sink the others.

        Returns, per photo, its small mask or the exception it raised: the batch
        is tried whole first, then photo by photo when it fails.
        """
        return per_item_fallback(lambda batch: self.segmenter.predict_small(batch, batch_size=len(batch)), images)

    def finish(self, image: np.ndarray, small_mask: np.ndarray, refine: str | None = None,
               region: Region | None = None) -> np.ndarray:
        """A small mask of ``image`` as its full-size ``HxW`` float32 alpha (this remover's
        refinement unless ``refine`` says otherwise, then its clean-up and threshold); a mask of
        ``region``'s crop is finished on the crop and pasted back, cleared outside the box; then
        only the largest region is kept when this remover says so. Never inverted (:meth:`alphas` is)."""
        method = self.refine if refine is None else check_refine(refine)
        if region is None:
            alpha = finish_mask(image, small_mask, method, self.threshold, self.post_process)
        else:
            alpha = region.paste(finish_mask(region.crop(image), small_mask, method, self.threshold, self.post_process))
        return keep_largest(alpha) if self.largest else alpha

    def alphas(self, images: Sequence, box=None) -> list[np.ndarray]:
        """Full-size alphas of ``images`` (paths, PIL images or arrays), of the subject in ``box``
        (else this remover's box) when there is one, inverted when this remover inverts."""
        rgbs = [to_rgb(image) for image in images]
        regions = [self.region(rgb, box) for rgb in rgbs]
        alphas = [self.finish(rgb, small, region=region)
                  for rgb, small, region in zip(rgbs, self.small_masks(rgbs, regions), regions)]
        return [1.0 - alpha for alpha in alphas] if self.invert else alphas

    def alpha(self, image, box=None) -> np.ndarray:
        """The full-size alpha of one photo (of the subject in ``box`` when given)."""
        return self.alphas([image], box)[0]

    # -- outputs ---------------------------------------------------------
    @staticmethod
    def compose(image: np.ndarray, alpha: np.ndarray, mode: str = "rgba", bg_color=DEFAULT_BG_COLOR,
                bg_image=None, foreground_estimation: bool = True, crop_margin: int | None = None,
                model_side: int | None = FOREGROUND_MODEL_SIDE) -> Image.Image:
        """The output picture of ``mode`` for an RGB photo and its full-size alpha
        (:func:`RMBG.removal.compose.compose`)."""
        check_output(mode, bg_color, bg_image)
        return compose(image, alpha, mode, bg_color=bg_color, bg_image=bg_image,
                       foreground_estimation=foreground_estimation, crop_margin=check_margin(crop_margin),
                       model_side=model_side)

    def picture(self, image: np.ndarray, small_mask: np.ndarray, mode: str = "rgba", bg_color=DEFAULT_BG_COLOR,
                background: np.ndarray | None = None, refine: str | None = None,
                foreground_estimation: bool | None = None, region: Region | None = None) -> Image.Image:
        """The output picture of ``mode`` from an RGB photo and its small mask (finished here, with
        this remover's refinement and foreground estimation unless ``refine`` or
        ``foreground_estimation`` say otherwise, its largest-region and invert choices, and its
        crop); ``region`` when the small mask is of a box's crop (:meth:`region`); ``background``
        is the decoded picture of the ``image`` mode (:func:`RMBG.removal.compose.load_background`)."""
        alpha = alpha_to_uint8(self.finish(image, small_mask, refine, region))
        if self.invert:
            alpha = 255 - alpha
        estimate = self.foreground_estimation if foreground_estimation is None else bool(foreground_estimation)
        return compose(image, alpha, mode, bg_color=bg_color, bg_image=background, foreground_estimation=estimate,
                       crop_margin=self.crop_margin, model_side=self.input_size)

    def remove_many(self, images: Sequence, mode: str = "rgba", bg_color=DEFAULT_BG_COLOR,
                    bg_image=None, box=None) -> list[Image.Image]:
        """The output pictures of ``mode`` for ``images`` (one model call per batch), of the subject
        in ``box`` (else this remover's box) when there is one."""
        check_output(mode, bg_color, bg_image)
        background = load_background(bg_image) if mode == "image" else None
        rgbs = [to_rgb(image) for image in images]
        regions = [self.region(rgb, box) for rgb in rgbs]
        return [
            self.picture(rgb, small, mode, bg_color, background, region=region)
            for rgb, small, region in zip(rgbs, self.small_masks(rgbs, regions), regions)
        ]

    def remove(self, image, mode: str = "rgba", bg_color=DEFAULT_BG_COLOR, bg_image=None, box=None) -> Image.Image:
        """The output picture of ``mode`` for one photo (path, PIL image or array)."""
        return self.remove_many([image], mode, bg_color, bg_image, box)[0]

    def __repr__(self) -> str:
        return (f"Remover({self.segmenter!r}, runtime={self.runtime!r}, refine={self.refine!r}, "
                f"threshold={self.threshold!r}, batch_size={self.batch_size}, post_process={self.post_process}, "
                f"foreground_estimation={self.foreground_estimation}, crop_margin={self.crop_margin!r}, "
                f"box={self.box!r}, largest={self.largest}, invert={self.invert})")
