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
input's format, unless ``--format png|webp|jpg`` (:mod:`RMBG.output_format`).
Every output is written atomically and never over an input file; an existing
output is an error unless ``--skip-existing`` or ``--overwrite``. A bad file
is reported with its reason and the others are still done; files of a folder
that are not images we read (a ``.txt``, an animated GIF) are listed as
skipped with the reason; the exit status is 1 when any file failed.

Soft edges show the subject's estimated colours (:mod:`RMBG.foreground`;
``--no-foreground-estimation`` composes the photo's own colours);
``--post-process`` cleans the mask of specks and holes
(:mod:`RMBG.mask_cleanup`); ``--crop [--margin PX]`` cuts outputs to the
subject (:mod:`RMBG.cropping`); ``--watch`` keeps processing files dropped
into the input folders until Ctrl-C (:mod:`RMBG.watch`).
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

from RMBG.compose import DEFAULT_BG_COLOR, MODES, load_background
from RMBG.cropping import check_margin
from RMBG.edges import REFINE_METHODS
from RMBG.folder_pipeline import Photo, photo_masks, read_photo, run_pipeline
from RMBG.imageio import IMAGE_EXTENSIONS, ImageReadError, list_images, list_unsupported, save_image, skip_reason
from RMBG.output_format import LOSSY_QUALITY, OUTPUT_FORMATS, check_format, save_options
from RMBG.output_format import output_suffix  # noqa: F401 - part of this module's interface (Beam uses it)
from RMBG.removal import Remover, check_output, check_refine, check_threshold, finish_mask, to_rgb  # noqa: F401
from RMBG.runtime import DEFAULT_RUNTIME, KERAS_RUNTIMES

#: Photos predicted together (the masks are then finished one by one).
DEFAULT_BATCH_SIZE = 1
#: JPEG quality of outputs written as JPEG (:data:`RMBG.output_format.LOSSY_QUALITY`).
JPEG_QUALITY = LOSSY_QUALITY


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
    post_process: bool = False,
    foreground_estimation: bool = True,
    crop_margin: int | None = None,
) -> Image.Image:
    """Remove the background of ``image`` (PIL image, numpy array or path); a PIL image.

    ``model`` is a model file, a :class:`~RMBG.runtime.Segmenter`, or ``None``
    for the shipped default; loaded models are cached and reused. ``mode`` is
    one of :data:`RMBG.compose.MODES`; ``bg_color`` is used by ``color``,
    ``bg_image`` (path, PIL image or array) by ``image``; ``refine`` is one of
    :data:`RMBG.edges.REFINE_METHODS`; ``threshold`` in [0, 1] makes the
    mask hard; ``post_process`` cleans it of small islands and holes;
    ``foreground_estimation`` (on by default) draws the subject's estimated
    colours at soft edges; ``crop_margin`` (px) crops to the subject. One call
    of :class:`RMBG.removal.Remover`.
    """
    _check_options(mode, refine, bg_color, bg_image)
    remover = Remover(model, runtime=runtime, refine=refine, threshold=threshold, post_process=post_process,
                      foreground_estimation=foreground_estimation, crop_margin=crop_margin)
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


