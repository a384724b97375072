"""Time each architecture per 320x320 image on CPU, against the ONNX peer in the same process.

Usage::

    python scripts/bench_models.py [--arches u2netp u2net seed] [--batches 1 8] [--repeats 3]

Prints, per architecture and batch size, the median wall time and the process
CPU time (all threads) per image of compiled Keras inference
(``predict_on_batch``, after one warm-up call), the parameter counts, and the
same figures for rembg's ``u2netp.onnx`` on onnxruntime when ``../shared`` is
there. Timings depend on the machine's load: the core count and load average
are printed with them, and only figures from one run compare.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from RMBG.constants import peer_model_path  # noqa: E402


def timed(call, repeats: int) -> tuple[float, float]:
    """Median (wall, process CPU) seconds of ``call()`` over ``repeats`` runs, after a warm-up."""
    call()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def bench_keras(arch: str, size: int, batches, repeats: int) -> list[dict]:
    from RMBG.models.build import build_model, count_params

    model = build_model(arch, input_size=size)
    params = count_params(model)
    rows = []
    for batch in batches:
        x = np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype(np.float32)
        wall, cpu = timed(lambda: model.predict_on_batch(x), repeats)
        rows.append({"model": arch, "batch": batch, "wall": wall / batch, "cpu": cpu / batch,
                     "params": params["trainable"], "total": params["total"]})
    return rows


def bench_peer(path: Path, batches, repeats: int) -> list[dict]:
    from RMBG.runtime.engines import OnnxPeerSegmenter

    peer = OnnxPeerSegmenter(path)
    size = peer.input_size
    rows = []
    for batch in batches:
        x = np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype(np.float32)
        wall, cpu = timed(lambda: peer._infer(x), repeats)  # the export runs one image per call
        rows.append({"model": f"peer {path.name} (onnxruntime)", "batch": batch, "wall": wall / batch,
                     "cpu": cpu / batch, "params": 1_125_485, "total": 1_125_485})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arches", nargs="+", default=["u2netp", "u2net", "seed"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import keras

    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"backend {keras.backend.backend()}, {os.cpu_count()} cores, load average {load[0]:.2f} "
          f"(shared machine: compare figures within this run only)")
    rows = []
    peer = peer_model_path()
    if peer is not None and args.size == 320:
        rows += bench_peer(peer, args.batches, args.repeats)
    for arch in args.arches:
        rows += bench_keras(arch, args.size, args.batches, args.repeats)
        print(f"  done {arch}", flush=True)

    print(f"\n{'model':34} {'batch':>5} {'wall s/img':>11} {'CPU s/img':>10} {'trainable':>12} {'all params':>12}")
    for row in rows:
        print(f"{row['model']:34} {row['batch']:>5} {row['wall']:>11.3f} {row['cpu']:>10.3f} "
              f"{row['params']:>12,} {row['total']:>12,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
