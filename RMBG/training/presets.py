"""The one table of training recipes: ``sample``, ``finetune``, ``quick-finetune`` and ``full``.

A :class:`Preset` holds every knob of a training run that is a *recipe*
(sizes, batch, schedule, augmentation, loss, optimizer, what is frozen, where
the weights start), as opposed to where the data and outputs live.
:func:`get_preset` applies the architecture's own overrides (its
:class:`~RMBG.models.archs.spec.ArchSpec`'s ``preset_overrides``);
:func:`RMBG.training.config.resolve_config` turns a preset plus overrides (CLI or
widgets) into a validated ``TrainConfig``. Notebooks read :data:`SLIDERS` to
build their widgets.

Sizes must be multiples of 32 (five 2x poolings in every architecture, see
``RMBG.models.archs.spec.SIZE_MULTIPLE``), so the smallest valid size is 32: the
original project's 16x16 sample size cannot be built and ``sample`` uses 32.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from RMBG.models.archs import get_spec
from RMBG.models.archs.spec import SIZE_MULTIPLE
from RMBG.training.augment import Augment

#: Smallest input size any architecture accepts.
MIN_SIZE = SIZE_MULTIPLE
#: The short name accepted in ``Preset.freeze`` for the architecture's encoder
#: (its spec's ``encoder_prefixes``).
ENCODER_ALIAS = "encoder"
#: Accepted values of the choice fields.
OPTIMIZERS = ("adam", "adamw", "sgd", "lamb")
LOSS_TERMS = ("bce", "iou", "l1")
#: Which training photos ``plain_background`` may apply to: every one, or only those whose
#: mask is not a teacher's map alone (``Target`` ``gt`` or ``mix:...`` in a distill set).
PLAIN_BACKGROUND_ON = ("all", "truth")
OUTPUT_NORMS = ("keep", "none", "minmax")
#: Where a run's weights start when no ``init`` file is given: the architecture's
#: pretrained file (its spec's ``pretrained``), or a fresh random initialisation.
STARTS = ("pretrained", "random")


@dataclass(frozen=True)
class Preset:
    """A training recipe. Every field can be overridden (``dataclasses.replace`` or the CLI).

    Sizes: images are resized to ``image_size`` (the size the model is saved at
    and infers at); training takes random crops of ``crop_size`` (``None`` =
    ``image_size``) covering a ``crop_scale`` fraction of the image area with
    an aspect ratio in ``crop_ratio``, resized to ``crop_size``. The training
    model is built at ``crop_size`` and its weights are copied into a model at
    ``image_size`` for validation and saving (the weights do not depend on the
    input size), so with ``crop_scale=((crop/image)**2,)*2`` and
    ``crop_ratio=(1, 1)`` the crops keep the inference scale, as in the
    original U-2-Net recipe (resize to 320, random 288 crops).

    Start: ``start="pretrained"`` begins from the architecture's pretrained
    file when no ``init`` is given (an error when it has none);
    ``"random"`` from a fresh model.

    Saving: with ``blend`` below 1 the saved model is the best trained weights
    blended with the start's (``init``, same architecture):
    ``blend * trained + (1 - blend) * start`` (:mod:`RMBG.models.blend`).
    """

    name: str = "custom"
    description: str = ""
    # the original API's knobs
    image_size: int = 320
    batch: int = 8
    lr: float = 1e-3
    epochs: int = 10
    split: float = 0.2
    # augmentation (training split only); the defaults are :class:`Augment`'s, written once there
    crop_size: int | None = None
    crop_scale: tuple[float, float] = Augment.crop_scale
    crop_ratio: tuple[float, float] = Augment.crop_ratio
    flip: bool = Augment.flip
    jitter: float = Augment.jitter
    composite: float = Augment.composite
    plain_background: float = Augment.plain_background
    plain_background_on: str = Augment.plain_background_on
    # loss and optimisation
    loss: str = "bce"
    side_weights: str = "all"
    optimizer: str = "adam"
    weight_decay: float = 0.0
    clipnorm: float | None = None
    #: Polyak averaging: the momentum of the weights' moving average (0: off). With it on, the checks, the
    #: best checkpoint and the saved models hold the averaged weights (RMBG.training.averaging)
    ema: float = 0.0
    # where the weights start (when no init file is given) and what trains
    start: str = "random"
    freeze_bn: bool = False
    freeze: tuple[str, ...] = ()
    output_norm: str = "keep"
    # schedule and checks
    steps_per_epoch: int | None = None
    val_every_steps: int | None = None
    val_limit: int | None = None
    lr_factor: float = 0.1
    lr_patience: int = 5
    min_lr: float = 1e-7
    early_stop: int = 20
    cache: bool = True
    #: worker threads of the PyDataset input pipeline (None: one a core, at most 8; tf.data tunes its own)
    workers: int | None = None
    # what is saved: model.keras = blend * trained + (1 - blend) * start (RMBG.models.blend, WiSE-FT)
    blend: float = 1.0

    def __post_init__(self):
        problems = preset_problems(self)
        if problems:
            raise ValueError(f"preset {self.name!r}: " + "; ".join(problems))

    @property
    def train_size(self) -> int:
        """The size the training model is built at (``crop_size`` or ``image_size``)."""
        return int(self.crop_size or self.image_size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def preset_problems(preset: Preset) -> list[str]:
    """Every reason ``preset`` cannot be used (empty when it is fine)."""
    problems = []
    for label, size in (("image_size", preset.image_size), ("crop_size", preset.crop_size)):
        if size is None and label == "crop_size":
            continue
        if int(size) < MIN_SIZE or int(size) % MIN_SIZE:
            problems.append(f"{label} must be a positive multiple of {MIN_SIZE}, got {size}")
    if preset.crop_size and preset.crop_size > preset.image_size:
        problems.append(f"crop_size {preset.crop_size} is larger than image_size {preset.image_size}")
    if preset.batch < 1:
        problems.append(f"batch must be at least 1, got {preset.batch}")
    if not preset.lr > 0:
        problems.append(f"lr must be positive, got {preset.lr}")
    if preset.epochs < 1:
        problems.append(f"epochs must be at least 1, got {preset.epochs}")
    if not 0.0 <= preset.split < 1.0:
        problems.append(f"split must be in [0, 1), got {preset.split}")
    lo, hi = preset.crop_scale
    if not 0.0 < lo <= hi <= 1.0:
        problems.append(f"crop_scale must satisfy 0 < low <= high <= 1, got {preset.crop_scale}")
    lo, hi = preset.crop_ratio
    if not 0.0 < lo <= hi:
        problems.append(f"crop_ratio must satisfy 0 < low <= high, got {preset.crop_ratio}")
    if not 0.0 <= preset.composite <= 1.0:
        problems.append(f"composite is a probability, got {preset.composite}")
    if not 0.0 <= preset.plain_background <= 1.0:
        problems.append(f"plain_background is a probability, got {preset.plain_background}")
    if preset.plain_background_on not in PLAIN_BACKGROUND_ON:
        problems.append(f"plain_background_on must be one of {PLAIN_BACKGROUND_ON}, got {preset.plain_background_on!r}")
    if not 0.0 <= preset.blend <= 1.0:
        problems.append(f"blend is the trained weights' share, in [0, 1], got {preset.blend}")
    if not 0.0 <= preset.ema < 1.0:
        problems.append(f"ema is the moving average's momentum, in [0, 1) (0: off), got {preset.ema}")
    if not 0.0 <= preset.jitter < 1.0:
        problems.append(f"jitter must be in [0, 1), got {preset.jitter}")
    terms = [t for t in preset.loss.split("+") if t]
    if not terms or any(t not in LOSS_TERMS for t in terms):
        problems.append(f"loss must be terms from {LOSS_TERMS} joined by '+', got {preset.loss!r}")
    if preset.side_weights not in ("all", "fused"):
        try:
            weights = parse_floats(preset.side_weights)
            if not weights or min(weights) < 0 or max(weights) <= 0:
                raise ValueError
        except ValueError:
            problems.append(
                f"side_weights must be 'all', 'fused' or comma-separated non-negative weights, "
                f"got {preset.side_weights!r}"
            )
    if preset.optimizer not in OPTIMIZERS:
        problems.append(f"optimizer must be one of {OPTIMIZERS}, got {preset.optimizer!r}")
    if preset.start not in STARTS:
        problems.append(f"start must be one of {STARTS}, got {preset.start!r}")
    if preset.output_norm not in OUTPUT_NORMS:
        problems.append(f"output_norm must be one of {OUTPUT_NORMS}, got {preset.output_norm!r}")
    for label in ("steps_per_epoch", "val_every_steps", "val_limit", "workers"):
        value = getattr(preset, label)
        if value is not None and value < 1:
            problems.append(f"{label} must be at least 1 (or None), got {value}")
    return problems


def parse_floats(text: str) -> list[float]:
    """``"1,0.5,0"`` -> ``[1.0, 0.5, 0.0]``."""
    return [float(part) for part in str(text).split(",") if part.strip()]


def expand_freeze(prefixes, arch: str) -> tuple[str, ...]:
    """Layer-name prefixes with ``"encoder"`` expanded to ``arch``'s encoder layers."""
    out: list[str] = []
    for item in prefixes or ():
        if item == ENCODER_ALIAS:
            encoder = get_spec(arch).encoder_prefixes
            if not encoder:
                raise ValueError(f"freeze {ENCODER_ALIAS!r}: architecture {arch!r} names no encoder layers")
            out.extend(encoder)
        else:
            out.append(item)
    return tuple(out)


