"""Foreground colour estimation at soft edges (RMBG.removal.foreground), measured on shared photos.

The scene (RMBG.evaluation.fringe): an ECSSD photo with its ground-truth mask softened by
a Gaussian blur, composited onto vivid green; cut out with that known soft
alpha (so only the colour step is measured) and composed onto white, it
should look like the photo itself over white. In the edge band the estimated
colours must carry at most half the naive composite's green spill and at
most 0.9x its colour error.

The scene people meet (issue 36): held-out photos (the default model's
validation list) shot on green, cut out with the model's OWN mask; the band of
estimated colours reaches past the mask's soft pixels, so the spill must fall
to at most 0.5x the naive composite's (about 0.0x measured on 24 photos).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from shared_sets import pairs

from RMBG.constants import FOREGROUND_SPREAD_MODEL_PX, MODELS_DIR
from RMBG.evaluation import fringe as FR
from RMBG.evaluation.prompts import validation_pairs
from RMBG.images.io import read_image, read_mask
from RMBG.removal import compose as C
from RMBG.removal.foreground import (
    estimate_foreground,
    soft_band,
    spread_band,
    spread_width,
)

#: Shared ECSSD photos in the measurement (400 px, so the whole module takes a few seconds).
PHOTOS = 12


@pytest.fixture(scope="module")
def scenes(shared_data):
    """``(photo, soft alpha, photo shot on green)`` for ECSSD objects."""
    found = []
    for image_path, mask_path in pairs(shared_data / "ecssd", limit=PHOTOS):
        photo = read_image(image_path)
        truth = cv2.resize(read_mask(mask_path), (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_NEAREST)
        alpha8 = FR.soften(truth)
        found.append((photo, alpha8, FR.screen_scene(photo, alpha8)))
    if len(found) < PHOTOS:
        pytest.skip(f"../shared/data/ecssd holds fewer than {PHOTOS} photo/mask pairs")
    return found


def _white(scene, alpha8, estimate: bool) -> np.ndarray:
    return np.asarray(C.compose(scene, alpha8, "color", bg_color=FR.WHITE, foreground_estimation=estimate))


def _pooled(rows: list[dict]) -> dict[str, float]:
    """Scores of several photos pooled over all their band pixels."""
    pixels = sum(r["pixels"] for r in rows)
    return {key: sum(r[key] * r["pixels"] for r in rows) / pixels for key in ("spill", "colour_error")}


def test_estimated_colours_halve_the_green_spill_on_shared_photos(scenes):
    naive, estimated = [], []
    for photo, alpha8, scene in scenes:
        truth = FR.over(photo, alpha8, FR.WHITE)
        naive.append(FR.fringe_scores(_white(scene, alpha8, False), truth, alpha8))
        estimated.append(FR.fringe_scores(_white(scene, alpha8, True), truth, alpha8))
        assert estimated[-1]["spill"] < naive[-1]["spill"], (naive[-1], estimated[-1])
    before, after = _pooled(naive), _pooled(estimated)
    assert before["spill"] > 20  # the scene really has a green rim to remove
    assert after["spill"] <= 0.5 * before["spill"], (before, after)
    assert after["colour_error"] <= 0.9 * before["colour_error"], (before, after)


def test_only_soft_pixels_change_and_a_hard_mask_keeps_the_photo(scenes):
    """With ``model_side=None`` (an exact matte) only the mask's own soft pixels change."""
    photo, alpha8, scene = scenes[0]
    estimate = estimate_foreground(scene, alpha8, model_side=None)
    soft = soft_band(alpha8)
    assert soft.any() and np.array_equal(estimate[~soft], scene[~soft])
    assert not np.array_equal(estimate[soft], scene[soft])
    hard = np.where(alpha8 >= 128, 255, 0).astype(np.uint8)
    assert estimate_foreground(scene, hard, model_side=None) is scene  # nothing to estimate, no copy


