"""Background removal for people: :func:`remove_background` and ``python -m RMBG remove``.

``remove_background(image, model=None, mode="rgba", ...)`` takes a PIL
image, a numpy array or a path and returns a PIL image. The mask is predicted
at the model's size, upsampled to the photo's full resolution, optionally
refined (:mod:`RMBG.refine`) and thresholded, and turned into the output mode
(:mod:`RMBG.compose`).

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

import numpy as np
from PIL import Image
from tqdm import tqdm

from RMBG.compose import DEFAULT_BG_COLOR, MODES, PNG_MODES, alpha_to_uint8, compose, load_background, parse_color
from RMBG.imageio import IMAGE_EXTENSIONS, ImageReadError, _to_uint8, list_images, pil_to_rgb, read_image, save_image
from RMBG.refine import REFINE_METHODS, refine as refine_mask
from RMBG.runtime import KERAS_RUNTIMES, Segmenter, load_segmenter, upsample_mask

#: How ``remove`` runs ``.keras`` models: through the cached TFLite fp32 copy.
#: Same masks as Keras (MAE 1e-6), as fast as the compiled Keras model per
#: photo, and a start in about 1 s instead of 15 s (no TensorFlow import once
#: cached) with a third of the memory; see :func:`RMBG.runtime.fast_segmenter`
#: and ``scripts/bench_runtimes.py``. int8 is about 3x faster per photo but
#: not quite as accurate, so it is opt-in (``--runtime tflite-int8``).
DEFAULT_RUNTIME = "tflite"
#: Photos predicted together (the masks are then finished one by one).
DEFAULT_BATCH_SIZE = 1
#: JPEG quality of outputs written as JPEG.
JPEG_QUALITY = 95
#: Formats Pillow writes for the modes kept in the input's format; others become PNG.
KEEP_FORMAT_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


# ---------------------------------------------------------------------------
# The library call
# ---------------------------------------------------------------------------
def to_rgb(image) -> np.ndarray:
    """A path, PIL image or array (grey, RGB or RGBA; any dtype) as ``HxWx3`` uint8 RGB.

    Paths go through :func:`RMBG.imageio.read_image` (EXIF orientation, CMYK,
    16-bit, palette, clear errors); RGBA keeps its colour and drops its alpha.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return np.asarray(pil_to_rgb(image), dtype=np.uint8)
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(_to_uint8(array)[..., None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = _to_uint8(array)
        array = np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array[..., :3]
    else:
        raise ValueError(f"image array of shape {array.shape}: expected HxW, HxWx1, HxWx3 or HxWx4")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"image array of shape {array.shape} has no pixels")
    return np.ascontiguousarray(array)


def check_threshold(threshold: float | None) -> float | None:
    if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold {threshold}: expected a value between 0 and 1")
    return None if threshold is None else float(threshold)


def finish_mask(image: np.ndarray, small_mask: np.ndarray, refine: str = "none", threshold: float | None = None) -> np.ndarray:
    """The model-size mask of ``image`` as a full-size alpha: upsampled, refined, thresholded."""
    alpha = upsample_mask(small_mask, image.shape[:2])
    alpha = refine_mask(image, alpha, refine)
    if threshold is not None:
        alpha = (alpha >= threshold).astype(np.float32)
    return alpha


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
    :data:`RMBG.refine.REFINE_METHODS`; ``threshold`` in [0, 1] makes the
    mask hard.
    """
    _check_options(mode, refine, bg_color, bg_image)
    threshold = check_threshold(threshold)
    rgb = to_rgb(image)
    segmenter = load_segmenter(model, runtime=runtime)
    alpha = finish_mask(rgb, segmenter.predict_small([rgb])[0], refine, threshold)
    return compose(rgb, alpha, mode, bg_color=bg_color, bg_image=bg_image)


def _check_options(mode: str, refine: str, bg_color, bg_image) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if refine not in REFINE_METHODS:
        raise ValueError(f"unknown refine {refine!r}; choose one of {', '.join(REFINE_METHODS)}")
    if mode == "color":
        parse_color(bg_color)
    if mode == "image" and bg_image is None:
        raise ValueError("mode 'image' needs a background picture (--bg-image PATH)")


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
    segmenter: Segmenter,
    summary: Summary,
    mode: str = "rgba",
    bg_color=DEFAULT_BG_COLOR,
    bg_image=None,
    refine: str = "none",
    threshold: float | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    overwrite: bool = False,
    progress: bool = True,
) -> Summary:
    """Run ``jobs`` in batches; every failure is recorded in ``summary`` and the rest go on."""
    background = load_background(bg_image) if mode == "image" else None
    batch_size = max(1, int(batch_size))
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
            small = _predict(segmenter, images, chunk, summary)
            for job, image, mask in zip(chunk, images, small):
                if mask is not None:
                    try:
                        alpha = alpha_to_uint8(finish_mask(image, mask, refine, threshold))
                        picture = compose(image, alpha, mode, bg_color=bg_color, bg_image=background)
                        del alpha
                        _save(picture, job.target, overwrite)
                        summary.done.append(job.target)
                    except Exception as exc:  # one bad file must not stop the batch
                        summary.failed.append((job.source, _reason(exc)))
                bar.update(1)
            del images, small
    return summary


def _predict(segmenter: Segmenter, images, chunk, summary: Summary) -> list:
    """Model-size masks for a chunk; when the batch fails, image by image."""
    if not images:
        return []
    try:
        return list(segmenter.predict_small(images, batch_size=len(images)))
    except Exception:
        if len(images) == 1:
            summary.failed.append((chunk[0].source, _reason(sys.exc_info()[1])))
            return [None]
    masks = []
    for job, image in zip(chunk, images):
        try:
            masks.append(segmenter.predict_small([image])[0])
        except Exception as exc:
            summary.failed.append((job.source, _reason(exc)))
            masks.append(None)
    return masks


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
            segmenter = load_segmenter(args.model, runtime=args.runtime)
        except (ValueError, FileNotFoundError, OSError) as exc:
            print(f"remove: cannot load the model: {exc}", file=sys.stderr)
            return 2
        run_jobs(
            jobs, segmenter, summary, args.mode, args.bg_color, background, args.refine, threshold,
            args.batch_size, args.overwrite, progress=not args.quiet,
        )
    print(summary.report())
    if summary.done:
        print(f"outputs in {Path(args.out)}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
