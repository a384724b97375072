"""The box prompt (RMBG.removal.box) on held-out shared photos: a box around the subject against no box.

For every photo of a shared set in the default model's validation list
(``Data/models/rmbg-default-val.txt``: photos it never trained on), the box is
the ground truth's bounding box grown by ``--grow`` of its width and height on
each side (clipped to the photo), as a person drawing a loose box would. The
default remover's alpha without a box and with it (``Remover.alpha(photo,
box=...)``, for each crop margin of ``--margins``) is scored against the truth
(:mod:`RMBG.evaluation.metrics`: MAE, max-F); the same process, one after the other.

Usage::

    python scripts/bench_box.py [--set people] [--grow 0.1] [--margins 0.1] [--limit N] [--model PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from RMBG.constants import MODELS_DIR, shared_data_dir  # noqa: E402
from RMBG.evaluation.metrics import score_image, summarize  # noqa: E402
from RMBG.evaluation.prompts import truth_box, validation_pairs  # noqa: E402
from RMBG.images.io import read_image, read_mask  # noqa: E402
from RMBG.removal import box as B  # noqa: E402
from RMBG.removal.pipeline import Remover  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", default="people", help="shared set (people, ecssd, cats); default people")
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="default ../shared/data")
    parser.add_argument("--grow", type=float, default=0.1, help="box = truth's box grown by this on each side")
    parser.add_argument("--margins", default=str(B.BOX_MARGIN_FRACTION),
                        help="comma-separated crop margins (fractions of the box) to compare")
    parser.add_argument("--limit", type=int, help="at most this many photos")
    parser.add_argument("--model", help="model file; default the shipped model")
    args = parser.parse_args(argv)
    if args.data is None:
        print("bench_box: no ../shared/data (pass --data)", file=sys.stderr)
        return 2
    pairs = validation_pairs(args.data, args.set, MODELS_DIR / "rmbg-default-val.txt", args.limit)
    if not pairs:
        print(f"bench_box: no validation photos of {args.set} under {args.data}", file=sys.stderr)
        return 2
    margins = [float(m) for m in args.margins.split(",")]
    remover = Remover(args.model)
    scores: dict[str, list] = {"no box": [], **{f"box, margin {m:g}": [] for m in margins}}
    for image_path, mask_path in pairs:
        photo, truth = read_image(image_path), read_mask(mask_path)
        box = truth_box(truth, photo.shape[:2], args.grow)
        scores["no box"].append(score_image(remover.alpha(photo), truth))
        for margin in margins:
            region = B.region_of(box, *photo.shape[:2], margin=margin)
            alpha = remover.finish(photo, remover.small_masks([photo], [region])[0], region=region)
            scores[f"box, margin {margin:g}"].append(score_image(alpha, truth))
    base = summarize(scores["no box"])
    print(f"{args.set}: {len(pairs)} validation photos, box = the truth's box grown {args.grow:g} on each side")
    print(f"  {'':18} {'MAE':>8} {'max-F':>8} {'MAE vs no box':>14}")
    for name, rows in scores.items():
        summary = summarize(rows)
        print(f"  {name:18} {summary['mae']:8.4f} {summary['max_f']:8.4f} {summary['mae'] / base['mae']:13.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
