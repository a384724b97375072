"""One factory over the registered architectures, and the ``.keras`` model files.

:func:`build_model` builds any architecture of :data:`RMBG.models.archs.REGISTRY`
(the architectures themselves live in ``RMBG/models/archs/``, one module per family)
and :func:`default_info` gives a fresh model's :class:`ModelInfo` from its
spec. Input sizes are fixed (a multiple of 32) so that every resize has known
shapes.

Model files are ``.keras`` archives with one extra entry, ``rmbg_info.json``
(:data:`RMBG.models.info.INFO_ENTRY`), holding the :class:`ModelInfo`;
:func:`read_model_info` reads it without importing Keras.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from RMBG.models.archs import canonical_name, get_spec
from RMBG.models.archs.spec import check_input_size
from RMBG.models.info import (
    ModelFileError,
    ModelInfo,
    read_model_info,
    write_keras_with_info,
)


def check_arch(arch: str) -> str:
    """The registered name of ``arch`` (aliases accepted), else a ValueError listing the valid names."""
    return canonical_name(arch)


def build_model(arch: str, input_size: int = 320, **kwargs):
    """Build ``arch`` (a name of :data:`RMBG.models.archs.REGISTRY`, or an alias) for square ``input_size`` inputs."""
    return get_spec(arch).factory(input_size=check_input_size(input_size), **kwargs)


def default_info(arch: str, input_size: int = 320, **config: Any) -> ModelInfo:
    """The :class:`ModelInfo` of a freshly built ``arch`` model (trained ones may override it):
    the spec's normalisation and mask output (:meth:`RMBG.models.archs.spec.ArchSpec.default_info`)."""
    return get_spec(arch).default_info(input_size, **config)


def factory_arguments(arch: str) -> set[str]:
    """The keyword arguments ``arch``'s factory takes besides ``input_size``."""
    import inspect

    return set(inspect.signature(get_spec(arch).factory).parameters) - {"input_size"}


def copy_weights(source, target, by_name: bool = False) -> None:
    """``source``'s weights into ``target``: all of them in order (same architecture, any
    input size), or ``by_name`` layer by layer (a base network into a model built on it)."""
    if not by_name:
        target.set_weights(source.get_weights())
        return
    for layer in source.layers:
        if layer.weights:
            target.get_layer(layer.name).set_weights(layer.get_weights())


def count_params(model) -> dict[str, int]:
    """``{"trainable", "non_trainable", "total"}`` parameter counts of a Keras model."""
    import numpy as np

    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    frozen = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return {"trainable": trainable, "non_trainable": frozen, "total": trainable + frozen}


# ---------------------------------------------------------------------------
# Model files
# ---------------------------------------------------------------------------
#: Custom objects needed to load our files (the architectures use standard layers only).
CUSTOM_OBJECTS: dict[str, Any] = {}


def save_model(model, path: str | os.PathLike, info: ModelInfo, overwrite: bool = False) -> Path:
    """Write ``model`` as a ``.keras`` file carrying ``info``, atomically.

    Refuses to replace an existing file unless ``overwrite`` is true.
    """
    from RMBG.images.io import write_atomic

    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: model files must end in .keras")
    if not isinstance(info, ModelInfo):
        raise TypeError(f"info must be a ModelInfo, not {type(info).__name__}")

    def write(tmp: Path) -> None:
        raw = tmp.with_name(tmp.stem + ".raw.keras")
        try:
            model.save(raw, overwrite=True)
            write_keras_with_info(raw, tmp, info)
        finally:
            raw.unlink(missing_ok=True)

    saved = write_atomic(path, write, overwrite=overwrite)
    model.rmbg_info = info
    return saved


def load_model(path: str | os.PathLike):
    """Load a model written by :func:`save_model`; its ModelInfo is ``model.rmbg_info``."""
    import keras

    path = Path(path)
    info = read_model_info(path)
    try:
        model = keras.saving.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)
    except Exception as exc:
        raise ModelFileError(path, f"Keras could not load it ({type(exc).__name__}: {exc})") from exc
    model.rmbg_info = info
    return model
