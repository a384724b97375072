"""``rmbg label``: a prepared dataset whose masks are a teacher model's soft maps."""

from __future__ import annotations

import argparse
import sys

from RMBG.models.fetch import default_teacher, teacher_home
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
    parser.add_argument("--teacher", action="append", default=None, metavar="FILE",
                        help="teacher model (.onnx/.keras/.tflite); repeat to average several; "
                        "default: $U2NET_HOME/u2net.onnx (~/.u2net) when present")
    parser.add_argument("--tta", choices=TTA_CHOICES, default="none",
                        help="also average each teacher's map of the mirrored photo (flip)")
    parser.add_argument("--category", help="category of every row (default: the file name's prefix)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    teacher = default_teacher()
    teacher_paths = args.teacher or ([teacher] if teacher else [])
    if not teacher_paths:
        print(f"label: no teacher: pass --teacher FILE, or run `python -m RMBG fetch-teacher` to put rembg's "
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
