"""The integrity report of a dataset folder (``DIR/images`` + ``DIR/masks``) and its fixes.

:func:`check_dataset` decodes every image and mask in full (so truncated
files are caught, not only bad headers) and lists what it finds, one
:class:`Finding` per file and problem, with a severity:

- ``error``: the pair cannot be used: unreadable, empty or truncated file,
  mask and image of different aspect ratios, two files sharing a stem (the
  match would be a guess). ``--fix`` leaves such pairs out of the copy.
- ``fixable``: usable after a mechanical fix: mask size differs from its
  image with the same aspect ratio (within 1 %), mask stored as RGB, RGBA,
  16-bit, palette, 1-bit or with 0/1 labels, image stored as CMYK or 16-bit,
  or rotated only by its EXIF tag (most training readers ignore EXIF).
- ``warning``: worth knowing, not blocking: images without a mask and masks
  without an image (ignored by training), masks with no foreground (empty)
  or no background (full).

When the folder has an ``index.csv`` (a prepared folder), a row naming a
missing file is an error and a pair that no row names is a warning.

The folder is *usable* when it has at least one pair and no error or fixable
finding. :func:`fix_dataset` writes a fixed copy into a new folder: the
source is never modified, because a fix is a guess about the user's data
(which file of two sharing a stem is right, whether a resize is welcome) and
a copy keeps that guess reversible. The copy holds the good pairs, byte for
byte where nothing was wrong, with fixed masks re-encoded as 8-bit PNG the
size of their image, and an ``index.csv`` listing the copied pairs (with
the source index's extra columns, such as ``split``, when it had one; a pair
it did not list is marked ``train``).
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from Preprocess.masks import is_label_mask, mask_to_uint8, resize_mask
from Preprocess.util import INDEX_COLUMNS, pair_by_stem
from RMBG.images.io import (
    ImageReadError,
    aspect_difference,
    category_of,
    list_images,
    open_image,
    pil_to_rgb,
    same_aspect,
    write_atomic,
)

ERROR, FIXABLE, WARNING = "error", "fixable", "warning"
SEVERITY_ORDER = {ERROR: 0, FIXABLE: 1, WARNING: 2}
REPORT_NAME = "check_report.csv"
REPORT_COLUMNS = ["file", "problem", "severity", "detail"]
EXIF_ORIENTATION = 0x0112

#: problem -> severity (the problems this module can report).
PROBLEMS = {
    "unreadable": ERROR,
    "truncated": ERROR,
    "duplicate stem": ERROR,
    "aspect mismatch": ERROR,
    "index unreadable": ERROR,
    "index row without file": ERROR,
    "size mismatch": FIXABLE,
    "mask is RGB": FIXABLE,
    "mask is RGBA": FIXABLE,
    "mask is 16-bit": FIXABLE,
    "mask is not 8-bit grey": FIXABLE,
    "mask has 0/1 labels": FIXABLE,
    "image is CMYK": FIXABLE,
    "image is 16-bit": FIXABLE,
    "image is EXIF-rotated": FIXABLE,
    "image without mask": WARNING,
    "mask without image": WARNING,
    "pair not in index": WARNING,
    "mask empty": WARNING,
    "mask full": WARNING,
}

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


@dataclass
class Finding:
    """One problem of one file; ``file`` is relative to the checked folder."""

    file: str
    problem: str
    detail: str = ""

    @property
    def severity(self) -> str:
        return PROBLEMS[self.problem]


@dataclass
class CheckReport:
    """Everything :func:`check_dataset` learnt about a folder."""

    root: Path
    n_images: int = 0
    n_masks: int = 0
    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    #: upright (width, height) of every readable file, by path
    sizes: dict[Path, tuple[int, int]] = field(default_factory=dict)
    missing_folders: list[str] = field(default_factory=list)

    def by_severity(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    def counts(self) -> dict[str, int]:
        """Number of findings per problem, most severe first."""
        table: dict[str, int] = {}
        for finding in sorted(self.findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.problem)):
            table[finding.problem] = table.get(finding.problem, 0) + 1
        return table

    def files_with(self, severity: str) -> set[str]:
        return {f.file for f in self.findings if f.severity == severity}

    @property
    def usable(self) -> bool:
        return not self.missing_folders and bool(self.pairs) and not any(
            f.severity in {ERROR, FIXABLE} for f in self.findings
        )

    @property
    def reason(self) -> str:
        """One line: why the folder is (not) usable."""
        if self.missing_folders:
            return f"{self.root} has no {' and no '.join(self.missing_folders)} folder"
        if not self.pairs:
            return f"no image/mask pairs found in {self.root}"
        errors, fixable = self.by_severity(ERROR), self.by_severity(FIXABLE)
        warnings = self.by_severity(WARNING)
        if not errors and not fixable:
            extra = f", {len(warnings)} warnings" if warnings else ""
            return f"{len(self.pairs)} pairs, no errors{extra}"
        counts = self.counts()
        parts = ", ".join(f"{p} ({counts[p]})" for p in counts if PROBLEMS[p] in {ERROR, FIXABLE})
        if errors:
            return f"{parts}; --fix --out NEW_DIR copies the good pairs, fixed, leaving the broken ones out"
        return f"{parts}; all fixable: --fix --out NEW_DIR writes a fixed copy"


# --------------------------------------------------------------------------- #
# inspecting files
# --------------------------------------------------------------------------- #


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _read_failure(exc: ImageReadError) -> str:
    return "truncated" if "truncated" in exc.reason.lower() else "unreadable"


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except (TypeError, ValueError, OSError):
        return 1


def _upright(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation in {5, 6, 7, 8} else size


def inspect_image(path: Path, root: Path) -> tuple[tuple[int, int] | None, list[Finding]]:
    """Decode one image in full; its upright size (None if unreadable) and findings."""
    name = _relative(path, root)
    try:
        img = open_image(path)
    except ImageReadError as exc:
        return None, [Finding(name, _read_failure(exc), exc.reason)]
    findings = []
    if img.mode == "CMYK":
        findings.append(Finding(name, "image is CMYK", "CMYK colour: many readers (tf.io) decode it wrongly"))
    elif img.mode in _SIXTEEN_BIT:
        findings.append(Finding(name, "image is 16-bit", f"mode {img.mode}"))
    orientation = _orientation(img)
    if orientation != 1:
        findings.append(
            Finding(name, "image is EXIF-rotated", f"EXIF orientation {orientation}: stored pixels are not upright")
        )
    return _upright(img.size, orientation), findings


def inspect_mask(path: Path, root: Path) -> tuple[tuple[int, int] | None, list[Finding]]:
    """Decode one mask in full; its upright size (None if unreadable) and findings."""
    name = _relative(path, root)
    try:
        img = open_image(path)
        values = mask_to_uint8(img)
    except ImageReadError as exc:
        return None, [Finding(name, _read_failure(exc), exc.reason)]
    except (OSError, ValueError) as exc:
        return None, [Finding(name, "unreadable", f"cannot read mask ({exc})")]
    findings = []
    if img.mode == "RGB":
        findings.append(Finding(name, "mask is RGB", "3 channels, should be 8-bit single-channel"))
    elif img.mode in {"RGBA", "LA", "PA"}:
        findings.append(Finding(name, "mask is RGBA", f"mode {img.mode}: has an alpha channel"))
    elif img.mode in _SIXTEEN_BIT:
        findings.append(Finding(name, "mask is 16-bit", f"mode {img.mode}, should be 8-bit"))
    elif img.mode != "L":
        findings.append(Finding(name, "mask is not 8-bit grey", f"mode {img.mode}"))
    elif is_label_mask(img):
        findings.append(Finding(name, "mask has 0/1 labels", "values 0 and 1 only: looks black, should be 0/255"))
    foreground = values >= 128
    if not foreground.any():
        findings.append(Finding(name, "mask empty", f"no foreground pixel (max value {int(values.max())})"))
    elif foreground.all():
        findings.append(Finding(name, "mask full", "every pixel is foreground"))
    return (values.shape[1], values.shape[0]), findings


def check_dataset(root: str | os.PathLike) -> CheckReport:
    """Inspect ``root/images`` and ``root/masks`` (see the module docstring)."""
    root = Path(root)
    report = CheckReport(root=root)
    image_dir, mask_dir = root / "images", root / "masks"
    report.missing_folders = [f"{d.name}/" for d in (image_dir, mask_dir) if not d.is_dir()]
    if report.missing_folders:
        return report
    images, masks = list_images(image_dir), list_images(mask_dir)
    report.n_images, report.n_masks = len(images), len(masks)
    pairs, lonely_images, lonely_masks, duplicates = pair_by_stem(images, masks)
    report.pairs = pairs
    rel = lambda p: _relative(p, root)  # noqa: E731
    report.findings += [Finding(rel(p), "duplicate stem", "another file of its folder has the same stem") for p in duplicates]
    report.findings += [Finding(rel(p), "image without mask", f"no masks/{p.stem}.*") for p in lonely_images]
    report.findings += [Finding(rel(p), "mask without image", f"no images/{p.stem}.*") for p in lonely_masks]

    for image, mask in tqdm(pairs, desc=f"check {root.name}", unit="pair"):
        image_size, image_findings = inspect_image(image, root)
        mask_size, mask_findings = inspect_mask(mask, root)
        report.findings += image_findings + mask_findings
        if image_size:
            report.sizes[image] = image_size
        if mask_size:
            report.sizes[mask] = mask_size
        if image_size and mask_size and image_size != mask_size:
            sizes = f"mask {mask_size[0]}x{mask_size[1]}, image {image_size[0]}x{image_size[1]}"
            if same_aspect(mask_size, image_size):
                difference = aspect_difference(mask_size, image_size)
                report.findings.append(
                    Finding(rel(mask), "size mismatch", f"{sizes}: same aspect ratio ({difference:.2%} apart)")
                )
            else:
                difference = aspect_difference(mask_size, image_size)
                report.findings.append(
                    Finding(rel(mask), "aspect mismatch", f"{sizes}: aspect ratios differ by {difference:.1%}")
                )
    report.findings += check_index(root, pairs)
    return report


def check_index(root: Path, pairs: list[tuple[Path, Path]]) -> list[Finding]:
    """Findings about ``root/index.csv`` when there is one (training reads it).

    A row naming an image or mask that does not exist is an error; a pair
    on disk that no row names is a warning (training would not see it).
    """
    import csv

    from RMBG.images.dataset import INDEX_NAME, read_index

    if not (root / INDEX_NAME).is_file():
        return []
    try:
        columns, rows = read_index(root)
    except (OSError, ValueError, csv.Error) as exc:
        return [Finding(INDEX_NAME, "index unreadable", str(exc))]
    if not {"Image Path", "Mask Path"} <= set(columns):
        return [Finding(INDEX_NAME, "index unreadable", "no 'Image Path' and 'Mask Path' columns")]
    if any(None in row for row in rows):
        return [Finding(INDEX_NAME, "index unreadable", "a row has more cells than the header")]
    findings, listed = [], set()
    for number, row in enumerate(rows, start=2):
        for column in ("Image Path", "Mask Path"):
            value = row.get(column) or ""
            target = root / value if value else None
            if target is None or not target.is_file():
                findings.append(Finding("index.csv", "index row without file", f"line {number}: {column} {value!r}"))
            else:
                listed.add(target.resolve())
    for image, _mask in pairs:
        if image.resolve() not in listed:
            findings.append(Finding(_relative(image, root), "pair not in index", "index.csv has no row for it"))
    return findings


# --------------------------------------------------------------------------- #
# presenting it
# --------------------------------------------------------------------------- #


def format_table(report: CheckReport, details_per_problem: int = 10) -> str:
    """The report as text for the terminal: summary, one row per problem, then details."""
    lines = [
        f"check {report.root}: {report.n_images} images, {report.n_masks} masks, {len(report.pairs)} pairs",
    ]
    counts = report.counts()
    if counts:
        examples = {}
        for finding in report.findings:
            examples.setdefault(finding.problem, finding)
        width = max(len("problem"), *(len(p) for p in counts))
        lines.append("")
        lines.append(f"{'problem'.ljust(width)}  severity  {'count':>5}  example")
        lines.append(f"{'-' * width}  --------  {'-' * 5}  -------")
        for problem, count in counts.items():
            example = examples[problem]
            lines.append(
                f"{problem.ljust(width)}  {PROBLEMS[problem]:<8}  {count:>5}  {example.file} ({example.detail})"
            )
        lines.append("")
        for problem in counts:
            listed = [f for f in report.findings if f.problem == problem][:details_per_problem]
            more = counts[problem] - len(listed)
            lines.append(f"{problem}:")
            lines += [f"  {f.file}: {f.detail}" for f in listed]
            if more:
                lines.append(f"  ... and {more} more (see the CSV report)")
    else:
        lines.append("no problems found")
    return "\n".join(lines)


def report_frame(report: CheckReport) -> pd.DataFrame:
    """One row per finding: file, problem, severity, detail."""
    rows = [(f.file, f.problem, f.severity, f.detail) for f in report.findings]
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def is_writable(folder: Path) -> bool:
    """True when ``folder`` may be written: allowed, and not marked read-only by its permission bits.

    The bits are checked too because ``os.access`` says yes to root even for a
    folder its owner made read-only (such as ``../shared``), which must stay untouched.
    """
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return os.access(folder, os.W_OK) and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def default_report_path(root: Path) -> Path | None:
    """``root/check_report.csv`` when ``root`` is writable, else one in the current folder, else None."""
    if is_writable(root):
        return root / REPORT_NAME
    here = Path.cwd()
    if is_writable(here):
        return here / f"check_report_{root.resolve().name or 'data'}.csv"
    return None


def write_report(report: CheckReport, path: str | os.PathLike) -> Path:
    """Write the CSV report to ``path`` atomically (a previous report there is replaced)."""
    frame = report_frame(report)
    return write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False), overwrite=True)


# --------------------------------------------------------------------------- #
# fixing into a copy
# --------------------------------------------------------------------------- #


@dataclass
class FixResult:
    """What :func:`fix_dataset` wrote."""

    out: Path
    copied: int = 0
    masks_fixed: int = 0
    images_fixed: int = 0
    left_out: list[tuple[str, str]] = field(default_factory=list)


def _copy_file(source: Path, target: Path) -> None:
    write_atomic(target, lambda tmp: shutil.copyfile(source, tmp))


def fix_dataset(report: CheckReport, out: str | os.PathLike) -> FixResult:
    """Write a fixed copy of the checked folder into ``out`` (a new or empty folder).

    Pairs with an error (unreadable, truncated, different aspect, shared
    stem) and unpaired files are left out and listed in ``left_out``. Masks
    with a fixable problem are re-encoded as 8-bit PNG, resized to their
    image (binary masks stay binary), under the image's stem; images with a
    fixable problem are re-encoded upright RGB in their own format. Everything
    else is copied byte for byte. The source folder is only read.
    """
    root, out = report.root, Path(out)
    if out.resolve() == root.resolve() or out.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{out}: the fixed copy must be outside {root}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: already exists and is not empty (the fixed copy needs a new folder)")
    result = FixResult(out=out)
    broken = report.files_with(ERROR)
    fixable = report.files_with(FIXABLE)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    for finding in report.findings:
        if finding.problem in {"image without mask", "mask without image", "duplicate stem"}:
            result.left_out.append((finding.file, finding.problem))
    rows = []
    for image, mask in tqdm(report.pairs, desc=f"fix into {out.name}", unit="pair"):
        image_name, mask_name = _relative(image, root), _relative(mask, root)
        bad = [n for n in (image_name, mask_name) if n in broken]
        if bad:
            problems = sorted({f.problem for f in report.findings if f.file in bad})
            result.left_out.append((image_name, "pair left out: " + ", ".join(problems)))
            continue
        image_size = report.sizes[image]
        image_target = out / "images" / image.name
        if image_name in fixable:
            rgb = pil_to_rgb(open_image(image))
            fmt = Image.registered_extensions().get(image.suffix.lower(), "PNG")
            options = {"quality": 95} if fmt == "JPEG" else {}
            write_atomic(image_target, lambda tmp: rgb.save(tmp, format=fmt, **options))
            result.images_fixed += 1
        else:
            _copy_file(image, image_target)
        if mask_name in fixable:
            values = resize_mask(mask_to_uint8(open_image(mask)), image_size)
            mask_target = out / "masks" / f"{mask.stem}.png"
            picture = Image.fromarray(np.ascontiguousarray(values), mode="L")
            write_atomic(mask_target, lambda tmp: picture.save(tmp, format="PNG"))
            result.masks_fixed += 1
        else:
            mask_target = out / "masks" / mask.name
            _copy_file(mask, mask_target)
        rows.append(
            {
                "Image Name": image_target.name,
                "Category": category_of(image_target.name),
                "Image Path": f"images/{image_target.name}",
                "Mask Path": f"masks/{mask_target.name}",
                "width": image_size[0],
                "height": image_size[1],
            }
        )
        result.copied += 1
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    if (root / "index.csv").is_file():
        from RMBG.images.dataset import read_index

        columns, old_rows = read_index(root)
        old = pd.DataFrame(old_rows, columns=columns).fillna("")
        if "Image Name" in old:
            extra = [c for c in old.columns if c not in INDEX_COLUMNS]
            if extra:
                old = old.drop_duplicates("Image Name")[["Image Name", *extra]]
                index = index.merge(old, on="Image Name", how="left")
                if "split" in index:  # a pair the source index did not list trains, as in prepare
                    index["split"] = index["split"].fillna("").replace("", "train")
    write_atomic(out / "index.csv", lambda tmp: index.to_csv(tmp, index=False))
    return result
