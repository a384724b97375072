"""One training folder for distillation: ground truth, teacher maps, or a mix of both.

``python -m RMBG distill-set --labelled DIR --teacher-labels DIR [--teacher-labels DIR ...]
[--teacher-weights W1,W2 [--teacher-weights CATEGORY=W1,W2 ...]] --gt-share 0.7 --out DIR``
writes ``DIR/index.csv`` (and ``DIR/masks/`` for the mixed and combined
targets only; every other row points at the files where they are).

A photo's *teacher map* is the weighted mean of the maps of every
``--teacher-labels`` folder that labelled it, ``sum(w_i * map_i) / sum(w_i)``,
with one weight per folder in the order given (:class:`TeacherWeights`:
equal by default, overridden per category, e.g. IS-Net weighted up on
people). Then:

- a labelled photo of the ``train`` split whose photo the teacher also
  labelled gets the target ``gt_share * ground truth + (1 - gt_share) *
  teacher map`` (8-bit, at the photo's size): the truth where the labels are
  sure, the teacher's soft edges where the labels are coarse (the people masks
  are binarised, the cat masks filled polygons). ``--gt-share 1`` keeps the
  ground truth alone;
- a labelled photo of the ``val`` or ``test`` split keeps its ground truth and
  its split: validation and test never see a teacher map;
- a teacher-labelled photo that is not one of the labelled photos (say the
  unlabelled set) is a ``train`` row with the teacher's map; one that is a
  validation or test photo (by its path or its prepared copy's source) is
  left out and reported.

The ``Target`` column says which (``gt``, ``teacher``, ``mix:SHARE``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from RMBG.images.dataset import INDEX_NAME, read_index
from RMBG.images.io import ImageReadError, read_mask, write_atomic
from RMBG.runtime.ensemble import weighted_mean_map
from RMBG.training.label import mask_to_png, write_index_rows

#: ``index.csv`` columns of a distillation folder.
DISTILL_COLUMNS = ["Image Name", "Category", "Image Path", "Mask Path", "width", "height", "split", "Target"]

#: The default share of the ground truth in a labelled training photo's target.
DEFAULT_GT_SHARE = 0.7


@dataclass(frozen=True)
class TeacherWeights:
    """One weight per teacher folder (in ``--teacher-labels`` order), overridable per category."""

    default: tuple[float, ...] | None = None
    by_category: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, specs: Sequence[str], n_teachers: int) -> "TeacherWeights":
        """From ``["1,1", "person=0.2,0.8"]``: a plain list is the default, ``CATEGORY=`` an override."""
        default, by_category = None, {}
        for spec in specs:
            category, _, values = spec.rpartition("=")
            try:
                weights = tuple(float(v) for v in values.split(","))
            except ValueError:
                raise ValueError(f"--teacher-weights {spec!r}: weights must be numbers, e.g. 1,1 or person=0.3,0.7")
            if len(weights) != n_teachers or any(w < 0 for w in weights) or sum(weights) <= 0:
                raise ValueError(f"--teacher-weights {spec!r}: give {n_teachers} weights >= 0 (one per "
                                 "--teacher-labels folder, in order) that do not sum to 0")
            if category:
                by_category[category.strip()] = weights
            elif default is not None:
                raise ValueError(f"--teacher-weights {spec!r}: the default weights are given twice")
            else:
                default = weights
        return cls(default, by_category)

    def for_category(self, category: str, n_teachers: int) -> tuple[float, ...]:
        return self.by_category.get(category) or self.default or (1.0,) * n_teachers


@dataclass
class DistillSetResult:
    out: Path
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        parts = ", ".join(f"{count} {kind}" for kind, count in sorted(self.counts.items()))
        lines = [f"wrote {self.out / INDEX_NAME}: {parts}"]
        lines += [f"  skipped {path}: {why}" for path, why in self.problems]
        return "\n".join(lines)


def _absolute(root: Path, text: str) -> Path:
    path = Path(text)
    return path if path.is_absolute() else (root / path).resolve()


def mix_targets(truth: np.ndarray, teacher: np.ndarray, gt_share: float) -> np.ndarray:
    """``gt_share * truth + (1 - gt_share) * teacher``, the truth resized to the teacher's (the photo's) size."""
    if truth.shape != teacher.shape:
        truth = cv2.resize(truth, (teacher.shape[1], teacher.shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(gt_share * truth + (1.0 - gt_share) * teacher, 0.0, 1.0)


def build_distill_set(
    labelled: str | os.PathLike,
    teacher_dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    gt_share: float = DEFAULT_GT_SHARE,
    weights: TeacherWeights | None = None,
) -> DistillSetResult:
    """Write the distillation folder ``out`` (see the module docstring)."""
    if not 0.0 <= gt_share <= 1.0:
        raise ValueError(f"--gt-share must be in [0, 1], got {gt_share}")
    weights = weights or TeacherWeights()
    labelled, out = Path(labelled), Path(out)
    _columns, labelled_rows = read_index(labelled)
    if not labelled_rows or any((row.get("split") or "").strip() not in {"train", "val", "test"} for row in labelled_rows):
        raise ValueError(f"{labelled / INDEX_NAME}: every row needs a split (prepare it with --val-fraction)")
    n_teachers = len(teacher_dirs)
    teacher_rows: dict[Path, list[tuple[int, Path, dict]]] = {}  # source photo -> (teacher number, folder, row)
    for number, folder in enumerate(map(Path, teacher_dirs)):
        _columns, rows = read_index(folder)
        for row in rows:
            teacher_rows.setdefault(Path(row["Source Image"]).resolve(), []).append((number, folder, row))
    result = DistillSetResult(out=out)
    rows_out: list[dict] = []
    used: set[Path] = set()
    (out / "masks").mkdir(parents=True, exist_ok=True)

    def add(row: dict, image: Path, mask: Path, split: str, target: str) -> None:
        rows_out.append({
            "Image Name": image.name, "Category": row["Category"], "Image Path": str(image),
            "Mask Path": str(mask), "width": row.get("width", ""), "height": row.get("height", ""),
            "split": split, "Target": target,
        })
        kind = target.split(":")[0]
        result.counts[f"{split} {kind}"] = result.counts.get(f"{split} {kind}", 0) + 1

    def teacher_map(taught: list[tuple[int, Path, dict]], category: str) -> np.ndarray:
        """The weighted mean map of the teachers that labelled one photo."""
        per_teacher = weights.for_category(category, n_teachers)
        maps = [read_mask(_absolute(folder, row["Mask Path"])) for _n, folder, row in taught]
        try:
            return weighted_mean_map(maps, [per_teacher[number] for number, _f, _r in taught])
        except ValueError as exc:
            raise ValueError(f"{taught[0][2]['Source Image']}: {exc} (category {category})") from None

    held_out = {  # a val/test photo, under its prepared name or its source's
        path for row in labelled_rows if row["split"].strip() != "train"
        for path in (_absolute(labelled, row["Image Path"]), Path(row.get("Source Image") or "/").resolve())
    }
    for row in labelled_rows:
        image, truth = _absolute(labelled, row["Image Path"]), _absolute(labelled, row["Mask Path"])
        split = row["split"].strip()
        taught = teacher_rows.get(image.resolve()) or teacher_rows.get(Path(row.get("Source Image") or "/").resolve())
        if split != "train" or taught is None or gt_share == 1.0:
            add(row, image, truth, split, "gt")
            continue
        used.add(Path(taught[0][2]["Source Image"]).resolve())
        try:
            mixed = mix_targets(read_mask(truth), teacher_map(taught, row["Category"]), gt_share)
        except (ImageReadError, ValueError) as exc:
            result.problems.append((exc.path, exc.reason))
            continue
        target = out / "masks" / f"{image.stem}.png"
        write_atomic(target, lambda tmp: mask_to_png(mixed).save(tmp, format="PNG"), overwrite=True)
        add(row, image, target.resolve(), split, f"mix:{gt_share:g}")
    for source, taught in sorted(teacher_rows.items()):
        if source in used:
            continue
        if source in held_out:
            result.problems.append((str(source), "a validation/test photo of the labelled set: never a training target"))
            continue
        _number, folder, row = taught[0]
        image, mask = _absolute(folder, row["Image Path"]), _absolute(folder, row["Mask Path"])
        if n_teachers > 1:
            try:
                combined = teacher_map(taught, row["Category"])
            except (ImageReadError, ValueError) as exc:
                result.problems.append((str(source), str(exc)))
                continue
            mask = out / "masks" / f"{Path(row['Image Name']).stem}.png"
            write_atomic(mask, lambda tmp: mask_to_png(combined).save(tmp, format="PNG"), overwrite=True)
        add(row, image, mask.resolve(), "train", "teacher")

    write_index_rows(out, DISTILL_COLUMNS, rows_out)
    return result
