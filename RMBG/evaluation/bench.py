"""Time our model against one or more peers, end to end, in the same process.

``python -m RMBG bench --data DIR --model PATH --peer ONNX [--peer ONNX ...] [--n 50] [--batch-size 8]``

Each timed step is what a user waits for: decode the photo file, preprocess,
infer, and postprocess to a full-size mask (``Segmenter.predict``). Every
model is loaded first and warmed up on one photo (untimed), then:

1. **latency**: photo by photo, batch 1, the models take turns going first
   (the order reverses on every photo), so drift (thermal, other processes)
   hits them all;
2. **throughput**: the photos in batches of ``--batch-size`` (decode included),
   again reversing the order on every batch; images per second.

Peak memory is the resident set size (psutil RSS) of this process, sampled
every 5 ms while each model runs. Every model stays loaded throughout, so each
peak includes the others' weights; the RSS growth when each model was loaded
is printed too. The first peer is ``peer`` in the result (its ratios are
``ratio_ours_over_peer``); further ones are ``peer NAME``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from RMBG.images.io import ImageReadError, list_images, read_image
from RMBG.removal.pipeline import Remover
from RMBG.runtime.engines import (
    DEFAULT_RUNTIME,
    Segmenter,
    load_segmenter,
)

MIB = 1024 * 1024


class RssSampler:
    """Background sampling of this process's RSS, attributing each peak to a label."""

    def __init__(self, interval: float = 0.005):
        import psutil

        self._process = psutil.Process()
        self.interval = interval
        self.label: str | None = None
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return int(self._process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            label = self.label
            if label is not None:
                value = self.rss()
                if value > self.peaks.get(label, 0):
                    self.peaks[label] = value
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def measure(self, label: str):
        """Context manager: attribute samples taken inside it to ``label``."""
        sampler = self

        class _Scope:
            def __enter__(self):
                sampler.label = label
                value = sampler.rss()  # at least one sample even for very short work
                sampler.peaks[label] = max(sampler.peaks.get(label, 0), value)

            def __exit__(self, *exc):
                value = sampler.rss()
                sampler.peaks[label] = max(sampler.peaks.get(label, 0), value)
                sampler.label = None

        return _Scope()


@dataclass
class Timing:
    """What one model measured."""

    role: str  # "ours", "peer", or "peer NAME" for the second peer on
    segmenter: Segmenter
    load_seconds: float = 0.0
    load_rss: int = 0  # RSS growth while loading, bytes
    latency: list[float] = field(default_factory=list)
    batch_seconds: float = 0.0
    peak_rss: int = 0

    @property
    def label(self) -> str:
        return f"{self.role} {self.segmenter.name} ({type(self.segmenter).__name__})"


def _photos(data: Path, n: int) -> list[Path]:
    folder = data / "images" if (data / "images").is_dir() else data
    photos = list_images(folder)
    if not photos:
        raise ValueError(f"{folder}: no images found")
    return photos[:n]


def _run_end_to_end(segmenter: Segmenter, paths: list[Path], batch_size: int) -> list[np.ndarray]:
    """Decode ``paths`` and predict full-size masks through the removal pipeline: the timed unit of work."""
    images = [read_image(path) for path in paths]
    masks = Remover(segmenter, batch_size=batch_size).alphas(images)
    for image, mask, path in zip(images, masks, paths):
        if mask.shape != image.shape[:2]:
            raise RuntimeError(f"{path}: {segmenter.name} returned a {mask.shape} mask for a "
                               f"{image.shape[:2]} photo")
    return masks


def _peer_roles(segmenters: list[Segmenter]) -> list[str]:
    """``peer`` for the first, ``peer NAME`` (numbered when names repeat) for the others."""
    roles: list[str] = []
    for i, segmenter in enumerate(segmenters):
        role, n = ("peer" if i == 0 else f"peer {segmenter.name}"), 2
        while role in roles:
            role, n = f"peer {segmenter.name}-{n}", n + 1
        roles.append(role)
    return roles


def bench(
    data, model, peer, n: int = 50, batch_size: int = 8, progress: bool = True, runtime: str | None = None
) -> dict:
    """Measure ``model`` (ours) against ``peer`` (an ONNX U-2-Net, or a list of them) on up to ``n`` photos.

    ``runtime`` says how a ``.keras`` model runs (see :data:`RMBG.runtime.engines.KERAS_RUNTIMES`);
    by default the way ``remove`` serves it (:data:`RMBG.runtime.engines.DEFAULT_RUNTIME`).
    Returns a dict with per-model ``seconds_per_image`` (mean and median latency),
    ``images_per_second`` (batched), ``peak_rss_mib`` and ``load_rss_mib``, plus
    the ratios ours/peer for the first peer (``ratio_ours_over_peer``) and for
    every peer (``ratios``, by role). Unreadable photos are left out with a message.
    """
    if n < 1 or batch_size < 1:
        raise ValueError(f"n and batch size must be at least 1 (got n={n}, batch size={batch_size})")
    runtime = DEFAULT_RUNTIME if runtime is None else runtime
    paths = []
    for path in _photos(Path(data), n):
        try:
            read_image(path)
            paths.append(path)
        except ImageReadError as exc:
            print(f"warning: {exc} (left out)", file=sys.stderr)
    if not paths:
        raise ValueError(f"{data}: none of the photos could be read")

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with RssSampler() as sampler:
        timings = []
        peers = list(peer) if isinstance(peer, (list, tuple)) else [peer]
        if not peers:
            raise ValueError("no peer to compare with")
        for item, is_peer in [(model, False)] + [(p, True) for p in peers]:
            before, start = sampler.rss(), time.perf_counter()
            segmenter = load_segmenter(item, peer=is_peer, runtime=runtime)
            timings.append(Timing("ours", segmenter, time.perf_counter() - start, sampler.rss() - before))
        for timing, role in zip(timings[1:], _peer_roles([t.segmenter for t in timings[1:]])):
            timing.role = role
        for timing in timings:  # warm-up: first calls build graphs and allocate
            with sampler.measure(timing.role):
                _run_end_to_end(timing.segmenter, paths[:1], 1)

        for i, path in enumerate(tqdm(paths, desc="bench latency", unit="img", disable=not progress)):
            for timing in timings if i % 2 == 0 else timings[::-1]:
                with sampler.measure(timing.role):
                    start = time.perf_counter()
                    _run_end_to_end(timing.segmenter, [path], 1)
                    timing.latency.append(time.perf_counter() - start)

        chunks = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
        for j, chunk in enumerate(tqdm(chunks, desc="bench batches", unit="batch", disable=not progress)):
            for timing in timings if j % 2 == 0 else timings[::-1]:
                with sampler.measure(timing.role):
                    start = time.perf_counter()
                    _run_end_to_end(timing.segmenter, chunk, batch_size)
                    timing.batch_seconds += time.perf_counter() - start
        for timing in timings:
            timing.peak_rss = sampler.peaks.get(timing.role, 0)

    result = {"photos": len(paths), "batch_size": batch_size, "data": str(data), "models": {},
              "cpu_count": os.cpu_count(), "load_average": load_before}
    for timing in timings:
        result["models"][timing.role] = {
            "name": timing.segmenter.name,
            "runtime": type(timing.segmenter).__name__,
            "load_seconds": timing.load_seconds,
            "load_rss_mib": timing.load_rss / MIB,
            "seconds_per_image": float(np.mean(timing.latency)),
            "median_seconds_per_image": float(np.median(timing.latency)),
            "p90_seconds_per_image": float(np.percentile(timing.latency, 90)),
            "images_per_second": len(paths) / timing.batch_seconds,
            "peak_rss_mib": timing.peak_rss / MIB,
        }
    ours = result["models"]["ours"]
    result["ratios"] = {
        timing.role: {
            "seconds_per_image": ours["seconds_per_image"] / result["models"][timing.role]["seconds_per_image"],
            "median_seconds_per_image": (ours["median_seconds_per_image"]
                                         / result["models"][timing.role]["median_seconds_per_image"]),
            "images_per_second": ours["images_per_second"] / result["models"][timing.role]["images_per_second"],
        }
        for timing in timings[1:]
    }
    result["ratio_ours_over_peer"] = result["ratios"]["peer"]
    return result


def format_result(result: dict) -> str:
    """The printed benchmark: one row per model, then the ratios and what was measured."""
    head = (f"{'':<44}{'s/img mean':>11}{'median':>9}{'p90':>9}"
            f"{'img/s b' + str(result['batch_size']):>11}{'peak RSS MiB':>14}{'load MiB':>10}")
    lines = [f"bench: {result['photos']} photos from {result['data']}: decode + preprocess + infer + "
             f"full-size mask; 1 warm-up each; alternating order", head, "-" * len(head)]
    for role, m in result["models"].items():
        label = f"{role} {m['name']} ({m['runtime']})"
        lines.append(f"{label:<44}{m['seconds_per_image']:>11.4f}{m['median_seconds_per_image']:>9.4f}"
                     f"{m['p90_seconds_per_image']:>9.4f}{m['images_per_second']:>11.2f}"
                     f"{m['peak_rss_mib']:>14.0f}{m['load_rss_mib']:>10.0f}")
    for role, ratio in result.get("ratios", {"peer": result["ratio_ours_over_peer"]}).items():
        name = result["models"][role]["name"]
        lines.append(f"ratio ours/{role} ({name}): {ratio['seconds_per_image']:.2f}x "
                     f"seconds per image (mean), {ratio['median_seconds_per_image']:.2f}x (median) (above 1: ours "
                     f"slower); {ratio['images_per_second']:.2f}x images/s batched (above 1: ours faster)")
    if result.get("load_average") is not None:
        lines.append(f"machine: {result['cpu_count']} CPU cores, 1-minute load average {result['load_average']:.1f} "
                     "at the start (a load above the core count inflates every time, unevenly)")
    lines.append("peak memory: psutil RSS of the whole process, sampled every 5 ms while each model "
                 "runs; every model stays loaded, so each peak includes the others' weights. "
                 "load MiB: RSS growth while loading that model. The public peer ONNX has a fixed "
                 "batch of 1, so its batches run photo by photo.")
    return "\n".join(lines)
