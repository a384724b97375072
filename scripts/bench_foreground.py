"""Foreground colour estimation (RMBG.removal.foreground): fringe quality on shared photos, time on a 4000x3000 photo.

Quality, in the scene of RMBG.evaluation.fringe (ECSSD photos with their ground-truth
masks softened by a Gaussian blur, composited onto vivid green, cut out with
that known soft alpha and composed onto white): the green spill and the
colour error in the edge band of the naive composite (the photo's own colours
times alpha), of our blur-fusion estimate, and of pymatting's
``estimate_foreground_ml`` for reference (``--no-ml`` skips it). A second
scene composites each object onto another ECSSD photo instead of green (a
cluttered background; colour error only).

The scene people meet ("model's mask", ``--model-photos`` per set, 0 skips it):
held-out photos (the default model's validation list) of people, ECSSD and
cats put on green the same way, then cut out with the default model's OWN mask
(``remove --mode color --bg-color "#FFFFFF"``) against the naive composite with
that mask (``--no-foreground-estimation``); the colour error there also holds
the mask's own error, so the colours are scored alone too
(:func:`RMBG.evaluation.fringe.model_mask_fringe`), and the band is shown
both grown (today) and at the mask's own soft pixels (``model_side=None``, as
before issue 36).

Time, in the same process: a shared photo and its mask upscaled to 4000x3000
(the mask through the model's 320 px, as a prediction would be: a soft band
about 12 px wide), composed in mode ``color`` and ``rgba`` with and without
estimation; the median of ``--repeats`` runs, and the ratio to the naive path.

Usage::

    python scripts/bench_foreground.py [--data ../shared/data/ecssd] [--photos 40] [--model-photos 8]
                                       [--repeats 5] [--no-ml]
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

from RMBG.constants import MODELS_DIR, shared_data_dir  # noqa: E402
from RMBG.evaluation import fringe as FR  # noqa: E402
from RMBG.evaluation.prompts import validation_pairs  # noqa: E402
from RMBG.images.io import read_image, read_mask  # noqa: E402
from RMBG.removal.compose import compose  # noqa: E402
from RMBG.removal.foreground import estimate_foreground  # noqa: E402

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


pooled = FR.pooled

#: The held-out sets of the model's-mask scene.
MODEL_SETS = ("people", "ecssd", "cats")


class _OwnBandOnly:
    """A remover whose colours are estimated at its mask's own soft pixels only (the band before issue 36)."""

    def __init__(self, remover):
        self.remover = remover

    def __getattr__(self, name):
        return getattr(self.remover, name)

    def picture(self, image, small, mode, bg_color="#FFFFFF", foreground_estimation=True):
        from RMBG.removal.compose import alpha_to_uint8

        alpha = alpha_to_uint8(self.remover.finish(image, small))
        return compose(image, alpha, mode, bg_color=bg_color, foreground_estimation=foreground_estimation,
                       model_side=None)


def model_mask(data_root: Path, per_set: int) -> None:
    from RMBG.removal.pipeline import Remover

    remover = Remover()
    variants = {"grown band (today)": remover, "own soft pixels only": _OwnBandOnly(remover)}
    rows: dict[str, dict[str, list]] = {name: {} for name in variants}
    count = 0
    for set_name in MODEL_SETS:
        for image_path, mask_path in validation_pairs(data_root, set_name, MODELS_DIR / "rmbg-default-val.txt",
                                                      per_set):
            photo = read_image(image_path)
            truth = cv2.resize(read_mask(mask_path), (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_NEAREST)
            count += 1
            for name, variant in variants.items():
                for key, score in FR.model_mask_fringe(photo, truth, variant).items():
                    rows[name].setdefault(key, []).append(score)
    print(f"\nthe model's own mask: {count} validation photos ({per_set} each of {', '.join(MODEL_SETS)}) on green, "
          f"remove --mode color onto white")
    print(f"  {'band':22} {'spill':>7} {'x naive':>8} {'colour err':>11} {'x naive':>8} | colours alone: "
          f"{'err':>6} {'x naive':>8}")
    for name, table in rows.items():
        p = {key: pooled(value) for key, value in table.items()}
        print(f"  {name:22} {p['estimated']['spill']:7.2f} {p['estimated']['spill'] / p['naive']['spill']:8.3f} "
              f"{p['estimated']['colour_error']:11.2f} "
              f"{p['estimated']['colour_error'] / p['naive']['colour_error']:8.3f} | "
              f"{p['estimated_colours']['colour_error']:21.2f} "
              f"{p['estimated_colours']['colour_error'] / p['naive_colours']['colour_error']:8.3f}")
    p = {key: pooled(value) for key, value in rows["grown band (today)"].items()}
    print(f"  naive composite: spill {p['naive']['spill']:.2f}, colour error {p['naive']['colour_error']:.2f} "
          f"(colours alone {p['naive_colours']['colour_error']:.2f})")


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
    own = median_seconds(lambda: estimate_foreground(image, alpha8, model_side=None), repeats)
    print(f"  estimate_foreground alone: {alone:.3f} s (over the mask's own soft pixels only: {own:.3f} s)")
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
    parser.add_argument("--model-photos", type=int, default=8,
                        help="validation photos per set in the model's-mask scene (0 skips it)")
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
    if args.model_photos:
        model_mask(args.data.parent, args.model_photos)
    timing(*pairs[0], args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
