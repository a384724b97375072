"""``rmbg stream WIDTH HEIGHT``: raw frames in on stdin, raw cut-out frames out on stdout."""

from __future__ import annotations

import argparse
import sys

from RMBG.apps.video.stream import run_stream
from RMBG.commands.video import common_options, pipeline_from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m RMBG stream",
                                     description="Raw rgb24 frames on stdin to raw frames of the mode on stdout "
                                     "(rgba: 4 bytes a pixel, mask: 1, the others: 3).")
    parser.add_argument("width", type=int, help="frame width in pixels")
    parser.add_argument("height", type=int, help="frame height in pixels")
    common_options(parser)
    args = parser.parse_args(argv)
    if args.width < 1 or args.height < 1:
        print(f"stream: frame size {args.width}x{args.height}: width and height must be at least 1", file=sys.stderr)
        return 2
    try:
        count = run_stream(args.width, args.height, pipeline_from_args(args, "stream"))
    except (ValueError, BrokenPipeError) as exc:
        print(f"stream: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f"stream: {count} frames", file=sys.stderr)
    return 0
