"""Images per second of the training input pipeline alone (no model), against a plain loop.

Baseline, in the same process: a serial Python loop doing the same work per
image (RMBG.images.io read, PIL Lanczos resize, ModelInfo.normalize). Then the
tf.data pipeline of RMBG.training.tf_data:

- eval, first pass: decode + resize + normalise, parallel map;
- train, first pass: the same + random resized crop, flip, colour jitter (and
  composite) into batches, filling the in-memory cache;
- train, cached: later epochs, reading decoded images from the cache.

Usage::

    python scripts/bench_pipeline.py [--data ../shared/data/people] [--size 320] [--crop 288]
                                     [--batch 8] [--images 160]

The target of issue 5 is at least 100 images/s at 320 on 2 cores (cached).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from RMBG.constants import shared_data_dir  # noqa: E402
from RMBG.images import dataset
from RMBG.images.io import read_image, read_mask
from RMBG.models.info import ModelInfo
from RMBG.training import augment, tf_data

TARGET = 100.0


def baseline(pairs, info: ModelInfo, size: int) -> float:
    """Serial Python: read, resize, normalise each pair; images per second."""
    start = time.perf_counter()
    for pair in pairs:
        image = Image.fromarray(read_image(pair.image)).resize((size, size), Image.LANCZOS)
        mask = Image.fromarray(np.rint(read_mask(pair.mask) * 255).astype(np.uint8)).resize((size, size))
        info.normalize(np.asarray(image))
        np.asarray(mask, np.float32) / 255.0
    return len(pairs) / (time.perf_counter() - start)


def rate(iterator, batches: int, per_batch: int) -> float:
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * per_batch / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = shared_data_dir()
    parser.add_argument("--data", default=str(default / "people") if default else None)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--crop", type=int, default=288)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--composite", type=float, default=0.0)
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("--data is required when ../shared/data is absent")

    report = dataset.scan(args.data, split=0.0, progress=False)
    pairs = report.pairs[: args.images]
    count = len(pairs) - len(pairs) % args.batch
    pairs = pairs[:count]
    batches = count // args.batch
    info = ModelInfo("u2netp", args.size, input_scale="max")
    settings = augment.Augment(args.crop, (0.81, 1.0), (0.9, 1.1), True, 0.2, args.composite)
    print(f"{count} pairs from {args.data}, size {args.size}, crop {args.crop}, batch {args.batch}, "
          f"{os.cpu_count()} CPUs")

    base = baseline(pairs, info, args.size)
    print(f"{'baseline (serial PIL + numpy)':38s} {base:8.1f} images/s   1.00x")

    def show(label, value):
        mark = "  (target >= 100)" if "cached" in label else ""
        print(f"{label:38s} {value:8.1f} images/s  {value / base:5.2f}x{mark}")

    evaluation = tf_data.eval_dataset(pairs, info, args.size, args.batch, cache=False)
    iterator = iter(evaluation.repeat())
    next(iterator)  # build the graph and start the threads outside the timing
    show("eval: decode+resize+normalise", rate(iterator, batches - 1, args.batch))

    training = tf_data.train_dataset(pairs, info, args.size, args.batch, settings)
    iterator = iter(training)
    next(iterator)
    show("train, first pass (decode+augment)", rate(iterator, batches - 1, args.batch))
    cached = rate(iterator, 2 * batches, args.batch)
    show("train, cached epochs (augment only)", cached)
    return 0 if cached >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