#: The recipe of the default model until issue 23 (the start of ``quick-finetune`` and ``distill``).
FINETUNE = Preset(
    name="finetune",
    description=(
        "fine-tune imported u2netp weights at 320 on random 288 crops (the inference scale), "
        "BatchNorm frozen, encoder frozen, layer-wise LAMB steps, L1 + soft IoU on the fused map, "
        "MAE on every held-out photo every 50 steps keeping the best, saved blended with the start "
        "weights (see blend)"
    ),
    image_size=320,
    crop_size=288,
    crop_scale=(0.81, 0.81),
    crop_ratio=(1.0, 1.0),
    batch=8,
    lr=1e-4,
    epochs=3,
    split=0.2,
    jitter=0.1,
    composite=0.0,
    loss="l1+iou",
    side_weights="fused",
    optimizer="lamb",
    weight_decay=0.0,
    clipnorm=1.0,
    start="pretrained",
    freeze_bn=True,
    freeze=(ENCODER_ALIAS,),
    output_norm="keep",
    val_every_steps=50,
    val_limit=None,
    lr_patience=3,
    early_stop=6,
    blend=0.6,
)


#: Distillation (issue 23), the recipe of the shipped default (attempt 7 of the model card): the finetune
#: recipe on a folder made by ``python -m RMBG distill-set`` (ground truth, teacher maps, and their mix on
#: labelled photos), 2 epochs, the best checkpoint blended 0.6 / 0.4 with the start weights as in ``finetune``
#: (``tuned.keras`` keeps it unblended). On U-2-Net(-P) the last two encoder stages train too (the
#: architecture's override of ``freeze``, :data:`RMBG.models.archs.u2net.U2NET_PRESET_OVERRIDES`). L1 + soft IoU stay
#: the loss: both are defined for soft targets (L1's minimum for a soft target is the target itself, soft IoU
#: weighs each pixel by its grey level) and L1 is the MAE the model is judged on. 70 % of the ground-truth
#: photos go on a plain backdrop (``plain_background_on="truth"``): it keeps the gap between a subject's parts
#: background (the lion check of the model card) without pasting a teacher map's half-grey edge onto black;
#: the photos the teacher labelled keep their own backgrounds.
DISTILL = replace(
    FINETUNE,
    name="distill",
    description=(
        "distil a teacher into u2netp: the finetune recipe (pretrained u2netp at 320, 288 crops, BatchNorm and "
        "encoder frozen but for its last two stages, LAMB, L1 + soft IoU, which suit soft targets) on a "
        "distill-set folder (ground truth, teacher maps, their mix on labelled photos; validation on ground "
        "truth only), 70% of the ground-truth photos on plain backdrops, 2 epochs, saved blended with the start "
        "weights (see blend; the default model's recipe)"
    ),
    epochs=2,
    plain_background=0.7,
    plain_background_on="truth",
    blend=0.6,
)


