"""A gallery of photo | peer mask | our mask | difference, one row per photo.

    python scripts/compare_masks.py [--model PATH] [--peer ONNX] [--out PNG] [--overwrite] [PHOTO ...]

Defaults: the shipped default model against ``../shared/peers/u2netp.onnx``
on the original project's demo inputs (``../shared/data/seed_test/images``),
written to ``Data/output/seed-gallery-default.png``. Prints, per photo, the
mean and largest difference between the two full-size masks and, for a photo
already cut out on a flat backdrop (the lion, ``1.png``), how much of that
backdrop each mask calls foreground (:mod:`RMBG.evaluation.backdrop`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from RMBG.constants import DATA_DIR, peer_model_path, shared_data_dir  # noqa: E402
from RMBG.evaluation.backdrop import Leak, backdrop_leak, flat_backdrop
from RMBG.images.io import list_images, read_image, write_atomic
from RMBG.runtime.engines import default_model_path, load_segmenter
from RMBG.viz import ORIGINAL_SET  # noqa: E402


def gallery(photos, model, peer) -> tuple[Figure, list[tuple[str, float, float]], list[tuple[str, str, Leak]]]:
    """The figure, ``(photo, mean, largest)`` mask differences, and ``(photo, who, Leak)`` for flat backdrops."""
    ours, theirs = load_segmenter(model), load_segmenter(peer, peer=True)
    fig = Figure(figsize=(12, 3.4 * len(photos)), layout="constrained")
    axes = fig.subplots(len(photos), 4, squeeze=False)
    differences, leaks = [], []
    for row, path in zip(axes, photos):
        image = read_image(path)
        peer_mask, our_mask = theirs.predict_one(image), ours.predict_one(image)
        gap = np.abs(peer_mask - our_mask)
        differences.append((Path(path).name, float(gap.mean()), float(gap.max())))
        backdrop = flat_backdrop(image)
        if backdrop is not None:
            leaks += [(Path(path).name, who, backdrop_leak(mask, backdrop))
                      for who, mask in (("peer", peer_mask), ("ours", our_mask))]
        panels = (image, peer_mask, our_mask, gap)
        titles = (Path(path).name, f"peer {Path(peer).name}", f"ours {Path(model).name}", "|peer - ours|")
        for ax, picture, title in zip(row, panels, titles):
            ax.imshow(picture, cmap=None if picture.ndim == 3 else "gray", vmin=0, vmax=1)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    return fig, differences


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", type=Path)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--peer", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=DATA_DIR / "output" / "seed-gallery-default.png")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    shared = shared_data_dir()
    photos = args.photos or (list_images(shared / ORIGINAL_SET / "images") if shared else [])
    peer = args.peer or peer_model_path()
    if not photos or peer is None:
        parser.error("give photos and --peer (../shared is absent)")
    if args.out.exists() and not args.overwrite:
        parser.error(f"{args.out} exists: pass --overwrite to replace it, or another --out")
    model = args.model or default_model_path()
    fig, differences, leaks = gallery(photos, model, peer)
    for name, mean, largest in differences:
        print(f"{name}: mean |peer - ours| {mean:.4f}, largest {largest:.3f}")
    for name, who, leak in leaks:
        print(f"{name}: {who} on its flat backdrop: {leak.pixels_over_half} of {leak.backdrop_pixels} "
              f"pixels over 0.5, mean alpha {leak.mean_alpha:.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, lambda tmp: fig.savefig(tmp, dpi=80, format="png"), overwrite=args.overwrite)
    print(f"gallery: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
