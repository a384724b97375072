"""The notebooks' figures of photos, masks and cut-outs, each returned as a matplotlib Figure.

Built with :class:`matplotlib.figure.Figure` (no pyplot, no global state):
Jupyter shows a returned figure once :func:`RMBG.viz.notebook.enable_inline_figures`
has run, and ``fig.savefig(path)`` writes it anywhere. Masks and cut-outs
come from :mod:`RMBG.viz.cutouts` (the :class:`RMBG.removal.pipeline.Remover` pipeline).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from RMBG.constants import SEED, shared_data_dir
from RMBG.evaluation.thumbnails import THUMB_SIDE, thumbnail
from RMBG.viz.cutouts import DEFAULT_BG, alphas, remove_all
from RMBG.viz.drawing import as_array, message_figure, picture_name, show
from RMBG.viz.examples import ORIGINAL_SET


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def pair_grid(
    dataset_dir: str | os.PathLike,
    n: int = 6,
    cols: int = 3,
    seed: int = SEED,
    split: str | None = None,
) -> Figure:
    """A grid of ``n`` photos, each beside its mask, picked at random (seeded) across categories.

    ``dataset_dir`` is a prepared folder or any ``images/`` + ``masks/``
    folder; ``split`` (``"train"``/``"val"``) keeps only that split of a
    prepared folder's ``index.csv``.
    """
    from RMBG.images.dataset import limit_pairs, list_pairs
    from RMBG.images.io import read_image, read_mask

    if n < 1 or cols < 1:
        raise ValueError(f"n and cols must be at least 1, got n={n}, cols={cols}")
    pairs, _skipped = list_pairs(dataset_dir)
    if split is not None:
        pairs = [p for p in pairs if p.split == split]
    if not pairs:
        raise ValueError(f"{dataset_dir}: no image/mask pairs" + (f" in split {split!r}" if split else ""))
    chosen = limit_pairs(pairs, n, seed)
    cols = min(cols, len(chosen))
    rows = math.ceil(len(chosen) / cols)
    fig = Figure(figsize=(4.4 * cols, 2.4 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, 2 * cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, pair in enumerate(chosen):
        row, col = divmod(k, cols)
        image, mask = read_image(pair.image), read_mask(pair.mask)
        ax_img, ax_mask = axes[row][2 * col], axes[row][2 * col + 1]
        ax_img.imshow(thumbnail(image))
        ax_img.set_title(f"{pair.name} ({image.shape[1]}x{image.shape[0]})", fontsize=8)
        ax_mask.imshow(thumbnail(mask), cmap="gray", vmin=0, vmax=255)
        ax_mask.set_title(f"mask, {100 * float((mask >= 0.5).mean()):.0f}% foreground", fontsize=8)
    fig.suptitle(f"{len(chosen)} of {len(pairs)} pairs in {Path(dataset_dir).name}", fontsize=10)
    return fig


# ---------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------
def prediction_grid(model, dataset_dir: str | os.PathLike, n: int = 3, split: str | None = "val",
                    seed: int = SEED) -> Figure:
    """Photo | ground truth | predicted mask for ``n`` pairs of a dataset (``split`` when it has one).

    The masks are :class:`RMBG.removal.pipeline.Remover`'s (the default runtime of
    ``python -m RMBG remove``, no refinement).
    """
    from RMBG.evaluation.metrics import score_image
    from RMBG.images.dataset import limit_pairs, list_pairs
    from RMBG.images.io import read_image, read_mask
    from RMBG.removal.pipeline import Remover

    pairs, _skipped = list_pairs(dataset_dir)
    chosen = [p for p in pairs if split is None or p.split == split] or pairs
    chosen = limit_pairs(chosen, n, seed)
    if not chosen:
        raise ValueError(f"{dataset_dir}: no image/mask pairs")
    remover = Remover(model)
    images = [read_image(p.image) for p in chosen]
    masks = remover.alphas(images)
    fig = Figure(figsize=(8.4, 2.6 * len(chosen) + 0.4), layout="constrained")
    axes = fig.subplots(len(chosen), 3, squeeze=False)
    for row, (pair, image, mask) in enumerate(zip(chosen, images, masks)):
        truth = read_mask(pair.mask)
        error = score_image(mask, truth).mae
        for ax, shown, label in zip(axes[row], (image, truth, mask),
                                    (pair.name, "ground truth", f"predicted, MAE {error:.3f}")):
            show(ax, shown)
            ax.set_title(label, fontsize=9)
    model_name = Path(model).name if isinstance(model, (str, os.PathLike)) else remover.name
    fig.suptitle(f"{model_name} on {len(chosen)} {split or ''} photos of {Path(dataset_dir).name}", fontsize=10)
    return fig


def picture(path: str | os.PathLike, title: str | None = None, width: float = 9.0) -> Figure:
    """A picture file (a report's ``pr_curve.png`` or ``gallery.png``) as a Figure."""
    image = np.asarray(Image.open(path).convert("RGB"))
    height = width * image.shape[0] / image.shape[1]
    fig = Figure(figsize=(width, height + (0.3 if title else 0.0)), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(image)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


# ---------------------------------------------------------------------------
# Before / after
# ---------------------------------------------------------------------------
def side_by_side(
    images: Sequence,
    results: Sequence,
    titles: Sequence[str] | None = None,
    labels: tuple[str, str] = ("before", "after"),
) -> Figure:
    """One row per photo: the photo, then its result (cut-out on a checkerboard, mask or composite).

    ``images`` and ``results`` are paths, PIL images or arrays, in the same
    order; results may be RGBA (transparency shown as a checkerboard), RGB
    or single-channel masks.
    """
    images, results = list(images), list(results)
    if len(images) != len(results):
        raise ValueError(f"{len(images)} images but {len(results)} results")
    if not images:
        raise ValueError("nothing to show: no images")
    titles = list(titles) if titles is not None else [picture_name(p, k) for k, p in enumerate(images)]
    fig = Figure(figsize=(8, 3.6 * len(images)), layout="constrained")
    axes = fig.subplots(len(images), 2, squeeze=False)
    for row, (image, result, title) in enumerate(zip(images, results, titles)):
        show(axes[row][0], as_array(image))
        show(axes[row][1], as_array(result))
        axes[row][0].set_title(f"{title}: {labels[0]}", fontsize=9)
        axes[row][1].set_title(labels[1], fontsize=9)
    return fig


def mode_grid(photo, model=None, modes: Sequence[str] | None = None, bg_color: str = DEFAULT_BG,
              bg_image=None, refine: str = "none", cols: int = 3) -> Figure:
    """One photo in every output mode of ``RMBG.removal.compose`` (``image`` only with ``bg_image``)."""
    from RMBG.removal.compose import MODES
    from RMBG.removal.pipeline import Remover, to_rgb

    modes = [m for m in (modes or MODES) if m != "image" or bg_image is not None]
    image = to_rgb(photo)
    (mask,) = alphas(image, model, (refine,))
    pictures = [("input", image)] + [
        (m, Remover.compose(image, mask, m, bg_color=bg_color, bg_image=bg_image)) for m in modes
    ]
    rows = math.ceil(len(pictures) / cols)
    fig = Figure(figsize=(4.0 * cols, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, shown) in zip(axes.flat, pictures):
        show(ax, as_array(shown))
        ax.set_title(label, fontsize=9)
    fig.suptitle(f"{picture_name(photo, 0)} in every output mode", fontsize=10)
    return fig


def refine_grid(photo, model=None, methods: Sequence[str] = ("none", "guided"), crop: float = 0.35) -> Figure:
    """The mask of ``photo`` with each refinement method, whole and zoomed where the mask is least sure."""
    from RMBG.removal.pipeline import Remover, to_rgb

    image = to_rgb(photo)
    masks = list(zip(methods, alphas(image, model, methods)))
    box = _edge_box(masks[0][1], crop)
    fig = Figure(figsize=(3.4 * (len(masks) + 1), 6.4), layout="constrained")
    axes = fig.subplots(2, len(masks) + 1, squeeze=False)
    top, bottom, left, right = box
    show(axes[0][0], image)
    axes[0][0].set_title(picture_name(photo, 0), fontsize=9)
    axes[0][0].add_patch(_rectangle(box, min(1.0, THUMB_SIDE / max(image.shape[:2]))))
    show(axes[1][0], image[top:bottom, left:right])
    axes[1][0].set_title("zoom", fontsize=9)
    for k, (method, mask) in enumerate(masks, start=1):
        show(axes[0][k], mask)
        axes[0][k].set_title(f"refine={method}", fontsize=9)
        show(axes[1][k], as_array(Remover.compose(image[top:bottom, left:right], mask[top:bottom, left:right])))
        axes[1][k].set_title(f"cut-out, refine={method}", fontsize=9)
    return fig


def _edge_box(mask: np.ndarray, crop: float) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a ``crop``-sized window holding the most unsure mask pixels."""
    import cv2

    height, width = mask.shape
    h, w = max(8, int(height * crop)), max(8, int(width * crop))
    unsure = ((mask > 0.05) & (mask < 0.95)).astype(np.float32)
    if unsure.sum() == 0:
        cy, cx = height // 2, width // 2
    else:
        density = cv2.boxFilter(unsure, -1, (w, h), normalize=True, borderType=cv2.BORDER_CONSTANT)
        cy, cx = np.unravel_index(int(np.argmax(density)), density.shape)
    top = int(min(max(0, cy - h // 2), height - h))
    left = int(min(max(0, cx - w // 2), width - w))
    return top, top + h, left, left + w


def _rectangle(box, scale: float = 1.0):
    """A red frame around ``box`` (full-size pixels) on a picture drawn at ``scale`` (a thumbnail)."""
    from matplotlib.patches import Rectangle

    top, bottom, left, right = (v * scale for v in box)
    return Rectangle((left, top), right - left, bottom - top, fill=False, edgecolor="red", linewidth=1.5)


def original_comparison(model=None, data_root: str | os.PathLike | None = None, n: int | None = None) -> Figure:
    """The original project's ``predict.py`` pictures beside ours (``side-by-side`` mode) for its demo inputs.

    Needs ``../shared/data/seed_test``; without it the figure says so.
    """
    from RMBG.images.io import list_images

    root = Path(data_root) if data_root is not None else shared_data_dir()
    folder = root / ORIGINAL_SET if root is not None else None
    inputs = list_images(folder / "images")[:n] if folder is not None and (folder / "images").is_dir() else []
    if not inputs:
        return message_figure("the original project's demo outputs are in ../shared/data/seed_test (absent here)",
                              fontsize=9)
    originals = [folder / "seed_outputs" / f"mask{p.stem}.jpg" for p in inputs]
    ours = remove_all(inputs, model, mode="side-by-side")
    fig = Figure(figsize=(11, 2.9 * len(inputs) + 0.3), layout="constrained")
    axes = fig.subplots(len(inputs), 2, squeeze=False)
    for row, (photo, original, mine) in enumerate(zip(inputs, originals, ours)):
        if original.is_file():
            show(axes[row][0], as_array(original))
        axes[row][0].set_title(f"{photo.name}: the original predict.py", fontsize=9)
        show(axes[row][1], as_array(mine))
        axes[row][1].set_title("RMBG remove --mode side-by-side", fontsize=9)
    return fig
