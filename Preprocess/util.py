"""The original project's data helpers, kept under their old names and made safe.

- :func:`Rename` gives every image of a folder the name ``category_count.ext``
  (and its mask the same stem); it never overwrites and has a dry run.
- :func:`resize` resizes images with LANCZOS and masks without grey fringes,
  in place (as the original did) or into another folder.
- :func:`create_csv` writes the index (``Image Name, Category, Image Path,
  Mask Path`` plus ``width, height`` and ``split`` when asked) and returns it.
- :func:`plot_Data` draws the number of files per category and returns the
  matplotlib Figure.
"""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image, ImageOps
from tqdm.auto import tqdm

from Preprocess.masks import fit_longest_side, mask_to_uint8, resize_mask
from RMBG.constants import SEED
from RMBG.images.dataset import assign_split
from RMBG.images.io import (
    ImageReadError,
    category_of,
    image_size,
    list_images,
    open_image,
    rename_no_clobber,
    write_atomic,
)

#: Columns of every index this package writes (``split`` is added when known).
INDEX_COLUMNS = ["Image Name", "Category", "Image Path", "Mask Path", "width", "height"]

#: Folder-name fragments that make :func:`resize` treat a folder's files as masks.
MASK_FOLDER_HINTS = ("mask", "gt", "matte", "alpha")


# --------------------------------------------------------------------------- #
# Rename
# --------------------------------------------------------------------------- #


def check_category(category: str) -> str:
    """Return ``category`` if it can start a ``category_count`` name, else raise ValueError.

    The category is read back as the name's prefix before the first ``_``, so
    it must be non-empty and hold no ``_``, no path separator and no dot.
    """
    text = str(category).strip()
    if not text or any(ch in text for ch in "_/\\.") or text != category:
        raise ValueError(
            f"category {category!r} cannot be used in a 'category_count' name: "
            "it must be non-empty, without '_', '/', '\\', '.' or surrounding spaces"
        )
    return text


def pair_by_stem(images: Iterable[Path], masks: Iterable[Path]):
    """Match image and mask files by stem.

    Returns ``(pairs, images_without_mask, masks_without_image, duplicates)``,
    where ``duplicates`` lists files sharing a stem with another file of the
    same folder (``a.jpg`` and ``a.png``): those are left out of the pairs
    because the match would be a guess.
    """
    images, masks = list(images), list(masks)
    duplicates: list[Path] = []

    def by_stem(files: list[Path]) -> dict[str, Path]:
        table: dict[str, list[Path]] = {}
        for path in files:
            table.setdefault(path.stem, []).append(path)
        unique = {}
        for stem, paths in table.items():
            if len(paths) == 1:
                unique[stem] = paths[0]
            else:
                duplicates.extend(sorted(paths))
        return unique

    image_table, mask_table = by_stem(images), by_stem(masks)
    duplicate_stems = {p.stem for p in duplicates}
    pairs = [(image_table[s], mask_table[s]) for s in sorted(image_table) if s in mask_table]
    lonely_images = [image_table[s] for s in sorted(image_table) if s not in mask_table and s not in duplicate_stems]
    lonely_masks = [mask_table[s] for s in sorted(mask_table) if s not in image_table and s not in duplicate_stems]
    return pairs, lonely_images, lonely_masks, duplicates


def Rename(
    path: str | os.PathLike,
    category: str,
    mask_path: str | os.PathLike | None = None,
    dry_run: bool = False,
    start: int = 1,
) -> list[tuple[Path, Path]]:
    """Rename every image in ``path`` to ``category_count.ext`` (count from ``start``).

    Files are taken in sorted name order and keep their extension. With
    ``mask_path``, each image's mask (same stem) gets the same new stem, so
    pairs stay pairs; an image without a mask, a mask without an image or two
    files sharing a stem stop the whole rename before anything moves.

    Nothing is ever overwritten: if a new name is taken by a file that is not
    itself being renamed, the rename is refused (FileExistsError) before any
    file moves. Renames whose new name is another renamed file's old name go
    through temporary names. ``dry_run=True`` only returns the plan.

    Returns the list of ``(old_path, new_path)`` renames (planned or done),
    images first then masks, leaving out files that already have their name.
    """
    category = check_category(category)
    image_dir = Path(path)
    if not image_dir.is_dir():
        raise NotADirectoryError(f"{image_dir}: not a folder")
    images = list_images(image_dir)
    mask_for: dict[Path, Path] = {}
    if mask_path is not None:
        mask_dir = Path(mask_path)
        if not mask_dir.is_dir():
            raise NotADirectoryError(f"{mask_dir}: not a folder")
        pairs, lonely_images, lonely_masks, duplicates = pair_by_stem(images, list_images(mask_dir))
        problems = [f"image without mask: {p}" for p in lonely_images]
        problems += [f"mask without image: {p}" for p in lonely_masks]
        problems += [f"shares its stem with another file: {p}" for p in duplicates]
        if problems:
            listed = "\n  ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise ValueError(f"Rename refused, pairs are not clean ({len(problems)} problems):\n  {listed}{more}")
        mask_for = dict(pairs)

    plan: list[tuple[Path, Path]] = []
    mask_plan: list[tuple[Path, Path]] = []
    for count, image in enumerate(images, start=start):
        new_stem = f"{category}_{count}"
        plan.append((image, image_dir / f"{new_stem}{image.suffix}"))
        if image in mask_for:
            mask = mask_for[image]
            mask_plan.append((mask, mask.parent / f"{new_stem}{mask.suffix}"))
    plan += mask_plan
    plan = [(old, new) for old, new in plan if old != new]

    moving = {old for old, _ in plan}
    blocked = [new for _, new in plan if new.exists() and new not in moving]
    if blocked:
        listed = "\n  ".join(str(p) for p in blocked[:20])
        raise FileExistsError(f"Rename refused: {len(blocked)} new names are taken by other files:\n  {listed}")
    if dry_run:
        return plan

    chained = any(new in moving for _, new in plan)
    if chained:
        staged = []
        for old, new in tqdm(plan, desc="Rename (stage)", unit="file"):
            temporary = old.with_name(f".{old.name}.{uuid.uuid4().hex[:8]}.renaming")
            rename_no_clobber(old, temporary)
            staged.append((temporary, new))
    else:
        staged = plan
    for old, new in tqdm(staged, desc="Rename", unit="file"):
        rename_no_clobber(old, new)
    return plan


