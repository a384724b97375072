"""Seconds per image for every way of running the model, against the peer, in one process.

    python scripts/bench_runtimes.py [--model PATH] [--n 12] [--data ../shared/data]

Runtimes: Keras ``model.predict``, Keras called eagerly, Keras compiled
(``tf.function``), TFLite fp32 / fp16 / int8 (LiteRT, 2 threads), ONNX
(onnxruntime, 2 threads), and the peer ``u2netp.onnx`` as rembg runs it. The
exports are made once and cached under ``Data/cache/bench/DIGEST/``.

Each timing is one photo through ``Segmenter.predict`` (resize to the model,
normalise, infer, scale the output, upsample to the photo), photos already
decoded. Runtimes take turns photo by photo (the order rotating), so that load
from other processes falls on all of them alike; the table gives the median,
its ratio to the peer, and the mean mask difference from the compiled Keras
model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from RMBG.constants import DATA_DIR, peer_model_path, shared_data_dir  # noqa: E402
from RMBG.images.io import list_images, read_image
from RMBG.runtime import engines as RT


class KerasPredictSegmenter(RT.KerasSegmenter):
    """The slow path people reach for first: ``model.predict`` on each batch."""

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        outputs = self.model.predict(batch, verbose=0)
        return np.asarray(RT.select_output(outputs, self.info))


def ensure_exports(model, model_path: Path) -> dict[str, Path]:
    """TFLite fp32/fp16/int8 and ONNX exports of the model, cached by its digest."""
    from RMBG.models.export import export_loaded

    folder = DATA_DIR / "cache" / "bench" / RT.file_digest(model_path)
    wanted = {
        "tflite-fp32": ("model-fp32.tflite", "none"),
        "tflite-fp16": ("model-fp16.tflite", "fp16"),
        "tflite-int8": ("model-int8.tflite", "int8"),
        "onnx": ("model.onnx", "none"),
    }
    paths = {}
    for label, (name, quantize) in wanted.items():
        path = folder / name
        if not path.is_file():
            start = time.perf_counter()
            export_loaded(model, path, quantize=quantize, overwrite=True, source=model_path.name)
            print(f"exported {label} in {time.perf_counter() - start:.0f} s", flush=True)
        paths[label] = path
    return paths


def photos_from(data: Path, n: int) -> list[np.ndarray]:
    per_set = max(1, n // 3)
    chosen = []
    for name in ("people", "ecssd", "cats"):
        chosen += list_images(data / name / "images")[:per_set]
    return [read_image(p) for p in chosen[:n]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="the .keras model (default: the shipped one)")
    parser.add_argument("--n", type=int, default=12, help="photos to time (default 12)")
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="shared data folder")
    args = parser.parse_args(argv)
    if args.data is None or peer_model_path() is None:
        print("needs ../shared/data and ../shared/peers/u2netp.onnx", file=sys.stderr)
        return 2
    model_path = args.model or RT.default_model_path()

    keras_rt = RT.KerasSegmenter.from_file(model_path)
    exports = ensure_exports(keras_rt.model, model_path)
    runtimes: dict[str, RT.Segmenter] = {
        "keras predict": KerasPredictSegmenter(keras_rt.model, keras_rt.info, "predict", compile=False),
        "keras eager": RT.KerasSegmenter(keras_rt.model, keras_rt.info, "eager", compile=False),
        "keras compiled": keras_rt,
        **{label: RT.load_segmenter(path) for label, path in exports.items()},
        "peer (rembg onnx)": RT.OnnxPeerSegmenter(peer_model_path()),
    }
    photos = photos_from(args.data, args.n)
    reference = keras_rt.predict_small(photos)
    masks, seconds = {}, {label: [] for label in runtimes}
    for label, segmenter in runtimes.items():
        segmenter.predict(photos[:1])  # warm-up: graphs, arenas, caches
        masks[label] = segmenter.predict_small(photos)
    labels = list(runtimes)
    for i, photo in enumerate(photos):
        shift = i % len(labels)
        for label in labels[shift:] + labels[:shift]:
            start = time.perf_counter()
            runtimes[label].predict([photo])
            seconds[label].append(time.perf_counter() - start)

    peer = statistics.median(seconds["peer (rembg onnx)"])
    print(f"\n{len(photos)} photos, model {model_path.name}, median seconds per photo (resize, infer, upsample)")
    print(f"{'runtime':<20}{'s/img':>8}{'x peer':>8}{'MAE vs keras':>14}{'file MB':>9}")
    for label in labels:
        median = statistics.median(seconds[label])
        mae = float(np.abs(masks[label] - reference).mean())
        size = exports[label].stat().st_size / 1e6 if label in exports else float("nan")
        print(f"{label:<20}{median:>8.3f}{median / peer:>8.2f}{mae:>14.5f}{size:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
