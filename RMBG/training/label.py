"""Teacher labels: a prepared dataset whose masks are a teacher model's soft maps.

``python -m RMBG label --teacher FILE [--teacher FILE ...] [--tta flip] IMAGES... --out DIR``
writes ``DIR/images/NAME`` (the photo's own bytes), ``DIR/masks/NAME.png``
(8-bit soft map at the photo's size, grey levels kept: several teachers and
the flipped copies averaged) and ``DIR/index.csv`` (the prepared-folder
columns, ``split`` = ``train``, and per row the teacher files' names and
digests and the test-time augmentation).

The teachers run through :mod:`RMBG.runtime.engines` like every model here (a public
U-2-Net ``.onnx`` as rembg runs it, our ``.keras``/``.tflite``/``.onnx``
files with their recorded preprocessing). A photo already in the index with
its mask on disk is skipped, so a killed run continues where it stopped; a
photo that cannot be read is reported by name and skipped.

``--teacher`` defaults to rembg's own copy of U-2-Net,
``$U2NET_HOME/u2net.onnx`` (``~/.u2net`` by default), when it is there; the
``fetch-teacher`` command puts it there (the one command that downloads).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from RMBG.images.io import ImageReadError, read_image, write_atomic

#: Test-time augmentations ``label`` can average over.
TTA_CHOICES = ("none", "flip")

#: ``index.csv`` columns of a labelled folder (the prepared-folder columns, then the teacher's).
LABEL_COLUMNS = [
    "Image Name", "Category", "Image Path", "Mask Path", "width", "height",
    "Source Kind", "Source Image", "Source Mask", "split", "Teacher", "Teacher Digest", "TTA",
]

#: Rewrite ``index.csv`` after this many new photos (what a kill can cost).
FLUSH_EVERY = 20

#: The ``Source Kind`` of a teacher-labelled row.
SOURCE_KIND = "teacher"


@dataclass
class LabelResult:
    """What :func:`label_images` did: rows written now, photos already done, failures with reasons."""

    out: Path
    written: list[str] = field(default_factory=list)
    already_done: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"labelled {len(self.written)} photos into {self.out} "
                 f"({self.already_done} already done, {len(self.failed)} failed)"]
        lines += [f"  failed {path}: {why}" for path, why in self.failed]
        return "\n".join(lines)


class Teachers:
    """One or more teacher models whose full-size maps are averaged, optionally with flips."""

    def __init__(self, paths: Sequence[str | os.PathLike], tta: str = "none", runtime: str = "tflite"):
        from RMBG.runtime.engines import file_digest, load_segmenter

        if not paths:
            raise ValueError("no teacher: pass --teacher FILE (or put rembg's u2net.onnx in ~/.u2net)")
        if tta not in TTA_CHOICES:
            raise ValueError(f"unknown test-time augmentation {tta!r}: choose one of {', '.join(TTA_CHOICES)}")
        self.paths = [Path(p) for p in paths]
        for path in self.paths:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: teacher model not found")
        self.tta = tta
        self.segmenters = [load_segmenter(path, runtime=runtime) for path in self.paths]
        self.names = ";".join(path.name for path in self.paths)
        self.digests = ";".join(file_digest(path) for path in self.paths)

    def soft_map(self, image: np.ndarray) -> np.ndarray:
        """``HxW`` float32 in [0, 1]: the mean of every teacher's map (and of its flipped-back flip)."""
        views = [image] + ([np.ascontiguousarray(image[:, ::-1])] if self.tta == "flip" else [])
        maps = []
        for segmenter in self.segmenters:
            for k, masks in enumerate(segmenter.predict(views, batch_size=len(views))):
                maps.append(masks[:, ::-1] if k == 1 else masks)
        return np.clip(np.mean(maps, axis=0), 0.0, 1.0).astype(np.float32)


def mask_to_png(soft: np.ndarray) -> Image.Image:
    """A soft map as an 8-bit greyscale picture (rounded, so 1/255 is the only loss)."""
    return Image.fromarray(np.round(np.clip(soft, 0.0, 1.0) * 255.0).astype(np.uint8), mode="L")


def _unique_name(rel: Path, taken: set[str]) -> str:
    """A flat file name for ``rel`` (folders joined by ``_``), numbered when it is taken."""
    stem = "_".join(rel.with_suffix("").parts)
    name, number = stem, 1
    while name in taken:
        number += 1
        name = f"{stem}_{number}"
    return name


def _read_done(out: Path) -> dict[str, dict]:
    """Rows of an earlier run whose mask is on disk, keyed by their source photo."""
    from RMBG.images.dataset import read_index

    try:
        _columns, rows = read_index(out)
    except FileNotFoundError:
        return {}
    return {
        row["Source Image"]: row for row in rows
        if row.get("Source Image") and (out / (row.get("Mask Path") or "")).is_file()
    }


def write_index_rows(out: Path, columns: Sequence[str], rows: Sequence[dict]) -> None:
    """``out/index.csv`` with ``columns`` and ``rows``, written atomically (a labelled or distillation folder)."""
    import csv

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(out / "index.csv", write, overwrite=True)


def label_images(
    inputs: Sequence[str],
    out: str | os.PathLike,
    teachers: Teachers,
    category: str | None = None,
    progress: bool = True,
) -> LabelResult:
    """Teacher-label every photo of ``inputs`` (files, folders, globs) into ``out`` (see the module docstring)."""
    from tqdm import tqdm

    from RMBG.images.inputs import expand_inputs
    from RMBG.images.io import category_of

    out = Path(out)
    found, missing = expand_inputs(list(inputs))
    result = LabelResult(out=out, failed=[(str(path), why) for path, why in missing])
    for source, _rel in found:
        if out.resolve() in source.resolve().parents:
            raise ValueError(f"{source}: the input lies inside the output folder {out}")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    done = _read_done(out)
    rows = list(done.values())
    taken = {Path(row["Image Name"]).stem for row in rows}
    since_flush = 0
    for source, rel in tqdm(found, desc="label", unit="photo", disable=not progress):
        key = str(source.resolve())
        if key in done:
            result.already_done += 1
            continue
        try:
            image = read_image(source)
        except ImageReadError as exc:
            result.failed.append((str(source), exc.reason))
            continue
        soft = teachers.soft_map(image)
        name = _unique_name(rel, taken)
        image_name = f"{name}{source.suffix.lower()}"
        write_atomic(out / "images" / image_name, lambda tmp: shutil.copyfile(source, tmp), overwrite=True)
        write_atomic(out / "masks" / f"{name}.png", lambda tmp: mask_to_png(soft).save(tmp, format="PNG"),
                     overwrite=True)
        taken.add(name)
        rows.append({
            "Image Name": image_name,
            "Category": category or category_of(image_name),
            "Image Path": f"images/{image_name}",
            "Mask Path": f"masks/{name}.png",
            "width": image.shape[1],
            "height": image.shape[0],
            "Source Kind": SOURCE_KIND,
            "Source Image": key,
            "Source Mask": "",
            "split": "train",
            "Teacher": teachers.names,
            "Teacher Digest": teachers.digests,
            "TTA": teachers.tta,
        })
        result.written.append(str(source))
        since_flush += 1
        if since_flush >= FLUSH_EVERY:
            write_index_rows(out, LABEL_COLUMNS, rows)
            since_flush = 0
    write_index_rows(out, LABEL_COLUMNS, rows)
    return result
