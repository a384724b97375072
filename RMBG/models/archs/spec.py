"""What the project knows about one architecture: :class:`ArchSpec`, and the input-size rule they share.

A spec is everything the rest of the project asks about an architecture:
how to build it, the :class:`~RMBG.models.info.ModelInfo` a fresh model
carries (normalisation, which output is the mask), which layers
``freeze=("encoder",)`` means, where its pretrained start is, which
architecture an ``init`` file copies from, and how the presets change for it.
Presets, training, weight import and the notebooks read the spec; none of
them tests an architecture's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from RMBG.constants import IMAGENET_MEAN, IMAGENET_STD
from RMBG.models.info import ModelInfo

#: Every input size must be a multiple of this (five 2x poolings, then even maps).
SIZE_MULTIPLE = 32


def check_input_size(input_size: int) -> int:
    """``input_size`` as an int when it is a positive multiple of 32, else a ValueError."""
    if isinstance(input_size, bool) or int(input_size) != input_size:
        raise ValueError(f"input_size must be an integer, not {input_size!r}")
    size = int(input_size)
    if size < SIZE_MULTIPLE or size % SIZE_MULTIPLE:
        raise ValueError(
            f"input_size must be a positive multiple of {SIZE_MULTIPLE} (got {size}; "
            f"try {max(SIZE_MULTIPLE, round(size / SIZE_MULTIPLE) * SIZE_MULTIPLE)})"
        )
    return size


@dataclass(frozen=True)
class ArchSpec:
    """One architecture, as the registry (:data:`RMBG.models.archs.REGISTRY`) holds it.

    - ``factory(input_size=..., **kwargs)`` builds the Keras model.
    - ``mean``/``std`` (``None``: plain 0-1 input) and ``output_index`` (the
      listed output, or the channel of a single map, that is the mask) make
      its default :class:`ModelInfo` (:meth:`default_info`).
    - ``encoder_prefixes``: the layer-name prefixes that the preset alias
      ``freeze=("encoder",)`` expands to.
    - ``pretrained``: a function giving the model file a ``start="pretrained"``
      preset begins from (``None`` when there is none here).
    - ``base``: the architecture whose saved weights an ``init`` may copy
      from by layer name (a head on a base network starts from the base).
    - ``onnx_layout``: for architectures whose public ONNX files
      :mod:`RMBG.models.onnx_import` imports, a function giving every
      convolution as ``(Keras layer name, PyTorch kernel shape (out, in, kh, kw))``
      in the ONNX graph's order (``onnx_importable`` says whether there is one).
    - ``preset_overrides``: preset name -> the fields that differ for this
      architecture.
    - ``aliases``: older names still accepted (commands, model files).
    - ``published_params``: the trainable parameter count of the reference
      implementation, when there is one (tests check it).
    """

    name: str
    factory: Callable[..., Any]
    summary: str
    mean: tuple[float, float, float] | None = IMAGENET_MEAN
    std: tuple[float, float, float] | None = IMAGENET_STD
    output_index: int = 0
    encoder_prefixes: tuple[str, ...] = ()
    pretrained: Callable[[], Path | None] | None = None
    base: str | None = None
    onnx_layout: Callable[[], list[tuple[str, tuple[int, int, int, int]]]] | None = None
    preset_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    published_params: float | None = None

    @property
    def onnx_importable(self) -> bool:
        return self.onnx_layout is not None

    def default_info(self, input_size: int = 320, **config: Any) -> ModelInfo:
        """The :class:`ModelInfo` of a freshly built model (trained ones may override it)."""
        size = check_input_size(input_size)
        return ModelInfo(
            self.name, size, mean=self.mean, std=self.std, output_index=self.output_index,
            config={"arch": self.name, "input_size": size, **config},
        )

    def pretrained_path(self) -> Path | None:
        """The pretrained start file when this architecture has one and it is present."""
        path = self.pretrained() if self.pretrained is not None else None
        return Path(path) if path is not None and Path(path).is_file() else None