def test_the_band_grows_with_the_photo_over_the_model_size(scenes):
    """A model's mask: the band is the soft pixels grown by a width in model pixels, so a hard mask
    (``--threshold``) also gets estimated colours next to its edge, and nothing farther changes."""
    photo, alpha8, scene = scenes[0]
    height, width = alpha8.shape
    for side in (400, 1600, 4000):
        for model_side in (320, 1024):
            # FOREGROUND_SPREAD_MODEL_PX model pixels in photo pixels, made odd (centred)
            expected = FOREGROUND_SPREAD_MODEL_PX * side / model_side
            assert abs(spread_width(side * 3 // 4, side, model_side) - expected) <= 1.5
    assert spread_width(height, width, None) == 1
    hard = np.where(alpha8 >= 128, 255, 0).astype(np.uint8)
    estimate = estimate_foreground(scene, hard)
    band = spread_band(hard, spread_width(height, width))
    assert soft_band(alpha8).sum() > 0 and band.sum() > soft_band(hard).sum()
    assert np.array_equal(estimate[~band], scene[~band])
    # inside the hard mask, right at its edge, the green of the softened truth is taken out
    inner_rim = band & (hard == 255) & (alpha8 < 250)
    assert FR.greenness(estimate)[inner_rim].mean() < FR.greenness(scene)[inner_rim].mean() - 10


def test_tiles_give_the_same_colours_as_one_block(scenes):
    _, alpha8, scene = scenes[1]
    tiled = estimate_foreground(scene, alpha8, tile=48).astype(int)
    whole = estimate_foreground(scene, alpha8, tile=4096).astype(int)
    assert np.abs(tiled - whole).max() <= 1


def test_a_large_photo_is_estimated_through_the_reduced_wide_pass(shared_data):
    """Above FOREGROUND_WORK_SIDE the wide pass runs shrunk and is sampled back; it must still work."""
    image_path, mask_path = pairs(shared_data / "ecssd", limit=1)[0]
    photo = read_image(image_path)
    size = (photo.shape[1] * 3, photo.shape[0] * 3)  # 1200 px: the wide pass runs at half size
    photo = cv2.resize(photo, size, interpolation=cv2.INTER_CUBIC)
    truth = cv2.resize(read_mask(mask_path), size, interpolation=cv2.INTER_NEAREST)
    alpha8 = FR.soften(truth, sigma=3 * FR.SOFTEN_SIGMA)
    scene = FR.screen_scene(photo, alpha8)
    white = FR.over(photo, alpha8, FR.WHITE)
    naive = FR.fringe_scores(_white(scene, alpha8, False), white, alpha8)
    estimated = FR.fringe_scores(_white(scene, alpha8, True), white, alpha8)
    assert estimated["spill"] <= 0.5 * naive["spill"] and estimated["colour_error"] < naive["colour_error"]


@pytest.mark.parametrize("mode", ["rgba", "color", "image", "blur", "side-by-side"])
def test_every_mode_that_shows_the_subject_uses_the_estimate(scenes, mode):
    photo, alpha8, scene = scenes[2]
    options = {"bg_image": photo} if mode == "image" else {}
    on = np.asarray(C.compose(scene, alpha8, mode, foreground_estimation=True, **options)).astype(int)
    off = np.asarray(C.compose(scene, alpha8, mode, foreground_estimation=False, **options)).astype(int)
    width = scene.shape[1]
    if mode == "side-by-side":  # the photo half stays the photo; the cut-out half changes
        assert np.array_equal(on[:, :width], off[:, :width])
        on, off = on[:, width + C.SEPARATOR_WIDTH :], off[:, width + C.SEPARATOR_WIDTH :]
    band = spread_band(alpha8, spread_width(*alpha8.shape))
    assert np.array_equal(on[~band], off[~band])
    assert np.abs(on[band] - off[band]).mean() > 3


def test_rgba_stores_the_estimated_colours(scenes):
    photo, alpha8, scene = scenes[3]
    rgba = np.asarray(C.compose(scene, alpha8, "rgba"))
    assert np.array_equal(rgba[..., :3], estimate_foreground(scene, alpha8))
    assert np.array_equal(rgba[..., 3], alpha8)
    # an editor laying the file over white sees what mode color shows
    laid = np.rint(FR.over(rgba[..., :3], alpha8, FR.WHITE))
    assert np.abs(laid - _white(scene, alpha8, True)).max() <= 1


def test_the_server_option_parses_true_and_false():
    from RMBG.apps.server.work import ApiError, Options

    models = {"only": None}
    assert Options.parse({}, models, False).foreground_estimation is True
    assert Options.parse({"foreground_estimation": "false"}, models, False).foreground_estimation is False
    assert Options.parse({"foreground_estimation": "1"}, models, False).foreground_estimation is True
    with pytest.raises(ApiError, match="expected true or false"):
        Options.parse({"foreground_estimation": "maybe"}, models, False)


#: Held-out photos per set in the model's-mask test (people, ECSSD, cats).
MODEL_PHOTOS = 2


@pytest.fixture(scope="module")
def model_mask_scores(shared_data, model_path):
    """:func:`RMBG.evaluation.fringe.model_mask_fringe` of held-out photos with the default model,
    today's grown band and the mask's own soft pixels (``model_side=None``)."""
    from RMBG.removal.pipeline import Remover

    remover = Remover(model_path)

    class OwnBand:  # the band before issue 36: the mask's own soft pixels
        small_masks, finish = remover.small_masks, remover.finish

        @staticmethod
        def picture(image, small, mode, bg_color="#FFFFFF", foreground_estimation=True):
            alpha = C.alpha_to_uint8(remover.finish(image, small))
            return C.compose(image, alpha, mode, bg_color=bg_color, foreground_estimation=foreground_estimation,
                             model_side=None)

    rows = {"grown": {}, "own": {}}
    for set_name in ("people", "ecssd", "cats"):
        found = validation_pairs(shared_data, set_name, MODELS_DIR / "rmbg-default-val.txt", MODEL_PHOTOS)
        if len(found) < MODEL_PHOTOS:
            pytest.skip(f"fewer than {MODEL_PHOTOS} validation photos of {set_name} under {shared_data}")
        for image_path, mask_path in found:
            photo = read_image(image_path)
            truth = cv2.resize(read_mask(mask_path), (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_NEAREST)
            for name, variant in (("grown", remover), ("own", OwnBand)):
                for key, score in FR.model_mask_fringe(photo, truth, variant).items():
                    rows[name].setdefault(key, []).append(score)
    return {name: {key: FR.pooled(value) for key, value in table.items()} for name, table in rows.items()}


def test_on_the_models_own_mask_the_grown_band_takes_out_the_green(model_mask_scores):
    """Issue 36's goal: spill at most 0.5x the naive composite's with the model's own mask (measured
    0.00x on 24 photos, 0.59x with the old band), colour error no worse, the colours alone far better."""
    grown, own = model_mask_scores["grown"], model_mask_scores["own"]
    naive = grown["naive"]
    assert naive["spill"] > 8, naive  # the model's mask really leaves green to take out
    assert abs(grown["estimated"]["spill"]) <= 0.5 * naive["spill"], grown
    assert abs(grown["estimated"]["spill"]) < 0.75 * own["estimated"]["spill"], (grown, own)
    # the mask's own error stays in the colour error (no colour undoes it): it may only shrink
    assert grown["estimated"]["colour_error"] <= 0.995 * naive["colour_error"], grown
    assert grown["estimated_colours"]["colour_error"] <= 0.8 * grown["naive_colours"]["colour_error"], grown
    assert grown["estimated_colours"]["colour_error"] < own["estimated_colours"]["colour_error"], (grown, own)
