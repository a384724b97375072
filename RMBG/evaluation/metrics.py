"""Mask-quality metrics of the salient-object field, per image and summarised.

Every number comes from ``pysodmetrics`` (import name ``py_sod_metrics``), the
reference Python implementation of these metrics; this module only decides
what is fed to it and how per-image values are combined.

Conventions
-----------
* **Inputs.** A prediction is a float mask in [0, 1] (or a uint8 0-255 map);
  it is used as given (no min-max stretching: we score the mask a user would
  get). The ground truth is binarised at 0.5 (of its range). When the two
  sizes differ, the *prediction* is resized to the ground truth, so metrics
  are computed at the ground truth's resolution and the truth is never
  interpolated.
* **Thresholds.** F, precision, recall and E are computed at the library's
  256 thresholds: entry ``i`` of a curve binarises ``floor(255 * pred) >=
  255 - i`` (so entry 0 is the strictest threshold, entry 255 calls every
  pixel foreground). IoU and Dice binarise at ``pred > 0.5``.
* **F-measure** uses beta^2 = 0.3 (:data:`BETA2`), as the SOD literature does.
  **Weighted F** uses the library's and its authors' (Margolin et al. 2014)
  beta^2 = 1.
* **Summaries follow the SOD literature** (and ``py_sod_metrics``' own
  accumulators): MAE, weighted F, S-measure, IoU and Dice are the mean of the
  per-image values; the F and E curves are first averaged over images, then
  ``max_f``/``max_e`` is the maximum of that mean curve and ``mean_f``/
  ``mean_e`` its mean. ``max_f`` of a set is therefore *not* the mean of the
  per-image ``max_f`` (each image may peak at a different threshold; the
  dataset figure uses one threshold for all images, so it is lower or
  equal). ``mean_f``/``mean_e`` equal the mean of the per-image values.
* Known quirks kept from the reference implementation so numbers compare
  with published ones: at the last threshold every pixel is foreground, so
  an empty prediction still has ``max_f`` = F(precision = foreground share,
  recall = 1) > 0; the E-measure divides by ``pixels - 1``, so a perfect mask
  scores ``N / (N - 1)``, a hair above 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import cv2
import numpy as np

#: beta^2 of the F-measure (SOD convention: weights precision over recall).
BETA2 = 0.3
#: Threshold of the binary metrics (IoU, Dice), and of the ground truth.
THRESHOLD = 0.5
#: The summary keys, in table order (``seconds_per_image`` is added by evaluate).
METRIC_KEYS = ("mae", "max_f", "mean_f", "weighted_f", "s_measure", "max_e", "mean_e", "iou", "dice")
#: Which way is better, for tables and galleries.
LOWER_IS_BETTER = frozenset({"mae"})


def _sod():
    """``py_sod_metrics``, imported on first use (it pulls in scipy and scikit-image)."""
    import py_sod_metrics

    return py_sod_metrics


@dataclass
class ImageScores:
    """Metrics of one prediction against one ground truth.

    Scalars are the per-image values; the curves (256 entries, strictest
    threshold first) are kept so that a set of images can be summarised the
    way the SOD literature does (see :func:`summarize`).
    """

    mae: float
    weighted_f: float
    s_measure: float
    iou: float
    dice: float
    f_curve: np.ndarray = field(repr=False)
    e_curve: np.ndarray = field(repr=False)
    precision: np.ndarray = field(repr=False)
    recall: np.ndarray = field(repr=False)

    @property
    def max_f(self) -> float:
        return float(np.max(self.f_curve))

    @property
    def mean_f(self) -> float:
        return float(np.mean(self.f_curve))

    @property
    def max_e(self) -> float:
        return float(np.max(self.e_curve))

    @property
    def mean_e(self) -> float:
        return float(np.mean(self.e_curve))

    def as_dict(self) -> dict[str, float]:
        """The nine per-image values, keyed as :data:`METRIC_KEYS`."""
        return {key: float(getattr(self, key)) for key in METRIC_KEYS}


def resize_to(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a float mask to ``(height, width)``: area averaging when shrinking, else bilinear."""
    height, width = int(shape[0]), int(shape[1])
    if mask.shape[:2] == (height, width):
        return mask
    shrinking = height <= mask.shape[0] and width <= mask.shape[1]
    method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(np.asarray(mask, np.float32), (width, height), interpolation=method)
    return np.clip(resized, 0.0, 1.0)