#: The presets, arch-independent values (each ArchSpec's ``preset_overrides`` adapt them).
PRESETS: dict[str, Preset] = {
    "sample": Preset(
        name="sample",
        description=(
            "a quick end-to-end check: the original sample (batch 2, lr 0.01, 10 epochs, "
            "split 0.4) at the smallest valid size"
        ),
        image_size=MIN_SIZE,
        batch=2,
        lr=0.01,
        epochs=10,
        split=0.4,
        jitter=0.1,
        steps_per_epoch=10,
        lr_patience=5,
        early_stop=20,
    ),
    "finetune": FINETUNE,
    "quick-finetune": replace(
        FINETUNE,
        name="quick-finetune",
        description=(
            "the notebooks' short fine-tune: the finetune recipe (pretrained u2netp at 320, 288 crops, "
            "encoder and BatchNorm frozen, LAMB, L1 + soft IoU) for 16 steps, 16 held-out photos checked "
            "every 4 steps, the best kept as it is (no blend); about 5 minutes on 2 CPU cores"
        ),
        epochs=1,
        steps_per_epoch=16,
        val_every_steps=4,
        val_limit=16,
        blend=1.0,
    ),
    "distill": DISTILL,
    "full": Preset(
        name="full",
        description=(
            "the original full training: 512 px, batch 64, lr 1e-6, 100 epochs, split 0.2; on a GPU 8 input "
            "workers, XLA and mixed precision (the defaults of --jit-compile and --mixed-precision) keep it busy"
        ),
        image_size=512,
        batch=64,
        workers=8,
        lr=1e-6,
        epochs=100,
        split=0.2,
    ),
}

