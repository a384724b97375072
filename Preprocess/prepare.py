"""Writing a prepared dataset folder from one or more raw sources.

A prepared ``DIR`` holds::

    DIR/images/CATEGORY_COUNT.jpg   RGB JPEG, upright
    DIR/masks/CATEGORY_COUNT.png    8-bit single-channel PNG, 0 background .. 255 foreground,
                                    exactly the size of its image
    DIR/index.csv                   one row per pair (see INDEX_COLUMNS below)

Rules:

- The source is only read, never modified; ``DIR`` may not lie inside it.
- Names are ``category_count`` counted from 1 per category; preparing more
  sources into the same ``DIR`` continues each category's count after the
  highest one already there, and never overwrites a file. A source image
  already listed in ``index.csv`` (``Source Image``) is skipped, so an
  interrupted or repeated run picks up where it stopped.
- Images: a readable RGB JPEG with no EXIF rotation that needs no resize is
  copied byte for byte (fast, no second JPEG loss); anything else (PNG, CMYK,
  greyscale, EXIF-rotated, resized) is decoded, made upright RGB and written
  as JPEG quality 95.
- Masks are always re-encoded as PNG mode ``L``: RGB, RGBA, 16-bit, palette
  and 0/1-label masks become 0..255 (see :mod:`Preprocess.masks`); soft
  masks keep their grey levels. A mask whose size differs from its image but
  with the same aspect ratio (within 1 %) is resized to the image (binary
  masks stay binary); a different aspect ratio skips the pair with a report.
- ``size=N`` scales each image so its longer side is N pixels (aspect kept,
  never enlarged) and its mask to match.
- ``index.csv`` paths are relative to ``DIR`` (``images/person_1.jpg``).
  With ``val_fraction`` it gets a ``split`` column (``train``/``val``,
  stratified by category, seed :data:`RMBG.constants.SEED`, see
  :func:`RMBG.images.dataset.assign_split`). Rows that already have a split
  keep it, so the validation set stays fixed; rows without one (the new
  rows, or every row the first time a split is asked for) are split among
  themselves. If the index has a split column and no ``val_fraction`` is
  given, new rows are marked ``train``.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from Preprocess.datasets import Sample, iter_samples
from Preprocess.masks import fit_longest_side, mask_to_uint8, resize_mask
from Preprocess.util import INDEX_COLUMNS
from RMBG.constants import INDEX_SPLITS, SEED
from RMBG.images.dataset import TRAIN, assign_split
from RMBG.images.io import (
    ImageReadError,
    aspect_difference,
    open_image,
    pil_to_rgb,
    same_aspect,
    write_atomic,
)

#: Columns of ``index.csv`` in a prepared folder (``split`` follows when present).
PREPARED_COLUMNS = INDEX_COLUMNS + ["Source Kind", "Source Image", "Source Mask"]
INDEX_NAME = "index.csv"
#: Problems of the latest run (rewritten by every run, header only when there were none).
REPORT_NAME = "prepare_report.csv"
#: The index is rewritten after this many new pairs, so an interruption loses little.
FLUSH_EVERY = 200
JPEG_QUALITY = 95
EXIF_ORIENTATION = 0x0112


class PairError(ValueError):
    """An image and its mask cannot be made into a pair (e.g. different aspect ratios)."""


@dataclass
class PrepareResult:
    """What :func:`prepare` did."""

    out: Path
    index: pd.DataFrame
    added: int = 0
    already_there: int = 0
    problems: list[tuple[Path, str]] = field(default_factory=list)
    #: pairs of each source now in the prepared folder (added or already there)
    per_source: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- #
# one pair
# --------------------------------------------------------------------------- #


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except (TypeError, ValueError, OSError):
        return 1


def _upright_size(img: Image.Image) -> tuple[int, int]:
    width, height = img.size
    return (height, width) if _orientation(img) in {5, 6, 7, 8} else (width, height)


def write_pair(sample: Sample, image_out: Path, mask_out: Path, size: int | None = None) -> tuple[int, int]:
    """Write ``sample`` as ``image_out`` (JPEG) and ``mask_out`` (PNG L); return the image's size.

    Both files are read and checked before anything is written; each is
    written atomically and never over an existing file. Raises
    :class:`ImageReadError` for an unreadable file and :class:`PairError` when
    the mask's aspect ratio differs from the image's.
    """
    image = open_image(sample.image)
    mask_picture = open_image(sample.mask)
    upright = _upright_size(image)
    target = fit_longest_side(upright, size) if size else upright
    try:
        mask = mask_to_uint8(mask_picture)
    except (OSError, ValueError) as exc:
        raise ImageReadError(sample.mask, f"cannot read {mask_picture.mode} mask ({exc})") from None
    mask_size = (mask.shape[1], mask.shape[0])
    if not same_aspect(mask_size, upright):
        raise PairError(
            f"mask {mask_size[0]}x{mask_size[1]} ({sample.mask.name}) and image {upright[0]}x{upright[1]} "
            f"differ in aspect ratio by {aspect_difference(mask_size, upright):.1%}: not resized, pair skipped"
        )
    mask = resize_mask(mask, target)

    copy_bytes = (
        target == upright and image.format == "JPEG" and image.mode == "RGB" and _orientation(image) == 1
    )
    if copy_bytes:
        write_atomic(image_out, lambda tmp: shutil.copyfile(sample.image, tmp))
    else:
        try:
            rgb = pil_to_rgb(image)
        except (OSError, ValueError) as exc:
            raise ImageReadError(sample.image, f"cannot convert {image.mode} image to RGB ({exc})") from None
        if rgb.size != target:
            rgb = rgb.resize(target, Image.Resampling.LANCZOS)
        write_atomic(image_out, lambda tmp: rgb.save(tmp, format="JPEG", quality=JPEG_QUALITY))
    try:
        picture = Image.fromarray(np.ascontiguousarray(mask), mode="L")
        write_atomic(mask_out, lambda tmp: picture.save(tmp, format="PNG"))
    except BaseException:
        image_out.unlink(missing_ok=True)
        raise
    return target


# --------------------------------------------------------------------------- #
# the prepared folder
# --------------------------------------------------------------------------- #


def read_index(out: Path) -> pd.DataFrame:
    """The existing ``index.csv`` of a prepared folder as a table of strings (empty with the
    columns when absent), read by the project's one index reader, :func:`RMBG.images.dataset.read_index`."""
    from RMBG.images.dataset import read_index as read_index_rows

    if not (Path(out) / INDEX_NAME).is_file():
        return pd.DataFrame(columns=PREPARED_COLUMNS)
    columns, rows = read_index_rows(out)
    return pd.DataFrame(rows, columns=columns, dtype="string").fillna("")


