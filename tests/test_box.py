"""Choosing the subject (issue 36): the box prompt, ``--largest`` and ``--invert``, on shared photos.

* a box runs the model on the box's crop grown by ``BOX_MARGIN_FRACTION`` and
  pastes the mask back: exactly what running the model on that crop by hand
  gives, cleared outside the box;
* two held-out people side by side (their true masks known): a box around one
  keeps that one, well, and nothing of the other;
* ``--largest`` clears the islands of a mask, faint rim included;
* ``--invert``: the inverted mask and the mask add up to 255 everywhere;
* bad boxes are refused with the value named (CLI exit 2).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from RMBG.constants import MODELS_DIR
from RMBG.evaluation.prompts import truth_box, validation_pairs
from RMBG.images.io import read_image, read_mask
from RMBG.removal import box as B
from RMBG.removal.cleanup import keep_largest
from RMBG.removal.compose import alpha_to_uint8
from RMBG.removal.foreground import spread_band, spread_width

VAL_LIST = MODELS_DIR / "rmbg-default-val.txt"


@pytest.fixture(scope="module")
def people(shared_data):
    """The first three held-out people photos with their true masks at the photo's size (float 0-1)."""
    found = []
    for image_path, mask_path in validation_pairs(shared_data, "people", VAL_LIST, 3):
        photo = read_image(image_path)
        truth = cv2.resize(read_mask(mask_path), (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_NEAREST)
        found.append((image_path, photo, truth))
    if len(found) < 3:
        pytest.skip(f"fewer than 3 validation people photos under {shared_data}")
    return found


@pytest.fixture(scope="module")
def remover(model_path):
    from RMBG.removal.pipeline import Remover

    return Remover(model_path)


def test_box_crop_and_paste_equals_the_model_on_the_crop_by_hand(people, remover):
    _, photo, truth = people[0]
    height, width = photo.shape[:2]
    box = (width // 5, height // 6, width - width // 4, height - 2)
    alpha = remover.alpha(photo, box=box)
    # by hand: the box grown by the margin, clipped; the model on that crop; pasted; cleared outside the box
    x0, y0, x1, y1 = box
    gx, gy = round(B.BOX_MARGIN_FRACTION * (x1 - x0)), round(B.BOX_MARGIN_FRACTION * (y1 - y0))
    top, bottom, left, right = max(0, y0 - gy), min(height, y1 + gy), max(0, x0 - gx), min(width, x1 + gx)
    assert (top, bottom, left, right) != (0, height, 0, width)  # the crop really is a crop
    expected = np.zeros((height, width), np.float32)
    expected[top:bottom, left:right] = remover.alpha(np.ascontiguousarray(photo[top:bottom, left:right]))
    inside = np.zeros((height, width), bool)
    inside[y0:y1, x0:x1] = True
    expected[~inside] = 0
    np.testing.assert_array_equal(alpha, expected)
    assert alpha[inside].max() > 0.9  # the person is there
    # the same box as fractions of the photo names the same pixels
    fractions = (x0 / width, y0 / height, x1 / width, y1 / height)
    assert B.box_pixels(fractions, height, width) == box


def _side_by_side(left, right):
    """Two photos (and their masks) scaled to one height and put side by side."""
    height = min(left[1].shape[0], right[1].shape[0])
    photos, masks = [], []
    for _, photo, truth in (left, right):
        width = round(photo.shape[1] * height / photo.shape[0])
        photos.append(cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA))
        masks.append(cv2.resize(truth, (width, height), interpolation=cv2.INTER_NEAREST))
    return np.concatenate(photos, axis=1), masks[0], masks[1]


def test_a_box_on_one_of_two_people_keeps_only_that_one(people, remover):
    photo, left_truth, right_truth = _side_by_side(people[1], people[2])
    split = left_truth.shape[1]
    truth = np.zeros(photo.shape[:2], np.float32)
    truth[:, split:] = right_truth
    box = truth_box(truth, photo.shape[:2], grow=0.1)
    assert box[0] >= split * 0.9  # a box around the right-hand person
    plain = remover.alpha(photo)
    assert plain[:, :split][left_truth > 0.5].mean() > 0.5  # without a box the left person is kept too
    alpha = remover.alpha(photo, box=box)
    assert alpha[:, : box[0]].max() == 0  # nothing of the left person
    right = alpha[:, split:] > 0.5
    iou = (right & (right_truth > 0.5)).sum() / (right | (right_truth > 0.5)).sum()
    assert iou > 0.85, iou
    # and the box does at least as well on that person as the whole photo did
    assert np.abs(alpha - truth).mean() < np.abs(plain - truth).mean()


def test_largest_clears_islands_and_their_faint_rim(people):
    _, _, truth = people[0]
    subject = keep_largest((truth > 0.5).astype(np.float32))  # one region of a real mask
    mask = cv2.GaussianBlur(subject, (0, 0), 2.0)
    height, width = mask.shape
    islands = np.zeros_like(mask)
    free = np.argwhere(cv2.dilate((mask > 0).astype(np.uint8), np.ones((25, 25), np.uint8)) == 0)
    assert len(free) > 100, "the photo needs background room for islands"
    for y, x in free[:: max(1, len(free) // 3)][:3]:
        cv2.circle(islands, (int(x), int(y)), 6, 1.0, -1)
    islands = cv2.GaussianBlur(islands, (0, 0), 2.0)
    with_islands = np.maximum(mask, islands)
    assert cv2.connectedComponents((with_islands > 0.1).astype(np.uint8))[0] - 1 >= 3
    kept = keep_largest(with_islands)
    visible = islands >= 0.5 / 255  # what an 8-bit file would show of the islands
    np.testing.assert_array_equal(kept[visible], mask[visible])  # islands and their rims gone
    np.testing.assert_array_equal(kept[~visible], with_islands[~visible])  # the rest untouched
    eight = keep_largest(alpha_to_uint8(with_islands))  # the same on 8-bit masks
    np.testing.assert_array_equal(eight, alpha_to_uint8(kept))


def test_largest_in_the_remover_leaves_one_region(people, model_path):
    from RMBG.removal.pipeline import Remover

    _, photo, _ = people[0]
    plain, largest = Remover(model_path).alpha(photo), Remover(model_path, largest=True).alpha(photo)
    np.testing.assert_array_equal(largest, keep_largest(plain))
    assert cv2.connectedComponents((largest > 0.1).astype(np.uint8))[0] - 1 == 1


def test_inverted_and_plain_masks_add_up_to_255(people, model_path):
    from RMBG.removal.pipeline import Remover

    image_path, photo, _ = people[0]
    plain = np.asarray(Remover(model_path).remove(photo, mode="mask"), np.int32)
    inverted = np.asarray(Remover(model_path, invert=True).remove(photo, mode="mask"), np.int32)
    assert np.all(plain + inverted == 255)
    assert plain.min() == 0 and plain.max() == 255
    rgba = np.asarray(Remover(model_path, invert=True).remove(photo, mode="rgba"))
    assert np.array_equal(rgba[..., 3].astype(np.int32), inverted)
    # where the background is kept whole, away from the band of estimated colours, they are the photo's
    keep = (rgba[..., 3] == 255) & ~spread_band(rgba[..., 3], spread_width(*photo.shape[:2]))
    assert keep.mean() > 0.2 and np.array_equal(rgba[keep][:, :3], photo[keep])
    floats = Remover(model_path, invert=True).alpha(photo) + Remover(model_path).alpha(photo)
    np.testing.assert_allclose(floats, 1.0, atol=1e-6)


def test_cli_box_largest_and_invert(people, model_path, tmp_path):
    from RMBG.commands.remove import main

    image_path, photo, _ = people[0]
    height, width = photo.shape[:2]
    out = tmp_path / "out"
    assert main([str(image_path), "--out", str(out), "--model", str(model_path), "--mode", "mask", "--quiet",
                 "--box", f"0,0,{width // 2},{height}", "--largest"]) == 0
    mask = np.asarray(Image.open(out / f"{image_path.stem}.png"))
    assert mask[:, width // 2 :].max() == 0 and mask.max() == 255


def test_cli_invert_mask_says_what_it_writes(people, model_path, tmp_path, capsys):
    from RMBG.commands.remove import main

    image_path, _, _ = people[0]
    assert main([str(image_path), "--out", str(tmp_path), "--model", str(model_path), "--mode", "mask",
                 "--invert", "--quiet"]) == 0
    assert "--invert with --mode mask writes the inverted mask" in capsys.readouterr().out


@pytest.mark.parametrize("box, message", [
    ("10,10,100000,50", "lies outside the photo"),
    ("50,10,5,60", "inverted corners"),
    ("5,10,5,60", "zero area"),
    ("a,b,c,d", "expected four numbers"),
    ("1,2,3", "expected four numbers"),
    ("0.5,0.5,nan,0.9", "finite"),
])
def test_cli_refuses_bad_boxes_naming_them(people, tmp_path, capsys, box, message):
    from RMBG.commands.remove import main

    image_path, _, _ = people[0]
    assert main([str(image_path), "--out", str(tmp_path / "out"), "--box", box, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and box.split(",")[0] in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_library_refuses_bad_boxes():
    with pytest.raises(ValueError, match="inverted corners"):
        B.check_box((5, 5, 1, 9))
    with pytest.raises(ValueError, match="outside the photo"):
        B.box_pixels((0, 0, 300, 50), 100, 200)
    with pytest.raises(ValueError, match="zero area"):
        B.box_pixels((0.5, 0.5, 0.501, 0.9), 100, 100)
    with pytest.raises(ValueError, match="outside the photo"):
        B.check_box((-1, 0, 5, 5))
    assert B.parse_box(" 0.1, 0.2 ,0.5,0.9") == (0.1, 0.2, 0.5, 0.9)
