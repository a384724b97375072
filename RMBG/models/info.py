"""What a model file records about itself, the preprocessing it implies, and the one
reader/writer of that record in every file type.

A saved model carries a :class:`ModelInfo` (architecture, build arguments,
input size, normalisation, which output is the final mask, how to scale that
output, project version), so that loading it needs nothing else. The
normalisation here is the single definition used by training, inference and
export, and :func:`select_output` the single definition of "which output is
the mask".

Where the record lives:

- ``.keras`` archives: an extra entry :data:`INFO_ENTRY` (:func:`read_model_info`,
  :func:`write_keras_with_info`), read without importing Keras;
- exports (``.tflite``, ``.onnx``): a sidecar ``FILE.json`` beside the file
  (:func:`sidecar_path`, :func:`read_sidecar`, :func:`write_sidecar`);
- ``.onnx`` exports also in the model's metadata under :data:`INFO_KEY`
  (:func:`embed_onnx_info`, :func:`onnx_embedded_info`).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from RMBG.constants import IMAGENET_MEAN, IMAGENET_STD, VERSION

#: Name of the JSON entry stored inside ``.keras`` archives.
INFO_ENTRY = "rmbg_info.json"
#: Key of the ModelInfo in ONNX metadata, and the suffix of the sidecar file of exports.
INFO_KEY = "rmbg_info"
SIDECAR_SUFFIX = ".json"
#: Resize filters a model may ask for (PIL's names, lower case).
RESAMPLE_FILTERS = ("lanczos", "bilinear")


class ModelFileError(ValueError):
    """A file is not a usable RMBG model; ``str()`` names the file and why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class ModelInfo:
    """Self-description of a segmentation model.

    ``mean``/``std`` of ``None`` mean plain 0-1 scaling. ``output_norm`` is
    ``"none"`` (the output is already a probability) or ``"minmax"`` (stretch
    each map to 0-1, as rembg does for U-2-Net). ``input_scale`` is ``"255"``
    (pixels / 255) or ``"max"`` (pixels / the image's brightest value, as rembg
    feeds U-2-Net). ``resample`` is the filter of the resize to ``input_size``
    (:data:`RESAMPLE_FILTERS`: ``"lanczos"`` as rembg, ``"bilinear"`` as imgly
    feeds IS-Net).
    """

    arch: str
    input_size: int
    mean: tuple[float, float, float] | None = IMAGENET_MEAN
    std: tuple[float, float, float] | None = IMAGENET_STD
    output_index: int = 0
    output_norm: str = "none"
    input_scale: str = "255"
    resample: str = "lanczos"
    config: dict[str, Any] = field(default_factory=dict)
    version: str = VERSION
    notes: str = ""

    def __post_init__(self):
        if self.output_norm not in {"none", "minmax"}:
            raise ValueError(f"output_norm must be 'none' or 'minmax', not {self.output_norm!r}")
        if self.input_scale not in {"255", "max"}:
            raise ValueError(f"input_scale must be '255' or 'max', not {self.input_scale!r}")
        if self.resample not in RESAMPLE_FILTERS:
            raise ValueError(f"resample must be one of {', '.join(RESAMPLE_FILTERS)}, not {self.resample!r}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std must both be given or both be None")
        if self.mean is not None:
            self.mean = tuple(float(v) for v in self.mean)
            self.std = tuple(float(v) for v in self.std)

    # -- preprocessing -------------------------------------------------
    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 (or 0-255 float) ``...xHxWx3`` RGB to the model's float32 input."""
        x = np.asarray(images, dtype=np.float32)
        if self.input_scale == "max":
            peak = x.max(axis=(-3, -2, -1), keepdims=True)
            x = x / np.maximum(peak, 1e-6)
        else:
            x = x / 255.0
        if self.mean is not None:
            x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return x

    def finish(self, maps: np.ndarray) -> np.ndarray:
        """Raw output maps ``NxHxW`` to masks in [0, 1] per ``output_norm``."""
        maps = np.asarray(maps, dtype=np.float32)
        if self.output_norm == "minmax":
            lo = maps.min(axis=(-2, -1), keepdims=True)
            hi = maps.max(axis=(-2, -1), keepdims=True)
            maps = (maps - lo) / np.maximum(hi - lo, 1e-8)
        return np.clip(maps, 0.0, 1.0)

    # -- serialisation -------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelInfo":
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# ---------------------------------------------------------------------------
# Which output is the mask
# ---------------------------------------------------------------------------
def select_output(outputs, info: ModelInfo):
    """The final mask map ``N x S x S`` from a model's raw outputs.

    U-2-Net models return a list ``[fused, side1..side6]`` and ``output_index``
    picks from it; a model with one multi-channel map (the ResNet50 U-Net) uses
    ``output_index`` as the channel. Works on numpy arrays and backend tensors.
    """
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        chosen = outputs[info.output_index] if len(outputs) > 1 else outputs[0]
        return chosen[..., 0] if len(chosen.shape) == 4 else chosen
    if len(outputs.shape) == 4:
        channel = info.output_index if outputs.shape[-1] > 1 else 0
        return outputs[..., channel]
    return outputs


