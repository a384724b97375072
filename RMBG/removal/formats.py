"""Which file format an output is written in (``remove --format png|webp|jpg``) and how.

Without ``--format``, ``rgba`` and ``mask`` outputs are PNG and the flat modes
keep the input's format (PNG when we do not write it). With ``--format``:

* ``png``: lossless, any mode;
* ``webp``: lossless for ``rgba`` and ``mask`` (alpha, mask values and the
  colour under transparent pixels are kept exactly: the file decodes to the
  PNG's pixels), quality ``LOSSY_QUALITY`` for the flat modes;
* ``jpg``: quality ``LOSSY_QUALITY``, only for the modes with a flat
  background (``color``, ``image``, ``blur``, ``side-by-side``). It is refused
  for ``rgba`` (JPEG has no transparency) and for ``mask`` (JPEG would change
  the mask's values at every edge: a mask is data, not a photo).

The one table of output formats: ``remove`` writes files with it and the server
answers with it (:func:`encode`), so both write the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from RMBG.removal.compose import PNG_MODES


@dataclass(frozen=True)
class OutputFormat:
    """One output format: the suffix it writes, Pillow's name for it and its HTTP content type."""

    suffix: str
    pillow: str
    content_type: str


#: ``--format`` names (and the server's ``format`` field) and what each writes.
OUTPUT_FORMATS = {
    "png": OutputFormat(".png", "PNG", "image/png"),
    "webp": OutputFormat(".webp", "WEBP", "image/webp"),
    "jpg": OutputFormat(".jpg", "JPEG", "image/jpeg"),
}
#: Other spellings accepted for a format.
FORMAT_ALIASES = {"jpeg": "jpg"}
#: Quality of the lossy outputs: JPEG, and WebP of the flat modes.
LOSSY_QUALITY = 95
#: zlib level of PNG outputs: 1 writes a 4000x3000 cut-out in 1.5 s against 7.4 s at Pillow's default 6,
#: for files about 4% larger (measured for issue 16); PNG stays lossless at every level.
PNG_COMPRESS_LEVEL = 1
#: Suffixes of the input formats the flat modes keep when no ``--format`` is given.
KEEP_FORMAT_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def check_format(fmt: str | None, mode: str) -> str | None:
    """``fmt`` as one of :data:`OUTPUT_FORMATS` (or None: the default choice) when ``mode`` can be
    written in it, else a ValueError saying why."""
    if fmt is None:
        return None
    name = FORMAT_ALIASES.get(str(fmt).lower().lstrip("."), str(fmt).lower().lstrip("."))
    if name not in OUTPUT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    if name == "jpg" and mode == "rgba":
        raise ValueError("format 'jpg' has no transparency: mode 'rgba' needs png or webp "
                         "(or choose a mode with a background: color, image, blur)")
    if name == "jpg" and mode == "mask":
        raise ValueError("format 'jpg' would change the mask's values (JPEG is lossy): mode 'mask' needs png or webp")
    return name


def output_suffix(source: Path, mode: str, fmt: str | None = None) -> str:
    """The suffix of ``source``'s output: ``fmt``'s when given; else ``.png`` for rgba/mask
    (and for input formats we do not write), the input's own suffix for the flat modes."""
    if fmt is not None:
        return OUTPUT_FORMATS[check_format(fmt, mode)].suffix
    suffix = source.suffix.lower()
    return ".png" if mode in PNG_MODES or suffix not in KEEP_FORMAT_SUFFIXES else source.suffix


def save_options(path: Path, picture_mode: str) -> dict:
    """Pillow's save options for a picture of ``picture_mode`` (``RGBA``, ``L``, ``RGB``) written to
    ``path``: lossless WebP for cut-outs and masks, ``LOSSY_QUALITY`` for JPEG and flat WebP, fast PNG."""
    suffix = Path(path).suffix.lower()
    if suffix == ".jpeg":
        suffix = ".jpg"
    if suffix == ".jpg":
        return {"quality": LOSSY_QUALITY}
    if suffix == ".webp":
        # exact: keep the colour under fully transparent pixels too (WebP drops it by default)
        return {"lossless": True, "exact": True} if picture_mode in {"RGBA", "LA", "L"} else {"quality": LOSSY_QUALITY}
    if suffix == ".png":
        return {"compress_level": PNG_COMPRESS_LEVEL}
    return {}


def encode(picture: Image.Image, fmt: str) -> bytes:
    """``picture`` as the bytes of the output format ``fmt`` (a key of :data:`OUTPUT_FORMATS`), with
    the options :func:`save_options` gives a file of that format."""
    spec = OUTPUT_FORMATS[fmt]
    if spec.pillow == "JPEG" and picture.mode not in {"RGB", "L"}:
        picture = picture.convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format=spec.pillow, **save_options(Path("picture" + spec.suffix), picture.mode))
    return buffer.getvalue()
