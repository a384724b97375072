"""Where a difference between two models lies: spread over the photos, or carried by a few.

The shipping rule (:mod:`RMBG.evaluation.shipping_rule`) says *whether* a
candidate is better; this says *where*. Per scope (all photos, then each
category) it counts the photos on which the candidate's MAE is worse and
better, gives the mean MAE difference (candidate - default, the rule's
figure), the same mean once the ``k`` photos where the candidate loses most
are left out and once the ``k`` where it gains most are left out, and names
those photos. A mean difference that changes sign without three photos is a
handful of failures (or rescues), not a model that is better or worse
throughout.

Pure numpy on two :class:`RMBG.evaluation.score_file.ScoreTable` s of the same
photos (``rmbg compare --photos K`` prints it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from RMBG.evaluation.score_file import ScoreTable
from RMBG.evaluation.shipping_rule import OVERALL, paired


@dataclass(frozen=True)
class PhotoDifference:
    """One photo's MAE under both models and ``difference = candidate - default`` (positive: candidate worse)."""

    image: str
    category: str
    default: float
    candidate: float
    difference: float


@dataclass(frozen=True)
class Spread:
    """How a scope's MAE difference is spread over its photos (see the module notes)."""

    scope: str
    photos: int
    worse: int
    better: int
    mean_difference: float
    without_worst: float | None
    without_best: float | None
    worst: tuple[PhotoDifference, ...]
    best: tuple[PhotoDifference, ...]


def spreads(candidate: ScoreTable, default: ScoreTable, k: int = 3) -> list[Spread]:
    """One :class:`Spread` for all photos, then one per category (sorted); ``k`` photos each way.

    ``without_worst`` / ``without_best`` are ``None`` when ``k`` photos or fewer remain in the scope.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    candidate = paired(candidate, default)
    categories = default.categories
    scopes = [(OVERALL, np.arange(len(categories)))]
    scopes += [(c, np.flatnonzero(categories == c)) for c in sorted(set(categories.tolist()))]
    difference = candidate.mae - default.mae
    found = []
    for scope, index in scopes:
        d = difference[index]
        order = index[np.argsort(-d, kind="stable")]  # the candidate's largest losses first
        worst, best = order[:k], order[::-1][:k]
        found.append(Spread(
            scope, len(index), int(np.sum(d > 0)), int(np.sum(d < 0)), float(d.mean()),
            _mean_without(difference, index, worst), _mean_without(difference, index, best),
            tuple(_photo(candidate, default, i) for i in worst if difference[i] > 0),
            tuple(_photo(candidate, default, i) for i in best if difference[i] < 0)))
    return found


def _mean_without(difference: np.ndarray, index: np.ndarray, leave: np.ndarray) -> float | None:
    keep = np.setdiff1d(index, leave)
    return float(difference[keep].mean()) if len(keep) else None


def _photo(candidate: ScoreTable, default: ScoreTable, i: int) -> PhotoDifference:
    return PhotoDifference(str(default.images[i]), str(default.categories[i]), float(default.mae[i]),
                           float(candidate.mae[i]), float(candidate.mae[i] - default.mae[i]))


def spreads_table(found: list[Spread], k: int) -> str:
    """The spreads as fixed-width text: counts and means per scope, then the photos named."""
    head = (f"{'scope':<8}{'photos':>7}{'worse':>7}{'better':>7}{'mean diff':>11}"
            f"{f'w/o worst {k}':>14}{f'w/o best {k}':>13}  photos where the candidate loses most (MAE diff)")
    lines = ["where the MAE difference lies (candidate - default, per photo; positive: the candidate is worse)",
             head, "-" * len(head)]
    for s in found:
        named = ", ".join(f"{p.image} {p.difference:+.4f}" for p in s.worst) or "none"
        lines.append(f"{s.scope:<8}{s.photos:>7}{s.worse:>7}{s.better:>7}{s.mean_difference:>+11.6f}"
                     f"{_figure(s.without_worst):>14}{_figure(s.without_best):>13}  {named}")
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:+.6f}"


def spreads_dict(found: list[Spread]) -> list[dict]:
    return [asdict(s) for s in found]
