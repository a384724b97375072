"""Reading images and masks safely, and writing outputs atomically.

Every stage reads pictures through here, so that the odd files of real life
(EXIF rotation, CMYK, 16-bit, palette, RGBA, greyscale, truncated, empty, not
an image at all) behave the same everywhere and fail with a message that names
the file and the reason.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from RMBG.constants import ASPECT_TOLERANCE, IMAGE_EXTENSIONS, MAX_IMAGE_PIXELS

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


class ImageReadError(ValueError):
    """An input picture could not be used; ``str()`` names the file and why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _open_pil(path: str | os.PathLike, data: bytes | None = None) -> Image.Image:
    """Open and fully decode ``path`` (or the bytes ``data``, named ``path`` in errors),
    turning every failure into ImageReadError."""
    if data is None:
        path = Path(path)
        if not path.exists():
            raise ImageReadError(path, "file not found")
        if path.is_dir():
            raise ImageReadError(path, "is a folder, not an image")
        size = path.stat().st_size
    else:
        size = len(data)
    if size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path if data is None else io.BytesIO(data))
            img.load()
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image, or a format Pillow cannot read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageReadError(
            path, f"image too large (over {MAX_IMAGE_PIXELS:,} pixels)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        text = str(exc)
        if "truncated" in text.lower():
            if _has_end_marker(*(_ends_of_bytes(data) if data is not None else _ends_of_file(Path(path)))):
                raise ImageReadError(path, "corrupt image data (the file is complete but its data does not decode)") from None
            raise ImageReadError(path, "truncated file (the image data ends early)") from None
        raise ImageReadError(path, f"corrupt or unreadable image ({text})") from None
    if img.width < 1 or img.height < 1:
        raise ImageReadError(path, f"image has no pixels ({img.width}x{img.height})")
    return img


#: Bytes that close a complete file, by format: a "truncated" error on a file
#: that ends with them means damaged data rather than a cut-off file.
_END_MARKERS = {b"\xff\xd8": (b"\xff\xd9",), b"\x89PNG": (b"IEND\xaeB`\x82",)}


def _ends_of_file(path: Path) -> tuple[bytes, bytes]:
    """The first 4 and the last 16 bytes of ``path`` (empty when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            handle.seek(max(0, path.stat().st_size - 16))
            return head, handle.read()
    except OSError:
        return b"", b""


def _ends_of_bytes(data: bytes) -> tuple[bytes, bytes]:
    return bytes(data[:4]), bytes(data[-16:])


def _has_end_marker(head: bytes, tail: bytes) -> bool:
    """True when a file starting with ``head`` ends with ``tail`` the way a complete JPEG or PNG ends."""
    tail = tail.rstrip(b"\x00")
    for magic, ends in _END_MARKERS.items():
        if head.startswith(magic):
            return any(tail.endswith(end) for end in ends)
    return False


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale a 16-bit, 32-bit integer or float array to 0-255 uint8."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        peak = float(np.nanmax(array)) if array.size else 0.0
        scale = 255.0 if peak <= 1.0 else 1.0
        return np.clip(np.rint(np.nan_to_num(array) * scale), 0, 255).astype(np.uint8)
    peak = int(array.max()) if array.size else 0
    if peak <= 255:
        return np.clip(array, 0, 255).astype(np.uint8)
    # 16-bit data (PNG/TIFF "I;16" or "I"): map 0-65535 onto 0-255.
    return np.clip(np.rint(array.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


def pil_to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL image as 8-bit RGB (colour kept, alpha ignored), upright per EXIF."""
    if img.getexif().get(0x0112, 1) in {2, 3, 4, 5, 6, 7, 8}:
        # Only when it turns the picture: exif_transpose copies upright images
        # too, which for a 100-megapixel photo is 400 MB for nothing.
        img = ImageOps.exif_transpose(img)
    if img.mode == "RGB":
        return img
    if img.mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        grey = _to_uint8(np.asarray(img))
        return Image.fromarray(grey, mode="L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    return img.convert("RGB")


def read_image(path: str | os.PathLike, data: bytes | None = None) -> np.ndarray:
    """Read ``path`` as an upright ``HxWx3`` uint8 RGB array.

    Greyscale, palette, CMYK and 16-bit files are converted; RGBA keeps its
    colour and drops its alpha; EXIF orientation is applied. Raises
    :class:`ImageReadError` naming the file when it cannot be used. With
    ``data``, those bytes are decoded in memory (an upload, an object-store
    read) with the same checks, and ``path`` only names them in errors.
    """
    img = _open_pil(path, data)
    try:
        rgb = pil_to_rgb(img)
    except (OSError, ValueError) as exc:
        raise ImageReadError(path, f"cannot convert {img.mode} image to RGB ({exc})") from None
    return np.asarray(rgb, dtype=np.uint8)


def mask_from_pil(img: Image.Image) -> np.ndarray:
    """A mask picture as an ``HxW`` float32 array in [0, 1].

    8-bit and 16-bit greyscale are scaled by their bit depth; RGB uses its
    luminance; RGBA and LA use their alpha when it is not uniform (a cut-out),
    else their colour.
    """
    img = ImageOps.exif_transpose(img)
    if img.mode in {"RGBA", "LA", "PA"} or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        alpha = np.asarray(rgba)[..., 3]
        if alpha.min() != alpha.max():
            return alpha.astype(np.float32) / 255.0
        img = rgba.convert("RGB")
    if img.mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        array = np.asarray(img)
        if np.issubdtype(array.dtype, np.floating):
            peak = float(array.max()) if array.size else 0.0
            array = array if peak <= 1.0 else array / 255.0
            return np.clip(array, 0.0, 1.0).astype(np.float32)
        depth = 65535.0 if int(array.max(initial=0)) > 255 or img.mode.startswith("I;16") else 255.0
        return (array.astype(np.float32) / depth).clip(0.0, 1.0)
    if img.mode == "1":
        return np.asarray(img, dtype=np.float32)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a ground-truth or predicted mask as ``HxW`` float32 in [0, 1]."""
    img = _open_pil(path)
    try:
        return mask_from_pil(img)
    except (OSError, ValueError) as exc:
        raise ImageReadError(path, f"cannot read {img.mode} mask ({exc})") from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` as displayed (EXIF orientation applied), header only."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = img.getexif().get(0x0112, 1)
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(path, f"not a readable image ({exc})") from None
    return (height, width) if orientation in {5, 6, 7, 8} else (width, height)


def aspect_difference(size_a: tuple[int, int], size_b: tuple[int, int]) -> float:
    """Relative difference of the width/height ratios of two ``(width, height)`` sizes."""
    ratio_a = size_a[0] / size_a[1]
    ratio_b = size_b[0] / size_b[1]
    return abs(ratio_a / ratio_b - 1.0)


def same_aspect(size_a: tuple[int, int], size_b: tuple[int, int], tolerance: float = ASPECT_TOLERANCE) -> bool:
    """True when two ``(width, height)`` sizes have the same aspect ratio within ``tolerance``
    (1 %: a photo and its mask saved at another size still pair up)."""
    return aspect_difference(size_a, size_b) <= tolerance


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` by extension, sorted by name (stable order)."""
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    return sorted(
        p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def skip_reason(path: str | os.PathLike) -> str | None:
    """Why a file found in a folder is not read as an image (None when it is): its
    extension is not one of ``IMAGE_EXTENSIONS``, or it is a GIF (animated or not)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return None
    if suffix == ".gif":
        try:
            with Image.open(path) as img:
                animated = bool(getattr(img, "is_animated", False))
        except (OSError, SyntaxError, ValueError):
            animated = False
        return "animated GIF: not supported" if animated else "GIF: not supported (save it as PNG)"
    return f"not an image extension we read: {suffix or '(no extension)'}"


def list_unsupported(folder: str | os.PathLike, recursive: bool = False) -> list[tuple[Path, str]]:
    """``(file, reason)`` for the files of ``folder`` that :func:`list_images` leaves out, sorted
    by name; hidden files and folders (a name starting with ``.``) are not listed."""
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    found = []
    for path in sorted(folder.glob(pattern)):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        reason = skip_reason(path)
        if reason is not None:
            found.append((path, reason))
    return found


def category_of(name: str | os.PathLike) -> str:
    """The category of a prepared file: its name's prefix before the first ``_``."""
    stem = Path(name).stem
    return stem.split("_", 1)[0] if "_" in stem else "uncategorised"


def write_atomic(path: str | os.PathLike, write, overwrite: bool = False) -> Path:
    """Create ``path`` through ``write(tmp_path)`` then an atomic rename.

    An interrupted run leaves no half-written file, and an existing file is
    never replaced unless ``overwrite`` is true.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (refusing to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp_name))
        _make_readable(tmp_name)
        if overwrite:
            os.replace(tmp_name, path)
        else:
            rename_no_clobber(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _make_readable(path: str | os.PathLike) -> None:
    """Give a temporary file the usual permissions (``mkstemp`` makes it owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def rename_no_clobber(tmp_name: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move ``tmp_name`` to ``path``, never replacing an existing ``path`` (FileExistsError)."""
    path = Path(path)
    try:
        os.link(tmp_name, path)  # fails if path exists, atomically
    except FileExistsError:
        raise FileExistsError(f"{path}: already exists (refusing to overwrite)") from None
    except OSError:  # file systems without hard links: check, then rename
        if path.exists():
            raise FileExistsError(f"{path}: already exists (refusing to overwrite)") from None
        os.replace(tmp_name, path)
        return
    os.unlink(tmp_name)


def save_image(
    img: Image.Image | np.ndarray,
    path: str | os.PathLike,
    overwrite: bool = False,
    **save_kwargs,
) -> Path:
    """Save a PIL image or uint8 array to ``path`` atomically (format from the suffix)."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image extension {path.suffix!r}")
    if fmt == "JPEG" and img.mode not in {"RGB", "L"}:
        img = img.convert("RGB")
    return write_atomic(path, lambda tmp: img.save(tmp, format=fmt, **save_kwargs), overwrite)


def iter_readable(paths: Iterable[str | os.PathLike], reader=read_image):
    """Yield ``(path, array, None)`` or ``(path, None, error)`` for each path."""
    for path in paths:
        try:
            yield Path(path), reader(path), None
        except ImageReadError as exc:
            yield Path(path), None, exc


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode ``path`` as a PIL image, as stored (mode kept, EXIF not applied).

    For code that needs the file's own mode, bit depth or EXIF (integrity
    checks); raises :class:`ImageReadError` naming the file when it is empty,
    truncated, corrupt or not an image.
    """
    return _open_pil(path)
