"""RMBG.evaluation.metrics: hand-computed cases, the summary convention, and agreement with py_sod_metrics."""

from __future__ import annotations

import numpy as np
import pytest

from RMBG.evaluation.metrics import (
    METRIC_KEYS,
    format_table,
    pr_curve,
    prepare,
    score_image,
    summarize,
    summarize_by,
)
from RMBG.images.io import read_mask

# A 20x20 ground truth with a 10x10 foreground block well inside the border
# (5 px margin, more than the 7x7 kernel of the weighted F-measure reaches).
N = 400
FG = 100
M = FG / N  # foreground share


def block(rows=slice(5, 15), cols=slice(5, 15), value=1.0) -> np.ndarray:
    mask = np.zeros((20, 20), np.float32)
    mask[rows, cols] = value
    return mask


GT = block()
#: F at the last threshold, where every pixel is called foreground:
#: precision = M, recall = 1, F = 1.3 * M / (0.3 * M + 1).
F_ALL = 1.3 * M / (0.3 * M + 1)
#: E-measure of an all-foreground (or all-background) binary map: each pixel 0.25, over N - 1.
E_FLAT = 0.25 * N / (N - 1)


def test_perfect_mask_scores_are_the_known_values():
    s = score_image(GT.copy(), GT)
    assert s.mae == 0.0
    assert s.iou == 1.0 and s.dice == 1.0
    assert s.max_f == pytest.approx(1.0)
    # 255 thresholds give F = 1, the last one (everything foreground) gives F_ALL.
    assert s.mean_f == pytest.approx((255 + F_ALL) / 256, abs=1e-12)
    assert s.weighted_f == pytest.approx(1.0, abs=1e-9)
    assert s.s_measure == pytest.approx(1.0, abs=1e-9)
    # Every pixel aligned (1 each) over N - 1: the reference implementation's N/(N-1).
    assert s.max_e == pytest.approx(N / (N - 1), abs=1e-12)
    assert s.mean_e == pytest.approx((255 * N / (N - 1) + E_FLAT) / 256, abs=1e-12)


def test_empty_prediction_scores_are_the_known_values():
    s = score_image(np.zeros_like(GT), GT)
    assert s.mae == pytest.approx(M)
    assert s.iou == 0.0 and s.dice == 0.0
    # Only the last threshold (everything foreground) finds any foreground.
    assert s.max_f == pytest.approx(F_ALL, abs=1e-12)
    assert s.mean_f == pytest.approx(F_ALL / 256, abs=1e-12)
    assert s.weighted_f == pytest.approx(0.0, abs=1e-12)
    # Object score: background part perfect (weight 1 - M), foreground part 0; region score 0.
    assert s.s_measure == pytest.approx(0.5 * (1 - M), abs=1e-9)
    assert s.max_e == pytest.approx(E_FLAT, abs=1e-12)
    assert s.mean_e == pytest.approx(E_FLAT, abs=1e-12)


def test_inverted_mask_scores_are_the_known_values():
    s = score_image(1.0 - GT, GT)
    assert s.mae == pytest.approx(1.0)
    assert s.iou == 0.0 and s.dice == 0.0
    assert s.max_f == pytest.approx(F_ALL, abs=1e-12)
    assert s.mean_f == pytest.approx(F_ALL / 256, abs=1e-12)
    assert s.weighted_f == pytest.approx(0.0, abs=1e-12)
    assert s.s_measure == 0.0
    # Fully misaligned at every threshold but the last (E_FLAT there).
    assert s.max_e == pytest.approx(E_FLAT, abs=1e-12)
    assert s.mean_e == pytest.approx(E_FLAT / 256, abs=1e-12)


def test_shifted_block_iou_dice_mae_at_threshold_half():
    # Prediction: the block shifted 5 columns right, 50 of its 100 pixels overlap.
    pred = block(cols=slice(10, 20), value=0.7)
    pred[pred == 0] = 0.5  # exactly 0.5 is background for IoU/Dice (pred > 0.5)
    s = score_image(pred, GT)
    assert s.iou == pytest.approx(50 / 150)
    assert s.dice == pytest.approx(2 * 50 / (100 + 100))
    # |0.7-1| on 50 overlap, |0.7-0| on 50, |0.5-1| on 50 missed fg, |0.5-0| on the other 250 bg.
    assert s.mae == pytest.approx((50 * 0.3 + 50 * 0.7 + 50 * 0.5 + 250 * 0.5) / N, abs=1e-7)


def test_uint8_inputs_match_float_inputs():
    pred = block(cols=slice(8, 18), value=0.6)
    a = score_image(pred, GT).as_dict()
    b = score_image(np.rint(pred * 255).astype(np.uint8), (GT * 255).astype(np.uint8)).as_dict()
    for key in METRIC_KEYS:
        assert a[key] == pytest.approx(b[key], abs=2e-3), key


def test_prediction_is_resized_to_the_ground_truth():
    big = np.kron(GT, np.ones((3, 3), np.float32))  # 60x60 version of the same mask
    pred, gt = prepare(big, GT)
    assert pred.shape == gt.shape == GT.shape
    assert score_image(big, GT).mae == pytest.approx(0.0, abs=1e-6)
    assert score_image(big, GT).iou == pytest.approx(1.0)


