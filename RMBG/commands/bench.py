"""``rmbg bench``: time our model against one or more peers, end to end, in the same process."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from RMBG.commands.common import MODEL_HELP, model_argument
from RMBG.evaluation.bench import bench, format_result
from RMBG.images.io import ImageReadError
from RMBG.runtime.engines import (
    KERAS_RUNTIMES,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m RMBG bench",
                                     description="Time our model against ONNX peers, end to end.")
    parser.add_argument("--data", required=True, type=Path, help="a folder of photos, or one with images/")
    parser.add_argument("--model", type=model_argument, default=None,
                        help=f"our model: {MODEL_HELP} (default: the shipped default model)")
    parser.add_argument("--peer", required=True, type=model_argument, metavar="ONNX", action="append",
                        help="a peer: a name (u2netp, u2net, isnet) or a public ONNX file, run as its publisher "
                        "runs it; repeat for several")
    parser.add_argument("--n", type=int, default=50, help="number of photos (default 50)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size of the throughput pass")
    parser.add_argument("--runtime", choices=KERAS_RUNTIMES, default=None,
                        help="how a .keras model runs (default: the way remove serves it, tflite-int8)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``python -m RMBG bench ...``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        result = bench(args.data, args.model, args.peer, n=args.n, batch_size=args.batch_size, runtime=args.runtime)
    except (FileNotFoundError, ValueError, ImageReadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_result(result))
    return 0
