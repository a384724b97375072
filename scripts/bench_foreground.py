"""Foreground colour estimation (RMBG.removal.foreground): fringe quality on shared photos, time on a 4000x3000 photo.

Quality, in the scene of RMBG.evaluation.fringe (ECSSD photos with their ground-truth
masks softened by a Gaussian blur, composited onto vivid green, cut out with
that known soft alpha and composed onto white): the green spill and the
colour error in the edge band of the naive composite (the photo's own colours
times alpha), of our blur-fusion estimate, and of pymatting's
``estimate_foreground_ml`` for reference (``--no-ml`` skips it). A second
scene composites each object onto another ECSSD photo instead of green (a
cluttered background; colour error only).

Time, in the same process: a shared photo and its mask upscaled to 4000x3000
(the mask through the model's 320 px, as a prediction would be: a soft band
about 12 px wide), composed in mode ``color`` and ``rgba`` with and without
estimation; the median of ``--repeats`` runs, and the ratio to the naive path.

Usage::

    python scripts/bench_foreground.py [--data ../shared/data/ecssd] [--photos 40] [--repeats 5] [--no-ml]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from RMBG.constants import shared_data_dir  # noqa: E402
from RMBG.evaluation import fringe as FR
from RMBG.images.io import read_image, read_mask
from RMBG.removal.compose import compose
from RMBG.removal.foreground import estimate_foreground

#: The size of the large photo, and the model's input size its mask goes through.
LARGE = (4000, 3000)
MODEL_SIDE = 320


def load_pairs(folder: Path, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(photo, hard ground-truth mask at the photo's size)`` for the first ``count`` pairs."""
    found = []
    for image_path in sorted((folder / "images").glob("*.jpg"))[:count]:
        mask_path = folder / "masks" / f"{image_path.stem}.png"
        if mask_path.is_file():
            photo = read_image(image_path)
            mask = cv2.resize(read_mask(mask_path), (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_NEAREST)
            found.append((photo, mask))
    return found


def ml_foreground(scene: np.ndarray, alpha8: np.ndarray) -> np.ndarray:
    from pymatting import estimate_foreground_ml

    estimate = estimate_foreground_ml(scene / 255.0, alpha8 / 255.0)
    return np.clip(np.rint(estimate * 255.0), 0, 255).astype(np.uint8)


def pooled(rows: list[dict]) -> dict[str, float]:
    pixels = sum(r["pixels"] for r in rows)
    return {key: sum(r[key] * r["pixels"] for r in rows) / pixels for key in ("spill", "colour_error")}


def quality(pairs, use_ml: bool) -> None:
    methods = {"naive": lambda scene, a: scene, "blur fusion (ours)": estimate_foreground}
    if use_ml:
        methods["pymatting ml"] = ml_foreground
        ml_foreground(pairs[0][0][:32, :32], np.full((32, 32), 128, np.uint8))  # compile outside the clock
    for title, background_of in (("green screen", lambda i: FR.SCREEN),
                                 ("another photo", lambda i: pairs[(i + 7) % len(pairs)][0])):
        rows = {name: [] for name in methods}
        seconds = {name: 0.0 for name in methods}
        for i, (photo, mask) in enumerate(pairs):
            alpha8 = FR.soften(mask)
            background = background_of(i)
            if isinstance(background, np.ndarray):
                background = cv2.resize(background, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_AREA)
            scene = FR.screen_scene(photo, alpha8, background)
            truth = FR.over(photo, alpha8, FR.WHITE)
            for name, method in methods.items():
                start = time.perf_counter()
                colours = method(scene, alpha8)
                seconds[name] += time.perf_counter() - start
                rows[name].append(FR.fringe_scores(FR.over(colours, alpha8, FR.WHITE), truth, alpha8))
        naive = pooled(rows["naive"])
        print(f"\n{title}: {len(pairs)} photos, mask softened with sigma {FR.SOFTEN_SIGMA:g} px, "
              f"band {FR.FRINGE_BAND[0]} < alpha < {FR.FRINGE_BAND[1]} ({sum(r['pixels'] for r in rows['naive'])} px)")
        print(f"  {'method':20} {'spill':>7} {'x naive':>8} {'colour err':>11} {'x naive':>8} {'ms/photo':>9}")
        for name in methods:
            score = pooled(rows[name])
            spill_ratio = score["spill"] / naive["spill"] if abs(naive["spill"]) > 1 else float("nan")
            print(f"  {name:20} {score['spill']:7.2f} {spill_ratio:8.3f} {score['colour_error']:11.2f} "
                  f"{score['colour_error'] / naive['colour_error']:8.3f} {1000 * seconds[name] / len(pairs):9.1f}")


def large_photo(photo: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = cv2.resize(photo, LARGE, interpolation=cv2.INTER_CUBIC)
    small = cv2.resize(mask, (MODEL_SIDE, MODEL_SIDE), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(small, LARGE, interpolation=cv2.INTER_LINEAR)
    return image, np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)


def median_seconds(call, repeats: int) -> float:
    call()  # warm caches outside the clock
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timing(photo: np.ndarray, mask: np.ndarray, repeats: int) -> None:
    image, alpha8 = large_photo(photo, mask)
    band = int(((alpha8 > 0) & (alpha8 < 255)).sum())
    print(f"\ntime per {LARGE[0]}x{LARGE[1]} photo (median of {repeats}; soft band {band} px, "
          f"{100 * band / alpha8.size:.1f} % of the picture)")
    alone = median_seconds(lambda: estimate_foreground(image, alpha8), repeats)
    print(f"  estimate_foreground alone: {alone:.3f} s")
    for mode in ("color", "rgba"):
        naive = median_seconds(lambda: compose(image, alpha8, mode, foreground_estimation=False), repeats)
        estimated = median_seconds(lambda: compose(image, alpha8, mode, foreground_estimation=True), repeats)
        print(f"  mode {mode:5}: without {naive:.3f} s, with {estimated:.3f} s ({estimated / naive:.2f}x the naive path)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = shared_data_dir()
    parser.add_argument("--data", type=Path, default=default / "ecssd" if default else None,
                        help="a shared set (images/ + masks/); default ../shared/data/ecssd")
    parser.add_argument("--photos", type=int, default=40, help="photos in the quality measurement")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure")
    parser.add_argument("--no-ml", dest="ml", action="store_false", help="skip pymatting's estimate_foreground_ml")
    args = parser.parse_args(argv)
    if args.data is None or not (args.data / "images").is_dir():
        print("bench_foreground: no data (pass --data FOLDER with images/ and masks/)", file=sys.stderr)
        return 2
    pairs = load_pairs(args.data, args.photos)
    if not pairs:
        print(f"bench_foreground: {args.data} holds no image/mask pairs", file=sys.stderr)
        return 2
    quality(pairs, args.ml)
    timing(*pairs[0], args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
