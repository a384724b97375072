"""``python -m Preprocess prepare|check ...``: the two data-preparation commands.

    python -m Preprocess prepare --source KIND SRC [--source KIND SRC ...] --out DIR
                                 [--category NAME] [--size N] [--val-fraction F]
    python -m Preprocess check DIR [--report PATH] [--fix --out NEW_DIR]

Both return 0 when the result is usable and 1 when it is not, with the reason
on the last line. The work is done in :mod:`Preprocess.prepare` and
:mod:`Preprocess.check`; this file only parses and prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from Preprocess.datasets import ADAPTERS


def _prepare_parser(sub) -> None:
    parser = sub.add_parser(
        "prepare",
        help="copy raw datasets into a prepared folder (images/, masks/, index.csv)",
        description="Prepare raw datasets into DIR: images/CATEGORY_COUNT.jpg, masks/CATEGORY_COUNT.png "
        "(8-bit, the size of their image) and index.csv. The sources are only read.",
    )
    parser.add_argument(
        "--source",
        nargs=2,
        action="append",
        required=True,
        metavar=("KIND", "SRC"),
        help=f"a dataset folder and its layout, KIND one of: {', '.join(ADAPTERS)} (repeatable)",
    )
    parser.add_argument("--out", required=True, type=Path, help="the prepared folder (created or continued)")
    parser.add_argument("--category", help="use this category for every pair instead of the one the layout gives")
    parser.add_argument("--size", type=int, help="scale images so their longer side is N px (never enlarged)")
    parser.add_argument(
        "--val-fraction",
        type=float,
        help="add a fixed 'split' column holding out this fraction per category (seed 42)",
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=0.0,
        help="also hold out this fraction per category as 'test', reported once and used for no choice "
        "(drawn from the training part, so the validation files do not change)",
    )


def _check_parser(sub) -> None:
    parser = sub.add_parser(
        "check",
        help="integrity report of DIR/images + DIR/masks, optionally a fixed copy",
        description="Report pairs, unpaired files, unreadable or truncated files, size and aspect mismatches, "
        "odd mask formats, empty/full masks and duplicate stems. Exit 0 when usable, 1 when not.",
    )
    parser.add_argument("dir", type=Path, help="folder holding images/ and masks/")
    parser.add_argument("--report", type=Path, help="where to write the CSV report (default DIR/check_report.csv)")
    parser.add_argument("--fix", action="store_true", help="write a fixed copy into --out (DIR is never changed)")
    parser.add_argument("--out", type=Path, help="new folder for the fixed copy (with --fix)")


def run_prepare(args) -> int:
    from Preprocess.prepare import REPORT_NAME, prepare

    try:
        result = prepare(
            [(kind, Path(src)) for kind, src in args.source],
            args.out,
            category=args.category,
            size=args.size,
            val_fraction=args.val_fraction,
            test_fraction=args.test_fraction,
        )
    except (OSError, ValueError) as exc:
        print(f"prepare: not done: {exc}", file=sys.stderr)
        return 1
    print(f"prepared {result.added} new pairs into {result.out} ({len(result.index)} pairs in index.csv)")
    if result.already_there:
        print(f"{result.already_there} source pairs were already there (skipped)")
    for source, count in result.per_source.items():
        print(f"  {source}: {count} pairs")
    if result.problems:
        print(f"{len(result.problems)} files skipped (all listed in {result.out / REPORT_NAME}):")
        for path, reason in result.problems[:20]:
            print(f"  {path}: {reason}")
        if len(result.problems) > 20:
            print(f"  ... and {len(result.problems) - 20} more")
    empty = [source for source, count in result.per_source.items() if count == 0]
    if empty:
        print(f"not usable: no pair could be prepared from {', '.join(empty)}", file=sys.stderr)
        return 1
    print(f"usable: {result.out} (check it with: python -m Preprocess check {result.out})")
    return 0


def run_check(args) -> int:
    from Preprocess.check import (
        check_dataset,
        default_report_path,
        fix_dataset,
        format_table,
        write_report,
    )

    if args.fix and args.out is None:
        print("check: --fix needs --out NEW_DIR (the checked folder is never changed)", file=sys.stderr)
        return 1
    if not args.dir.is_dir():
        print(f"check: not usable: {args.dir} is not a folder", file=sys.stderr)
        return 1
    report = check_dataset(args.dir)
    print(format_table(report))
    report_path = args.report or default_report_path(args.dir)
    if report_path is None:
        print(f"(no CSV report written: {args.dir} and the current folder are read-only; pass --report PATH)")
    else:
        where = "" if args.report or report_path.parent == args.dir else f" ({args.dir} is read-only)"
        try:
            print(f"report: {write_report(report, report_path)}{where}")
        except OSError as exc:
            print(f"(could not write the CSV report to {report_path}: {exc})")
    print(("USABLE: " if report.usable else "NOT USABLE: ") + report.reason)
    if not args.fix:
        return 0 if report.usable else 1

    try:
        fixed = fix_dataset(report, args.out)
    except (OSError, ValueError) as exc:
        print(f"check --fix: not done: {exc}", file=sys.stderr)
        return 1
    print(
        f"\nfixed copy {fixed.out}: {fixed.copied} pairs, {fixed.masks_fixed} masks and "
        f"{fixed.images_fixed} images fixed, {len(fixed.left_out)} files left out"
    )
    for name, why in fixed.left_out[:20]:
        print(f"  left out {name}: {why}")
    if len(fixed.left_out) > 20:
        print(f"  ... and {len(fixed.left_out) - 20} more")
    again = check_dataset(fixed.out)
    write_report(again, fixed.out / "check_report.csv")
    print(("copy USABLE: " if again.usable else "copy NOT USABLE: ") + again.reason)
    return 0 if again.usable else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m Preprocess", description="Data preparation for RMBG.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{prepare,check}")
    _prepare_parser(sub)
    _check_parser(sub)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    return run_prepare(args) if args.command == "prepare" else run_check(args)


if __name__ == "__main__":
    sys.exit(main())
