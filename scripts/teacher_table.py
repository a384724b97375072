"""The teacher table of issue 38: each teacher, their mixes and the per-category choice, on validation.

    python scripts/teacher_table.py --labelled Data/dataset/shared --split val \
        --teacher-labels Data/teachers/u2net-val --name u2net \
        --teacher-labels Data/teachers/isnet-val --name isnet \
        --categories cat,object,person [--json OUT]

The teacher folders are ``python -m RMBG label`` runs over the split's photos
(one teacher each). Prints MAE / max-F per category and overall for every
candidate (:mod:`RMBG.evaluation.teacher_choice`), the per-category choice
(lowest MAE) scored as one teacher, and the ``distill-set --teacher-weights``
arguments that make it. Never pass DUTS photos with IS-Net: it was trained on them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from RMBG.evaluation.teacher_choice import score_teachers  # noqa: E402


def cell(summary: dict) -> str:
    return f"{summary['mae']:.4f} / {summary['max_f']:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labelled", required=True, help="prepared dataset with a split column")
    parser.add_argument("--split", default="val")
    parser.add_argument("--teacher-labels", action="append", required=True, metavar="DIR")
    parser.add_argument("--name", action="append", required=True, help="the teacher's name, once per folder")
    parser.add_argument("--categories", help="comma-separated categories to score (default: all)")
    parser.add_argument("--json", help="also write the summaries here")
    args = parser.parse_args(argv)
    categories = args.categories.split(",") if args.categories else None
    try:
        table = score_teachers(args.labelled, args.teacher_labels, args.name, args.split, categories)
    except (OSError, ValueError) as exc:
        print(f"teacher_table: {exc}", file=sys.stderr)
        return 2
    summaries = table.summaries()
    cats = sorted(set(table.categories))
    print(f"{len(table.categories)} {args.split} photos; MAE / max-F (py_sod_metrics at each photo's size)\n")
    print("| teacher | all | " + " | ".join(cats) + " |")
    print("|---" * (len(cats) + 2) + "|")
    for label, (overall, by_cat) in summaries.items():
        print(f"| {label} | {cell(overall)} | " + " | ".join(cell(by_cat[c]) for c in cats) + " |")
    mix_overall, mix_by_cat = table.mix_summary()
    chosen = table.choice()
    print(f"| per-category choice | {cell(mix_overall)} | " + " | ".join(cell(mix_by_cat[c]) for c in cats) + " |")
    print("\nchoice (lowest MAE): " + ", ".join(f"{c}: {chosen[c].label}" for c in cats))
    print("distill-set " + " ".join(f"--teacher-weights {a}" for a in table.weights_arguments()))
    for path, why in table.missing:
        print(f"  left out {path}: {why}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "photos": len(table.categories), "summaries": summaries,
            "choice": {c: chosen[c].label for c in cats}, "mix": [mix_overall, mix_by_cat],
            "weights_arguments": table.weights_arguments(), "missing": table.missing}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
