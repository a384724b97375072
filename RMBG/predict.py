"""Background removal of files: :func:`remove_background` and ``python -m RMBG remove`` over files, folders, globs.

``remove_background(image, model=None, mode="rgba", ...)`` takes a PIL
image, a numpy array or a path and returns a PIL image. The mask is predicted
at the model's size, upsampled to the photo's full resolution, optionally
edge-refined (:mod:`RMBG.edges`) and thresholded, and turned into the output
mode (:mod:`RMBG.compose`): the chain of :class:`RMBG.removal.Remover`, which
this module runs over files.

The command line works over files, folders (recursively) and globs::

    python -m RMBG remove photos/ --out cutouts/ --mode side-by-side

Output names keep each input's path relative to the folder (or glob base) it
was found in; ``rgba`` and ``mask`` are written as PNG, the other modes in the
input's format. Every output is written atomically and never over an input
file; an existing output is an error unless ``--skip-existing`` or
``--overwrite``. A bad file is reported with its reason and the others are
still done; the exit status is 1 when any file failed.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from RMBG.compose import DEFAULT_BG_COLOR, MODES, PNG_MODES, load_background
from RMBG.edges import REFINE_METHODS
from RMBG.imageio import IMAGE_EXTENSIONS, ImageReadError, list_images, read_image, save_image
from RMBG.removal import Remover, check_output, check_refine, check_threshold, finish_mask, to_rgb  # noqa: F401
from RMBG.runtime import DEFAULT_RUNTIME, KERAS_RUNTIMES

#: Photos predicted together (the masks are then finished one by one).
DEFAULT_BATCH_SIZE = 1
#: JPEG quality of outputs written as JPEG.
JPEG_QUALITY = 95
#: Formats Pillow writes for the modes kept in the input's format; others become PNG.
KEEP_FORMAT_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


# ---------------------------------------------------------------------------
# The library call
# ---------------------------------------------------------------------------
def remove_background(
    image,
    model=None,
    mode: str = "rgba",
    bg_color=DEFAULT_BG_COLOR,
    bg_image=None,
    refine: str = "none",
    threshold: float | None = None,
    runtime: str = DEFAULT_RUNTIME,
) -> Image.Image:
    """Remove the background of ``image`` (PIL image, numpy array or path); a PIL image.

    ``model`` is a model file, a :class:`~RMBG.runtime.Segmenter`, or ``None``
    for the shipped default; loaded models are cached and reused. ``mode`` is
    one of :data:`RMBG.compose.MODES`; ``bg_color`` is used by ``color``,
    ``bg_image`` (path, PIL image or array) by ``image``; ``refine`` is one of
    :data:`RMBG.edges.REFINE_METHODS`; ``threshold`` in [0, 1] makes the
    mask hard. One call of :class:`RMBG.removal.Remover`.
    """
    _check_options(mode, refine, bg_color, bg_image)
    remover = Remover(model, runtime=runtime, refine=refine, threshold=threshold)
    return remover.remove(image, mode, bg_color=bg_color, bg_image=bg_image)


def _check_options(mode: str, refine: str, bg_color, bg_image) -> None:
    check_output(mode, bg_color, bg_image)
    check_refine(refine)


# ---------------------------------------------------------------------------
# Planning a batch: inputs -> outputs
# ---------------------------------------------------------------------------
@dataclass
class Job:
    """One input file and where its output goes."""

    source: Path
    target: Path


@dataclass
class Summary:
    """What a batch did, for the report at its end."""

    done: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"done {len(self.done)}, skipped {len(self.skipped)}, failed {len(self.failed)}"]
        lines += [f"  skipped {path}: {why}" for path, why in self.skipped]
        lines += [f"  failed  {path}: {why}" for path, why in self.failed]
        return "\n".join(lines)


def _glob_base(pattern: str) -> Path:
    """The folder part of a glob before its first wildcard."""
    parts = Path(pattern).parts
    base = []
    for part in parts:
        if glob.has_magic(part):
            break
        base.append(part)
    return Path(*base) if base else Path(".")


def expand_inputs(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """``(file, relative output path)`` for every input, and inputs that matched nothing.

    Files keep their name; folders are searched recursively for images and
    keep paths relative to the folder; globs keep paths relative to the
    folder before their first wildcard. A file named twice is taken once.
    """
    found: list[tuple[Path, Path]] = []
    missing: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def add(path: Path, rel: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append((path, rel))

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            images = list_images(path, recursive=True)
            if not images:
                missing.append((path, "folder holds no images (" + ", ".join(IMAGE_EXTENSIONS) + ")"))
            for image in images:
                add(image, image.relative_to(path))
        elif path.is_file():
            add(path, Path(path.name))
        elif glob.has_magic(item):
            base = _glob_base(item)
            matches = sorted(
                Path(m) for m in glob.glob(item, recursive=True)
                if Path(m).is_file() and Path(m).suffix.lower() in IMAGE_EXTENSIONS
            )
            if not matches:
                missing.append((path, "pattern matched no images"))
            for match in matches:
                add(match, match.relative_to(base))
        else:
            missing.append((path, "file not found"))
    return found, missing


def output_suffix(source: Path, mode: str) -> str:
    """``.png`` for rgba/mask (and formats we do not write), else the input's suffix."""
    suffix = source.suffix.lower()
    return ".png" if mode in PNG_MODES or suffix not in KEEP_FORMAT_SUFFIXES else source.suffix


