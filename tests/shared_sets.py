"""Helpers shared by test modules (and scripts/bench_mixed_load.py): the shared photo/mask sets, linked datasets,
tree hashes, bad and odd uploads.

Kept out of ``conftest.py``: ``notebooks/conftest.py`` also exists, so ``from
conftest import ...`` would depend on which of the two pytest imported first.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


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


# ---------------------------------------------------------------------------
# Uploads for the server (tests/test_server.py and scripts/bench_mixed_load.py)
# ---------------------------------------------------------------------------
def jpeg_bytes(picture: Image.Image, **save) -> bytes:
    """``picture`` encoded in memory: JPEG at quality 95 unless ``save`` says otherwise (``format="PNG"``)."""
    buffer = io.BytesIO()
    picture.save(buffer, format=save.pop("format", "JPEG"), **({"quality": 95} | save))
    return buffer.getvalue()


def png_bomb(side: int = 30000, rows: int = 1000) -> bytes:
    """A valid 8-bit grey ``side x side`` PNG of zeros (900 MB decoded), under 1 MB: its deflate
    stream is one compressed block of ``rows`` rows repeated (full flushes keep blocks independent)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    block = bytes((side + 1) * rows)  # each row: filter byte 0, then zeros
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    check = 1
    for _ in range(side // rows):
        check = zlib.adler32(block, check)
    stream = b"\x78\xda" + piece * (side // rows) + deflate.flush() + struct.pack(">I", check)
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


def odd_uploads(rgb: Image.Image) -> dict[str, bytes]:
    """Unusual but valid encodings of the RGB photo ``rgb``, by kind; each must come back as ``rgb`` upright:
    CMYK JPEG, 16-bit grey PNG, RGBA PNG with its left half transparent, a JPEG stored turned with EXIF
    orientation 6."""
    deep = Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 257)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.where(np.arange(rgb.width) < rgb.width // 2, 0, 255).astype(np.uint8)
                                  [None, :].repeat(rgb.height, 0)))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned; orientation 6 turns it back
    return {
        "CMYK JPEG": jpeg_bytes(rgb.convert("CMYK")),
        "16-bit PNG": jpeg_bytes(deep, format="PNG"),
        "RGBA PNG": jpeg_bytes(rgba, format="PNG"),
        "EXIF-rotated JPEG": jpeg_bytes(rgb.transpose(Image.Transpose.ROTATE_90), exif=exif),
    }
