"""RMBG.training.augment: what each augmentation does to a batch, and the teacher flag that limits plain backdrops."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from shared_sets import link_pairs
from shared_sets import pairs as shared_pairs

from RMBG.images import dataset
from RMBG.models.info import ModelInfo
from RMBG.training import augment, tf_data
from RMBG.training.presets import get_preset

PLAIN_255 = ModelInfo("seed", 64, mean=None, std=None, input_scale="255")  # fed as 0-1 pixels
SIZE = 64


def striped(count: int):
    """``count`` random photos whose left half is foreground (mask 1), right half background."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(count, 8, 8, 3)).astype(np.float32)
    masks = np.zeros((count, 8, 8, 1), np.float32)
    masks[:, :, :4] = 1.0
    return images, masks


def test_composite_pastes_foreground_on_the_next_photo():
    import tensorflow as tf

    images = np.stack([np.full((8, 8, 3), v, np.float32) for v in (200.0, 50.0)])
    masks = np.zeros((2, 8, 8, 1), np.float32)
    masks[:, :, :4] = 1.0
    out = augment.composite(tf.constant(images), tf.constant(masks), tf.constant([1, 2], tf.int64), 1.0).numpy()
    assert np.all(out[0, :, :4] == 200.0) and np.all(out[0, :, 4:] == 50.0)
    assert np.all(out[1, :, :4] == 50.0) and np.all(out[1, :, 4:] == 200.0)
    kept = augment.composite(tf.constant(images), tf.constant(masks), tf.constant([1, 2], tf.int64), 0.0)
    np.testing.assert_array_equal(np.asarray(kept), images)


def test_plain_background_replaces_only_the_background_with_one_colour():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(64, 8, 8, 3)).astype(np.float32)
    masks = np.zeros((64, 8, 8, 1), np.float32)
    masks[:, :, :4] = 1.0
    seed = tf.constant([3, 4], tf.int64)
    out = augment.plain_background(tf.constant(images), tf.constant(masks), seed, 1.0).numpy()
    np.testing.assert_array_equal(out[:, :, :4], images[:, :, :4])  # the foreground is kept
    backdrops = out[:, :, 4:].reshape(64, -1, 3)
    assert np.all(backdrops.max(axis=1) - backdrops.min(axis=1) < 1e-3)  # one flat colour per photo
    colours = backdrops[:, 0]
    black_or_white = np.all((colours == 0.0) | (colours == 255.0), axis=1) & (np.ptp(colours, axis=1) == 0)
    assert 0.25 < black_or_white.mean() < 0.75  # about half the backdrops are black or white
    again = augment.plain_background(tf.constant(images), tf.constant(masks), seed, 1.0).numpy()
    np.testing.assert_array_equal(out, again)  # seeded
    some = augment.plain_background(tf.constant(images), tf.constant(masks), seed, 0.5).numpy()
    changed = np.any(some != images, axis=(1, 2, 3))
    assert 0.2 < changed.mean() < 0.8
    kept = augment.plain_background(tf.constant(images), tf.constant(masks), seed, 0.0)
    np.testing.assert_array_equal(np.asarray(kept), images)


def test_plain_background_only_touches_the_allowed_photos():
    import tensorflow as tf

    images, masks = striped(64)
    seed = tf.constant([3, 4], tf.int64)
    allowed = np.arange(64) % 2 == 0
    everyone = augment.plain_background(tf.constant(images), tf.constant(masks), seed, 1.0).numpy()
    some = augment.plain_background(tf.constant(images), tf.constant(masks), seed, 1.0, tf.constant(allowed)).numpy()
    np.testing.assert_array_equal(some[~allowed], images[~allowed])  # teacher-map photos kept as they were
    np.testing.assert_array_equal(some[allowed], everyone[allowed])  # the others get the same backdrops as without the flag
    assert np.all(np.any(some[allowed] != images[allowed], axis=(1, 2, 3)))


def test_the_index_target_column_marks_teacher_maps(tmp_path, shared_data):
    chosen = shared_pairs(shared_data / "people", 3)
    root = link_pairs(chosen, tmp_path / "distill")
    targets = ["gt", "mix:0.7", "teacher"]
    with open(root / "index.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Image Name", "Category", "Image Path", "Mask Path", "split", "Target"])
        for (image, mask), target in zip(chosen, targets):
            writer.writerow([image.name, "person", f"images/{image.name}", f"masks/{mask.name}", "train", target])
    pairs, _ = dataset.list_pairs(root)
    assert [p.teacher for p in pairs] == [False, False, True]
    # a folder without a Target column has no teacher maps
    (root / "index.csv").unlink()
    assert not any(p.teacher for p in dataset.list_pairs(root)[0])


@pytest.mark.parametrize("on", ["truth", "all"])
def test_training_batches_keep_teacher_photos_off_plain_backdrops_when_asked(tmp_path, shared_data, on):
    """Full-frame crops, no flip or jitter, plain backdrops always: with ``on="truth"`` the photo
    whose mask is a teacher's map comes out as decoded, the ground-truth photo on a flat backdrop."""
    chosen = shared_pairs(shared_data / "people", 2)
    root = link_pairs(chosen, tmp_path / "distill")
    pairs = [dataset.Pair(str(root / "images" / i.name), str(root / "masks" / m.name), "person") for i, m in chosen]
    pairs[1] = dataset.Pair(pairs[1].image, pairs[1].mask, "person", teacher=True)
    settings = augment.Augment(SIZE, (1.0, 1.0), (1.0, 1.0), False, 0.0, plain_background=1.0, plain_background_on=on)
    x, y = next(iter(tf_data.train_dataset(pairs, PLAIN_255, SIZE, 2, settings)))
    x, y = x.numpy() * 255.0, y.numpy()
    changed = []
    for image, mask in tf_data.decoded_dataset(pairs, SIZE, cache=False).as_numpy_iterator():
        # the batch is shuffled: find this photo's row by its mask, which no augmentation here changes
        row = int(np.argmin([np.abs(y[k] - mask / 255.0).sum() for k in range(2)]))
        np.testing.assert_allclose(y[row], mask / 255.0, atol=1e-6)
        background = mask[..., 0] < 10
        assert background.sum() > 100
        changed.append(float(np.abs(x[row] - image.astype(np.float32)).max(axis=-1)[background].mean()))
    assert changed[0] > 5.0  # the ground-truth photo's background was replaced
    if on == "truth":
        assert changed[1] < 0.5  # the teacher-map photo is untouched
    else:
        assert changed[1] > 5.0


def test_the_preset_field_is_checked():
    # the distill preset (attempts 6 and 7 of the model card) puts ground-truth photos alone on plain backdrops
    distill = get_preset("distill", "u2netp")
    assert (distill.plain_background, distill.plain_background_on) == (0.7, "truth")
    assert get_preset("distill", "u2netp", plain_background_on="all").plain_background_on == "all"
    assert get_preset("finetune", "u2netp").plain_background_on == "all"
    with pytest.raises(ValueError, match="plain_background_on must be one of"):
        get_preset("distill", "u2netp", plain_background_on="teacher")