#: The preset the notebooks' training widgets start on outside quick mode (CI starts on ``sample``).
NOTEBOOK_PRESET = "quick-finetune"

#: Notebook slider ranges: field -> (min, max, step).
SLIDERS: dict[str, tuple[float, float, float]] = {
    "image_size": (MIN_SIZE, 640, MIN_SIZE),
    "crop_size": (MIN_SIZE, 640, MIN_SIZE),
    "batch": (1, 64, 1),
    "lr": (1e-7, 1e-1, 1e-7),
    "epochs": (1, 200, 1),
    "split": (0.0, 0.5, 0.05),
    "composite": (0.0, 1.0, 0.05),
    "plain_background": (0.0, 1.0, 0.05),
    "blend": (0.0, 1.0, 0.05),
    "jitter": (0.0, 0.5, 0.05),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str, arch: str | None = None, **overrides) -> Preset:
    """The preset ``name`` for ``arch`` (its spec's overrides applied), then ``overrides``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    changes = dict(get_spec(arch).preset_overrides.get(name, {})) if arch else {}
    unknown = set(overrides) - set(preset_fields())
    if unknown:
        raise ValueError(f"unknown preset field(s): {', '.join(sorted(unknown))}")
    changes.update({k: v for k, v in overrides.items()})
    return replace(preset, **changes) if changes else preset


def preset_fields() -> list[str]:
    """Names of every overridable field (all but ``name`` and ``description``)."""
    return [f.name for f in fields(Preset) if f.name not in ("name", "description")]
