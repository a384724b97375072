"""Where a difference lies (``compare --photos K``): counts, means without the extreme photos, and the
photos named, on hand-made score tables whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from RMBG.evaluation.photo_differences import spreads, spreads_table
from RMBG.evaluation.score_file import ScoreFileError, ScoreTable

CURVES = np.tile(np.linspace(0.9, 0.1, 256), (12, 1))


def _table(name: str, mae, order=None) -> ScoreTable:
    images = np.array([f"{c}_{i}.jpg" for i, c in enumerate(["cat"] * 4 + ["person"] * 8)])
    categories = np.array([image.split("_")[0] for image in images])
    order = np.arange(12) if order is None else np.asarray(order)
    return ScoreTable(name, images[order], categories[order], np.asarray(mae, float)[order], CURVES[order])


def test_a_few_failures_carry_the_difference_and_are_named():
    default_mae = np.full(12, 0.05)
    candidate_mae = default_mae - 0.001  # better by 0.001 on every photo ...
    candidate_mae[[5, 9]] = [0.35, 0.25]  # ... but for two people photos it gets badly wrong
    # the candidate's rows in another order: spreads pairs them by photo name, as the rule does
    shuffled = np.random.default_rng(0).permutation(12)
    found = {s.scope: s for s in spreads(_table("cand", candidate_mae, shuffled), _table("def", default_mae), k=2)}

    person = found["person"]
    assert (person.photos, person.worse, person.better) == (8, 2, 6)
    assert person.mean_difference == pytest.approx((0.30 + 0.20 - 6 * 0.001) / 8)
    assert person.without_worst == pytest.approx(-0.001)  # the rest: better throughout
    assert person.without_best == pytest.approx((0.30 + 0.20 - 4 * 0.001) / 6)
    assert [p.image for p in person.worst] == ["person_5.jpg", "person_9.jpg"]
    assert [p.difference for p in person.worst] == pytest.approx([0.30, 0.20])
    assert person.worst[0].default == pytest.approx(0.05) and person.worst[0].candidate == pytest.approx(0.35)
    assert len(person.best) == 2 and all(p.difference < 0 for p in person.best)

    cat = found["cat"]  # no photo worse: nothing named on the losing side
    assert (cat.worse, cat.better, cat.worst) == (0, 4, ())
    assert cat.mean_difference == pytest.approx(-0.001)
    assert found["all"].photos == 12 and found["all"].worst == person.worst

    text = spreads_table(list(found.values()), 2)
    assert "person_5.jpg +0.3000, person_9.jpg +0.2000" in text
    assert text.splitlines()[-2].startswith("cat") and "none" in text.splitlines()[-2]


def test_small_scopes_bad_k_and_other_photos_are_refused_or_marked():
    mae = np.linspace(0.01, 0.12, 12)
    found = {s.scope: s for s in spreads(_table("a", mae), _table("b", mae + 0.01), k=4)}
    assert found["cat"].without_worst is None and found["cat"].without_best is None  # 4 photos, 4 left out
    assert found["person"].without_worst == pytest.approx(-0.01)
    with pytest.raises(ValueError, match="k must be at least 1"):
        spreads(_table("a", mae), _table("b", mae), k=0)
    other = _table("b", mae)
    other = ScoreTable("b", np.array([f"x_{i}.jpg" for i in range(12)]), other.categories, mae, CURVES)
    with pytest.raises(ScoreFileError, match="different photos"):
        spreads(_table("a", mae), other)
