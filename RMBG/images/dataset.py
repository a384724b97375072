"""A prepared dataset folder on disk: its ``index.csv``, its photo/mask pairs and their splits.

Read by training, evaluation and ``Preprocess``; written by ``Preprocess.prepare``. The split of
photos into train / validation / test (:func:`assign_split`) lives here so that every reader and
writer of a dataset uses the one function.
"""

from __future__ import annotations

import csv
import os
import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from RMBG.constants import IMAGE_EXTENSIONS, INDEX_SPLITS, SEED
from RMBG.images.io import (
    ImageReadError,
    category_of,
    list_images,
    mask_from_pil,
    open_image,
    pil_to_rgb,
    same_aspect,
)

#: Index file of a prepared dataset.
#: Image formats/modes TensorFlow decodes exactly as :mod:`RMBG.images.io` does.
NATIVE_IMAGE = {"JPEG": {"RGB", "L"}, "PNG": {"RGB", "RGBA", "L", "P"}, "BMP": {"RGB"}}

#: Mask formats/modes TensorFlow decodes exactly as :mod:`RMBG.images.io` does.
NATIVE_MASK = {"PNG": {"L"}, "JPEG": {"L"}, "BMP": {"L"}}

INDEX_NAME = "index.csv"


# ---------------------------------------------------------------------------
# Listing, splitting, checking
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    """One photo and its mask. ``native``: TensorFlow can decode both files as-is;
    ``teacher``: the mask is a teacher's soft map alone (``Target`` ``teacher`` in the index)."""

    image: str
    mask: str
    category: str
    split: str = "train"
    native: bool = True
    teacher: bool = False

    @property
    def name(self) -> str:
        return Path(self.image).stem


@dataclass
class DataReport:
    """What :func:`scan` found: usable pairs, skipped files (with reasons) and notes."""

    root: str
    pairs: list[Pair] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def train(self) -> list[Pair]:
        return [p for p in self.pairs if p.split == "train"]

    @property
    def val(self) -> list[Pair]:
        return [p for p in self.pairs if p.split == "val"]

    def summary(self) -> str:
        """A few lines for logs: counts, then every skipped file and why."""
        cats: dict[str, int] = {}
        for pair in self.pairs:
            cats[pair.category] = cats.get(pair.category, 0) + 1
        per_cat = ", ".join(f"{k} {v}" for k, v in sorted(cats.items()))
        tested = sum(p.split == "test" for p in self.pairs)
        held_back = f", {tested} test (left out of training and validation)" if tested else ""
        lines = [
            f"{self.root}: {len(self.pairs)} pairs ({len(self.train)} train, {len(self.val)} val{held_back}; "
            f"{per_cat or 'none'}), {len(self.skipped)} skipped"
        ]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def resolve_index_path(root: Path, text: str, folder: str) -> Path:
    """A path from ``index.csv``: absolute, relative to the dataset, to the cwd, or a bare name."""
    path = Path(text)
    if path.is_absolute():
        return path
    for candidate in (root / path, Path.cwd() / path, root / folder / path.name):
        if candidate.exists():
            return candidate
    return root / path


