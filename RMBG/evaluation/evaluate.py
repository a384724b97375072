"""Score our models and ONNX peers on a folder of photos with ground-truth masks.

``python -m RMBG evaluate --data DIR [--model PATH ...] [--peer ONNX ...] --out REPORT_DIR``

The data folder holds ``images/`` and ``masks/`` matched by file stem (a
prepared dataset, or one of the shared sets directly), optionally with an
``index.csv`` whose ``split`` column ``--split val`` filters on;
``--category cat`` keeps the photos of that category (the file name's prefix,
as :func:`RMBG.images.io.category_of` reads it). Every model
runs through :mod:`RMBG.runtime.engines` with its own preprocessing (rembg's for the
peers). Metrics come from :mod:`RMBG.evaluation.metrics`, at the ground truth's
resolution: when a mask's size differs from its photo, the prediction (made at
the photo's size) is resized to the mask and the pair is counted, with a
warning naming it. Unreadable photos and missing masks are reported and
skipped; the run goes on.

The report folder gets:

* ``report.json``: ``{"images": N, "models": {NAME: {"summary": {...},
  "per_category": {CAT: {...}}}}}`` with the keys of
  :data:`RMBG.evaluation.metrics.METRIC_KEYS` plus ``seconds_per_image``;
* ``per_image.csv`` (one row per image and model), ``per_image_curves.npz``
  (each model's per-image MAE and F curves, full precision, keyed by model and
  photo: :mod:`RMBG.evaluation.score_file`; what ``rmbg compare`` reads), ``run.json`` (inputs,
  model digests, what was skipped and why), ``pr_curve.png`` (one curve a
  model) and ``gallery.png`` (worst and best photos by our first model's MAE:
  image | ground truth | each model's mask);
* ``cache/``: predictions keyed by model (file hash, runtime, preprocessing)
  and photo (file hash), as 8-bit PNGs, so re-runs skip inference.

An ensemble ``A+B`` is scored as the rounded mean of its members' 8-bit maps,
each member read from (or written to) its own cache entries: after ``--peer u2net
--peer isnet``, ``--peer u2net+isnet`` runs no model. The members' rounding moves
a pixel of the mean by at most one 8-bit level from the rounded mean of their
float maps (:meth:`RMBG.runtime.ensemble.EnsembleSegmenter.predict`). Its
``seconds_per_image`` is the sum of its members'.

Predictions are scored as 8-bit maps (rounded), the way a saved mask is and
the way the SOD literature scores saved PNG maps; it also makes a cached
re-run give exactly the same numbers as the first run.

``seconds_per_image`` is the wall time of ``Segmenter.predict`` on one photo
(preprocess, inference, resize back to full size; decoding excluded), as
measured when the prediction was made: cached predictions keep their timing.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, PngImagePlugin
from tqdm.auto import tqdm

from RMBG.evaluation.metrics import (
    METRIC_KEYS,
    ImageScores,
    format_table,
    score_image,
    summarize_by,
)
from RMBG.evaluation.score_file import CURVES_NAME, write_curves
from RMBG.images.dataset import INDEX_NAME, read_index
from RMBG.images.io import (
    ImageReadError,
    category_of,
    list_images,
    read_image,
    read_mask,
    same_aspect,
    write_atomic,
)
from RMBG.runtime.engines import Segmenter, file_digest, load_segmenter
from RMBG.runtime.ensemble import EnsembleSegmenter

#: Column names that may hold the file name in a prepared dataset's ``index.csv``.
#: Matched after lower-casing and turning spaces into underscores, so the
#: ``Image Name`` / ``Image Path`` columns that ``Preprocess`` writes are found.
INDEX_NAME_COLUMNS = ("image_name", "image", "image_path", "path", "file", "filename", "name", "stem")

REPORT_KEYS = METRIC_KEYS + ("seconds_per_image",)

#: The CLI prints this many warnings; run.json keeps them all.
MAX_PRINTED_WARNINGS = 10


class EvaluationError(ValueError):
    """The evaluation cannot run (no data, no model, nothing scored); the message says why."""


# ---------------------------------------------------------------------------
# The data folder
# ---------------------------------------------------------------------------
@dataclass
class Sample:
    """A photo and its ground-truth mask."""

    image: Path
    mask: Path

    @property
    def name(self) -> str:
        return self.image.stem

    @property
    def category(self) -> str:
        return category_of(self.image)


def _warn(problems: list[str], message: str) -> None:
    problems.append(message)
    warnings.warn(message, UserWarning, stacklevel=3)


def _split_names(data_dir: Path, split: str) -> set[str]:
    """Stems of the files whose ``index.csv`` row has ``split == split`` (read by :func:`RMBG.images.dataset.read_index`)."""
    import csv

    index = data_dir / INDEX_NAME
    if not index.is_file():
        raise EvaluationError(f"{index}: not found, so --split {split!r} cannot be applied")
    try:
        columns, rows = read_index(data_dir)
    except (OSError, ValueError, csv.Error) as exc:
        raise EvaluationError(f"{index}: unreadable CSV ({exc})") from None
    if not columns or any(None in row for row in rows):
        raise EvaluationError(f"{index}: unreadable CSV (no header, or a row with more cells than the header)")
    if "split" not in columns:
        raise EvaluationError(f"{index}: has no 'split' column (columns: {', '.join(columns)})")
    normalized: dict[str, str] = {}
    for original in columns:
        normalized.setdefault(str(original).strip().lower().replace(" ", "_"), original)
    column = next((normalized[c] for c in INDEX_NAME_COLUMNS if c in normalized), None)
    if column is None:
        raise EvaluationError(
            f"{index}: no file-name column (expected one of {', '.join(INDEX_NAME_COLUMNS)})"
        )
    return {Path(row[column] or "").stem for row in rows if (row["split"] or "").strip() == split}


def find_samples(
    data_dir: str | Path, split: str | None = None, limit: int | None = None,
    categories: Sequence[str] | None = None,
) -> tuple[list[Sample], list[str]]:
    """``(samples, problems)``: photos of ``data_dir/images`` paired with ``masks/`` by stem.

    Photos without a mask are reported in ``problems`` (and warned about) and
    left out. ``split`` keeps the files ``index.csv`` assigns to it;
    ``categories`` keeps the photos of those categories (:func:`category_of`;
    one that no photo has is an :class:`EvaluationError` naming the ones there are);
    ``limit`` keeps the first ``limit`` photos in name order.
    """
    data_dir = Path(data_dir)
    images_dir, masks_dir = data_dir / "images", data_dir / "masks"
    if not images_dir.is_dir():
        raise EvaluationError(f"{data_dir}: no images/ folder (expected images/ and masks/ matched by name)")
    if not masks_dir.is_dir():
        raise EvaluationError(f"{data_dir}: no masks/ folder (expected images/ and masks/ matched by name)")
    masks: dict[str, Path] = {}
    for path in list_images(masks_dir):
        # Prefer PNG when a stem has several files.
        if path.stem not in masks or path.suffix.lower() == ".png":
            masks[path.stem] = path
    images = list_images(images_dir)
    if split is not None:
        keep = _split_names(data_dir, split)
        images = [p for p in images if p.stem in keep]
    if categories:
        present = sorted({category_of(p) for p in images})
        absent = [c for c in categories if c not in present]
        if absent:
            raise EvaluationError(
                f"{data_dir}: no photo of category {', '.join(map(repr, absent))}"
                + (f" in split {split!r}" if split else "")
                + f" (categories there: {', '.join(present) or 'none'})")
        images = [p for p in images if category_of(p) in categories]
    problems: list[str] = []
    samples: list[Sample] = []
    for image in images:
        if limit is not None and len(samples) >= limit:
            break
        mask = masks.get(image.stem)
        if mask is None:
            _warn(problems, f"{image}: no mask named {image.stem}.* in {masks_dir} (skipped)")
            continue
        samples.append(Sample(image, mask))
    return samples, problems


# ---------------------------------------------------------------------------
# Prediction cache
# ---------------------------------------------------------------------------
def model_key(segmenter: Segmenter) -> str | None:
    """Cache key of a model: its file's hash, its runtime and its preprocessing."""
    if segmenter.path is None or not Path(segmenter.path).is_file():
        return None
    text = "|".join([file_digest(segmenter.path), type(segmenter).__name__, segmenter.info.to_json()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class PredictionCache:
    """Full-size 8-bit predictions of one model as PNGs named by the photo's hash.

    The PNG's ``seconds`` text field keeps how long the prediction took.
    """

    def __init__(self, root: Path, segmenter: Segmenter, key: str):
        self.folder = Path(root) / key
        self.folder.mkdir(parents=True, exist_ok=True)
        about = self.folder / "model.json"
        if not about.exists():
            text = json.dumps({"name": segmenter.name, "path": str(segmenter.path),
                               "runtime": type(segmenter).__name__}, indent=2)
            write_atomic(about, lambda tmp: tmp.write_text(text), overwrite=True)

    def _path(self, image_digest: str) -> Path:
        return self.folder / f"{image_digest}.png"

    def get(self, image_digest: str) -> tuple[np.ndarray, float] | None:
        path = self._path(image_digest)
        if not path.is_file():
            return None
        try:
            with Image.open(path) as img:
                img.load()
                seconds = float(img.text.get("seconds", "nan"))
                if img.mode != "L":
                    return None
                mask = np.asarray(img, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError):
            return None  # a damaged entry is a miss; it is rewritten
        return mask, seconds

    def put(self, image_digest: str, mask: np.ndarray, seconds: float) -> None:
        if mask.dtype != np.uint8:
            raise TypeError(f"cache entries are 8-bit maps, got {mask.dtype}")
        info = PngImagePlugin.PngInfo()
        info.add_text("seconds", repr(float(seconds)))
        img = Image.fromarray(mask, mode="L")
        write_atomic(self._path(image_digest), lambda tmp: img.save(tmp, format="PNG", pnginfo=info),
                     overwrite=True)


# ---------------------------------------------------------------------------
# Running the models
# ---------------------------------------------------------------------------
@dataclass
class Entry:
    """One model in the run, with its cache and results."""

    name: str
    kind: str  # "model" or "peer"
    segmenter: Segmenter
    cache: PredictionCache | None
    scores: list[ImageScores] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    cached: list[bool] = field(default_factory=list)
    calls: int = 0
    #: an ensemble's members, each with its own cache (the module docstring); empty otherwise
    parts: list["Entry"] = field(default_factory=list)

    def predict(self, image: np.ndarray, digest: str) -> tuple[np.ndarray, float, bool]:
        """``(full-size uint8 mask, seconds, from_cache)`` for one photo."""
        if self.parts:
            results = [part.predict(image, digest) for part in self.parts]
            mean = np.mean([mask.astype(np.float32) for mask, _, _ in results], axis=0) / 255.0
            from_cache = all(cached for _, _, cached in results)
            self.calls += not from_cache
            return to_uint8(mean), float(sum(seconds for _, seconds, _ in results)), from_cache
        if self.cache is not None:
            hit = self.cache.get(digest)
            if hit is not None and hit[0].shape == image.shape[:2]:
                return hit[0], hit[1], True
        start = time.perf_counter()
        mask = self.segmenter.predict([image])[0]
        seconds = time.perf_counter() - start
        mask = to_uint8(mask)
        self.calls += 1
        if self.cache is not None:
            self.cache.put(digest, mask, seconds)
        return mask, seconds, False


def to_uint8(mask: np.ndarray) -> np.ndarray:
    """A float mask in [0, 1] as the 8-bit map a saved mask would be (rounded)."""
    return np.rint(np.clip(np.asarray(mask, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def _entry(name: str, kind: str, segmenter: Segmenter, cache_root: Path | None) -> Entry:
    """An entry with its cache; an ensemble's entry holds one entry per member instead."""
    if isinstance(segmenter, EnsembleSegmenter):
        parts = [_entry(member.name, kind, member, cache_root) for member in segmenter.members]
        return Entry(name, kind, segmenter, None, parts=parts)
    key = model_key(segmenter) if cache_root is not None else None
    return Entry(name, kind, segmenter, PredictionCache(cache_root, segmenter, key) if key else None)


def _cache_folders(entry: Entry) -> str | None:
    """Where an entry's predictions are cached (an ensemble's: its members' folders joined by `` + ``)."""
    if entry.parts:
        folders = [_cache_folders(part) for part in entry.parts]
        return None if None in folders else " + ".join(folders)
    return str(entry.cache.folder) if entry.cache else None


def _load_entries(models, peers, cache_root: Path | None, device: str = "auto") -> list[Entry]:
    entries: list[Entry] = []
    taken: set[str] = set()
    for kind, items in (("model", models), ("peer", peers)):
        for item in items:
            segmenter = load_segmenter(item, peer=kind == "peer", device=device)
            name, n = segmenter.name, 2
            while name in taken:
                name, n = f"{segmenter.name}-{n}", n + 1
            taken.add(name)
            entries.append(_entry(name, kind, segmenter, cache_root))
    return entries


def _check_sizes(sample: Sample, image: np.ndarray, gt: np.ndarray, problems: list[str]) -> None:
    (ih, iw), (mh, mw) = image.shape[:2], gt.shape[:2]
    if (ih, iw) == (mh, mw):
        return
    message = (f"{sample.mask}: mask is {mw}x{mh} but its photo is {iw}x{ih}; "
               f"the prediction is resized to the mask and the pair is counted")
    if not same_aspect((iw, ih), (mw, mh)):
        message += " (the aspect ratios differ: is it the right mask?)"
    _warn(problems, message)


def _round(values: dict[str, float]) -> dict[str, float | None]:
    """Six decimals; ``None`` (JSON null) where a value is unknown (e.g. timing of old cache entries)."""
    return {key: round(float(values[key]), 6) if np.isfinite(values[key]) else None for key in REPORT_KEYS}


def _summaries(entry: Entry, categories: list[str]) -> dict:
    overall, per_category = summarize_by(entry.scores, categories)
    timed = np.array(entry.seconds, np.float64)
    overall["seconds_per_image"] = float(np.nanmean(timed)) if np.isfinite(timed).any() else float("nan")
    for category in per_category:
        picked = timed[[c == category for c in categories]]
        per_category[category]["seconds_per_image"] = (
            float(np.nanmean(picked)) if np.isfinite(picked).any() else float("nan")
        )
    return {"summary": _round(overall), "per_category": {c: _round(v) for c, v in per_category.items()}}


# ---------------------------------------------------------------------------
# Figures (drawn by RMBG.evaluation.report_figures) and files
# ---------------------------------------------------------------------------
def _gallery_rows(entries: list[Entry], samples: list[Sample], digests: list[str], size: int) -> list[dict]:
    """The ``size`` worst then ``size`` best photos by the first entry's MAE."""
    maes = np.array([s.mae for s in entries[0].scores])
    order = np.argsort(-maes, kind="stable")
    size = max(1, min(size, len(order) // 2)) if len(order) > 1 else 1
    worst = [int(i) for i in order[:size]]
    best = [int(i) for i in order[::-1][:size] if i not in worst]
    labels = [f"worst {n + 1}" for n in range(len(worst))] + [f"best {n + 1}" for n in range(len(best))]
    rows = []
    for label, i in zip(labels, worst + best):
        sample = samples[i]
        image, gt = read_image(sample.image), read_mask(sample.mask)
        masks = [entry.predict(image, digests[i])[0] for entry in entries]
        rows.append({
            "title": f"{label}: {sample.name}", "image": image, "gt": gt, "masks": masks,
            "maes": [entry.scores[i].mae for entry in entries],
        })
    return rows


def _write_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=2)
    write_atomic(path, lambda tmp: tmp.write_text(text + "\n"), overwrite=True)


def _write_per_image(path: Path, entries: list[Entry], samples: list[Sample]) -> None:
    import pandas as pd

    rows = []
    for entry in entries:
        for sample, score, seconds, cached in zip(samples, entry.scores, entry.seconds, entry.cached):
            rows.append({"image": sample.image.name, "category": sample.category, "model": entry.name,
                         "kind": entry.kind, **score.as_dict(), "seconds": seconds, "cached": cached})
    table = pd.DataFrame(rows)
    write_atomic(path, lambda tmp: table.to_csv(tmp, index=False, float_format="%.6f"), overwrite=True)


# ---------------------------------------------------------------------------
# The evaluation
# ---------------------------------------------------------------------------
def evaluate(
    data_dir: str | Path,
    models: Sequence = (),
    peers: Sequence = (),
    out_dir: str | Path = "report",
    limit: int | None = None,
    split: str | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    gallery_size: int = 3,
    progress: bool = True,
    device: str = "auto",
    categories: Sequence[str] | None = None,
) -> dict:
    """Score ``models`` (our model files or Segmenters) and ``peers`` (ONNX U-2-Net files).

    Writes the report folder described in the module docstring and returns the
    ``report.json`` content. ``cache_dir`` defaults to ``out_dir/cache``;
    ``use_cache=False`` neither reads nor writes it. Raises
    :class:`EvaluationError` when there is nothing to score. ``categories`` keeps the photos of
    those categories only (:func:`find_samples`). ``device`` is where the models run
    (:data:`RMBG.runtime.device.DEVICES`); ``run.json`` records what ran each one.
    """
    if limit is not None and limit < 1:
        raise EvaluationError(f"limit must be at least 1, got {limit}")
    out_dir = Path(out_dir)
    models, peers = list(models), list(peers)
    if not models and not peers:
        raise EvaluationError("nothing to evaluate: give at least one model or peer")
    wanted = list(dict.fromkeys(categories or []))
    samples, problems = find_samples(data_dir, split=split, limit=limit, categories=wanted)
    if not samples:
        raise EvaluationError(f"{data_dir}: no photo with a mask to score"
                              + (f" in split {split!r}" if split else ""))
    cache_root = (Path(cache_dir) if cache_dir else out_dir / "cache") if use_cache else None
    entries = _load_entries(models, peers, cache_root, device)

    scored: list[Sample] = []
    digests: list[str] = []
    for sample in tqdm(samples, desc="evaluate", unit="img", disable=not progress):
        try:
            image, gt = read_image(sample.image), read_mask(sample.mask)
        except ImageReadError as exc:
            _warn(problems, f"{exc} (skipped)")
            continue
        _check_sizes(sample, image, gt, problems)
        digest = file_digest(sample.image)
        for entry in entries:
            mask, seconds, cached = entry.predict(image, digest)
            entry.scores.append(score_image(mask, gt))
            entry.seconds.append(seconds)
            entry.cached.append(cached)
        scored.append(sample)
        digests.append(digest)
    if not scored:
        raise EvaluationError(f"{data_dir}: none of the {len(samples)} photos could be read")

    categories = [s.category for s in scored]
    report = {"images": len(scored),
              "models": {entry.name: _summaries(entry, categories) for entry in entries}}
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "report.json", report)
    _write_per_image(out_dir / "per_image.csv", entries, scored)
    write_curves(out_dir / CURVES_NAME,
                 {e.name: (e.kind, [x.mae for x in e.scores], [x.f_curve for x in e.scores]) for e in entries},
                 [s.image.name for s in scored], categories, digests, split, str(Path(data_dir).resolve()))
    from RMBG.evaluation.report_figures import plot_gallery, plot_pr_curves

    plot_pr_curves(entries, {n: m["summary"]["max_f"] for n, m in report["models"].items()},
                   out_dir / "pr_curve.png")
    if gallery_size > 0:
        plot_gallery(_gallery_rows(entries, scored, digests, gallery_size),
                     [entry.name for entry in entries], out_dir / "gallery.png")
    _write_json(out_dir / "run.json", {
        "data": str(Path(data_dir).resolve()), "split": split, "categories": wanted or None, "limit": limit,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "models": [{"name": e.name, "kind": e.kind, "path": str(e.segmenter.path), "device": e.segmenter.device_line,
                    "runtime": type(e.segmenter).__name__, "input_size": e.segmenter.input_size,
                    "cache": _cache_folders(e),
                    "predicted": e.calls, "from_cache": int(sum(e.cached))} for e in entries],
        "skipped_or_warned": problems,
        "conventions": "see RMBG.evaluation.metrics: dataset max-F/max-E are maxima of the mean curves; "
                       "other metrics are means of per-image values; scored at the mask's size",
    })
    return report


def summary_table(report: dict, kinds: dict[str, str] | None = None) -> str:
    """The terminal table of a report: each model overall, then per category when several."""
    rows: dict[str, dict[str, float]] = {}
    for name, result in report["models"].items():
        label = f"{name} ({kinds[name]})" if kinds and name in kinds else name
        categories = result["per_category"]
        if len(categories) == 1:
            rows[f"{label} [{next(iter(categories))}]"] = result["summary"]
            continue
        rows[f"{label} [all]"] = result["summary"]
        for category, values in categories.items():
            rows[f"  {label} [{category}]"] = values
    return format_table(rows, REPORT_KEYS)