# ---------------------------------------------------------------------------
# .keras archives
# ---------------------------------------------------------------------------
def read_model_info(path: str | os.PathLike) -> ModelInfo:
    """The :class:`ModelInfo` stored in a ``.keras`` model file, without importing Keras."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "model file not found")
    try:
        with zipfile.ZipFile(path) as archive:
            if INFO_ENTRY not in archive.namelist():
                raise ModelFileError(
                    path, f"not an RMBG model (no {INFO_ENTRY} inside; save it with RMBG.models.build.save_model)"
                )
            text = archive.read(INFO_ENTRY).decode("utf-8")
    except zipfile.BadZipFile:
        raise ModelFileError(path, "not a .keras model file (not a zip archive)") from None
    try:
        return ModelInfo.from_json(text)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(path, f"{INFO_ENTRY} is invalid ({exc})") from None


def write_keras_with_info(source: str | os.PathLike, target: str | os.PathLike, info: ModelInfo) -> None:
    """Copy the Keras archive ``source`` into ``target`` deflated (Keras stores it
    uncompressed), with ``info`` as its :data:`INFO_ENTRY`."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            if item.filename != INFO_ENTRY:
                with src.open(item) as reader, out.open(item.filename, "w") as writer:
                    while block := reader.read(1 << 20):
                        writer.write(block)
        out.writestr(INFO_ENTRY, info.to_json())


# ---------------------------------------------------------------------------
# Exports: the sidecar and ONNX metadata
# ---------------------------------------------------------------------------
def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the ModelInfo of an exported file lives: ``FILE.json`` beside it."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: str | os.PathLike) -> ModelInfo | None:
    """The ModelInfo beside an exported file, or ``None`` when there is none."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        return ModelInfo.from_json(side.read_text(encoding="utf-8"))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{side}: invalid model info ({exc})") from None


def require_sidecar(path: str | os.PathLike) -> ModelInfo:
    """:func:`read_sidecar`, or a ValueError saying the sidecar is missing and how to get one."""
    info = read_sidecar(path)
    if info is None:
        raise ValueError(
            f"{path}: no model info beside it ({sidecar_path(path).name} is missing); "
            "export models with `python -m RMBG export`, which writes it"
        )
    return info


def write_sidecar(path: str | os.PathLike, info: ModelInfo, overwrite: bool = False) -> Path:
    """Write ``info`` as the sidecar of the exported file ``path``, atomically."""
    from RMBG.images.io import write_atomic

    return write_atomic(
        sidecar_path(path), lambda tmp: tmp.write_text(info.to_json(), encoding="utf-8"), overwrite=overwrite
    )


def embed_onnx_info(proto, info: ModelInfo) -> None:
    """Store ``info`` in an ONNX ``ModelProto``'s metadata (:data:`INFO_KEY`)."""
    entry = proto.metadata_props.add()
    entry.key, entry.value = INFO_KEY, info.to_json()


def onnx_embedded_info(session) -> ModelInfo | None:
    """The ModelInfo stored in an onnxruntime session's model metadata, if any."""
    text = session.get_modelmeta().custom_metadata_map.get(INFO_KEY)
    return ModelInfo.from_json(text) if text else None
