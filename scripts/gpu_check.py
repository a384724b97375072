"""The GPU check's Python (``scripts/gpu_check.sh`` sets up Keras and runs it): train U-2-Net-P on the JAX
backend, with no TensorFlow, and print images per second, memory and loss.

    KERAS_BACKEND=jax python scripts/gpu_check.py --carry .gpu_carry [--steps 300] [--batch 32] [--precision auto]

The ``full`` recipe at 320 px (every layer trains, BCE on the seven maps) from the imported u2netp weights
(``lr`` 1e-4, where the loss moves), on the DUTS-TR slice of ``.gpu_carry/duts320.npz``: batches made by the
PyDataset pipeline (its own rate printed: can it keep the GPU busy?), then ``--steps`` steps timed on them
(:func:`RMBG.training.step_bench.time_steps`, the compiling steps left out), the validation MAE on the last
``--val`` pairs, and the time one epoch of DUTS-TR (10,553 photos) would take at that rate.
``import tensorflow`` is made to fail first: this path must not need it.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

sys.modules["tensorflow"] = None  # the GPU machine has none: prove the path needs none
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

#: Photos in DUTS-TR, for the epoch estimate.
DUTS_TR = 10_553


def load_slice(path: Path):
    """``(images NxSxSx3 uint8, masks NxSxSx1 uint8)`` of a ``gpu_prepare.py`` ``.npz``."""
    packed = np.load(path)

    def unpack(data, offsets, mode):
        return np.stack([np.asarray(Image.open(io.BytesIO(data[a:b].tobytes())).convert(mode))
                         for a, b in zip(offsets[:-1], offsets[1:])])

    images = unpack(packed["jpeg"], packed["jpeg_offsets"], "RGB")
    masks = unpack(packed["png"], packed["png_offsets"], "L")[..., None]
    return images, masks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--carry", default=str(ROOT / ".gpu_carry"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=None, help="train size (default: the slice's, 320)")
    parser.add_argument("--precision", default="auto", help="auto (mixed on a GPU), off, bf16, fp16")
    parser.add_argument("--batches", type=int, default=8, help="distinct batches made, cycled through")
    parser.add_argument("--val", type=int, default=64, help="pairs held out for the validation MAE")
    parser.add_argument("--workers", type=int, default=None, help="input threads (default: one a core, at most 8)")
    args = parser.parse_args(argv)

    import keras

    from RMBG.models.info import read_model_info
    from RMBG.training.config import resolve_preset
    from RMBG.training.py_dataset import ArrayPairs, EvalBatches
    from RMBG.training.step_bench import prepared_batches, time_steps

    carry = Path(args.carry)
    start = time.perf_counter()
    images, masks = load_slice(carry / "duts320.npz")
    size = args.size or int(images.shape[1])
    if size != images.shape[1]:
        from RMBG.training.py_dataset import resize_pair

        pairs = [resize_pair(i, m[..., 0].astype(np.float32) / 255.0, size) for i, m in zip(images, masks)]
        images, masks = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    train = ArrayPairs(images[: -args.val], masks[: -args.val])
    held_out = ArrayPairs(images[-args.val :], masks[-args.val :])
    init = carry / "u2netp-imported.keras"
    info = read_model_info(init)
    preset = resolve_preset("full", "u2netp", image_size=size, batch=args.batch, lr=1e-4, workers=args.workers)
    batches, seconds = prepared_batches(train, info, preset, args.batches, seed=42, workers=args.workers)
    val = list(EvalBatches(held_out, info, size, args.batch))
    print(f"gpu_check: keras {keras.__version__} on {keras.backend.backend()}; {len(images)} pairs at {size} px "
          f"loaded in {time.perf_counter() - start:.1f} s; input pipeline {args.batches * args.batch / seconds:.0f} "
          f"images/s", flush=True)
    result = time_steps("u2netp", preset, batches, args.steps, info, args.precision, "auto", str(init), val)
    result["input_images_per_s"] = args.batches * args.batch / seconds
    result["epoch_s"] = DUTS_TR / result["images_per_s"]
    result["tensorflow_imported"] = sys.modules.get("tensorflow") is not None
    print(f"gpu_check: u2netp at {size}, batch {args.batch}, {result['precision']}, XLA {result['jit']}, "
          f"{result['device']}: {result['images_per_s']:.0f} images/s ({result['seconds_per_step'] * 1000:.1f} ms a "
          f"step, compile {result['compile_s']:.1f} s); one DUTS-TR epoch {result['epoch_s']:.1f} s; loss "
          f"{result['first_loss']:.4f} -> {result['last_loss']:.4f} after {args.steps} steps; val MAE "
          f"{result['val_mae']:.4f}; peak memory "
          + (f"GPU {result['gpu_gib']:.2f} GiB, " if "gpu_gib" in result else "")
          + f"host {result['host_gib']:.2f} GiB", flush=True)
    print("gpu_check: " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
