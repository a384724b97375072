"""``rmbg compare``: the shipping rule (issue 38) between two evaluation outputs; exit 0 accept, 1 refuse.

``python -m RMBG compare --default REPORT_DIR --candidate REPORT_DIR`` reads each
evaluation's ``per_image_curves.npz`` (written by ``rmbg evaluate``; a report
folder or the file itself) and runs :func:`RMBG.evaluation.shipping_rule.shipping_rule`.
No model runs. When an output holds several models, ``--default-model`` /
``--candidate-model`` name the one to use (both may come from one evaluation);
``--leave-out`` drops the photos a training run checked its checkpoints on
(its ``checked_photos.txt``), so the rule scores a model on photos that did
not choose it; ``--photos K`` adds where the MAE difference lies (the K photos
each way, :mod:`RMBG.evaluation.photo_differences`), which the rule ignores.
Exit status: 0 the candidate may replace the default, 1 refused, 2 bad options
or inputs that cannot be compared (missing file, other photos, other split).

A verb of its own rather than ``evaluate --compare``: it runs no model and
takes two outputs instead of a dataset, and its exit status is the verdict,
so a script or CI step can gate on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from RMBG.evaluation.photo_differences import spreads, spreads_dict, spreads_table
from RMBG.evaluation.score_file import ScoreFileError, read_scores
from RMBG.evaluation.shipping_rule import CONFIDENCE, DRAWS, SEED, shipping_rule
from RMBG.images.io import write_atomic

ACCEPT, REFUSE, BAD_INPUT = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m RMBG compare",
        description="The shipping rule: may the candidate replace the default? (exit 0 yes, 1 no, 2 bad input)")
    parser.add_argument("--default", required=True, type=Path, metavar="REPORT",
                        help="the current default's evaluation (report folder or per_image_curves.npz)")
    parser.add_argument("--candidate", required=True, type=Path, metavar="REPORT",
                        help="the candidate's evaluation, on the same photos (the validation part)")
    parser.add_argument("--default-model", default=None, metavar="NAME",
                        help="which model of --default (needed when it holds several)")
    parser.add_argument("--candidate-model", default=None, metavar="NAME",
                        help="which model of --candidate (needed when it holds several)")
    parser.add_argument("--draws", type=int, default=DRAWS, help=f"bootstrap resamples (default {DRAWS})")
    parser.add_argument("--confidence", type=float, default=CONFIDENCE,
                        help=f"one-sided confidence of the noise test (default {CONFIDENCE})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"bootstrap seed (default {SEED})")
    parser.add_argument("--leave-out", type=Path, default=None, metavar="FILE",
                        help="photo names, one a line, left out of both evaluations before the rule: a training "
                             "run's checked_photos.txt, so that the rule scores photos no checkpoint choice saw")
    parser.add_argument("--photos", type=int, default=None, metavar="K",
                        help="also print where the MAE difference lies: per category the photos the candidate is "
                             "worse and better on, the mean difference without the K photos where it loses most "
                             "and without the K where it gains most, and the K worst named (not part of the rule)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the verdict, every figure included, as JSON")
    return parser


def read_names(path: Path) -> list[str]:
    """The photo names of a ``--leave-out`` file (blank lines and ``#`` comments skipped)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ScoreFileError(f"{path}: cannot read the photos to leave out ({exc.strerror or exc})") from exc
    names = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not names:
        raise ScoreFileError(f"{path}: names no photo to leave out")
    return names


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns 0 (accept), 1 (refuse) or 2 (bad options or inputs)."""
    args = build_parser().parse_args(argv)
    try:
        default = read_scores(args.default, args.default_model)
        candidate = read_scores(args.candidate, args.candidate_model)
        if args.leave_out is not None:
            left_out = read_names(args.leave_out)
            default, candidate = default.without(left_out), candidate.without(left_out)
            print(f"left out the {len(left_out)} photos of {args.leave_out}: the rule scores the other "
                  f"{len(default)}", file=sys.stderr)
        verdict = shipping_rule(candidate, default, draws=args.draws, confidence=args.confidence, seed=args.seed)
        found = spreads(candidate, default, args.photos) if args.photos is not None else None
    except (ScoreFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    if default.split != "val":
        print(f"note: scored on split {default.split or '(no split)'!r}; the rule is defined on the "
              f"validation part (evaluate --split val)", file=sys.stderr)
    print(verdict.table())
    extra = {}
    if found is not None:
        print("\n" + spreads_table(found, args.photos))
        extra = {"spreads": spreads_dict(found)}
    if args.json is not None:
        text = json.dumps({"default_scores": default.source, "candidate_scores": candidate.source,
                           "split": default.split, **verdict.as_dict(), **extra}, indent=2)
        write_atomic(args.json, lambda tmp: tmp.write_text(text + "\n"), overwrite=True)
    return ACCEPT if verdict.accept else REFUSE