def _as_unit_float(array: np.ndarray, what: str) -> np.ndarray:
    """A 2-D map as float64 in [0, 1] (uint8/uint16 scaled by their range, bool as 0/1)."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-D mask, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{what} is empty (shape {array.shape})")
    if array.dtype == bool:
        return array.astype(np.float64)
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float64) / 65535.0
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(f"{what} values must lie in [0, 1], found [{low:.4g}, {high:.4g}]")
    return np.clip(array, 0.0, 1.0)


def prepare(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(pred float64 in [0, 1], gt bool)`` at the ground truth's size."""
    gt_bool = _as_unit_float(gt, "ground truth") > THRESHOLD
    pred_f = _as_unit_float(pred, "prediction")
    if pred_f.shape != gt_bool.shape:
        pred_f = resize_to(pred_f, gt_bool.shape).astype(np.float64)
    return pred_f, gt_bool


def score_image(pred: np.ndarray, gt: np.ndarray) -> ImageScores:
    """All metrics of one prediction against its ground truth (see the module notes)."""
    sod = _sod()
    pred, gt = prepare(pred, gt)

    counts = sod.FmeasureV2(
        {
            "f": sod.FmeasureHandler(with_dynamic=True, with_adaptive=False, beta=BETA2),
            "p": sod.PrecisionHandler(with_dynamic=True, with_adaptive=False),
            "r": sod.RecallHandler(with_dynamic=True, with_adaptive=False),
            "iou": sod.IOUHandler(with_dynamic=False, with_adaptive=False, with_binary=True),
            "dice": sod.DICEHandler(with_dynamic=False, with_adaptive=False, with_binary=True),
        }
    )
    emeasure, smeasure, wfmeasure, mae = sod.Emeasure(), sod.Smeasure(), sod.WeightedFmeasure(), sod.MAE()
    for metric in (counts, emeasure, smeasure, wfmeasure, mae):
        metric.step(pred, gt, normalize=False)

    c = counts.get_results()
    return ImageScores(
        mae=float(mae.get_results()["mae"]),
        weighted_f=float(wfmeasure.get_results()["wfm"]),
        s_measure=float(smeasure.get_results()["sm"]),
        iou=float(c["iou"]["binary"]),
        dice=float(c["dice"]["binary"]),
        f_curve=np.asarray(c["f"]["dynamic"], np.float64),
        e_curve=np.asarray(emeasure.get_results()["em"]["curve"], np.float64),
        precision=np.asarray(c["p"]["dynamic"], np.float64),
        recall=np.asarray(c["r"]["dynamic"], np.float64),
    )


def summarize(scores: Sequence[ImageScores]) -> dict[str, float]:
    """Dataset-level metrics of a set of images, SOD style (see the module notes).

    Returns NaN for every key when ``scores`` is empty.
    """
    if len(scores) == 0:
        return {key: float("nan") for key in METRIC_KEYS}
    f_curve = np.mean([s.f_curve for s in scores], axis=0)
    e_curve = np.mean([s.e_curve for s in scores], axis=0)
    mean = lambda key: float(np.mean([getattr(s, key) for s in scores]))  # noqa: E731
    return {
        "mae": mean("mae"),
        "max_f": float(f_curve.max()),
        "mean_f": float(f_curve.mean()),
        "weighted_f": mean("weighted_f"),
        "s_measure": mean("s_measure"),
        "max_e": float(e_curve.max()),
        "mean_e": float(e_curve.mean()),
        "iou": mean("iou"),
        "dice": mean("dice"),
    }


def summarize_by(
    scores: Sequence[ImageScores], categories: Sequence[str]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """``(overall, {category: summary})``; categories sorted by name."""
    if len(scores) != len(categories):
        raise ValueError(f"{len(scores)} scores but {len(categories)} categories")
    groups: dict[str, list[ImageScores]] = {}
    for score, category in zip(scores, categories):
        groups.setdefault(category, []).append(score)
    return summarize(scores), {cat: summarize(groups[cat]) for cat in sorted(groups)}


def pr_curve(scores: Iterable[ImageScores]) -> tuple[np.ndarray, np.ndarray]:
    """Mean precision and recall over images at the 256 thresholds (strictest first)."""
    scores = list(scores)
    if not scores:
        return np.zeros(0), np.zeros(0)
    precision = np.mean([s.precision for s in scores], axis=0)
    recall = np.mean([s.recall for s in scores], axis=0)
    return precision, recall


def format_table(rows: Mapping[str, Mapping[str, float]], keys: Sequence[str] = METRIC_KEYS) -> str:
    """A fixed-width text table: one row per label, one column per metric key."""
    width = max([len("model / category")] + [len(label) for label in rows])
    widths = [max(8, len(key)) + 2 for key in keys]
    head = "model / category".ljust(width) + "".join(f"{key:>{w}}" for key, w in zip(keys, widths))
    lines = [head, "-" * len(head)]
    for label, values in rows.items():
        cells = []
        for key, w in zip(keys, widths):
            value = values.get(key)
            value = float("nan") if value is None else value
            cells.append(f"{value:>{w}.4f}" if np.isfinite(value) else f"{'-':>{w}}")
        lines.append(label.ljust(width) + "".join(cells))
    return "\n".join(lines)