def next_counts(out: Path, index: pd.DataFrame) -> dict[str, int]:
    """For each category, the highest count used in ``out`` (files or index)."""
    pattern = re.compile(r"^(.+)_(\d+)$")
    highest: dict[str, int] = {}
    names = [p.stem for sub in ("images", "masks") if (out / sub).is_dir() for p in (out / sub).iterdir()]
    names += [Path(str(n)).stem for n in index.get("Image Name", [])]
    for stem in names:
        match = pattern.match(stem)
        if match:
            category, count = match.group(1), int(match.group(2))
            highest[category] = max(highest.get(category, 0), count)
    return highest


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _write_index(out: Path, frame: pd.DataFrame) -> None:
    write_atomic(out / INDEX_NAME, lambda tmp: frame.to_csv(tmp, index=False), overwrite=True)


def _with_splits(frame: pd.DataFrame, val_fraction: float | None, seed: int, test_fraction: float = 0.0) -> pd.DataFrame:
    """Fill the ``split`` of rows that have none (see the module docstring)."""
    if val_fraction is None and "split" not in frame:
        return frame
    frame = frame.copy()
    if "split" not in frame:
        frame["split"] = ""
    split = frame["split"].astype("string").fillna("")
    missing = split == ""
    if missing.any():
        if val_fraction is None:
            split[missing] = TRAIN
        else:
            names = frame.loc[missing, "Image Name"].astype(str).tolist()
            categories = frame.loc[missing, "Category"].astype(str).tolist()
            split[missing] = assign_split(names, categories, val_fraction, seed, test_fraction=test_fraction)
    frame["split"] = split.astype(str)
    return frame


