"""Weight-space blending of a fine-tuned model with the model it started from.

``blended = (1 - share) * start + share * tuned``, tensor by tensor: the
robust fine-tuning of Wortsman et al. (WiSE-FT, CVPR 2022). A fine-tune of a
pretrained network and its start lie in one basin, so the straight line
between them stays good; part of the way along it the model keeps most of
what the fine-tune gained on the new photos and gets back much of what the
start knew about photos unlike them (Data/models/README.md measures it for
the default model).

``python -m RMBG blend --start A.keras --tuned B.keras --share 0.5 --out C.keras``;
``RMBG.train`` applies it itself when a preset's ``blend`` is below 1.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from RMBG.models.build import load_model, save_model
from RMBG.models.info import ModelFileError, ModelInfo, read_model_info


def check_share(share: float) -> float:
    """``share`` (the fine-tuned model's part) as a float in [0, 1], or a ValueError."""
    share = float(share)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the blend share of the fine-tuned weights must be in [0, 1], got {share}")
    return share


def blend_weights(start: Sequence[np.ndarray], tuned: Sequence[np.ndarray], share: float) -> list[np.ndarray]:
    """``(1 - share) * start + share * tuned`` per tensor; non-float tensors (counters) come from ``tuned``.

    Raises ValueError when the two lists do not hold the same shapes in the same order.
    """
    share = check_share(share)
    if len(start) != len(tuned):
        raise ValueError(f"the models hold {len(start)} and {len(tuned)} weight tensors: not the same network")
    out = []
    for index, (a, b) in enumerate(zip(start, tuned)):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            raise ValueError(f"weight tensor {index} has shape {a.shape} in one model and {b.shape} in the other")
        if np.issubdtype(b.dtype, np.floating):
            mixed = (1.0 - share) * a.astype(np.float64) + share * b.astype(np.float64)
            out.append(mixed.astype(b.dtype))
        else:
            out.append(b.copy())
    return out


def blended_info(tuned: ModelInfo, start_name: str, share: float) -> ModelInfo:
    """``tuned``'s ModelInfo, recording the blend in its config and notes."""
    note = f"weights blended: {share:g} fine-tuned + {1 - share:g} {start_name}"
    notes = f"{tuned.notes}; {note}" if tuned.notes else note
    return replace(tuned, notes=notes, config={**tuned.config, "blend": {"start": start_name, "share": share}})


def check_same_network(start_path: Path, tuned_path: Path) -> None:
    """A ModelFileError naming the files unless both record the same architecture."""
    start, tuned = read_model_info(start_path), read_model_info(tuned_path)
    if start.arch != tuned.arch:
        raise ModelFileError(tuned_path, f"holds a {tuned.arch} model but {start_path} a {start.arch}: cannot blend")


def blend_models(start, tuned, share: float):
    """Put the blend of ``start``'s and ``tuned``'s weights into ``tuned`` (returned)."""
    tuned.set_weights(blend_weights(start.get_weights(), tuned.get_weights(), share))
    return tuned


def blend_files(start_path, tuned_path, share: float, out, overwrite: bool = False) -> Path:
    """Write the blend of two model files to ``out`` (atomically; an existing ``out`` only with ``overwrite``)."""
    start_path, tuned_path, out = Path(start_path), Path(tuned_path), Path(out)
    share = check_share(share)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass overwrite / --overwrite to replace it)")
    check_same_network(start_path, tuned_path)
    tuned = load_model(tuned_path)
    try:
        blend_models(load_model(start_path), tuned, share)
    except ValueError as exc:
        raise ModelFileError(tuned_path, f"{exc} (against {start_path})") from None
    return save_model(tuned, out, blended_info(tuned.rmbg_info, start_path.name, share), overwrite=overwrite)
