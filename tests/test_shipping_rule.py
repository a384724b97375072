"""The shipping rule (issue 38): verdicts on hand-made score tables, max-F as summarize computes it, and
the per-image curves file through a real evaluation and ``rmbg compare``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from shared_sets import link_pairs, pairs

from RMBG.commands.compare import main as compare_main
from RMBG.evaluation.evaluate import evaluate
from RMBG.evaluation.metrics import ImageScores, score_image, summarize
from RMBG.evaluation.score_file import (
    CURVES_NAME,
    ScoreFileError,
    ScoreTable,
    read_scores,
    write_curves,
)
from RMBG.evaluation.shipping_rule import resample_weights, set_figures, shipping_rule
from RMBG.images.io import read_mask
from RMBG.runtime.engines import file_digest

#: Hand-made validation part: photos per category.
SIZES = {"cat": 30, "object": 60, "person": 40}


def _default_table() -> ScoreTable:
    """A plausible default: per-photo MAE 0.02-0.10 and rising-then-falling F curves peaking 0.75-0.95."""
    rng = np.random.default_rng(7)
    categories = np.repeat(list(SIZES), list(SIZES.values()))
    n = len(categories)
    peak = rng.uniform(0.75, 0.95, n)
    where = rng.integers(60, 200, n)
    t = np.arange(256)
    curves = peak[:, None] * np.exp(-(((t[None, :] - where[:, None]) / 90.0) ** 2)) + 0.02
    return ScoreTable("default", np.array([f"{c}_{i}.jpg" for i, c in enumerate(categories)]), categories,
                      rng.uniform(0.02, 0.10, n), curves)


def _changed(table: ScoreTable, mae_shift, curve_shift, name="candidate") -> ScoreTable:
    """``table`` with per-photo shifts of MAE and of the whole F curve (arrays or scalars)."""
    mae = np.clip(table.mae + mae_shift, 0, 1)
    curves = np.clip(table.f_curves + np.asarray(curve_shift, float).reshape(-1, 1), 0, 1)
    return ScoreTable(name, table.images, table.categories, mae, curves, table.digests)


def _by_category(table: ScoreTable, **values) -> np.ndarray:
    """A per-photo array holding ``values[category]`` (0 for categories not named)."""
    return np.array([values.get(c, 0.0) for c in table.categories], float)


def _check(verdict, scope, metric):
    return next(c for c in verdict.checks if c.scope == scope and c.metric == metric)


# ---------------------------------------------------------------------------
# Verdicts on hand-made tables
# ---------------------------------------------------------------------------
def test_better_candidate_is_accepted_and_worse_refused():
    default = _default_table()
    better = shipping_rule(_changed(default, -0.01, +0.02), default, draws=2000)
    assert better.accept, better.table()
    assert all(c.passed for c in better.checks)
    assert _check(better, "all", "mae").difference == pytest.approx(-0.01)
    assert _check(better, "all", "max_f").difference == pytest.approx(0.02, abs=1e-9)

    worse = shipping_rule(_changed(default, +0.01, -0.02), default, draws=2000)
    assert not worse.accept
    assert {(c.scope, c.metric) for c in worse.failed()} == {
        (scope, metric) for scope in ["all", *SIZES] for metric in ("mae", "max_f")}
    assert "overall MAE" in worse.reason and "worse beyond noise" in worse.reason


def test_better_overall_but_clearly_worse_in_one_category_is_refused():
    default = _default_table()
    mae = _by_category(default, object=-0.03, person=-0.02, cat=+0.03)
    curve = _by_category(default, object=+0.04, person=+0.03, cat=-0.04)
    verdict = shipping_rule(_changed(default, mae, curve), default, draws=2000)
    overall = [c for c in verdict.checks if c.scope == "all"]
    assert all(c.passed and c.needs == "better" for c in overall), verdict.table()
    assert not verdict.accept
    assert {(c.scope, c.metric) for c in verdict.failed()} == {("cat", "mae"), ("cat", "max_f")}
    assert verdict.reason.startswith("cat MAE is worse beyond noise")


def test_worse_within_noise_in_a_category_is_accepted():
    """A category a hair worse on average, with photos scattered both ways, is noise, not a regression."""
    default = _default_table()
    n_cat = SIZES["cat"]
    scatter = np.where(np.arange(n_cat) % 2 == 0, 0.05, -0.048)  # mean +0.001: worse, far inside the spread
    mae = _by_category(default, object=-0.01, person=-0.01)
    curve = _by_category(default, object=+0.02, person=+0.02)
    mae[default.categories == "cat"] = scatter
    curve[default.categories == "cat"] = -scatter
    candidate = _changed(default, mae, curve)
    verdict = shipping_rule(candidate, default, draws=2000)
    cat_mae, cat_f = _check(verdict, "cat", "mae"), _check(verdict, "cat", "max_f")
    assert cat_mae.difference > 0 and cat_f.difference < 0  # worse in both figures on the full sample ...
    assert cat_mae.bound < 0 < cat_f.bound  # ... but the intervals reach the better side
    assert verdict.accept, verdict.table()
    # with a one-sided 50 % "interval" (the median) the same category counts as worse: the noise test decides
    assert not shipping_rule(candidate, default, draws=2000, confidence=0.501).accept


def test_a_tie_is_refused():
    default = _default_table()
    twin = ScoreTable("twin", default.images, default.categories, default.mae, default.f_curves)
    verdict = shipping_rule(twin, default, draws=500)
    assert not verdict.accept
    assert {(c.scope, c.metric) for c in verdict.failed()} == {("all", "mae"), ("all", "max_f")}
    assert "ties the default's" in verdict.reason
    # and the rows may come in any order: the rule pairs photos by name
    order = np.random.default_rng(1).permutation(len(default))
    shuffled = ScoreTable("shuffled", default.images[order], default.categories[order], default.mae[order],
                          default.f_curves[order])
    again = shipping_rule(shuffled, default, draws=500)
    assert [c.difference for c in again.checks] == [0.0] * len(again.checks)


def test_photos_left_out_no_longer_count_and_unknown_names_are_refused():
    """A candidate better only on the photos its checkpoint was chosen on passes the rule on all photos and is
    refused once those photos are left out (a tie on the rest)."""
    default = _default_table()
    checked = default.images[::4]  # a seeded check subset stands for the run's checked_photos.txt
    gain = np.isin(default.images, checked)
    candidate = _changed(default, np.where(gain, -0.01, 0.0), np.where(gain, 0.02, 0.0))
    assert shipping_rule(candidate, default, draws=500).accept
    rest = shipping_rule(candidate.without(checked), default.without(checked), draws=500)
    assert not rest.accept and "ties the default's" in rest.reason
    assert rest.photos == len(default) - len(checked)
    with pytest.raises(ScoreFileError, match="default: no photo named nowhere.jpg"):
        default.without(["nowhere.jpg"])
    with pytest.raises(ScoreFileError, match="leaves none to score"):
        default.without(default.images)


def test_resamples_are_seeded_stratified_and_paired():
    default = _default_table()
    first = np.concatenate(list(resample_weights(default.categories, 2500, seed=3)))
    assert np.array_equal(first, np.concatenate(list(resample_weights(default.categories, 2500, seed=3))))
    assert not np.array_equal(first, np.concatenate(list(resample_weights(default.categories, 2500, seed=4))))
    assert first.shape == (2500, len(default))
    for category, size in SIZES.items():
        assert np.all(first[:, default.categories == category].sum(axis=1) == size)
    candidate = _changed(default, -0.002, 0.004)
    a = shipping_rule(candidate, default, draws=1500, seed=11)
    assert a == shipping_rule(candidate, default, draws=1500, seed=11)
    # paired: a constant per-photo shift leaves no noise, every resample sees exactly the shift
    assert _check(a, "cat", "mae").bound == pytest.approx(-0.002)


def test_set_max_f_is_summarize_max_f_not_the_mean_of_per_image_max_f(shared_data):
    """On real ECSSD masks: the rule's full-sample figures are summarize's, not the naive mean of max-F.

    The predictions are the masks at two levels of grey (foreground 0.35 on background 0.05, or 0.95 on
    0.6, alternately), so each photo is perfect at its own thresholds and no one threshold suits all.
    """
    rng = np.random.default_rng(0)
    scores: list[ImageScores] = []
    for k, (image, mask) in enumerate(pairs(shared_data / "ecssd", limit=6)):
        gt = read_mask(mask) > 0.5
        high, low = (0.35, 0.05) if k % 2 == 0 else (0.95, 0.6)
        pred = np.clip(np.where(gt, high, low) + rng.uniform(0, 0.05, gt.shape), 0, 1)
        scores.append(score_image(pred, gt))
    mae = np.array([s.mae for s in scores])
    curves = np.array([s.f_curve for s in scores])
    mae_set, max_f_set = set_figures(mae, curves)
    reference = summarize(scores)
    assert mae_set[0] == pytest.approx(reference["mae"], abs=1e-12)
    assert max_f_set[0] == pytest.approx(reference["max_f"], abs=1e-12)
    assert abs(max_f_set[0] - np.mean([s.max_f for s in scores])) > 0.05  # the naive figure differs here
    # a resample that takes one photo three times is summarize of that list
    weights = np.array([[3, 0, 1, 1, 1, 0]], float)
    picked = [scores[0]] * 3 + scores[2:5]
    assert set_figures(mae, curves, weights)[1][0] == pytest.approx(summarize(picked)["max_f"], abs=1e-12)


def test_tables_that_score_other_photos_are_refused_as_input():
    default = _default_table()
    fewer = ScoreTable("fewer", default.images[1:], default.categories[1:], default.mae[1:], default.f_curves[1:])
    with pytest.raises(ScoreFileError, match="different photos"):
        shipping_rule(fewer, default)
    other = np.array(["x"] * len(default))
    hashed = ScoreTable("hashed", default.images, default.categories, default.mae, default.f_curves, other)
    with pytest.raises(ScoreFileError, match="a different file"):
        shipping_rule(hashed, ScoreTable("d", default.images, default.categories, default.mae,
                                         default.f_curves, np.array(["y"] * len(default))))


# ---------------------------------------------------------------------------
# The curves file through a real evaluation, and the command
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def peer_run(shared_data, peer_onnx, tmp_path_factory):
    """u2netp on 3 photos of each shared set (cats, ECSSD objects, people), one evaluation."""
    chosen = [p for folder in ("cats", "ecssd", "people") for p in pairs(shared_data / folder, limit=3)]
    data = link_pairs(chosen, tmp_path_factory.mktemp("mixed"))
    out = tmp_path_factory.mktemp("report")
    report = evaluate(data, peers=[peer_onnx], out_dir=out, gallery_size=0, progress=False)
    return data, out, report


def test_curves_file_round_trips_through_evaluate(peer_run):
    data, out, report = peer_run
    table = read_scores(out)  # one model in the file: no name needed
    csv = pd.read_csv(out / "per_image.csv")
    assert table.name == "u2netp" and list(table.images) == list(csv["image"])
    assert list(table.categories) == list(csv["category"]) and set(table.categories) == {"cat", "object", "person"}
    assert [str(d) for d in table.digests] == [file_digest(data / "images" / name) for name in table.images]
    assert np.allclose(table.mae, csv["mae"], atol=1e-6)
    assert np.allclose(table.f_curves.max(axis=1), csv["max_f"], atol=1e-6)
    assert np.allclose(table.f_curves.mean(axis=1), csv["mean_f"], atol=1e-6)
    # the rule's figures from the file are report.json's, overall and per category
    summary = report["models"]["u2netp"]
    for scope, expected in [("all", summary["summary"]), *summary["per_category"].items()]:
        index = slice(None) if scope == "all" else table.categories == scope
        mae, max_f = set_figures(table.mae[index], table.f_curves[index])
        assert mae[0] == pytest.approx(expected["mae"], abs=1e-6)
        assert max_f[0] == pytest.approx(expected["max_f"], abs=1e-6)


def test_compare_command_exit_status_and_table(peer_run, tmp_path, capsys):
    _, out, _ = peer_run
    assert compare_main(["--default", str(out), "--candidate", str(out / CURVES_NAME), "--draws", "300"]) == 1
    printed = capsys.readouterr().out
    assert "verdict: REFUSE" in printed and "ties the default's" in printed

    # a candidate better on every photo, written as evaluate writes it, is accepted (exit 0), figures in JSON
    table = read_scores(out)
    better = _changed(table, -0.005, +0.01)
    models = {"u2netp": ("peer", table.mae, table.f_curves), "better": ("model", better.mae, better.f_curves)}
    both = write_curves(tmp_path / CURVES_NAME, models, table.images, table.categories, table.digests,
                        None, "mixed")
    verdict_json = tmp_path / "verdict.json"
    argv = ["--default", str(both), "--default-model", "u2netp", "--candidate", str(both),
            "--candidate-model", "better", "--draws", "300", "--json", str(verdict_json)]
    assert compare_main([*argv, "--photos", "2"]) == 0
    printed = capsys.readouterr().out
    assert "verdict: ACCEPT" in printed
    saved = json.loads(verdict_json.read_text())
    assert saved["accept"] is True and len(saved["checks"]) == 2 * (1 + 3)
    assert _check_dict(saved, "all", "mae")["difference"] == pytest.approx(-0.005)
    # --photos: where the difference lies, printed and in the JSON; better on every photo, so none is named
    assert "where the MAE difference lies" in printed
    spread = {s["scope"]: s for s in saved["spreads"]}
    assert spread["all"]["better"] == len(table) - int(np.sum(table.mae == 0)) and spread["all"]["worst"] == []
    assert spread["cat"]["mean_difference"] == pytest.approx(-0.005)
    assert compare_main([*argv, "--photos", "0"]) == 2
    assert "k must be at least 1" in capsys.readouterr().err

    # the photos a run checked its checkpoints on, left out: the rule scores the others only
    checked = tmp_path / "checked_photos.txt"
    checked.write_text("".join(f"{name}\n" for name in table.images[: len(table) // 2]))
    assert compare_main([*argv[:-2], "--leave-out", str(checked), "--json", str(verdict_json)]) == 0
    assert f"left out the {len(table) // 2} photos of {checked}" in capsys.readouterr().err
    assert json.loads(verdict_json.read_text())["photos"] == len(table) - len(table) // 2
    checked.write_text("typo.jpg\n")
    assert compare_main([*argv[:-2], "--leave-out", str(checked)]) == 2
    assert "no photo named typo.jpg" in capsys.readouterr().err

    # inputs that cannot be compared: exit 2 with the reason
    assert compare_main(["--default", str(both), "--candidate", str(out)]) == 2
    assert "holds 2 models (u2netp, better): name one" in capsys.readouterr().err
    assert compare_main(["--default", str(tmp_path / "nowhere"), "--candidate", str(out)]) == 2
    assert "not found" in capsys.readouterr().err


def _check_dict(saved: dict, scope: str, metric: str) -> dict:
    return next(c for c in saved["checks"] if c["scope"] == scope and c["metric"] == metric)
