"""``rmbg blend``: weight-space blending of a fine-tuned model with the model it started from."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from RMBG.models.blend import blend_files


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m RMBG blend",
        description="Blend a fine-tuned model's weights with those of the model it started from (WiSE-FT).",
    )
    parser.add_argument("--start", required=True, type=Path, help="the model the fine-tune started from")
    parser.add_argument("--tuned", required=True, type=Path, help="the fine-tuned model (its preprocessing is kept)")
    parser.add_argument("--share", required=True, type=float,
                        help="part of the fine-tuned weights, 0-1 (1 = the fine-tuned model, 0 = the start)")
    parser.add_argument("--out", required=True, type=Path, help="the .keras file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        path = blend_files(args.start, args.tuned, args.share, args.out, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"blend: {exc}", file=sys.stderr)
        return 2
    print(f"blended model: {path}")
    return 0
