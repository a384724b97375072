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


# ---------------------------------------------------------------------------
# Files that cannot be used (the CLI, the server and Beam all refuse them by name)
# ---------------------------------------------------------------------------
def corrupt_png(path: Path, portrait) -> None:
    """``portrait`` (a PIL image) saved as PNG with 300 bytes of its image data scrambled."""
    portrait.save(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 100
    for i in range(start, start + 300):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def truncated_jpeg(path: Path, portrait) -> None:
    """``portrait`` saved as JPEG and cut in half."""
    portrait.save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


#: kind -> (file name, maker(path, portrait), the reason the CLI gives)
BAD_FILES = {
    "corrupt": ("photo.png", corrupt_png, "corrupt or unreadable image"),
    "truncated": ("photo.jpg", truncated_jpeg, "truncated file"),
    "empty": ("photo.jpg", lambda p, _: p.write_bytes(b""), "empty file (0 bytes)"),
    "not an image": ("notes.png", lambda p, _: p.write_text("shopping list: milk, eggs\n"), "not an image"),
}
