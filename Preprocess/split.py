"""The fixed train/validation(/test) split, stratified by category.

One function, shared by ``prepare --val-fraction`` (which writes the ``split``
column of ``index.csv``), :func:`Preprocess.util.create_csv` and the training
code, so that every stage agrees on which files are held out.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Sequence

from RMBG.constants import INDEX_SPLITS, SEED

#: The three parts; ``test`` is reported once and touched by no choice (checkpoint, blend share, knobs).
TRAIN, VAL, TEST = INDEX_SPLITS


def assign_split(
    names: Sequence[str],
    categories: Sequence[str],
    val_fraction: float,
    seed: int = SEED,
    test_fraction: float = 0.0,
) -> list[str]:
    """``"train"``, ``"val"`` (or ``"test"``) for each name, holding out fractions per category.

    The split is by file and stratified: within each category the names are
    sorted, shuffled with a generator seeded by ``seed`` and the category, and
    the first ``round(n * val_fraction)`` go to validation. A category with two
    or more files gives at least one to validation (when ``val_fraction > 0``)
    and keeps at least one for training; a category with a single file keeps it
    for training. The result depends only on the (name, category) pairs and the
    seed, not on the order they are given in.

    ``test_fraction`` (of each category's files) then moves part of the
    training files to ``"test"``, drawn the same way with its own seed, so the
    validation files are the same with or without a test part: choices made on
    a two-way split's validation files stay on validation.
    """
    if len(names) != len(categories):
        raise ValueError(f"{len(names)} names but {len(categories)} categories")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not 0.0 <= float(test_fraction) < 1.0 - float(val_fraction):
        raise ValueError(f"test_fraction must be in [0, 1 - val_fraction), got {test_fraction}")
    if len(set(names)) != len(names):
        raise ValueError("names must be unique to be split by file")
    by_category: dict[str, list[str]] = defaultdict(list)
    for name, category in zip(names, categories):
        by_category[str(category)].append(str(name))
    held_out: set[str] = set()
    tested: set[str] = set()
    for category, members in by_category.items():
        members.sort()
        count = len(members)
        n_val = int(round(count * val_fraction))
        if val_fraction > 0 and count >= 2:
            n_val = min(max(n_val, 1), count - 1)
        else:
            n_val = 0
        random.Random(f"{seed}:{category}").shuffle(members)
        held_out.update(members[:n_val])
        rest = sorted(members[n_val:])
        n_test = 0
        if test_fraction > 0 and len(rest) >= 2:
            n_test = min(max(int(round(count * test_fraction)), 1), len(rest) - 1)
        random.Random(f"{seed}:{category}:test").shuffle(rest)
        tested.update(rest[:n_test])
    return [VAL if str(name) in held_out else TEST if str(name) in tested else TRAIN for name in names]
