"""Per-image scores kept for later statistics: ``per_image_curves.npz`` of an evaluation.

``evaluate`` writes this file next to ``per_image.csv`` so that set-level figures
(and the shipping rule's bootstrap, :mod:`RMBG.evaluation.shipping_rule`) can be
recomputed from two evaluation outputs without running any model again. The
CSV cannot serve: a set's max-F is the maximum of the *mean* of the per-image
F curves (:func:`RMBG.evaluation.metrics.summarize`), so the curves themselves
are needed, not each photo's max-F.

The file (``numpy.savez_compressed``) holds, for ``M`` models and ``N`` photos
(every model is scored on the same photos, in the same order):

* ``models`` (M,), ``kinds`` (M,): names and kinds as in ``per_image.csv``;
* ``images`` (N,): photo file names (``per_image.csv``'s ``image`` column),
  ``categories`` (N,), ``digests`` (N,): each photo file's hash, so two files
  can be checked to hold the same photos, not only the same names;
* ``mae`` (M, N): per-image MAE, float64 (the CSV rounds to 6 decimals);
* ``f_curves`` (M, N, 256): per-image F curves, float64, strictest threshold
  first (:class:`RMBG.evaluation.metrics.ImageScores`);
* ``split``, ``data``: the ``--split`` (empty string for none) and data folder.

Plain numpy: reading it needs no model runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

#: File name inside an evaluation's report folder.
CURVES_NAME = "per_image_curves.npz"
#: Entries of an F curve (py_sod_metrics' 256 thresholds).
CURVE_LENGTH = 256
_FORMAT_KEYS = ("models", "kinds", "images", "categories", "digests", "mae", "f_curves", "split", "data")


class ScoreFileError(ValueError):
    """A scores file is missing, unreadable or not what it should be; the message names it."""


@dataclass(frozen=True)
class ScoreTable:
    """One model's per-image scores on a set of photos: what the shipping rule compares.

    ``images``, ``categories`` and ``digests`` are (N,) string arrays (``digests``
    may be empty strings when unknown), ``mae`` (N,) and ``f_curves`` (N, 256).
    """

    name: str
    images: np.ndarray
    categories: np.ndarray
    mae: np.ndarray
    f_curves: np.ndarray
    digests: np.ndarray | None = None
    split: str = ""
    source: str = ""

    def __post_init__(self):
        n = len(self.images)
        mae, curves = np.asarray(self.mae, np.float64), np.asarray(self.f_curves, np.float64)
        if n == 0:
            raise ScoreFileError(f"{self.name}: no photos")
        if len(self.categories) != n or mae.shape != (n,) or curves.shape != (n, CURVE_LENGTH):
            raise ScoreFileError(
                f"{self.name}: {n} photos but {len(self.categories)} categories, MAE of shape {mae.shape}, "
                f"F curves of shape {curves.shape} (expected ({n},) and ({n}, {CURVE_LENGTH}))")
        if self.digests is not None and len(self.digests) != n:
            raise ScoreFileError(f"{self.name}: {n} photos but {len(self.digests)} file hashes")
        if len(set(map(str, self.images))) != n:
            raise ScoreFileError(f"{self.name}: a photo name appears twice")
        if not (np.all(np.isfinite(mae)) and np.all(np.isfinite(curves))):
            raise ScoreFileError(f"{self.name}: NaN or infinite scores")
        object.__setattr__(self, "mae", mae)
        object.__setattr__(self, "f_curves", curves)
        object.__setattr__(self, "images", np.asarray(self.images, str))
        object.__setattr__(self, "categories", np.asarray(self.categories, str))
        if self.digests is not None:
            object.__setattr__(self, "digests", np.asarray(self.digests, str))

    def __len__(self) -> int:
        return len(self.images)

    def without(self, images: Sequence[str]) -> "ScoreTable":
        """The same table less the photos ``images`` (each must be one of its photos; some must remain)."""
        leave = set(map(str, images))
        unknown = sorted(leave - set(self.images))
        if unknown:
            raise ScoreFileError(f"{self.name}: no photo named {', '.join(unknown[:3])}"
                                 + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""))
        keep = np.array([name not in leave for name in self.images])
        if not keep.any():
            raise ScoreFileError(f"{self.name}: leaving out {len(leave)} photos leaves none to score")
        return self._rows(keep)

    def reordered(self, images: Sequence[str]) -> "ScoreTable":
        """The same table with its rows in the order of ``images`` (which must be exactly its photos)."""
        position = {name: i for i, name in enumerate(self.images)}
        if len(images) != len(position) or any(name not in position for name in images):
            raise ScoreFileError(f"{self.name}: its photos are not the ones asked for")
        return self._rows(np.array([position[name] for name in images], int))

    def _rows(self, index: np.ndarray) -> "ScoreTable":
        """The table of the rows ``index`` selects (positions or a boolean mask), in that order."""
        return ScoreTable(self.name, self.images[index], self.categories[index], self.mae[index],
                          self.f_curves[index], None if self.digests is None else self.digests[index],
                          self.split, self.source)


def write_curves(path: str | Path, models: Mapping[str, tuple[str, np.ndarray, np.ndarray]],
                 images: Sequence[str], categories: Sequence[str], digests: Sequence[str],
                 split: str | None, data: str) -> Path:
    """Write the scores file (format in the module notes) atomically; ``models``: name -> (kind, mae, curves)."""
    from RMBG.images.io import write_atomic

    names = list(models)
    arrays = {
        "models": np.array(names, str), "kinds": np.array([models[m][0] for m in names], str),
        "images": np.array(list(images), str), "categories": np.array(list(categories), str),
        "digests": np.array(list(digests), str),
        "mae": np.array([np.asarray(models[m][1], np.float64) for m in names]),
        "f_curves": np.array([np.asarray(models[m][2], np.float64) for m in names]),
        "split": np.array(split or ""), "data": np.array(str(data)),
    }

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    return write_atomic(path, save, overwrite=True)


def curves_path(path: str | Path) -> Path:
    """The scores file of ``path``: the file itself, or ``per_image_curves.npz`` in a report folder."""
    path = Path(path)
    return path / CURVES_NAME if path.is_dir() else path


def _load(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        hint = " (evaluate writes it; evaluations made before it existed have none: run evaluate again)"
        raise ScoreFileError(f"{path}: not found{hint}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ScoreFileError(f"{path}: unreadable scores file ({exc})") from None
    missing = [key for key in _FORMAT_KEYS if key not in arrays]
    if missing:
        raise ScoreFileError(f"{path}: not a per-image scores file (missing {', '.join(missing)})")
    return arrays


def read_scores(path: str | Path, model: str | None = None) -> ScoreTable:
    """One model's :class:`ScoreTable` from a scores file or report folder.

    ``model`` may be left out when the file holds a single model; otherwise a
    :class:`ScoreFileError` lists the names it holds.
    """
    path = curves_path(path)
    arrays = _load(path)
    names = [str(m) for m in arrays["models"]]
    if model is None:
        if len(names) != 1:
            raise ScoreFileError(f"{path}: holds {len(names)} models ({', '.join(names)}): name one")
        model = names[0]
    if model not in names:
        raise ScoreFileError(f"{path}: no model named {model!r} (it holds {', '.join(names)})")
    m = names.index(model)
    return ScoreTable(model, arrays["images"], arrays["categories"], arrays["mae"][m], arrays["f_curves"][m],
                      arrays["digests"], str(arrays["split"]), str(path))