def plan_jobs(
    inputs: list[str], out_dir: str | os.PathLike, mode: str, skip_existing: bool = False, overwrite: bool = False
) -> tuple[list[Job], Summary]:
    """The jobs to run, with a summary already holding what is skipped or refused.

    An output that would land on any input file is refused (also with
    ``overwrite``), as is a second input mapping to the same output.
    """
    out_dir = Path(out_dir)
    found, missing = expand_inputs(inputs)
    summary = Summary(failed=list(missing))
    sources = {path.resolve() for path, _ in found}
    taken: dict[Path, Path] = {}
    jobs: list[Job] = []
    for source, rel in found:
        target = out_dir / rel.with_suffix(output_suffix(source, mode))
        key = target.resolve()
        if key in sources:
            summary.failed.append((source, f"output {target} would overwrite an input file; choose another --out"))
        elif key in taken:
            summary.failed.append((source, f"output {target} is also the output of {taken[key]}; rename one of them"))
        elif target.exists() and skip_existing:
            taken[key] = source
            summary.skipped.append((source, f"{target} exists"))
        elif target.exists() and not overwrite:
            summary.failed.append((source, f"output {target} exists (pass --skip-existing or --overwrite)"))
        else:
            taken[key] = source
            jobs.append(Job(source, target))
    return jobs, summary


# ---------------------------------------------------------------------------
# Running a batch
# ---------------------------------------------------------------------------
def _save(picture: Image.Image, target: Path, overwrite: bool) -> None:
    options = {"quality": JPEG_QUALITY} if target.suffix.lower() in {".jpg", ".jpeg"} else {}
    save_image(picture, target, overwrite=overwrite, **options)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ImageReadError):
        return exc.reason
    if isinstance(exc, MemoryError):
        return "out of memory"
    return str(exc) or type(exc).__name__


def run_jobs(
    jobs: list[Job],
    remover: Remover,
    summary: Summary,
    mode: str = "rgba",
    bg_color=DEFAULT_BG_COLOR,
    bg_image=None,
    overwrite: bool = False,
    progress: bool = True,
) -> Summary:
    """Run ``jobs`` through ``remover`` in its batches; every failure is recorded in
    ``summary`` and the rest go on."""
    background = load_background(bg_image) if mode == "image" else None
    batch_size = remover.batch_size
    with tqdm(total=len(jobs), desc="remove", unit="img", disable=not progress) as bar:
        for start in range(0, len(jobs), batch_size):
            chunk, images = [], []
            for job in jobs[start : start + batch_size]:
                try:
                    images.append(read_image(job.source))
                    chunk.append(job)
                except (ImageReadError, OSError, MemoryError) as exc:
                    summary.failed.append((job.source, _reason(exc)))
                    bar.update(1)
            small = remover.try_small_masks(images)
            for job, image, mask in zip(chunk, images, small):
                try:
                    if isinstance(mask, BaseException):
                        raise mask
                    _save(remover.picture(image, mask, mode, bg_color, background), job.target, overwrite)
                    summary.done.append(job.target)
                except Exception as exc:  # one bad file must not stop the batch
                    summary.failed.append((job.source, _reason(exc)))
                bar.update(1)
            del images, small
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m RMBG remove",
        description="Remove the background of images, folders (recursively) or globs.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs (quote globs)")
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    parser.add_argument("--model", help="model file (.keras, .tflite, .onnx); default: the shipped model")
    parser.add_argument("--runtime", choices=KERAS_RUNTIMES, default=DEFAULT_RUNTIME,
                        help="how .keras models run: tflite (default) is a cached fp32 copy with the same masks "
                        "and a fast start; tflite-int8 is about 3x faster, masks within 0.004; keras runs the model")
    parser.add_argument("--mode", choices=MODES, default="rgba", help="what to write (default rgba)")
    parser.add_argument("--bg-color", default=DEFAULT_BG_COLOR, help='background of --mode color, e.g. "#00FF00"')
    parser.add_argument("--bg-image", help="background picture of --mode image (resized to cover)")
    parser.add_argument("--refine", choices=REFINE_METHODS, default="none", help="edge refinement (default none)")
    parser.add_argument("--threshold", type=float, help="make the mask hard: alpha >= T becomes opaque")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="photos per model call")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--skip-existing", action="store_true", help="leave outputs that exist alone")
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that exist (never inputs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_options(args.mode, args.refine, args.bg_color, args.bg_image)
        threshold = check_threshold(args.threshold)
        background = load_background(args.bg_image) if args.mode == "image" else None
        if args.batch_size < 1:
            raise ValueError(f"--batch-size {args.batch_size}: must be at least 1")
    except (ValueError, ImageReadError) as exc:
        print(f"remove: {exc}", file=sys.stderr)
        return 2
    jobs, summary = plan_jobs(args.inputs, args.out, args.mode, args.skip_existing, args.overwrite)
    if jobs:
        try:
            remover = Remover(args.model, args.runtime, args.refine, threshold, args.batch_size)
        except (ValueError, FileNotFoundError, OSError) as exc:
            print(f"remove: cannot load the model: {exc}", file=sys.stderr)
            return 2
        run_jobs(jobs, remover, summary, args.mode, args.bg_color, background, args.overwrite, progress=not args.quiet)
    print(summary.report())
    if summary.done:
        print(f"outputs in {Path(args.out)}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
