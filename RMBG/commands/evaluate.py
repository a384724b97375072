"""``rmbg evaluate``: score our models and ONNX peers on a folder of photos with ground-truth masks."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from tqdm.auto import tqdm

from RMBG.commands.common import (
    MODEL_HELP,
    add_device_option,
    model_argument,
    say_device,
)
from RMBG.evaluation.evaluate import (
    MAX_PRINTED_WARNINGS,
    EvaluationError,
    evaluate,
    summary_table,
)
from RMBG.images.io import (
    ImageReadError,
)
from RMBG.runtime.device import DeviceError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m RMBG evaluate",
        description="Score models and ONNX peers on photos with ground-truth masks.",
    )
    parser.add_argument("--data", required=True, type=Path,
                        help="folder with images/ and masks/ matched by name (optional index.csv)")
    parser.add_argument("--model", action="append", default=[], type=model_argument, metavar="MODEL",
                        help=f"our model: {MODEL_HELP}; repeat for several")
    parser.add_argument("--peer", action="append", default=[], type=model_argument, metavar="ONNX",
                        help="a peer: a name (u2netp, u2net, isnet, A+B) or a public ONNX file, run as its "
                        "publisher runs it (rembg's U-2-Net recipe, imgly's for IS-Net); repeat for several")
    parser.add_argument("--out", required=True, type=Path, metavar="REPORT_DIR", help="report folder")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N photos")
    parser.add_argument("--split", default=None, help="only the rows of index.csv with this split (e.g. val)")
    parser.add_argument("--category", action="append", default=[], metavar="CAT",
                        help="only the photos of this category (the file name's prefix, e.g. person); "
                        "repeat for several")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help="prediction cache folder (default REPORT_DIR/cache)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the prediction cache")
    parser.add_argument("--gallery", type=int, default=3, metavar="K",
                        help="worst and best K photos in gallery.png (0: no gallery)")
    add_device_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``python -m RMBG evaluate ...``; returns the exit status."""
    args = build_parser().parse_args(argv)
    models = list(args.model)
    if not models and not args.peer:
        from RMBG.runtime.engines import default_model_path

        try:
            models = [default_model_path()]
        except FileNotFoundError as exc:
            print(f"error: no --model or --peer given and {exc}", file=sys.stderr)
            return 1

    shown = [0]

    def show(message, category, filename, lineno, file=None, line=None):
        shown[0] += 1
        if shown[0] <= MAX_PRINTED_WARNINGS:
            tqdm.write(f"warning: {message}", file=sys.stderr)
        elif shown[0] == MAX_PRINTED_WARNINGS + 1:
            tqdm.write("warning: more warnings follow; run.json lists them all", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", UserWarning)
            warnings.showwarning = show
            report = evaluate(args.data, models=models, peers=args.peer, out_dir=args.out,
                              limit=args.limit, split=args.split, cache_dir=args.cache,
                              use_cache=not args.no_cache, gallery_size=args.gallery, device=args.device,
                              categories=args.category)
    except DeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (EvaluationError, FileNotFoundError, ImageReadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    run = json.loads((args.out / "run.json").read_text())
    kinds = {m["name"]: m["kind"] for m in run["models"]}
    for model in run["models"]:
        say_device("evaluate", f"{model['device']} ({model['name']})")
    print(f"\n{report['images']} photos from {args.data}"
          + (f" (split {args.split})" if args.split else "")
          + (f" (categories {', '.join(args.category)})" if args.category else ""))
    print(summary_table(report, kinds))
    skipped = len(run["skipped_or_warned"])
    print(f"\nreport: {args.out / 'report.json'}  (also per_image.csv, per_image_curves.npz, pr_curve.png, gallery.png"
          + (f"; {skipped} warnings, listed in run.json)" if skipped else ")"))
    return 0
