"""``rmbg export``: export a ``.keras`` model to TFLite (LiteRT) or ONNX, carrying its ModelInfo."""

from __future__ import annotations

import argparse
import sys

from RMBG.models.export import FORMATS, QUANTIZE, export_model
from RMBG.models.info import (
    sidecar_path,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m RMBG export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the .keras model to export")
    parser.add_argument("--format", choices=FORMATS, help="tflite or onnx (default: from --out's suffix)")
    parser.add_argument("--quantize", choices=QUANTIZE, default="none", help="TFLite only: fp16 or int8 (default none)")
    parser.add_argument("--calibration", help="folder of photos to calibrate int8 with (default: ../shared/data)")
    parser.add_argument("--out", required=True, help="file to write (FILE.json with the model info goes beside it)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    try:
        path = export_model(args.model, args.out, args.format, args.quantize, args.calibration, args.overwrite)
    except (ValueError, FileExistsError, FileNotFoundError, OSError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1e6:.2f} MB) and {sidecar_path(path).name}")
    return 0