# --------------------------------------------------------------------------- #
# resize
# --------------------------------------------------------------------------- #


def _target_size(size, current: tuple[int, int], keep_aspect: bool) -> tuple[int, int]:
    """``(width, height)`` to resize to: an int is a square (or the longest side)."""
    if isinstance(size, (int, np.integer)):
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        return fit_longest_side(current, int(size)) if keep_aspect else (int(size), int(size))
    width, height = (int(v) for v in size)
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive, got {size}")
    return width, height


def _looks_like_mask_folder(folder: Path) -> bool:
    name = folder.name.lower()
    return any(hint in name for hint in MASK_FOLDER_HINTS)


def _resized_image(img: Image.Image, target: tuple[int, int]) -> Image.Image:
    """``img`` resized with LANCZOS, keeping its colours and alpha."""
    if img.mode == "P":
        img = img.convert("RGBA")
    elif img.mode in {"1", "I;16", "I;16B", "I;16L", "I;16N", "I"}:
        img = img.convert("L") if img.mode == "1" else img.convert("I")
    return img.resize(target, Image.Resampling.LANCZOS)


def resize(
    path: str | os.PathLike,
    size: int | tuple[int, int],
    out: str | os.PathLike | None = None,
    is_mask: bool | None = None,
    mask_method: str = "lanczos",
    keep_aspect: bool = False,
) -> list[Path]:
    """Resize the images in folder ``path`` (or the one file ``path``) to ``size``.

    ``size`` is ``(width, height)``, or an int for a square ``size x size`` as
    the original did; with ``keep_aspect=True`` an int is the longer side
    instead (aspect kept, never enlarged). Images use LANCZOS, keep their mode
    (RGBA keeps its alpha) and are made upright from their EXIF. Masks are made
    single-channel 8-bit and resized with ``mask_method`` (``"nearest"``, or
    ``"lanczos"`` followed by re-binarising binary masks), so no interpolated
    grey fringe is left on a 0/255 mask; soft masks keep their grey levels.

    ``is_mask=None`` treats the files as masks when their folder's name
    contains ``mask``, ``gt``, ``matte`` or ``alpha``. Without ``out`` the
    files are replaced in place (atomically); with ``out`` they are written
    there under the same names, the sources untouched, and existing files in
    ``out`` are never overwritten. A file that cannot be read is reported with
    a warning naming it, and the others go on. Returns the files written.
    """
    if mask_method.lower() not in {"lanczos", "nearest"}:
        raise ValueError(f"mask_method must be 'lanczos' or 'nearest', got {mask_method!r}")
    source = Path(path)
    if source.is_dir():
        files, folder = list_images(source), source
    elif source.is_file():
        files, folder = [source], source.parent
    else:
        raise FileNotFoundError(f"{source}: no such file or folder")
    as_mask = _looks_like_mask_folder(folder) if is_mask is None else bool(is_mask)
    out_dir = Path(out) if out is not None else None
    in_place = out_dir is None or out_dir.resolve() == folder.resolve()
    written: list[Path] = []
    for file in tqdm(files, desc=f"resize {'masks' if as_mask else 'images'}", unit="file"):
        target_path = file if in_place else out_dir / file.name
        try:
            img = open_image(file)
            fmt = img.format or Image.registered_extensions().get(file.suffix.lower())
            if as_mask:
                mask = mask_to_uint8(img)
                target = _target_size(size, (mask.shape[1], mask.shape[0]), keep_aspect)
                result = Image.fromarray(resize_mask(mask, target, mask_method), mode="L")
            else:
                upright = ImageOps.exif_transpose(img)
                target = _target_size(size, upright.size, keep_aspect)
                result = _resized_image(upright, target)
            if fmt == "JPEG" and result.mode not in {"RGB", "L", "CMYK"}:
                result = result.convert("RGB")
            options = {"quality": 95} if fmt == "JPEG" else {}
            write_atomic(target_path, lambda tmp: result.save(tmp, format=fmt, **options), overwrite=in_place)
            written.append(target_path)
        except (ImageReadError, FileExistsError, OSError, ValueError) as exc:
            warnings.warn(f"resize skipped {file}: {exc}", stacklevel=2)
    return written


