"""Helpers shared by test modules: the shared photo/mask sets, linked datasets, tree hashes.

Kept out of ``conftest.py``: ``notebooks/conftest.py`` also exists, so ``from
conftest import ...`` would depend on which of the two pytest imported first.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def pairs(folder: Path, limit: int | None = None) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of a shared set, in sorted order."""
    images = sorted((folder / "images").glob("*.jpg"))
    found = [(img, folder / "masks" / f"{img.stem}.png") for img in images]
    found = [(i, m) for i, m in found if m.is_file()]
    return found[:limit] if limit else found


def link_pairs(pairs, folder: Path) -> Path:
    """A dataset folder of symlinks to ``(image, mask)`` pairs (nothing is copied)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    for image, mask in pairs:
        (folder / "images" / image.name).symlink_to(image)
        (folder / "masks" / mask.name).symlink_to(mask)
    return folder


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, by relative path (to prove nothing changed)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
