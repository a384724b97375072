"""The shipped default model: the right file, its recorded preprocessing, and sane masks.

Guards against a broken, truncated or swapped ``Data/models/rmbg-default.keras``:
it must load, describe how to feed it, and segment held-out photos (the
validation split it was judged on, ``Data/models/rmbg-default-val.txt``)
from every category with a low error.

Why the validation list and not the test list: the shipped file (attempt 9 of issue 38) starts from the
``finetune`` model, which trained on an older two-way split whose training part holds today's test part,
so the validation photos are the only labelled ones it never trained on. These are guards against a broken
file, not reported figures (the model card's are); a default that trained on the train part alone
should be gated on ``rmbg-default-test.txt``.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from RMBG.constants import DEFAULT_MODEL_PATH, MODELS_DIR
from RMBG.evaluation.metrics import resize_to
from RMBG.images.io import read_image, read_mask
from RMBG.models.info import read_model_info
from RMBG.training.presets import get_preset

VAL_LIST = MODELS_DIR / "rmbg-default-val.txt"
PER_CATEGORY = 10
#: Highest mean MAE allowed on the first 10 validation photos of a category.
MAX_MAE = 0.06

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason=f"{DEFAULT_MODEL_PATH} is not shipped")


def validation_photos(limit: int = PER_CATEGORY) -> dict[str, list[str]]:
    """The first ``limit`` photos of each category in the shipped validation list."""
    chosen: dict[str, list[str]] = defaultdict(list)
    for line in VAL_LIST.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        category = line.rsplit("/", 1)[-1].split("_", 1)[0]
        if len(chosen[category]) < limit:
            chosen[category].append(line)
    return dict(chosen)


def test_the_validation_list_has_every_category():
    photos = validation_photos(limit=1000)
    assert set(photos) == {"cat", "object", "person"}
    # At least 15% of each shared set (cats 195, ECSSD 400, people 290) is held out.
    assert len(photos["cat"]) >= 0.15 * 195
    assert len(photos["object"]) >= 0.15 * 400
    assert len(photos["person"]) >= 0.15 * 290


def test_the_file_records_its_architecture_and_preprocessing():
    info = read_model_info(DEFAULT_MODEL_PATH)
    assert info.arch == "u2netp"
    assert info.input_size == 320
    np.testing.assert_allclose(info.mean, (0.485, 0.456, 0.406))
    np.testing.assert_allclose(info.std, (0.229, 0.224, 0.225))
    assert info.input_scale == "max"
    assert info.output_index == 0 and info.output_norm == "minmax"
    # attempt 11 of issue 38: the distill recipe started from the previous default (attempt 9, copied to
    # attempt9-start-copy.keras, itself distilled from the finetune model), blended back with it as the preset
    # says; not a copy of its start
    assert info.config["preset"] == "distill" and info.config["init"] == "attempt9-start-copy.keras"
    assert info.config["blend"] == {"start": "attempt9-start-copy.keras",
                                    "share": get_preset("distill", "u2netp").blend}
    assert info.config["source"] == "u2netp.onnx"
    assert DEFAULT_MODEL_PATH.stat().st_size < 10 * 1024 * 1024


def test_the_project_default_is_this_file():
    from RMBG.runtime.engines import default_model_path

    assert default_model_path() == DEFAULT_MODEL_PATH


@pytest.fixture(scope="module")
def held_out_errors(shared_data, peer_onnx) -> dict[str, dict[str, list[float]]]:
    """Per-photo MAE of the default model and of the peer, by category."""
    from RMBG.runtime.engines import load_segmenter

    models = {"ours": load_segmenter(DEFAULT_MODEL_PATH), "peer": load_segmenter(peer_onnx, peer=True)}
    errors: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in models}
    for category, photos in validation_photos().items():
        for relative in photos:
            image_path = shared_data / relative
            image = read_image(image_path)
            # Some shared masks are stored smaller than their photo (same aspect ratio).
            mask_path = image_path.parent.parent / "masks" / (image_path.stem + ".png")
            truth = resize_to(read_mask(mask_path), image.shape[:2])
            for name, segmenter in models.items():
                predicted = segmenter.predict_one(image)
                assert predicted.shape == truth.shape, relative
                errors[name][category].append(float(np.abs(predicted - truth).mean()))
    return errors


@pytest.mark.parametrize("category", ["cat", "object", "person"])
def test_masks_of_held_out_photos_are_accurate(held_out_errors, category):
    errors = held_out_errors["ours"][category]
    assert len(errors) == PER_CATEGORY
    # The median: a few camouflaged cats are hard for any model (MAE 0.1-0.2).
    assert np.median(errors) < MAX_MAE, f"{category}: per-photo MAE {np.round(errors, 3)}"


def test_held_out_error_is_low_and_below_the_peer(held_out_errors):
    ours = np.concatenate([held_out_errors["ours"][c] for c in ("cat", "object", "person")])
    peer = np.concatenate([held_out_errors["peer"][c] for c in ("cat", "object", "person")])
    assert ours.mean() < MAX_MAE
    # The fine-tune must beat the weights it started from (a swapped-in peer would tie).
    assert ours.mean() < 0.95 * peer.mean(), f"ours {ours.mean():.4f}, peer {peer.mean():.4f}"


def test_the_lion_keeps_its_black_backdrop_as_clean_as_the_peer_does(shared_data, peer_onnx):
    """What u2netp knew: the black gap between the lion's tail and hind leg stays background.

    ``seed_test/images/1.png`` is a lion cut out on black, so its backdrop is known
    (:func:`RMBG.evaluation.backdrop.flat_backdrop`). Unblended decoder fine-tunes half-filled that gap
    (1128 backdrop pixels over 0.5 against the peer's 398); the shipped blend must not leak more
    than the peer, by count or by mean alpha.
    """
    from RMBG.evaluation.backdrop import backdrop_leak, flat_backdrop
    from RMBG.runtime.engines import load_segmenter

    image = read_image(shared_data / "seed_test" / "images" / "1.png")
    backdrop = flat_backdrop(image)
    assert backdrop is not None
    ours = backdrop_leak(load_segmenter(DEFAULT_MODEL_PATH, runtime="tflite").predict_one(image), backdrop)
    peer = backdrop_leak(load_segmenter(peer_onnx, peer=True).predict_one(image), backdrop)
    assert peer.pixels_over_half > 100  # the peer leaks a little too: the comparison is not empty
    assert ours.pixels_over_half <= peer.pixels_over_half, (ours, peer)
    assert ours.mean_alpha <= peer.mean_alpha, (ours, peer)
