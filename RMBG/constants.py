"""Constants shared by every stage: folders, normalisation, file types.

Presets (training recipes) live in :mod:`RMBG.training.presets`; this module holds the
facts that do not change between runs.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Project root (the folder holding ``RMBG/``, ``Preprocess/`` and ``Data/``).
#: The project's version (``RMBG.__version__``, and the ``version`` a model file records).
VERSION = "0.1.0"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "Data"
RAW_DIR = DATA_DIR / "raw"
DATASET_DIR = DATA_DIR / "dataset"
MODELS_DIR = DATA_DIR / "models"
OUTPUT_DIR = DATA_DIR / "output"
SAMPLES_DIR = DATA_DIR / "samples"

#: The model that ``remove``, ``demo`` and the notebooks use when none is given.
DEFAULT_MODEL_PATH = MODELS_DIR / "rmbg-default.keras"
#: The imported rembg u2netp weights, used until the default model exists.
IMPORTED_U2NETP_PATH = MODELS_DIR / "u2netp-imported.keras"

#: ImageNet statistics, as used by the U-2-Net family (and rembg).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: File types read as images. Masks are written as PNG.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

#: Seed used for splits and anything random that must repeat.
SEED = 42
#: The parts an ``index.csv`` ``split`` column may name: ``test`` is reported once and used for no choice.
INDEX_SPLITS = ("train", "val", "test")

#: Largest image (in pixels) we agree to decode; PIL's own bomb check sits below it.
MAX_IMAGE_PIXELS = 16_000 * 16_000

#: Two sizes share an aspect ratio when their width/height ratios differ by at most
#: this (relative); a mask beyond it probably belongs to another photo.
ASPECT_TOLERANCE = 0.01

#: Foreground colour estimation (:mod:`RMBG.removal.foreground`, blur fusion): the wide
#: and narrow box widths as fractions of the photo's longer side (never below
#: the minimums), the longest side at which the wide pass runs, and the tile
#: size of the narrow pass (only tiles holding soft pixels are computed).
FOREGROUND_WIDE_FRACTION = 0.1
FOREGROUND_MIN_WIDE = 15
FOREGROUND_NARROW_FRACTION = 0.006
FOREGROUND_MIN_NARROW = 3
FOREGROUND_WORK_SIDE = 1024
FOREGROUND_TILE = 128
#: The band where foreground colours are estimated reaches past the mask's own soft pixels:
#: the mask is box-blurred over this many of the model's input pixels (so the band grows by
#: half of it on each side), scaled to the photo by ``longer side / model input size``, because
#: a mask predicted at the model's size may be off by a few of its pixels. Chosen on 24 validation
#: photos shot on green (scripts/bench_foreground.py, scene "model's mask"): 4/5/6/7/8 left
#: 0.28/0.11/0.00/-0.03/-0.10x the naive spill; 6 also has the least colour error of the colours.
FOREGROUND_SPREAD_MODEL_PX = 6
#: The model input size assumed when a caller does not say (the shipped model's).
FOREGROUND_MODEL_SIDE = 320

#: Mask clean-up (:mod:`RMBG.removal.cleanup`, ``remove --post-process``): islands
#: (regions where alpha exceeds the present level) and holes (regions under 0.5
#: away from the border) smaller than these fractions of the picture's area go.
CLEANUP_ISLAND_FRACTION = 0.002
CLEANUP_HOLE_FRACTION = 0.001
CLEANUP_PRESENT_LEVEL = 0.1

#: ``remove --crop``: the box holds the pixels whose alpha is above this fraction.
CROP_ALPHA_LEVEL = 0.05

#: ``remove --watch``: a dropped file is read once its size and modification
#: time stayed the same for this many looks this far apart (seconds); one
#: still changing after the timeout is reported instead of read.
WATCH_POLL_S = 0.25
WATCH_STABLE_CHECKS = 2
WATCH_COMPLETE_TIMEOUT_S = 120.0

#: ``remove`` over many files (:mod:`RMBG.apps.batch.pipeline`): photos waiting
#: between the read, model and write stages (each queue), which bounds memory.
PIPELINE_DEPTH = 2


def shared_dir() -> Path | None:
    """The read-only ``shared/`` folder beside the project, or ``None``.

    ``RMBG_SHARED`` overrides the location (CI and notebooks may set it).
    """
    env = os.environ.get("RMBG_SHARED")
    candidate = Path(env) if env else PROJECT_ROOT.parent / "shared"
    return candidate if (candidate / "data").is_dir() else None


def shared_data_dir() -> Path | None:
    """``shared/data`` (or ``RMBG_DATA`` when set), or ``None`` when absent."""
    env = os.environ.get("RMBG_DATA")
    if env:
        return Path(env) if Path(env).is_dir() else None
    root = shared_dir()
    return root / "data" if root else None


def peer_model_path() -> Path | None:
    """rembg's ``u2netp.onnx`` in ``shared/peers``, or ``None`` when absent."""
    root = shared_dir()
    path = root / "peers" / "u2netp.onnx" if root else None
    return path if path and path.is_file() else None


def quick_mode() -> bool:
    """True when heavy steps should stay small (CI, ``RMBG_QUICK=1``)."""
    return os.environ.get("RMBG_QUICK", "").lower() in {"1", "true", "yes"} or (
        os.environ.get("CI", "").lower() in {"1", "true"}
    )

#: How to install each Keras backend (the fix a missing one's error names).
BACKEND_INSTALL = {
    "tensorflow": 'pip install -e . (tensorflow-cpu), or -e ".[gpu]" for CUDA',
    "jax": 'pip install -e ".[jax-gpu]" for CUDA, or jax==0.10.2 for the CPU',
    "torch": "pip install torch",
}