def unsupported_inputs(inputs: list[str]) -> list[tuple[Path, str]]:
    """``(file, reason)`` for the files that folders and globs among ``inputs`` hold but that are
    not images we read (:func:`RMBG.imageio.skip_reason`); hidden files are not listed."""
    found: list[tuple[Path, str]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += list_unsupported(path, recursive=True)
        elif not path.exists() and glob.has_magic(item):
            for match in sorted(Path(m) for m in glob.glob(item, recursive=True)):
                reason = skip_reason(match) if match.is_file() and not match.name.startswith(".") else None
                if reason is not None:
                    found.append((match, reason))
    return found


def plan_jobs(
    inputs: list[str], out_dir: str | os.PathLike, mode: str, skip_existing: bool = False, overwrite: bool = False,
    fmt: str | None = None,
) -> tuple[list[Job], Summary]:
    """The jobs to run, with a summary already holding what is skipped or refused.

    An output that would land on any input file is refused (also with
    ``overwrite``), as is a second input mapping to the same output. Outputs
    are written in ``fmt`` (:data:`RMBG.output_format.OUTPUT_FORMATS`) when
    given. Files of folders and globs that are not images we read are listed
    as skipped with the reason.
    """
    out_dir = Path(out_dir)
    found, missing = expand_inputs(inputs)
    summary = Summary(skipped=unsupported_inputs(inputs), failed=list(missing))
    sources = {path.resolve() for path, _ in found}
    taken: dict[Path, Path] = {}
    jobs: list[Job] = []
    for source, rel in found:
        target = out_dir / rel.with_suffix(output_suffix(source, mode, fmt))
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
    save_image(picture, target, overwrite=overwrite, **save_options(target, picture.mode))


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
    # Decoding and preprocessing the next photos, the model, and composing and encoding the
    # previous outputs overlap on three threads (RMBG.folder_pipeline); the outputs are the bytes
    # of the same steps one photo at a time, in the jobs' order, each file failing on its own.
    background = load_background(bg_image) if mode == "image" else None
    segmenter = remover.segmenter

    def finish(job: Job, photo: Photo, mask) -> Path:
        _save(remover.picture(photo.image, mask, mode, bg_color, background), job.target, overwrite)
        return job.target

    with tqdm(total=len(jobs), desc="remove", unit="img", disable=not progress) as bar:

        def report(job: Job, outcome) -> None:
            if isinstance(outcome, BaseException):
                summary.failed.append((job.source, _reason(outcome)))
            else:
                summary.done.append(outcome)
            bar.update(1)

        run_pipeline(jobs, lambda job: read_photo(segmenter, job.source),
                     lambda photos: photo_masks(segmenter, photos), finish, report,
                     batch_size=remover.batch_size, threaded=len(jobs) > 1)
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
                        help="how .keras models run: tflite-int8 (default) is a cached int8 copy, about 3x faster than "
                        "fp32, masks within 0.0023 of it on average; tflite is the cached fp32 copy (the same masks "
                        "as Keras); keras runs the model itself")
    parser.add_argument("--mode", choices=MODES, default="rgba", help="what to write (default rgba)")
    parser.add_argument("--bg-color", default=DEFAULT_BG_COLOR, help='background of --mode color, e.g. "#00FF00"')
    parser.add_argument("--bg-image", help="background picture of --mode image (resized to cover)")
    parser.add_argument("--refine", choices=REFINE_METHODS, default="none", help="edge refinement (default none)")
    parser.add_argument("--threshold", type=float, help="make the mask hard: alpha >= T becomes opaque")
    parser.add_argument("--post-process", action="store_true",
                        help="clean the mask: drop small islands and specks, fill small holes (off by default: on "
                        "shared photos it changed the mask error by under 0.0001)")
    parser.add_argument("--no-foreground-estimation", dest="foreground_estimation", action="store_false",
                        help="compose the photo's own colours at soft edges (by default the subject's colours are "
                        "estimated there, so no rim of the old background shows)")
    parser.add_argument("--crop", action="store_true", help="crop outputs to the subject's bounding box")
    parser.add_argument("--margin", type=int, metavar="PX", help="with --crop: pixels kept around the subject "
                        "(clipped to the picture; default 0)")
    parser.add_argument("--format", type=str.lower, choices=(*OUTPUT_FORMATS, "jpeg"),
                        help="output format: png, webp (lossless for rgba/mask) or jpg (modes with a background "
                        "only); default: png for rgba/mask, the input's format for the others")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="photos per model call")
    parser.add_argument("--watch", action="store_true",
                        help="after the inputs, keep processing images dropped into the input folders until "
                        "Ctrl-C (outputs that exist are skipped unless --overwrite)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--skip-existing", action="store_true", help="leave outputs that exist alone")
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that exist (never inputs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _check_watch(inputs: list[str], out_dir: str) -> None:
    """A ValueError unless every input is a folder and the output folder is not one of them."""
    for item in inputs:
        if not Path(item).is_dir():
            raise ValueError(f"--watch watches folders: {item} is not a folder")
        if Path(item).resolve() == Path(out_dir).resolve():
            raise ValueError(f"--watch: --out {out_dir} is the watched folder itself; choose another --out")


def watch_inputs(args: argparse.Namespace, remover: Remover, summary: Summary, background, fmt: str | None) -> None:
    """Process the images dropped into the input folders until Ctrl-C (:func:`RMBG.watch.watch_folders`),
    one line per file, recording each in ``summary``."""
    from RMBG.watch import watch_folders

    out_dir = Path(args.out)

    def handle(path: Path, root: Path, state: str) -> None:
        target = out_dir / path.relative_to(root).with_suffix(output_suffix(path, args.mode, fmt))
        reason = skip_reason(path)
        if reason is None and target.exists() and not args.overwrite:
            reason = f"{target} exists"
        if reason is not None:
            summary.skipped.append((path, reason))
            print(f"skipped {path}: {reason}", flush=True)
            return
        if state == "incomplete":
            summary.failed.append((path, "still being written when the wait ran out; drop it again"))
            print(f"failed  {path}: {summary.failed[-1][1]}", flush=True)
            return
        done, failures = len(summary.done), len(summary.failed)
        run_jobs([Job(path, target)], remover, summary, args.mode, args.bg_color, background, args.overwrite,
                 progress=False)
        if len(summary.done) > done:
            print(f"done    {path} -> {target}", flush=True)
        elif len(summary.failed) > failures:
            print(f"failed  {path}: {summary.failed[-1][1]}", flush=True)

    folders = [Path(item) for item in args.inputs]
    ready = lambda: print(f"watching {', '.join(map(str, folders))} for new images; Ctrl-C stops", flush=True)  # noqa: E731
    watch_folders(folders, handle, ignore=[out_dir], on_ready=ready)
    print("watch stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_options(args.mode, args.refine, args.bg_color, args.bg_image)
        threshold = check_threshold(args.threshold)
        fmt = check_format(args.format, args.mode)
        if args.margin is not None and not args.crop:
            raise ValueError("--margin goes with --crop")
        crop_margin = check_margin(args.margin or 0) if args.crop else None
        if args.watch:
            _check_watch(args.inputs, args.out)
        background = load_background(args.bg_image) if args.mode == "image" else None
        if args.batch_size < 1:
            raise ValueError(f"--batch-size {args.batch_size}: must be at least 1")
    except (ValueError, ImageReadError) as exc:
        print(f"remove: {exc}", file=sys.stderr)
        return 2
    skip_existing = args.skip_existing or (args.watch and not args.overwrite)
    jobs, summary = plan_jobs(args.inputs, args.out, args.mode, skip_existing, args.overwrite, fmt)
    if args.watch:  # an empty folder to watch is no failure
        summary.failed = [(path, why) for path, why in summary.failed if not why.startswith("folder holds no images")]
    if jobs or args.watch:
        try:
            remover = Remover(args.model, args.runtime, args.refine, threshold, args.batch_size,
                              post_process=args.post_process, foreground_estimation=args.foreground_estimation,
                              crop_margin=crop_margin)
        except (ValueError, FileNotFoundError, OSError) as exc:
            print(f"remove: cannot load the model: {exc}", file=sys.stderr)
            return 2
        run_jobs(jobs, remover, summary, args.mode, args.bg_color, background, args.overwrite, progress=not args.quiet)
        if args.watch:
            watch_inputs(args, remover, summary, background, fmt)
    print(summary.report())
    if summary.done:
        print(f"outputs in {Path(args.out)}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