# --------------------------------------------------------------------------- #
# create_csv
# --------------------------------------------------------------------------- #


def create_csv(
    image_path: str | os.PathLike,
    mask_path: str | os.PathLike,
    out: str | os.PathLike | None = None,
    val_fraction: float | None = None,
    seed: int = SEED,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Index the images of ``image_path`` with their masks in ``mask_path``.

    One row per image, in sorted order, with the original columns ``Image
    Name, Category, Image Path, Mask Path`` (category = the name's prefix
    before ``_``; mask matched by stem, empty when there is none) plus the
    image's ``width`` and ``height`` (read from the header, EXIF-upright).
    With ``val_fraction`` a ``split`` column (``train``/``val``, stratified by
    category, see :func:`RMBG.images.dataset.assign_split`) is added. Unreadable
    images and images without a mask are reported with a warning naming them.

    With ``out`` the table is also written there as CSV (atomically; an
    existing file is kept unless ``overwrite=True``). Returns the DataFrame.
    """
    image_dir, mask_dir = Path(image_path), Path(mask_path)
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder}: not a folder")
    masks_by_stem: dict[str, Path] = {}
    for mask in list_images(mask_dir):
        masks_by_stem.setdefault(mask.stem, mask)
    rows = []
    for image in tqdm(list_images(image_dir), desc="create_csv", unit="file"):
        try:
            width, height = image_size(image)
        except ImageReadError as exc:
            warnings.warn(f"create_csv skipped {exc}", stacklevel=2)
            continue
        mask = masks_by_stem.get(image.stem)
        if mask is None:
            warnings.warn(f"create_csv: {image} has no mask in {mask_dir}", stacklevel=2)
        rows.append(
            {
                "Image Name": image.name,
                "Category": category_of(image.name),
                "Image Path": str(image),
                "Mask Path": str(mask) if mask is not None else "",
                "width": width,
                "height": height,
            }
        )
    frame = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    if val_fraction is not None:
        frame["split"] = assign_split(list(frame["Image Name"]), list(frame["Category"]), val_fraction, seed)
    if out is not None:
        write_atomic(out, lambda tmp: frame.to_csv(tmp, index=False), overwrite=overwrite)
    return frame


# --------------------------------------------------------------------------- #
# plot_Data
# --------------------------------------------------------------------------- #


def category_counts(source: str | os.PathLike | pd.DataFrame) -> pd.Series:
    """Files per category, sorted by category, from a folder, an index CSV or a DataFrame."""
    if isinstance(source, pd.DataFrame):
        categories = source["Category"] if "Category" in source else source["Image Name"].map(category_of)
    else:
        path = Path(source)
        if path.is_file() and path.suffix.lower() == ".csv":
            from RMBG.images.dataset import read_index

            columns, rows = read_index(path)
            return category_counts(pd.DataFrame(rows, columns=columns))
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: neither a folder of images nor an index CSV")
        categories = pd.Series([category_of(p.name) for p in list_images(path)], dtype=object)
    return categories.astype(str).value_counts().sort_index()


def plot_Data(path: str | os.PathLike | pd.DataFrame, title: str | None = None) -> Figure:
    """Bar chart of the number of files per category prefix; returns the Figure.

    ``path`` is a folder of ``category_count`` images, an index CSV or a
    DataFrame with a ``Category`` column. The figure is built without pyplot,
    so it works with any backend (and shows in Jupyter when it is a cell's
    result); save it with ``fig.savefig(...)``.
    """
    counts = category_counts(path)
    fig = Figure(figsize=(max(4.0, 0.8 * len(counts) + 2.0), 3.5), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.bar(counts.index.tolist(), counts.to_numpy())
    ax.bar_label(bars, labels=[str(v) for v in counts.to_numpy()])
    ax.set_xlabel("category")
    ax.set_ylabel("files")
    name = Path(path).name if isinstance(path, (str, os.PathLike)) and Path(path).name else "data"
    ax.set_title(title or f"{int(counts.sum())} files per category in {name}")
    ax.margins(y=0.15)
    return fig
