"""``rmbg import-weights``: import the public U-2-Net / U-2-Net-P ONNX files (rembg's) as ``.keras`` models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from RMBG.models.build import save_model
from RMBG.models.onnx_import import (
    BN_MODES,
    IMPORTABLE_ARCHES,
    VERIFY_TOLERANCE,
    WeightImportError,
    import_u2net_onnx,
    onnx_max_difference,
)


def _onnx_input_size(onnx_path: Path) -> int | None:
    import onnxruntime as ort

    shape = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    return shape[-1] if isinstance(shape[-1], int) else None


def main(argv: list[str] | None = None) -> int:
    """``python -m RMBG import-weights ONNX --arch u2netp --out PATH [--force]``."""
    parser = argparse.ArgumentParser(
        prog="python -m RMBG import-weights",
        description="Import rembg's public u2net/u2netp ONNX weights into a .keras model file.",
    )
    parser.add_argument("onnx", type=Path, help="the u2net.onnx or u2netp.onnx file")
    parser.add_argument("--arch", choices=IMPORTABLE_ARCHES, default=None,
                        help="architecture the file must hold (default: detect it)")
    parser.add_argument("--out", type=Path, required=True, help="output .keras file")
    parser.add_argument("--input-size", type=int, default=320, help="model input size, a multiple of 32 (320)")
    parser.add_argument("--bn", choices=BN_MODES, default="identity",
                        help="how to set the BatchNorm layers (identity: pass-through; split: "
                             "unit-scale kernels with per-channel BN scales)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the check against onnxruntime on a random input")
    args = parser.parse_args(argv)

    if args.out.exists() and not args.force:
        print(f"error: {args.out}: already exists (use --force to replace it)", file=sys.stderr)
        return 1
    try:
        model = import_u2net_onnx(args.onnx, args.arch, input_size=args.input_size, bn=args.bn)
    except (WeightImportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    info = model.rmbg_info
    if not args.no_verify and _onnx_input_size(args.onnx) == info.input_size:
        rng = np.random.default_rng(0)
        probe = info.normalize(rng.integers(0, 256, (1, info.input_size, info.input_size, 3)))
        difference = onnx_max_difference(model, args.onnx, probe)
        print(f"fused output vs onnxruntime on a random image: max abs difference {difference:.2e}")
        if difference > VERIFY_TOLERANCE:
            print(f"error: difference above {VERIFY_TOLERANCE:g}; not saving", file=sys.stderr)
            return 1
    save_model(model, args.out, info, overwrite=args.force)
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({info.arch}, input {info.input_size}, bn={args.bn}, {size_mb:.1f} MB)")
    return 0
