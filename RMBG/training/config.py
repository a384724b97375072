"""A training run's configuration, resolved and checked before anything is touched.

:class:`TrainConfig` is a recipe (:class:`~RMBG.training.presets.Preset`) plus where
and how to run it. :func:`resolve_config` is the one way from a preset name
and overrides (the CLI's flags, the notebook's widgets, the original
``train(...)`` API) to a validated config: it applies the architecture's
preset overrides, rescales the training crop with the image size, fills the
start weights of a ``start="pretrained"`` preset from the architecture's
spec, and refuses what cannot work. :func:`check_config` adds the checks that
read files (the start file's architecture, the data folder);
:func:`RMBG.training.fit.fit` runs it before it touches the run folder or the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from RMBG.constants import SEED
from RMBG.models.archs import canonical_name, get_spec
from RMBG.training.presets import MIN_SIZE, PRESETS, Preset, get_preset, preset_fields

STRATEGIES = ("auto", "default", "mirrored", "multiworker")
#: Input pipelines, XLA and mixed-precision modes (what each means: :mod:`RMBG.training.backend`).
PIPELINES = ("auto", "tf.data", "py")
JIT_MODES = ("auto", "on", "off")
PRECISIONS = ("auto", "off", "on", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Everything a run needs: the recipe (:class:`Preset`) plus where and how to run it."""

    data: str
    out: str
    arch: str = "u2netp"
    preset: Preset = field(default_factory=lambda: get_preset("sample", "u2netp"))
    init: str | None = None
    resume: bool = False
    overwrite: bool = False
    #: minutes after which the run stops at the next epoch end, resumable (``--time-limit``); None: no limit
    time_limit: float | None = None
    mixed_precision: str = "auto"
    jit_compile: str = "auto"
    pipeline: str = "auto"
    strategy: str = "auto"
    seed: int = SEED
    verbose: int | str = "auto"
    check_data: bool = True
    eval_batch: int | None = None
    build_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_preset(cls, name: str, arch: str, data, out, **overrides) -> "TrainConfig":
        """:func:`resolve_config` (``overrides`` may set preset or config fields)."""
        return resolve_config(name, arch, data, out, **overrides)

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if isinstance(self.mixed_precision, bool):  # older configs: a flag
            self.mixed_precision = "on" if self.mixed_precision else "off"
        for option, value, choices in (("mixed-precision", self.mixed_precision, PRECISIONS),
                                       ("jit-compile", self.jit_compile, JIT_MODES),
                                       ("pipeline", self.pipeline, PIPELINES)):
            if value not in choices:
                raise ValueError(f"--{option} {value!r}: choose one of {', '.join(choices)}")
        canonical_name(self.arch)  # an unknown architecture fails here, with the valid names
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"--time-limit is in minutes and must be positive, got {self.time_limit}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["preset"] = self.preset.to_dict()
        return out


def rescale_crop(base: Preset, image_size: int) -> dict[str, Any]:
    """The crop fields of ``base`` moved to ``image_size``: the same crop-to-image ratio
    (rounded to a valid size, at most the image) and, for a fixed crop scale, the area
    that keeps the inference scale. Empty when ``base`` has no crop or the size is unchanged."""
    if not base.crop_size or int(image_size) == base.image_size:
        return {}
    ratio = base.crop_size / base.image_size
    crop = max(MIN_SIZE, int(round(int(image_size) * ratio / MIN_SIZE)) * MIN_SIZE)
    changes: dict[str, Any] = {"crop_size": min(crop, int(image_size))}
    if base.crop_scale[0] == base.crop_scale[1]:
        area = round((changes["crop_size"] / int(image_size)) ** 2, 4)
        changes["crop_scale"] = (area, area)
    return changes


def default_start(preset: Preset, arch: str) -> Path | None:
    """The file a run of ``preset`` starts from when no ``init`` is given (``None``: random weights)."""
    if preset.start != "pretrained":
        return None
    path = get_spec(arch).pretrained_path()
    if path is None:
        raise ValueError(
            f"the {preset.name} preset starts from pretrained weights: pass --init PATH "
            f"(a saved {arch} .keras model)"
        )
    return path


def base_preset(preset: str | Preset, arch: str) -> Preset:
    """A preset by name for ``arch`` (its overrides applied), or a given :class:`Preset` as it is."""
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    return get_preset(preset, arch)


def resolve_preset(preset: str | Preset, arch: str, **recipe) -> Preset:
    """The validated :class:`Preset` for ``preset`` on ``arch`` with ``recipe`` fields changed; a new
    ``image_size`` moves the crop with it (:func:`rescale_crop`) unless ``crop_size`` is given too."""
    base = base_preset(preset, canonical_name(arch))
    if "image_size" in recipe and "crop_size" not in recipe:
        recipe = {**rescale_crop(base, recipe["image_size"]), **recipe}
    return replace(base, **recipe) if recipe else base  # Preset validates itself


def resolve_config(preset: str | Preset, arch: str, data, out, **overrides) -> TrainConfig:
    """The validated :class:`TrainConfig` for ``preset`` (a name or a Preset) on ``arch``.

    ``overrides`` may set any preset field or config field; the recipe is
    :func:`resolve_preset`'s (a new ``image_size`` moves the crop). A ``start="pretrained"`` preset with no
    ``init`` starts from the architecture's pretrained file. The preset's own
    problems are raised here, together, as one ValueError; those that need the
    start file or the data (an ``init`` of another architecture, a blend
    without a start) by :func:`check_config`.
    """
    name = canonical_name(arch)
    recipe_keys = set(preset_fields())
    recipe = {k: v for k, v in overrides.items() if k in recipe_keys}
    options = {k: v for k, v in overrides.items() if k not in recipe_keys}
    settable = {f.name for f in fields(TrainConfig)} - {"data", "out", "arch", "preset"}
    unknown = set(options) - settable
    if unknown:
        raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    chosen = resolve_preset(preset, name, **recipe)
    if options.get("init") is None:
        start = default_start(chosen, name)
        options["init"] = str(start) if start is not None else None
    return TrainConfig(data=str(data), out=str(out), arch=arch, preset=chosen, **options)


def check_config(config: TrainConfig) -> None:
    """The checks that read files, run before a run touches its folder or its data.

    The data folder exists; the start file (``init``) is an RMBG model of
    ``config.arch`` or of its base architecture; a blend (``blend < 1``) has a
    start of the same architecture. One ValueError lists every problem.
    """
    from RMBG.models.info import ModelFileError, read_model_info

    problems = []
    arch = canonical_name(config.arch)
    spec = get_spec(arch)
    if not Path(config.data).is_dir():
        problems.append(f"{config.data}: data folder not found")
    start_arch = None
    if config.init:
        try:
            start_arch = canonical_name(read_model_info(config.init).arch)
        except ModelFileError as exc:
            problems.append(str(exc))
        except ValueError as exc:  # an architecture this project does not know
            problems.append(f"{config.init}: {exc}")
        if start_arch is not None and start_arch not in {arch, spec.base}:
            problems.append(f"{config.init} holds a {start_arch} model, not {config.arch}")
    if config.preset.blend < 1.0 and (not config.init or (start_arch is not None and start_arch != arch)):
        problems.append(
            f"blend {config.preset.blend} mixes the trained weights with the start's: it needs --init, "
            f"a saved {config.arch} model (use --blend 1 to save the trained weights as they are)"
        )
    if problems:
        raise ValueError("; ".join(problems))
