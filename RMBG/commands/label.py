"""``rmbg label``: a prepared dataset whose masks are a teacher model's soft maps."""

from __future__ import annotations

import argparse
import sys

from RMBG.commands.common import MODEL_HELP, model_argument
from RMBG.models.fetch import default_teacher, teacher_home
from RMBG.models.names import is_name_spec, members, resolve_file
from RMBG.training.label import TTA_CHOICES, Teachers, label_images


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m RMBG label",
        description="Write a prepared dataset whose masks are teacher models' soft maps (for distillation). "
        "Resumable: photos already labelled in --out are skipped.",
        fromfile_prefix_chars="@",
    )
    parser.add_argument("inputs", nargs="+", metavar="IMAGES",
                        help="photos, folders or globs (or @FILE with one per line)")
    parser.add_argument("--out", required=True, help="the labelled dataset folder (created or continued)")
    parser.add_argument("--teacher", action="append", default=None, metavar="MODEL", type=model_argument,
                        help=f"teacher model: {MODEL_HELP}; repeat (or join with +) to average several, each "
                        "counted once; default: u2net ($U2NET_HOME/u2net.onnx, ~/.u2net) when present")
    parser.add_argument("--tta", choices=TTA_CHOICES, default="none",
                        help="also average each teacher's map of the mirrored photo (flip)")
    parser.add_argument("--category", help="category of every row (default: the file name's prefix)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def teacher_files(specs: list[str]) -> list[str]:
    """The files of ``--teacher`` values: names resolved, ``A+B`` split into its members
    (FileNotFoundError saying how to get a missing one)."""
    files = []
    for spec in specs:
        parts = members(spec) if is_name_spec(spec) else [spec]
        files += [str(resolve_file(part)) if is_name_spec(part) else part for part in parts]
    return files


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    teacher = default_teacher()
    try:
        teacher_paths = teacher_files(args.teacher) if args.teacher else ([teacher] if teacher else [])
    except FileNotFoundError as exc:
        print(f"label: no teacher: {exc}", file=sys.stderr)
        return 2
    if not teacher_paths:
        print(f"label: no teacher: pass --teacher FILE, or run `python -m RMBG fetch-teacher u2net` to put rembg's "
              f"U-2-Net in {teacher_home()}", file=sys.stderr)
        return 2
    try:
        teachers = Teachers(teacher_paths, tta=args.tta)
        result = label_images(args.inputs, args.out, teachers, category=args.category, progress=not args.quiet)
    except (OSError, ValueError) as exc:
        print(f"label: not done: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    return 1 if result.failed and not result.written and not result.already_done else 0
