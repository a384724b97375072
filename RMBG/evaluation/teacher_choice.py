"""Which teacher to imitate: teachers' maps and their weighted means scored against the truth on validation.

``python scripts/teacher_table.py --labelled DIR --split val --teacher-labels DIR [--teacher-labels DIR ...]``
reads ``label`` folders holding the teachers' maps of the split's photos and
scores, per category, each teacher alone and weighted means of them (with two
teachers, the second's share in :data:`TEACHER_SHARES`; with more, their plain
mean). The per-category choice is the candidate with the lowest MAE in that
category (L1 is what the student is trained on; max-F is reported beside it);
the chosen weights come out as ``distill-set --teacher-weights`` arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from RMBG.evaluation.metrics import ImageScores, score_image, summarize, summarize_by
from RMBG.images.dataset import read_index
from RMBG.images.io import read_mask
from RMBG.runtime.ensemble import weighted_mean_map

#: With two teachers: the second teacher's share in the candidate mixes (0: the first alone, 1: the second alone).
TEACHER_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class Candidate:
    """One way to combine the teachers: its label, its weights and its per-photo scores."""

    label: str
    weights: tuple[float, ...]
    scores: list[ImageScores] = field(default_factory=list)


@dataclass
class TeacherTable:
    """Every candidate's scores on the same photos, their categories, and photos left out (with why)."""

    candidates: list[Candidate]
    categories: list[str]
    missing: list[tuple[str, str]] = field(default_factory=list)

    def summaries(self) -> dict[str, tuple[dict, dict]]:
        """``{candidate label: (overall, {category: summary})}``."""
        return {c.label: summarize_by(c.scores, self.categories) for c in self.candidates}

    def choice(self) -> dict[str, Candidate]:
        """Per category the candidate with the lowest MAE (the first listed wins a tie)."""
        summaries = self.summaries()
        return {
            category: min(self.candidates, key=lambda c: summaries[c.label][1][category]["mae"])
            for category in sorted(set(self.categories))
        }

    def mix_summary(self) -> tuple[dict, dict]:
        """The per-category choice scored as one teacher: each photo by its category's chosen candidate."""
        chosen = self.choice()
        index = {c.label: c for c in self.candidates}
        scores = [index[chosen[cat].label].scores[i] for i, cat in enumerate(self.categories)]
        return summarize(scores), {cat: summarize([s for s, c in zip(scores, self.categories) if c == cat])
                                   for cat in sorted(set(self.categories))}

    def weights_arguments(self) -> list[str]:
        """``distill-set --teacher-weights`` values for the choice: the overall-best default, then overrides."""
        summaries = self.summaries()
        best = min(self.candidates, key=lambda c: summaries[c.label][0]["mae"])
        spell = lambda weights: ",".join(f"{w:g}" for w in weights)  # noqa: E731
        arguments = [spell(best.weights)]
        arguments += [f"{cat}={spell(c.weights)}" for cat, c in self.choice().items() if c.weights != best.weights]
        return arguments


def candidates_for(names: Sequence[str], shares: Sequence[float] = TEACHER_SHARES) -> list[Candidate]:
    """Each teacher alone and their mixes (two teachers: by share of the second; more: the plain mean)."""
    if len(names) == 1:
        return [Candidate(names[0], (1.0,))]
    if len(names) == 2:
        first, second = names
        out = []
        for share in shares:
            label = first if share == 0 else second if share == 1 else f"{first}+{second} ({share:g} {second})"
            out.append(Candidate(label, (1.0 - share, share)))
        return out
    alone = [Candidate(name, tuple(float(i == k) for i in range(len(names)))) for k, name in enumerate(names)]
    return alone + [Candidate("+".join(names), (1.0,) * len(names))]


def _maps_by_source(folder: Path) -> dict[Path, Path]:
    _columns, rows = read_index(folder)
    return {Path(row["Source Image"]).resolve(): folder / row["Mask Path"] for row in rows}


def score_teachers(
    labelled: str | os.PathLike,
    teacher_dirs: Sequence[str | os.PathLike],
    names: Sequence[str],
    split: str = "val",
    categories: Sequence[str] | None = None,
    shares: Sequence[float] = TEACHER_SHARES,
) -> TeacherTable:
    """Score every candidate on the ``split`` photos of ``labelled`` (only ``categories`` when given)."""
    if len(names) != len(teacher_dirs):
        raise ValueError(f"{len(teacher_dirs)} teacher folders but {len(names)} names")
    labelled = Path(labelled)
    _columns, rows = read_index(labelled)
    rows = [r for r in rows if (r.get("split") or "").strip() == split
            and (categories is None or r["Category"] in categories)]
    if not rows:
        raise ValueError(f"{labelled}: no {split} rows" + (f" in categories {', '.join(categories)}" if categories else ""))
    per_teacher = [_maps_by_source(Path(folder)) for folder in teacher_dirs]
    table = TeacherTable(candidates_for(names, shares), [])
    for row in rows:
        image = (labelled / row["Image Path"]).resolve()
        sources = {image, Path(row.get("Source Image") or "/").resolve()}
        found = [next((maps[s] for s in sources if s in maps), None) for maps in per_teacher]
        lacking = [name for name, path in zip(names, found) if path is None]
        if lacking:
            table.missing.append((str(image), f"no map from {', '.join(lacking)}"))
            continue
        truth = read_mask(labelled / row["Mask Path"])
        maps = [read_mask(path) for path in found]
        for candidate in table.candidates:
            table_map = weighted_mean_map(maps, candidate.weights)
            candidate.scores.append(score_image(table_map, truth))
        table.categories.append(row["Category"])
    return table
