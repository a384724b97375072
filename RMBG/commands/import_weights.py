"""``rmbg import-weights``: import the public U-2-Net / U-2-Net-P ONNX files (rembg's) and IS-Net
(imgly's ``isnet.onnx``) as ``.keras`` models."""

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
    import_onnx,
    onnx_max_difference,
)


def main(argv: list[str] | None = None) -> int:
    """``python -m RMBG import-weights ONNX [--arch ARCH] --out PATH [--input-size N] [--force]``."""
    parser = argparse.ArgumentParser(
        prog="python -m RMBG import-weights",
        description="Import rembg's public u2net/u2netp or imgly's isnet ONNX weights into a .keras model file.",
    )
    parser.add_argument("onnx", type=Path, help="the u2net.onnx, u2netp.onnx or isnet.onnx file")
    parser.add_argument("--arch", choices=IMPORTABLE_ARCHES, default=None,
                        help="architecture the file must hold (default: detect it)")
    parser.add_argument("--out", type=Path, required=True, help="output .keras file")
    parser.add_argument("--input-size", type=int, default=None,
                        help="model input size, a multiple of 32 (default: the file's own, 320 or 1024)")
    parser.add_argument("--bn", choices=BN_MODES, default="identity",
                        help="how to set the BatchNorm layers (identity: pass-through; split: "
                             "unit-scale kernels with per-channel BN scales)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the check against onnxruntime on a random input (float16 files: "
                             "against their float32 copy)")
    args = parser.parse_args(argv)

    if args.out.exists() and not args.force:
        print(f"error: {args.out}: already exists (use --force to replace it)", file=sys.stderr)
        return 1
    try:
        model = import_onnx(args.onnx, args.arch, input_size=args.input_size, bn=args.bn)
    except (WeightImportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    info = model.rmbg_info
    if not args.no_verify and info.config.get("source_input_size") == info.input_size:
        rng = np.random.default_rng(0)
        probe = info.normalize(rng.integers(0, 256, (1, info.input_size, info.input_size, 3)))
        # a float16 file (IS-Net) is compared with its float32 copy: the weights are the same, and
        # the float16 arithmetic between the file's casts differs from ours by ~4e-4
        difference = onnx_max_difference(model, args.onnx, probe, upcast=True)
        print(f"mask output vs onnxruntime (float32) on a random image: max abs difference {difference:.2e}")
        if difference > VERIFY_TOLERANCE:
            print(f"error: difference above {VERIFY_TOLERANCE:g}; not saving", file=sys.stderr)
            return 1
    save_model(model, args.out, info, overwrite=args.force)
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({info.arch}, input {info.input_size}, bn={args.bn}, {size_mb:.1f} MB)")
    return 0
