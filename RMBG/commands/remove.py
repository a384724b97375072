"""``rmbg remove``: background removal over files, folders, globs and ``@FILE`` lists (``--watch`` for more)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from RMBG.apps.batch.jobs import (
    DEFAULT_BATCH_SIZE,
    Job,
    Summary,
    _check_options,
    plan_jobs,
    run_jobs,
)
from RMBG.commands.common import (
    MODEL_HELP,
    add_device_option,
    model_argument,
    say_device,
)
from RMBG.images.io import (
    ImageReadError,
    image_size,
    skip_reason,
)
from RMBG.removal.box import box_pixels, parse_box
from RMBG.removal.compose import DEFAULT_BG_COLOR, MODES, load_background
from RMBG.removal.cropping import check_margin
from RMBG.removal.edges import REFINE_METHODS
from RMBG.removal.formats import (
    OUTPUT_FORMATS,
    check_format,
    output_suffix,
)
from RMBG.removal.pipeline import (
    Remover,
    check_threshold,
)
from RMBG.runtime.engines import DEFAULT_RUNTIME, KERAS_RUNTIMES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m RMBG remove",
        description="Remove the background of images, folders (recursively) or globs.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs (quote globs)")
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    parser.add_argument("--model", type=model_argument, help=f"{MODEL_HELP}; default: the shipped model")
    parser.add_argument("--runtime", choices=KERAS_RUNTIMES, default=DEFAULT_RUNTIME,
                        help="how .keras models run: tflite-int8 (default) is a cached int8 copy, about 3x faster than "
                        "fp32, masks within 0.0023 of it on average; tflite is the cached fp32 copy (the same masks "
                        "as Keras); keras runs the model itself")
    add_device_option(parser)
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
    parser.add_argument("--box", metavar="X0,Y0,X1,Y1",
                        help="where the subject is: left, top, right, bottom in pixels, or fractions of the photo "
                        "when all four are 0-1; the model runs on that part (grown by a margin) and nothing outside "
                        "the box is kept")
    parser.add_argument("--largest", action="store_true",
                        help="keep only the mask's largest connected region (drop stray islands)")
    parser.add_argument("--invert", action="store_true",
                        help="keep the background and make the subject transparent (in --mode mask: the mask is "
                        "turned over, white where the background is kept)")
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
    """Process the images dropped into the input folders until Ctrl-C (:func:`RMBG.apps.batch.watch.watch_folders`),
    one line per file, recording each in ``summary``."""
    from RMBG.apps.batch.watch import watch_folders

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


def check_box_fits(box, jobs: list[Job]) -> None:
    """A ValueError naming the box and the photo when a box in pixels reaches past a photo of ``jobs``
    (read from the files' headers; an unreadable file is left to fail on its own)."""
    if box is None:
        return
    for job in jobs:
        try:
            width, height = image_size(job.source)
        except ImageReadError:
            continue
        try:
            box_pixels(box, height, width)
        except ValueError as exc:
            raise ValueError(f"--box for {job.source}: {exc}") from None


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
        box = parse_box(args.box) if args.box is not None else None
    except (ValueError, ImageReadError) as exc:
        print(f"remove: {exc}", file=sys.stderr)
        return 2
    skip_existing = args.skip_existing or (args.watch and not args.overwrite)
    jobs, summary = plan_jobs(args.inputs, args.out, args.mode, skip_existing, args.overwrite, fmt)
    try:
        check_box_fits(box, jobs)
    except ValueError as exc:
        print(f"remove: {exc}", file=sys.stderr)
        return 2
    if args.invert and args.mode == "mask":
        print("remove: --invert with --mode mask writes the inverted mask: white (255) where the background is "
              "kept, black (0) on the subject")
    if args.watch:  # an empty folder to watch is no failure
        summary.failed = [(path, why) for path, why in summary.failed if not why.startswith("folder holds no images")]
    if jobs or args.watch:
        try:
            remover = Remover(args.model, args.runtime, args.refine, threshold, args.batch_size,
                              post_process=args.post_process, foreground_estimation=args.foreground_estimation,
                              crop_margin=crop_margin, box=box, largest=args.largest, invert=args.invert,
                              device=args.device)
        except (ValueError, FileNotFoundError, OSError) as exc:
            print(f"remove: cannot load the model: {exc}", file=sys.stderr)
            return 2
        if not args.quiet:
            say_device("remove", remover.segmenter.device_line)
        run_jobs(jobs, remover, summary, args.mode, args.bg_color, background, args.overwrite, progress=not args.quiet)
        if args.watch:
            watch_inputs(args, remover, summary, background, fmt)
    print(summary.report())
    if summary.done:
        print(f"outputs in {Path(args.out)}")
    return 1 if summary.failed else 0