@pytest.mark.parametrize(
    "pred, message",
    [
        (np.full((20, 20), np.nan, np.float32), "NaN"),
        (np.full((20, 20), 2.0, np.float32), r"\[0, 1\]"),
        (np.zeros((20, 20, 3), np.float32), "2-D"),
    ],
)
def test_bad_predictions_raise_a_clear_error(pred, message):
    with pytest.raises(ValueError, match=message):
        score_image(pred, GT)


def test_summary_uses_the_mean_curve_not_the_mean_of_maxima():
    # Each prediction separates fg from bg perfectly, but at different levels:
    # c is perfect for thresholds in (0.6, 0.9], d only in (0.1, 0.4].
    c = score_image(GT * 0.3 + 0.6, GT)
    d = score_image(GT * 0.3 + 0.1, GT)
    assert c.max_f == pytest.approx(1.0) and d.max_f == pytest.approx(1.0)
    two = summarize([c, d])
    # No threshold is perfect for both, so the dataset max-F (max of the mean
    # curve, the SOD convention) is below the mean of the per-image maxima.
    assert two["max_f"] < 0.99
    # Means of curves and of scalars are plain per-image means.
    assert two["mean_f"] == pytest.approx((c.mean_f + d.mean_f) / 2)
    assert two["max_e"] <= max(c.max_e, d.max_e)
    assert two["mae"] == pytest.approx((c.mae + d.mae) / 2)
    # Two copies of one image summarise to that image's own values.
    same = summarize([c, c])
    for key, value in c.as_dict().items():
        assert same[key] == pytest.approx(value), key


def _noisy_predictions(shared_data, count=6):
    rng = np.random.default_rng(0)
    masks = sorted((shared_data / "ecssd" / "masks").glob("*.png"))[:count]
    gts = [read_mask(path) for path in masks]
    preds = []
    for gt in gts:
        noise = rng.normal(0, 0.25, gt.shape)
        blur = np.clip(0.8 * gt + 0.1 + noise, 0, 1).astype(np.float32)
        preds.append(blur)
    return preds, gts


def test_summary_matches_py_sod_metrics_accumulators(shared_data):
    import py_sod_metrics as sod

    preds, gts = _noisy_predictions(shared_data)
    scores = [score_image(p, g) for p, g in zip(preds, gts)]
    summary = summarize(scores)

    fm = sod.FmeasureV2(
        {
            "f": sod.FmeasureHandler(with_dynamic=True, with_adaptive=False, beta=0.3),
            "iou": sod.IOUHandler(with_dynamic=False, with_adaptive=False, with_binary=True),
            "dice": sod.DICEHandler(with_dynamic=False, with_adaptive=False, with_binary=True),
        }
    )
    em, sm, wfm, mae = sod.Emeasure(), sod.Smeasure(), sod.WeightedFmeasure(), sod.MAE()
    for p, g in zip(preds, gts):
        p64, g_bool = p.astype(np.float64), g > 0.5
        for metric in (fm, em, sm, wfm, mae):
            metric.step(p64, g_bool, normalize=False)
    f_curve = fm.get_results()["f"]["dynamic"]
    e_curve = em.get_results()["em"]["curve"]
    expected = {
        "mae": mae.get_results()["mae"],
        "max_f": f_curve.max(),
        "mean_f": f_curve.mean(),
        "weighted_f": wfm.get_results()["wfm"],
        "s_measure": sm.get_results()["sm"],
        "max_e": e_curve.max(),
        "mean_e": e_curve.mean(),
        "iou": fm.get_results()["iou"]["binary"],
        "dice": fm.get_results()["dice"]["binary"],
    }
    for key in METRIC_KEYS:
        assert summary[key] == pytest.approx(float(expected[key]), abs=1e-9), key
    # And the noisy predictions are scored as mediocre, not perfect or null.
    assert 0.1 < summary["mae"] < 0.4
    assert 0.5 < summary["max_f"] < 1.0


def test_summaries_per_category_and_pr_curve():
    good = score_image(GT.copy(), GT)
    bad = score_image(1.0 - GT, GT)
    overall, per_cat = summarize_by([good, bad, good], ["cat", "person", "cat"])
    assert list(per_cat) == ["cat", "person"]
    assert per_cat["cat"]["mae"] == 0.0 and per_cat["person"]["mae"] == 1.0
    assert overall["mae"] == pytest.approx(1 / 3)
    precision, recall = pr_curve([good, bad])
    assert precision.shape == recall.shape == (256,)
    assert recall[-1] == pytest.approx(1.0)  # everything foreground finds all of it
    assert precision[0] == pytest.approx(0.5)  # strictest threshold: good 1, bad 0
    assert all(np.isnan(v) for v in summarize([]).values())
    with pytest.raises(ValueError, match="categories"):
        summarize_by([good], [])


def test_format_table_lists_every_row_and_metric():
    text = format_table({"u2netp overall": {"mae": 0.04, "iou": 0.9}, "u2netp / cat": {"mae": float("nan")}})
    lines = text.splitlines()
    assert len(lines) == 4 and all(key in lines[0] for key in METRIC_KEYS)
    assert "0.0400" in lines[2] and "0.9000" in lines[2]
    assert lines[3].split()[-1] == "-"
