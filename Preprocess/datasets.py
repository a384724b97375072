"""One adapter per public dataset layout, each yielding ``Sample(image, mask, category)``.

| kind | layout under SRC | category |
|---|---|---|
| ``p3m10k`` | ``train/blurred_image`` + ``train/mask``; ``validation/P3M-500-NP/original_image`` + ``mask``; ``validation/P3M-500-P/blurred_image`` + ``mask`` | ``person`` |
| ``cod10k`` | ``Train/Image`` + ``Train/GT_Object``, the same under ``Test/`` (or SRC itself holding ``Image`` + ``GT_Object``) | the super-class in the file name, lower case |
| ``people`` | ``images/`` + ``masks/`` (Kaggle People Segmentation) | ``person`` |
| ``duts`` | every ``X-Image`` folder with its ``X-Mask`` sibling (``DUTS-TR-Image`` + ``DUTS-TR-Mask``, ``DUTS-TE-...``), in SRC or one level down | ``object`` |
| ``dis5k`` | every ``im/`` folder with its ``gt/`` sibling (``DIS-TR``, ``DIS-VD``, ``DIS-TE1..4``), in SRC or one level down | the group in the file name, lower case |
| ``folder`` | any ``images/`` + ``masks/`` | the file name's prefix before ``_``, else SRC's folder name |

Images and masks are matched by file stem. For ``p3m10k`` and ``people`` the
expected folders may also sit one level below SRC (an archive's top folder).

COD-10K names such as ``COD10K-CAM-1-Aquatic-1-BatFish-2.jpg`` carry a
super-class (``Aquatic``) and a sub-class (``BatFish``). The adapter uses the
super-class (``aquatic``, ``terrestrial``, ``flying``, ``amphibian``,
``other``...): a handful of groups large enough for a stratified validation
split and a readable bar chart, where the 69 sub-classes would leave many
groups of a few files. DIS5K names (``1#Accessories#1#Bag#123.jpg``) give
their group (``accessories``) in the same way. Names that do not follow the
pattern get ``object``. ``category=`` overrides every parsed category.

Files that cannot be paired (an image without a mask, a mask without an
image, two files sharing a stem) are not yielded; pass a ``problems`` list to
receive them as ``(path, reason)``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

from Preprocess.util import check_category, pair_by_stem
from RMBG.images.io import list_images

#: Category of files whose name does not say one.
DEFAULT_CATEGORY = "object"


class Sample(NamedTuple):
    """One image and its mask, with the category its prepared name will start with."""

    image: Path
    mask: Path
    category: str


Problems = list[tuple[Path, str]]


def clean_category(text: str) -> str:
    """``text`` made usable as a category: lower case, ``[a-z0-9-]`` only (else ``object``)."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    return cleaned or DEFAULT_CATEGORY


def cod10k_category(name: str | Path) -> str:
    """The super-class of a COD-10K file name, e.g. ``COD10K-CAM-1-Aquatic-1-BatFish-2.jpg`` -> ``aquatic``."""
    parts = Path(name).stem.split("-")
    if len(parts) >= 6 and parts[0].upper().startswith("COD10K") and parts[2].isdigit():
        return clean_category(parts[3])
    return DEFAULT_CATEGORY


def dis5k_category(name: str | Path) -> str:
    """The group of a DIS5K file name, e.g. ``1#Accessories#1#Bag#123.jpg`` -> ``accessories``."""
    parts = Path(name).stem.split("#")
    if len(parts) >= 5 and parts[0].isdigit():
        return clean_category(parts[1])
    return DEFAULT_CATEGORY


def _pairs(
    image_dir: Path,
    mask_dir: Path,
    category_for: Callable[[Path], str],
    problems: Problems | None,
) -> Iterator[Sample]:
    """Samples of one image folder and its mask folder, matched by stem, in sorted order."""
    pairs, lonely_images, lonely_masks, duplicates = pair_by_stem(list_images(image_dir), list_images(mask_dir))
    if problems is not None:
        problems.extend((p, f"image without a mask in {mask_dir}") for p in lonely_images)
        problems.extend((p, f"mask without an image in {image_dir}") for p in lonely_masks)
        problems.extend((p, "shares its stem with another file of its folder (match would be a guess)") for p in duplicates)
    for image, mask in pairs:
        yield Sample(image, mask, category_for(image))