def prepare(
    sources: Iterable[tuple[str, str | Path]],
    out: str | Path,
    category: str | None = None,
    size: int | None = None,
    val_fraction: float | None = None,
    seed: int = SEED,
    test_fraction: float = 0.0,
) -> PrepareResult:
    """Prepare every ``(kind, source_folder)`` of ``sources`` into ``out`` (see the module docstring).

    Unreadable files, unpaired files and pairs of different aspect ratios are
    skipped and listed in ``result.problems`` as ``(path, reason)``; the other
    pairs go on. Raises FileNotFoundError / ValueError only for a bad
    argument (missing source folder, unknown kind, output inside a source).
    """
    out = Path(out)
    sources = [(kind, Path(src)) for kind, src in sources]
    if size is not None and int(size) < 1:
        raise ValueError(f"--size must be a positive number of pixels, got {size}")
    if val_fraction is not None and not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if test_fraction and val_fraction is None:
        raise ValueError("--test-fraction needs --val-fraction (the test part is drawn after the validation part)")
    if val_fraction is not None and not 0.0 <= test_fraction < 1.0 - val_fraction:
        raise ValueError(f"--test-fraction must be in [0, 1 - val_fraction), got {test_fraction}")
    for _kind, src in sources:
        if not src.is_dir():
            raise FileNotFoundError(f"{src}: source folder not found")
        if _inside(out, src) or _inside(src, out):
            raise ValueError(f"{out}: the prepared folder and the source {src} must not contain one another")

    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    index = read_index(out)
    known_sources = set(index["Source Image"].astype(str)) if "Source Image" in index else set()
    counts = next_counts(out, index)
    result = PrepareResult(out=out, index=index)
    new_rows: list[dict] = []

    def flush() -> pd.DataFrame:
        if not new_rows:
            frame = index.copy()
        elif index.empty:
            frame = pd.DataFrame(new_rows, columns=PREPARED_COLUMNS)
        else:
            frame = pd.concat([index, pd.DataFrame(new_rows, columns=PREPARED_COLUMNS)], ignore_index=True)
        if "split" in frame:
            frame["split"] = frame["split"].astype("string").fillna("")
        _write_index(out, frame)
        return frame

    for kind, src in sources:
        samples = list(iter_samples(kind, src, category=category, problems=result.problems))
        added_here = already_here = 0
        for sample in tqdm(samples, desc=f"prepare {kind} {src.name}", unit="pair"):
            source_key = str(sample.image.resolve())
            if source_key in known_sources:
                result.already_there += 1
                already_here += 1
                continue
            number = counts.get(sample.category, 0) + 1
            stem = f"{sample.category}_{number}"
            image_out, mask_out = out / "images" / f"{stem}.jpg", out / "masks" / f"{stem}.png"
            try:
                width, height = write_pair(sample, image_out, mask_out, size)
            except (ImageReadError, PairError, FileExistsError) as exc:
                path = exc.path if isinstance(exc, ImageReadError) else sample.image
                reason = exc.reason if isinstance(exc, ImageReadError) else str(exc)
                result.problems.append((Path(path), reason))
                continue
            counts[sample.category] = number
            known_sources.add(source_key)
            new_rows.append(
                {
                    "Image Name": image_out.name,
                    "Category": sample.category,
                    "Image Path": f"images/{image_out.name}",
                    "Mask Path": f"masks/{mask_out.name}",
                    "width": width,
                    "height": height,
                    "Source Kind": kind,
                    "Source Image": source_key,
                    "Source Mask": str(sample.mask.resolve()),
                }
            )
            added_here += 1
            if len(new_rows) % FLUSH_EVERY == 0:
                flush()
        result.per_source[f"{kind} {src}"] = added_here + already_here

    frame = flush()
    frame = _with_splits(frame, val_fraction, seed, test_fraction)
    _write_index(out, frame)
    report = pd.DataFrame([(str(p), r) for p, r in result.problems], columns=["file", "problem"])
    write_atomic(out / REPORT_NAME, lambda tmp: report.to_csv(tmp, index=False), overwrite=True)
    result.index = frame
    result.added = len(new_rows)
    return result


def write_split_lists(dataset_dir, prefix, relative_to, header: str = "") -> dict[str, int]:
    """Write ``PREFIX-train.txt``, ``-val.txt``, ``-test.txt``: each split's source photos, one per line.

    Paths are the ``Source Image`` column of the prepared ``index.csv``,
    relative to ``relative_to`` (e.g. ``../shared/data``), so the lists name
    the original files; ``header`` lines go on top as ``#`` comments.
    Returns the number of photos in each split.
    """
    import os
    from pathlib import Path

    from RMBG.images.dataset import read_index as read_index_rows

    _columns, rows = read_index_rows(dataset_dir)
    base = Path(relative_to).resolve()
    counts = {}
    for split in INDEX_SPLITS:
        names = sorted(
            Path(os.path.relpath(Path(row["Source Image"]).resolve(), base)).as_posix()
            for row in rows if (row.get("split") or "").strip() == split
        )
        counts[split] = len(names)
        text = "".join(f"# {line}\n" for line in header.splitlines()) + "".join(f"{name}\n" for name in names)
        write_atomic(Path(f"{prefix}-{split}.txt"), lambda tmp: tmp.write_text(text), overwrite=True)
    return counts
