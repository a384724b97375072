"""What the user named on a command line: files, folders, globs and ``@FILE`` lists, expanded to photos."""

from __future__ import annotations

import glob
from pathlib import Path

from RMBG.constants import IMAGE_EXTENSIONS
from RMBG.images.io import (
    list_images,
    list_unsupported,
    skip_reason,
)


def _glob_base(pattern: str) -> Path:
    """The folder part of a glob before its first wildcard."""
    parts = Path(pattern).parts
    base = []
    for part in parts:
        if glob.has_magic(part):
            break
        base.append(part)
    return Path(*base) if base else Path(".")


def expand_inputs(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """``(file, relative output path)`` for every input, and inputs that matched nothing.

    Files keep their name; folders are searched recursively for images and
    keep paths relative to the folder; globs keep paths relative to the
    folder before their first wildcard. A file named twice is taken once.
    """
    found: list[tuple[Path, Path]] = []
    missing: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def add(path: Path, rel: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append((path, rel))

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            images = list_images(path, recursive=True)
            if not images:
                missing.append((path, "folder holds no images (" + ", ".join(IMAGE_EXTENSIONS) + ")"))
            for image in images:
                add(image, image.relative_to(path))
        elif path.is_file():
            add(path, Path(path.name))
        elif glob.has_magic(item):
            base = _glob_base(item)
            matches = sorted(
                Path(m) for m in glob.glob(item, recursive=True)
                if Path(m).is_file() and Path(m).suffix.lower() in IMAGE_EXTENSIONS
            )
            if not matches:
                missing.append((path, "pattern matched no images"))
            for match in matches:
                add(match, match.relative_to(base))
        else:
            missing.append((path, "file not found"))
    return found, missing


def unsupported_inputs(inputs: list[str]) -> list[tuple[Path, str]]:
    """``(file, reason)`` for the files that folders and globs among ``inputs`` hold but that are
    not images we read (:func:`RMBG.images.io.skip_reason`); hidden files are not listed."""
    found: list[tuple[Path, str]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += list_unsupported(path, recursive=True)
        elif not path.exists() and glob.has_magic(item):
            for match in sorted(Path(m) for m in glob.glob(item, recursive=True)):
                reason = skip_reason(match) if match.is_file() and not match.name.startswith(".") else None
                if reason is not None:
                    found.append((match, reason))
    return found
