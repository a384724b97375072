"""``rmbg video``: background removal on a video, its sound kept (and the options ``stream`` shares)."""

from __future__ import annotations

import argparse
import sys

from RMBG.apps.video.pipeline import (
    DEFAULT_BATCH_SIZE,
    VIDEO_MODES,
    FramePipeline,
    check_paths,
    choose_encoding,
    process_video,
)
from RMBG.apps.video.temporal import DEFAULT_SMOOTH, check_smooth
from RMBG.commands.common import (
    MODEL_HELP,
    add_device_option,
    model_argument,
    say_device,
)
from RMBG.images.io import ImageReadError
from RMBG.removal.compose import DEFAULT_BG_COLOR, load_background
from RMBG.removal.edges import REFINE_METHODS
from RMBG.removal.pipeline import Remover, check_output, check_threshold
from RMBG.runtime.engines import DEFAULT_RUNTIME, KERAS_RUNTIMES


# ---------------------------------------------------------------------------
# Command lines
# ---------------------------------------------------------------------------
def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=VIDEO_MODES, default="rgba", help="what to write (default rgba)")
    parser.add_argument("--bg-color", default=DEFAULT_BG_COLOR, help='background of --mode color, e.g. "#00FF00"')
    parser.add_argument("--bg-image", help="background picture of --mode image (resized to cover)")
    parser.add_argument("--smooth", type=float, default=DEFAULT_SMOOTH,
                        help=f"temporal smoothing where the mask is unsure, 0 (off) to <1 (default {DEFAULT_SMOOTH})")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"frames per model call (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--model", type=model_argument, help=f"{MODEL_HELP}; default: the shipped model")
    parser.add_argument("--runtime", choices=KERAS_RUNTIMES, default=DEFAULT_RUNTIME, help="how .keras models run")
    add_device_option(parser)
    parser.add_argument("--refine", choices=REFINE_METHODS, default="none", help="edge refinement (default none)")
    parser.add_argument("--threshold", type=float, help="make the mask hard: alpha >= T becomes opaque")


def pipeline_from_args(args, prog: str) -> FramePipeline:
    """The frame pipeline of the parsed options; SystemExit(2) after printing why not."""
    try:
        check_smooth(args.smooth)
        threshold = check_threshold(args.threshold)
        if args.batch_size < 1:
            raise ValueError(f"--batch-size {args.batch_size}: must be at least 1")
        if args.mode not in VIDEO_MODES:
            raise ValueError(f"mode {args.mode!r}: choose one of {', '.join(VIDEO_MODES)}")
        check_output(args.mode, args.bg_color, args.bg_image)
        background = load_background(args.bg_image) if args.mode == "image" else None
    except (ValueError, ImageReadError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        remover = Remover(args.model, args.runtime, args.refine, threshold, args.batch_size, device=args.device)
    except (ValueError, OSError) as exc:
        print(f"{prog}: cannot load the model: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    say_device(prog, remover.segmenter.device_line)
    return FramePipeline(remover, args.mode, args.bg_color, background, args.smooth)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m RMBG video",
                                     description="Remove the background of a video; the sound is kept.")
    parser.add_argument("input", metavar="IN", help="the video (anything FFmpeg reads)")
    parser.add_argument("--out", required=True, help="output video: .webm, .mov, .mkv, .mp4 (rgba: .webm, .mkv, .mov)")
    common_options(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace the output if it exists (never the input)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_paths(args.input, args.out, args.overwrite)
        choose_encoding(args.out, args.mode)
    except (ValueError, FileExistsError) as exc:
        print(f"video: {exc}", file=sys.stderr)
        return 2
    pipeline = pipeline_from_args(args, "video")
    try:
        result = process_video(args.input, args.out, pipeline.remover, args.mode, args.bg_color, pipeline.background,
                               args.smooth, args.overwrite, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"video: interrupted; {args.out} was not written", file=sys.stderr)
        return 130
    except (ValueError, FileExistsError, OSError) as exc:
        print(f"video: {exc}", file=sys.stderr)
        return 1
    for note in result["notes"]:
        print(f"note: {note}")
    print(f"{args.out}: {result['frames']} frames")
    return 0