def _require_dir(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: source folder not found")
    return root


def _find_layout(root: Path, layouts: list[tuple[str, str]], kind: str) -> list[tuple[Path, Path]]:
    """The ``(image_dir, mask_dir)`` pairs of ``layouts`` present in ``root`` or one folder below."""
    for base in [root] + sorted(p for p in root.iterdir() if p.is_dir()):
        found = [(base / i, base / m) for i, m in layouts if (base / i).is_dir() and (base / m).is_dir()]
        if found:
            return found
    expected = ", ".join(f"{i} + {m}" for i, m in layouts)
    raise FileNotFoundError(f"{root}: no {kind} layout found (expected {expected})")


def _find_siblings(root: Path, is_image_dir: Callable[[Path], Path | None], kind: str, expected: str) -> list[tuple[Path, Path]]:
    """Image folders (and their mask sibling) anywhere in ``root`` down to two levels."""
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    candidates += sorted(q for p in candidates[1:] for q in p.iterdir() if q.is_dir())
    found = []
    for folder in candidates:
        mask_dir = is_image_dir(folder)
        if mask_dir is not None and mask_dir.is_dir():
            found.append((folder, mask_dir))
    if not found:
        raise FileNotFoundError(f"{root}: no {kind} layout found (expected {expected})")
    return sorted(found)


def _with_category(parsed: Callable[[Path], str], category: str | None) -> Callable[[Path], str]:
    if category is None:
        return parsed
    fixed = check_category(category)
    return lambda _path: fixed


def p3m10k(root: str | Path, category: str | None = None, problems: Problems | None = None) -> Iterator[Sample]:
    """P3M-10K portraits: the blurred training faces and both validation sets."""
    layouts = [
        ("train/blurred_image", "train/mask"),
        ("validation/P3M-500-NP/original_image", "validation/P3M-500-NP/mask"),
        ("validation/P3M-500-P/blurred_image", "validation/P3M-500-P/mask"),
    ]
    category_for = _with_category(lambda _p: "person", category)
    for image_dir, mask_dir in _find_layout(_require_dir(root), layouts, "P3M-10K"):
        yield from _pairs(image_dir, mask_dir, category_for, problems)


def cod10k(root: str | Path, category: str | None = None, problems: Problems | None = None) -> Iterator[Sample]:
    """COD-10K-v3 camouflaged objects: ``Train`` then ``Test``, object-level masks."""
    layouts = [("Train/Image", "Train/GT_Object"), ("Test/Image", "Test/GT_Object"), ("Image", "GT_Object")]
    category_for = _with_category(cod10k_category, category)
    for image_dir, mask_dir in _find_layout(_require_dir(root), layouts, "COD-10K"):
        yield from _pairs(image_dir, mask_dir, category_for, problems)


def people(root: str | Path, category: str | None = None, problems: Problems | None = None) -> Iterator[Sample]:
    """Kaggle People Segmentation (and the shared ``people/`` set): ``images/`` + ``masks/``."""
    category_for = _with_category(lambda _p: "person", category)
    for image_dir, mask_dir in _find_layout(_require_dir(root), [("images", "masks")], "people"):
        yield from _pairs(image_dir, mask_dir, category_for, problems)


def duts(root: str | Path, category: str | None = None, problems: Problems | None = None) -> Iterator[Sample]:
    """DUTS salient objects: every ``X-Image`` folder with its ``X-Mask`` sibling."""

    def mask_sibling(folder: Path) -> Path | None:
        if folder.name.endswith("-Image"):
            return folder.with_name(folder.name[: -len("-Image")] + "-Mask")
        return None

    category_for = _with_category(lambda _p: DEFAULT_CATEGORY, category)
    found = _find_siblings(_require_dir(root), mask_sibling, "DUTS", "DUTS-TR-Image + DUTS-TR-Mask")
    for image_dir, mask_dir in found:
        yield from _pairs(image_dir, mask_dir, category_for, problems)


def dis5k(root: str | Path, category: str | None = None, problems: Problems | None = None) -> Iterator[Sample]:
    """DIS5K dichotomous segmentation: every ``im/`` folder with its ``gt/`` sibling."""

    def mask_sibling(folder: Path) -> Path | None:
        return folder.with_name("gt") if folder.name == "im" else None

    category_for = _with_category(dis5k_category, category)
    found = _find_siblings(_require_dir(root), mask_sibling, "DIS5K", "DIS-TR/im + DIS-TR/gt")
    for image_dir, mask_dir in found:
        yield from _pairs(image_dir, mask_dir, category_for, problems)


def folder(root: str | Path, category: str | None = None, problems: Problems | None = None) -> Iterator[Sample]:
    """Any ``images/`` + ``masks/`` folder; the category is each name's prefix before ``_``."""
    root = _require_dir(root)
    image_dir, mask_dir = root / "images", root / "masks"
    if not (image_dir.is_dir() and mask_dir.is_dir()):
        raise FileNotFoundError(f"{root}: expected the folders images/ and masks/")
    fallback = clean_category(root.resolve().name)

    def prefix_or_folder(path: Path) -> str:
        stem = path.stem
        return clean_category(stem.split("_", 1)[0]) if "_" in stem else fallback

    yield from _pairs(image_dir, mask_dir, _with_category(prefix_or_folder, category), problems)


#: kind -> adapter, as named on the command line.
ADAPTERS: dict[str, Callable[..., Iterator[Sample]]] = {
    "p3m10k": p3m10k,
    "cod10k": cod10k,
    "people": people,
    "duts": duts,
    "dis5k": dis5k,
    "folder": folder,
}


def iter_samples(
    kind: str, root: str | Path, category: str | None = None, problems: Problems | None = None
) -> Iterator[Sample]:
    """The samples of ``root`` read with the adapter named ``kind`` (see :data:`ADAPTERS`)."""
    if kind not in ADAPTERS:
        raise ValueError(f"unknown source kind {kind!r}: choose one of {', '.join(ADAPTERS)}")
    return ADAPTERS[kind](root, category=category, problems=problems)
