"""The figures of an evaluation report (``RMBG.evaluation.evaluate``), written as PNG files into the report folder.

:func:`plot_pr_curves` draws ``pr_curve.png`` (one precision-recall curve a
model) and :func:`plot_gallery` draws ``gallery.png`` (rows of photo |
ground truth | each model's mask); both write atomically, at 100 dpi.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from matplotlib.figure import Figure

from RMBG.evaluation.thumbnails import thumbnail_of_height
from RMBG.images.io import write_atomic

#: Height in pixels of every picture of a gallery row.
GALLERY_THUMB_HEIGHT = 200


def save_figure(fig: Figure, path: Path) -> None:
    """Write ``fig`` as a PNG at 100 dpi (tight bounding box), atomically, over any old file."""
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"),
                 overwrite=True)


def plot_pr_curves(entries: Sequence, max_f: Mapping[str, float], path: Path) -> None:
    """One precision-recall curve per model (means over images at 256 thresholds).

    ``entries`` are the models of an evaluation (``RMBG.evaluation.evaluate.Entry``:
    ``name``, ``kind`` and per-image ``scores``); ``max_f`` their max-F by name.
    """
    from RMBG.evaluation.metrics import pr_curve

    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    for entry in entries:
        precision, recall = pr_curve(entry.scores)
        ax.plot(recall, precision, label=f"{entry.name} ({entry.kind}), max-F {max_f[entry.name]:.3f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.01),
           title="Precision-recall, mean over images")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    save_figure(fig, path)


def plot_gallery(rows: list[dict], names: list[str], path: Path) -> None:
    """Rows of image | ground truth | each model's mask, titled with each model's MAE.

    ``rows`` items: ``{"title", "image", "gt", "masks": [...], "maes": [...]}``.
    """
    cols = 2 + len(names)
    fig = Figure(figsize=(2.4 * cols, 2.0 * len(rows) + 0.4), layout="constrained")
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, row in enumerate(rows):
        cells = [(row["image"], row["title"]), (row["gt"], "ground truth")]
        cells += [(m, f"{n}\nMAE {e:.3f}") for m, n, e in zip(row["masks"], names, row["maes"])]
        for c, (array, title) in enumerate(cells):
            ax = axes[r][c]
            ax.imshow(thumbnail_of_height(array, GALLERY_THUMB_HEIGHT), cmap="gray", vmin=0, vmax=255)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.suptitle("worst (top) and best (bottom) photos by MAE of " + names[0], fontsize=10)
    save_figure(fig, path)