def _find_mask(masks_dir: Path, stem: str) -> Path | None:
    for ext in (".png",) + tuple(e for e in IMAGE_EXTENSIONS if e != ".png"):
        for candidate in (masks_dir / f"{stem}{ext}", masks_dir / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def read_index(root: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """``(columns, rows)`` of a dataset folder's ``index.csv`` (or of the CSV file ``root``), every cell a string.

    The one reader of the index (training, :func:`list_pairs`, and
    ``RMBG.evaluation.evaluate --split``). Rows are read as :class:`csv.DictReader`
    reads them: blank lines skipped, a short row's missing cells ``None``, a
    long row's extra cells listed under the key ``None``; a UTF-8 byte-order
    mark is dropped. Raises FileNotFoundError when the folder has no index.
    """
    path = Path(root)
    with open(path if path.suffix.lower() == ".csv" else path / INDEX_NAME, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def list_pairs(root: str | os.PathLike) -> tuple[list[Pair], list[tuple[str, str]]]:
    """``(pairs, skipped)`` of a dataset folder, in a stable order, before any file check.

    With ``index.csv`` its rows are used (``split`` kept when the column is
    filled for every row); without it, ``images/*`` are matched to
    ``masks/<same stem>.*``. Photos without a mask are skipped with a reason.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    pairs: list[Pair] = []
    skipped: list[tuple[str, str]] = []
    index = root / INDEX_NAME
    if index.is_file():
        _columns, rows = read_index(root)
        missing = {"Image Path", "Mask Path"} - set(rows[0] if rows else {"Image Path", "Mask Path"})
        if missing:
            raise ValueError(f"{index}: missing column(s) {', '.join(sorted(missing))}")
        with_split = bool(rows) and all((r.get("split") or "").strip() in INDEX_SPLITS for r in rows)
        for row in rows:
            image = resolve_index_path(root, row["Image Path"], "images")
            mask = resolve_index_path(root, row["Mask Path"], "masks")
            category = (row.get("Category") or "").strip() or category_of(image)
            split = row["split"].strip() if with_split else ""
            teacher = (row.get("Target") or "").strip() == "teacher"
            pairs.append(Pair(str(image), str(mask), category, split, teacher=teacher))
    else:
        images_dir, masks_dir = root / "images", root / "masks"
        if not images_dir.is_dir() or not masks_dir.is_dir():
            raise FileNotFoundError(f"{root}: expected images/ and masks/ folders (or an {INDEX_NAME})")
        for image in list_images(images_dir):
            mask = _find_mask(masks_dir, image.stem)
            if mask is None:
                skipped.append((str(image), f"no mask named {image.stem}.* in {masks_dir}"))
                continue
            pairs.append(Pair(str(image), str(mask), category_of(image), ""))
    pairs.sort(key=lambda p: p.name)
    return pairs, skipped


def assign_splits(pairs: Sequence[Pair], split: float, seed: int = SEED) -> list[Pair]:
    """Pairs with ``split`` set: kept from the index when every pair has one, else computed.

    The computed split is :func:`assign_split` (by file,
    stratified by category, seeded), on every listed file, so that a file
    failing its check later does not move the others between splits.
    """
    if pairs and all(p.split in INDEX_SPLITS for p in pairs):
        return list(pairs)
    names = [p.name for p in pairs]
    if len(set(names)) != len(names):
        names = [p.image for p in pairs]
    labels = assign_split(names, [p.category for p in pairs], split, seed=seed)
    return [replace(p, split=label) for p, label in zip(pairs, labels)]


def _orientation(img) -> int:
    try:
        return int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block is not a reason to skip the photo
        return 1


def check_pair(pair: Pair) -> tuple[Pair | None, tuple[str, str] | None, str | None]:
    """Decode both files once: ``(pair with native flag, None, note)`` or ``(None, (file, reason), None)``."""
    files = {}
    for role, path in (("image", pair.image), ("mask", pair.mask)):
        try:
            img = open_image(path)
            files[role] = (img, img.format, img.mode, _orientation(img))
            (pil_to_rgb if role == "image" else mask_from_pil)(img)
        except ImageReadError as exc:
            return None, (exc.path, exc.reason), None
        except Exception as exc:  # anything else a decoder throws: still name the file
            return None, (str(path), f"unreadable ({type(exc).__name__}: {exc})"), None
    (image, ifmt, imode, iorient), (mask, mfmt, mmode, morient) = files["image"], files["mask"]
    native = (
        imode in NATIVE_IMAGE.get(ifmt, ())
        and mmode in NATIVE_MASK.get(mfmt, ())
        and iorient == 1
        and morient == 1
    )
    note = None
    iw, ih = image.size if iorient < 5 else image.size[::-1]
    mw, mh = mask.size if morient < 5 else mask.size[::-1]
    if not same_aspect((iw, ih), (mw, mh)):
        note = f"{pair.name}: mask {mw}x{mh} has another aspect ratio than photo {iw}x{ih} (resized to it)"
    return replace(pair, native=bool(native)), None, note


def check_pairs(pairs: Sequence[Pair], workers: int = 2, progress: bool = True):
    """Check every pair (threads: the decoders release the GIL): ``(ok, skipped, notes)``."""
    from tqdm.auto import tqdm

    ok, skipped, notes = [], [], []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(check_pair, pairs)
        for pair, bad, note in tqdm(results, total=len(pairs), desc="checking pairs", disable=not progress, leave=False):
            if pair is not None:
                ok.append(pair)
            if bad is not None:
                skipped.append(bad)
            if note:
                notes.append(note)
    return ok, skipped, notes


def scan(
    root: str | os.PathLike,
    split: float = 0.2,
    seed: int = SEED,
    check: bool = True,
    progress: bool = True,
    workers: int | None = None,
) -> DataReport:
    """List, split and check a dataset folder: the :class:`DataReport` a run starts from."""
    pairs, skipped = list_pairs(root)
    pairs = assign_splits(pairs, split, seed)
    notes: list[str] = []
    if check:
        pairs, bad, notes = check_pairs(pairs, workers or min(4, os.cpu_count() or 1), progress)
        skipped += bad
    return DataReport(str(root), pairs, skipped, notes)


def limit_pairs(pairs: Sequence[Pair], limit: int | None, seed: int = SEED) -> list[Pair]:
    """At most ``limit`` pairs, a seeded sample that keeps the categories mixed, in name order."""
    if limit is None or len(pairs) <= limit:
        return list(pairs)
    order = np.random.default_rng(seed).permutation(len(pairs))[:limit]
    return [pairs[i] for i in sorted(order)]


#: The three parts; ``test`` is reported once and touched by no choice (checkpoint, blend share, knobs).
TRAIN, VAL, TEST = INDEX_SPLITS


def assign_split(
    names: Sequence[str],
    categories: Sequence[str],
    val_fraction: float,
    seed: int = SEED,
    test_fraction: float = 0.0,
) -> list[str]:
    """``"train"``, ``"val"`` (or ``"test"``) for each name, holding out fractions per category.

    The split is by file and stratified: within each category the names are
    sorted, shuffled with a generator seeded by ``seed`` and the category, and
    the first ``round(n * val_fraction)`` go to validation. A category with two
    or more files gives at least one to validation (when ``val_fraction > 0``)
    and keeps at least one for training; a category with a single file keeps it
    for training. The result depends only on the (name, category) pairs and the
    seed, not on the order they are given in.

    ``test_fraction`` (of each category's files) then moves part of the
    training files to ``"test"``, drawn the same way with its own seed, so the
    validation files are the same with or without a test part: choices made on
    a two-way split's validation files stay on validation.
    """
    if len(names) != len(categories):
        raise ValueError(f"{len(names)} names but {len(categories)} categories")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not 0.0 <= float(test_fraction) < 1.0 - float(val_fraction):
        raise ValueError(f"test_fraction must be in [0, 1 - val_fraction), got {test_fraction}")
    if len(set(names)) != len(names):
        raise ValueError("names must be unique to be split by file")
    by_category: dict[str, list[str]] = defaultdict(list)
    for name, category in zip(names, categories):
        by_category[str(category)].append(str(name))
    held_out: set[str] = set()
    tested: set[str] = set()
    for category, members in by_category.items():
        members.sort()
        count = len(members)
        n_val = int(round(count * val_fraction))
        if val_fraction > 0 and count >= 2:
            n_val = min(max(n_val, 1), count - 1)
        else:
            n_val = 0
        random.Random(f"{seed}:{category}").shuffle(members)
        held_out.update(members[:n_val])
        rest = sorted(members[n_val:])
        n_test = 0
        if test_fraction > 0 and len(rest) >= 2:
            n_test = min(max(int(round(count * test_fraction)), 1), len(rest) - 1)
        random.Random(f"{seed}:{category}:test").shuffle(rest)
        tested.update(rest[:n_test])
    return [VAL if str(name) in held_out else TEST if str(name) in tested else TRAIN for name in names]
