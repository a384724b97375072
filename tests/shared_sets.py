"""Helpers over the shared photo/mask sets (importable by name from any test module).

Kept out of ``conftest.py``: ``notebooks/conftest.py`` also exists, so ``from
conftest import ...`` would depend on which of the two pytest imported first.
"""

from __future__ import annotations

from pathlib import Path


def pairs(folder: Path, limit: int | None = None) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of a shared set, in sorted order."""
    images = sorted((folder / "images").glob("*.jpg"))
    found = [(img, folder / "masks" / f"{img.stem}.png") for img in images]
    found = [(i, m) for i, m in found if m.is_file()]
    return found[:limit] if limit else found
