"""Training speed per Keras backend and precision on the same data: images per second, the loss after N steps
and the validation MAE, each setting in its own process (``KERAS_BACKEND`` is read once per process).

    python scripts/bench_train.py [--preset finetune] [--size 160] [--batch 8] [--steps 8]
        [--settings tensorflow:fp32,tensorflow:bf16,jax:fp32,jax:bf16] [--pairs 24] [--val 8]

Every process builds the same batches (the PyDataset pipeline, seeded: identical arrays), starts from the same
weights (the preset's start: the imported u2netp for ``finetune``) and trains with the project's model, loss,
freezing and optimizer (:mod:`RMBG.training.step_bench`); XLA as ``--jit-compile auto`` (on under JAX, on
GPUs). The table gives seconds per step (median, the compiling steps left out), images per second, the ratio
to the first setting (TensorFlow float32), the loss of the first step and the mean of the last three, the
validation MAE after training, and the input pipeline's own rate (images per second it makes with its worker
threads). The default run is short (2 CPU cores): u2netp at 160 px, batch 8, 8 timed steps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PRECISIONS = {"fp32": "off", "bf16": "bf16", "fp16": "fp16"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="finetune")
    parser.add_argument("--arch", default="u2netp")
    parser.add_argument("--size", type=int, default=160, help="image size (the preset's crop follows it)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8, help="timed steps (after 2 compiling ones)")
    parser.add_argument("--pairs", type=int, default=24, help="training pairs (the first of --data, sorted)")
    parser.add_argument("--val", type=int, default=8, help="held-out pairs scored after training (0: none)")
    parser.add_argument("--batches", type=int, default=6, help="distinct batches made, cycled through")
    parser.add_argument("--settings", default="tensorflow:fp32,tensorflow:bf16,jax:fp32,jax:bf16")
    parser.add_argument("--data", default=None, help="a folder with images/ and masks/ (default ../shared/data/duts-tr)")
    parser.add_argument("--init", default=None, help="start weights (default: the preset's; 'none': random)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--one", nargs=2, metavar=("BACKEND", "PRECISION"), help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def data_folder(args) -> Path:
    from RMBG.constants import shared_data_dir

    if args.data:
        return Path(args.data)
    shared = shared_data_dir()
    if shared is None:
        sys.exit("bench_train: ../shared/data is absent; pass --data FOLDER (images/ and masks/)")
    return shared / "duts-tr"


def run_one(args) -> dict:
    """One setting, in this process (``KERAS_BACKEND`` already set by the parent)."""
    from RMBG.images import dataset
    from RMBG.models.build import default_info
    from RMBG.models.info import read_model_info
    from RMBG.training.config import default_start, resolve_preset
    from RMBG.training.py_dataset import EvalBatches
    from RMBG.training.step_bench import prepared_batches, time_steps

    backend, precision = args.one
    preset = resolve_preset(args.preset, args.arch, image_size=args.size, batch=args.batch)
    init = None if args.init == "none" else (args.init or default_start(preset, args.arch))
    info = read_model_info(init) if init else default_info(args.arch, args.size)
    pairs = sorted(dataset.list_pairs(data_folder(args))[0], key=lambda p: p.image)
    train, held_out = pairs[: args.pairs], pairs[args.pairs : args.pairs + args.val]
    batches, seconds = prepared_batches(train, info, preset, args.batches, args.seed)
    val = list(EvalBatches(held_out, info, args.size, args.batch)) if held_out else None
    result = time_steps(args.arch, preset, batches, args.steps, info, PRECISIONS[precision], "auto",
                        str(init) if init else None, val, args.seed)
    result["input_images_per_s"] = args.batches * args.batch / seconds
    return result


def table(results: list[dict]) -> str:
    base = next((r["images_per_s"] for r in results if "error" not in r), 1.0)
    head = ("| backend | precision | XLA | device | s/step | img/s | x first | loss 1st -> last | val MAE | "
            "input img/s | compile s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['setting']} | failed: {r['error']} |")
            continue
        mae = f"{r['val_mae']:.4f}" if "val_mae" in r else "-"
        lines.append(
            f"| {r['backend']} | {r['precision']} | {'on' if r['jit'] else 'off'} | {r['device']} | "
            f"{r['seconds_per_step']:.3f} | {r['images_per_s']:.1f} | {r['images_per_s'] / base:.2f} | "
            f"{r['first_loss']:.4f} -> {r['last_loss']:.4f} | {mae} | {r['input_images_per_s']:.0f} | "
            f"{r['compile_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.one:
        result = run_one(args)
        Path(args.json).write_text(json.dumps(result))
        return 0
    settings = [tuple(item.split(":")) for item in args.settings.split(",") if item]
    passthrough = list(argv if argv is not None else sys.argv[1:])
    if "--settings" in passthrough:  # "--settings X" as two words
        index = passthrough.index("--settings")
        del passthrough[index : index + 2]
    passthrough = [a for a in passthrough if not a.startswith("--settings=")]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for backend, precision in settings:
            out = Path(folder) / f"{backend}-{precision}.json"
            env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT))
            done = subprocess.run([sys.executable, __file__, *passthrough, "--one", backend, precision,
                                   "--json", str(out)], env=env, capture_output=True, text=True)
            if done.returncode or not out.is_file():
                error = (done.stderr.strip().splitlines() or ["no output"])[-1][:120]
                results.append({"setting": f"{backend}:{precision}", "error": error})
            else:
                results.append(json.loads(out.read_text()))
            print(f"{backend}:{precision} done", file=sys.stderr, flush=True)
    print(f"{args.arch} {args.preset} at {args.size} px, batch {args.batch}, {args.steps} timed steps, "
          f"{args.pairs} training pairs, {args.val} held out")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
