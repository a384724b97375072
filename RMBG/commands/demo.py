"""``rmbg demo``: background removal on real photos that installed packages ship."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from RMBG.apps.demo import DEMO_OUT, run_demo
from RMBG.commands.common import MODEL_HELP, model_argument
from RMBG.constants import SAMPLES_DIR
from RMBG.runtime.engines import DEFAULT_RUNTIME, KERAS_RUNTIMES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m RMBG demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=model_argument, help=f"{MODEL_HELP}; default: the shipped model")
    parser.add_argument("--out", type=Path, default=DEMO_OUT, help=f"output folder (default {DEMO_OUT})")
    parser.add_argument("--samples", type=Path, default=SAMPLES_DIR, help=f"where the photos go (default {SAMPLES_DIR})")
    parser.add_argument("--runtime", choices=KERAS_RUNTIMES, default=DEFAULT_RUNTIME, help="how .keras models run")
    args = parser.parse_args(argv)
    print("removing backgrounds (the first run converts the model to a faster TFLite copy, about 20 s)")
    try:
        written = run_demo(args.model, args.out, args.samples, args.runtime)
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    print(f"samples in {args.samples}")
    for mode, paths in written.items():
        print(f"{mode:>13}: {args.out / mode}  ({len(paths)} pictures)")
    if written.get("side-by-side"):
        print(f"look at, for example: {written['side-by-side'][0]}")
    return 0
