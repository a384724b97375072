"""``rmbg distill-set``: one training folder for distillation: ground truth, teacher maps, or a mix of both."""

from __future__ import annotations

import argparse
import sys

from RMBG.training.distill_set import (
    DEFAULT_GT_SHARE,
    TeacherWeights,
    build_distill_set,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m RMBG distill-set",
        description="Mix a labelled, split dataset and teacher-labelled folders (python -m RMBG label) into one "
        "training folder: labelled training photos get gt_share * truth + (1 - gt_share) * teacher, "
        "val/test keep the truth, other teacher-labelled photos train on the teacher's maps.",
    )
    parser.add_argument("--labelled", required=True, help="prepared dataset with a train/val/test split column")
    parser.add_argument("--teacher-labels", action="append", required=True, metavar="DIR",
                        help="a folder written by `python -m RMBG label` (repeatable)")
    parser.add_argument("--teacher-weights", action="append", default=[], metavar="[CATEGORY=]W1,W2",
                        help="one weight per --teacher-labels folder, in order, for the weighted mean of their maps "
                        "(default: equal); CATEGORY=W1,W2 overrides it for one category (repeatable), "
                        "e.g. --teacher-weights 1,1 --teacher-weights person=1,3")
    parser.add_argument("--gt-share", type=float, default=DEFAULT_GT_SHARE,
                        help=f"share of the ground truth in a labelled training photo's target (default {DEFAULT_GT_SHARE})")
    parser.add_argument("--out", required=True, help="the training folder to write")
    args = parser.parse_args(argv)
    try:
        weights = TeacherWeights.parse(args.teacher_weights, len(args.teacher_labels))
        result = build_distill_set(args.labelled, args.teacher_labels, args.out, args.gt_share, weights)
    except (OSError, ValueError) as exc:
        print(f"distill-set: not done: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0
