"""RMBG.training.tf_data: listing, checking and splitting datasets, decoding, augmentation, normalisation."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from shared_sets import link_pairs
from shared_sets import pairs as shared_pairs

from RMBG.constants import IMAGENET_MEAN, IMAGENET_STD
from RMBG.images import dataset
from RMBG.images.io import read_image, read_mask
from RMBG.models.info import ModelInfo
from RMBG.training import augment, tf_data

IMAGENET_MAX = ModelInfo("u2netp", 64, input_scale="max")  # how the imported u2netp is fed
PLAIN_255 = ModelInfo("seed", 64, mean=None, std=None, input_scale="255")  # how seed is fed
SIZE = 64


def first_batch(ds):
    x, y = next(iter(ds))
    return x.numpy(), y.numpy()


# ---------------------------------------------------------------------------
# Listing, checking, splitting
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mixed_set(tmp_path_factory, shared_data):
    """Two categories of real pairs (people and ECSSD objects), as a plain folder."""
    chosen = shared_pairs(shared_data / "people", 10) + shared_pairs(shared_data / "ecssd", 6)
    return link_pairs(chosen, tmp_path_factory.mktemp("mixed"))


def test_split_is_deterministic_disjoint_and_stratified(mixed_set):
    first = dataset.scan(mixed_set, split=0.3, progress=False)
    second = dataset.scan(mixed_set, split=0.3, progress=False)
    assert [(p.name, p.split) for p in first.pairs] == [(p.name, p.split) for p in second.pairs]
    train = {p.name for p in first.train}
    val = {p.name for p in first.val}
    assert not train & val
    assert train | val == {p.name for p in first.pairs} and len(first.pairs) == 16
    # stratified: each category holds out round(n * 0.3) of its files
    assert sorted(p.category for p in first.val) == ["object"] * 2 + ["person"] * 3
    # the split is the project's one split function (RMBG.images.dataset), seed 42
    from RMBG.images.dataset import assign_split

    expected = assign_split([p.name for p in first.pairs], [p.category for p in first.pairs], 0.3, seed=42)
    assert [p.split for p in first.pairs] == expected


def test_index_csv_split_column_is_kept(tmp_path, shared_data):
    pairs = shared_pairs(shared_data / "people", 4)
    root = link_pairs(pairs, tmp_path / "prepared")
    with open(root / "index.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Image Name", "Category", "Image Path", "Mask Path", "width", "height", "split"])
        for i, (image, mask) in enumerate(pairs):
            split = "val" if i == 0 else "train"
            writer.writerow([image.name, "person", f"images/{image.name}", f"masks/{mask.name}", 0, 0, split])
    report = dataset.scan(root, split=0.5, progress=False)
    assert [p.name for p in report.val] == [pairs[0][0].stem]
    assert len(report.train) == 3


def test_unreadable_files_are_reported_by_name_and_skipped(tmp_path, shared_data):
    pairs = shared_pairs(shared_data / "people", 4)
    root = link_pairs(pairs, tmp_path / "bad")
    good_mask = pairs[0][1]
    truncated = (root / "images" / "person_9001.jpg")
    truncated.write_bytes(pairs[0][0].read_bytes()[:3000])
    (root / "masks" / "person_9001.png").symlink_to(good_mask)
    (root / "images" / "person_9002.jpg").write_text("not a picture")
    (root / "masks" / "person_9002.png").symlink_to(good_mask)
    (root / "images" / "person_9003.jpg").symlink_to(pairs[1][0])
    (root / "masks" / "person_9003.png").write_bytes(b"")
    (root / "images" / "person_9004.jpg").symlink_to(pairs[2][0])  # no mask at all

    report = dataset.scan(root, split=0.0, progress=False)
    reasons = dict(report.skipped)
    assert set(Path(p).name for p in reasons) == {
        "person_9001.jpg",
        "person_9002.jpg",
        "person_9003.png",
        "person_9004.jpg",
    }
    assert "truncated" in reasons[str(truncated)]
    assert any("empty" in r for p, r in reasons.items() if p.endswith("person_9003.png"))
    assert any("no mask" in r for p, r in reasons.items() if p.endswith("person_9004.jpg"))
    assert sorted(p.name for p in report.pairs) == sorted(i.stem for i, _ in pairs)
    summary = report.summary()
    assert "person_9001.jpg" in summary and "4 skipped" in summary
    # the pipeline runs over what is left
    x, y = first_batch(tf_data.eval_dataset(report.pairs, IMAGENET_MAX, SIZE, batch=8))
    assert x.shape == (4, SIZE, SIZE, 3) and y.shape == (4, SIZE, SIZE, 1)


def test_pipeline_drops_a_file_that_breaks_after_the_check(tmp_path, shared_data):
    """A file that changes between the check and the read is dropped, not fatal."""
    pairs = shared_pairs(shared_data / "people", 3)
    root = link_pairs(pairs, tmp_path / "late")
    report = dataset.scan(root, split=0.0, progress=False)
    broken = Path(report.pairs[1].image)
    broken.unlink()
    broken.write_text("gone bad")
    x, _ = first_batch(tf_data.eval_dataset(report.pairs, IMAGENET_MAX, SIZE, batch=8, cache=False))
    assert x.shape[0] == 2


def test_aspect_mismatch_is_noted(tmp_path, shared_data):
    (image, mask), = shared_pairs(shared_data / "people", 1)
    root = tmp_path / "aspect"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "images" / image.name).symlink_to(image)
    Image.open(mask).resize((50, 200)).save(root / "masks" / mask.name)
    report = dataset.scan(root, split=0.0, progress=False)
    assert len(report.pairs) == 1 and len(report.notes) == 1 and "aspect" in report.notes[0]


# ---------------------------------------------------------------------------
# Decoding: RGB order, masks in [0, 1], resized to the image
# ---------------------------------------------------------------------------
def _red_set(root: Path) -> Path:
    """Pure red photos in every kind of file: native (JPEG, PNG) and Python-decoded
    (TIFF, CMYK JPEG, EXIF-rotated JPEG), each with a left-half mask."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    red = Image.new("RGB", (80, 60), (255, 0, 0))
    red.save(root / "images" / "red_png.png")
    red.save(root / "images" / "red_jpg.jpg", quality=95)
    red.save(root / "images" / "red_tif.tif")
    red.convert("CMYK").save(root / "images" / "red_cmyk.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6
    red.save(root / "images" / "red_exif.jpg", quality=95, exif=exif.tobytes())
    mask = np.zeros((60, 80), np.uint8)
    mask[:, :40] = 255
    for name in ("red_png", "red_jpg", "red_tif", "red_cmyk", "red_exif"):
        Image.fromarray(mask).save(root / "masks" / f"{name}.png")
    return root


def test_red_stays_red_in_every_batch(tmp_path):
    root = _red_set(tmp_path / "red")
    report = dataset.scan(root, split=0.0, progress=False)
    native = {p.name: p.native for p in report.pairs}
    assert native == {"red_png": True, "red_jpg": True, "red_tif": False, "red_cmyk": False, "red_exif": False}

    x, y = first_batch(tf_data.eval_dataset(report.pairs, PLAIN_255, SIZE, batch=8))
    assert x.shape == (5, SIZE, SIZE, 3)
    np.testing.assert_allclose(x[..., 0].mean(axis=(1, 2)), 1.0, atol=0.02)  # red full
    assert x[..., 1:].max() < 0.08  # green and blue (almost) empty: not BGR

    x, _ = first_batch(tf_data.eval_dataset(report.pairs, IMAGENET_MAX, SIZE, batch=8))
    red_level = (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    np.testing.assert_allclose(x[..., 0].mean(axis=(1, 2)), red_level, atol=0.05)
    assert x[..., 1].max() < -1.6 and x[..., 2].max() < -1.4

    settings = augment.Augment(SIZE, (0.5, 1.0), (0.75, 1.33), True, 0.2, 0.0)
    x, y = first_batch(tf_data.train_dataset(report.pairs, IMAGENET_MAX, SIZE, 4, settings))
    assert x[..., 0].min() > 1.0 and x[..., 1:].max() < -1.0  # still red after jitter


def test_masks_are_unit_floats_resized_to_the_photo(shared_data):
    # person_0053's mask is 285x190 for a 512x342 photo (the set's known quirk)
    image = shared_data / "people" / "images" / "person_0053.jpg"
    mask = shared_data / "people" / "masks" / "person_0053.png"
    photo, truth = read_image(image), read_mask(mask)
    assert truth.shape != photo.shape[:2]
    report_pairs = [dataset.Pair(str(image), str(mask), "person")]
    _, y = first_batch(tf_data.eval_dataset(report_pairs, IMAGENET_MAX, SIZE, batch=1))
    assert y.dtype == np.float32 and y.shape == (1, SIZE, SIZE, 1)
    assert y.min() >= 0.0 and y.max() <= 1.0 and y.max() == 1.0 and y.min() == 0.0
    expected = np.asarray(Image.fromarray(np.rint(truth * 255).astype(np.uint8)).resize((SIZE, SIZE), Image.BILINEAR)) / 255
    assert np.abs(y[0, ..., 0] - expected).mean() < 0.02  # same place, not shifted or flipped


def test_mask_follows_the_image_through_crop_and_flip(tmp_path):
    """Left half white with a left-half mask: after random crops and flips the mask
    still covers the white pixels exactly."""
    root = tmp_path / "halves"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(4):
        img = np.zeros((96, 96, 3), np.uint8)
        img[:, : 48 - 8 * i] = 255
        mask = (img[..., 0] > 0).astype(np.uint8) * 255
        Image.fromarray(img).save(root / "images" / f"half_{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"half_{i}.png")
    report = dataset.scan(root, split=0.0, progress=False)
    settings = augment.Augment(SIZE, (0.3, 1.0), (0.5, 2.0), True, 0.0, 0.0)
    ds = tf_data.train_dataset(report.pairs, PLAIN_255, 96, 8, settings)
    for x, y in ds.take(3):
        x, y = x.numpy(), y.numpy()[..., 0]
        assert x.shape == (8, SIZE, SIZE, 3) and y.shape == (8, SIZE, SIZE)
        assert 0.0 <= y.min() and y.max() <= 1.0
        sure = (y < 0.01) | (y > 0.99)
        bright = x[..., 0] > 0.5
        assert np.mean(bright[sure] == (y[sure] > 0.5)) > 0.999


def test_training_batches_repeat_exactly_with_the_seed(mixed_set):
    report = dataset.scan(mixed_set, split=0.0, progress=False)
    settings = augment.Augment(SIZE, (0.5, 1.0), (0.75, 1.33), True, 0.2, 0.5)
    a = first_batch(tf_data.train_dataset(report.pairs, IMAGENET_MAX, SIZE, 4, settings, seed=7))
    b = first_batch(tf_data.train_dataset(report.pairs, IMAGENET_MAX, SIZE, 4, settings, seed=7))
    c = first_batch(tf_data.train_dataset(report.pairs, IMAGENET_MAX, SIZE, 4, settings, seed=8))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.abs(a[0] - c[0]).max() > 0.1


def test_a_resumed_stream_goes_on_where_it_stopped(mixed_set):
    """``first_batch`` (what a resumed run passes) starts the seeded stream at that batch, not at its start."""
    report = dataset.scan(mixed_set, split=0.0, progress=False)
    settings = augment.Augment(SIZE, (0.5, 1.0), (0.75, 1.33), True, 0.2, 0.5)
    stream = iter(tf_data.train_dataset(report.pairs, IMAGENET_MAX, SIZE, 4, settings, seed=7))
    whole = [next(stream)[0].numpy() for _ in range(3)]
    resumed = first_batch(tf_data.train_dataset(report.pairs, IMAGENET_MAX, SIZE, 4, settings, seed=7, first_batch=2))
    np.testing.assert_array_equal(resumed[0], whole[2])
    assert np.abs(resumed[0] - whole[0]).max() > 0.1


def test_input_pipelines_share_out_the_files(mixed_set):
    """Under a distribution strategy each input pipeline reads its own files, per-replica batches."""
    import tensorflow as tf

    report = dataset.scan(mixed_set, split=0.0, progress=False)
    settings = augment.Augment(SIZE, (1.0, 1.0), (1.0, 1.0), False, 0.0, 0.0)
    seen = []
    for index in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=index, num_replicas_in_sync=2)
        ds = tf_data.train_dataset(report.pairs, PLAIN_255, SIZE, 8, settings, input_context=context)
        batches = [x for x, _ in ds.take(2).as_numpy_iterator()]
        assert all(b.shape[0] == 4 for b in batches)  # global batch 8 over 2 replicas
        seen.append({round(float(img.sum()), 1) for b in batches for img in b})
    assert len(seen[0]) == len(seen[1]) == 8  # one pass over each half of the 16 files
    assert not seen[0] & seen[1]


# ---------------------------------------------------------------------------
# Normalisation: identical to ModelInfo.normalize
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("info", [IMAGENET_MAX, PLAIN_255, ModelInfo("u2net", 64)], ids=["max-imagenet", "255-plain", "255-imagenet"])
def test_normalize_equals_modelinfo_on_real_images(shared_data, info):
    images = [read_image(p) for p, _ in shared_pairs(shared_data / "cats", 3) + shared_pairs(shared_data / "ecssd", 2)]
    for image in images:
        expected = info.normalize(image)
        got = tf_data.normalize(image, info.mean, info.std, info.input_scale).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # batched, with photos of different brightness (per-image maximum)
    small = np.stack([np.asarray(Image.fromarray(i).resize((48, 48))) for i in images])
    small[1] = small[1] // 2
    np.testing.assert_allclose(
        tf_data.normalize(small, info.mean, info.std, info.input_scale).numpy(), info.normalize(small), atol=1e-5, rtol=0
    )


def test_eval_batches_are_modelinfo_normalize_of_the_decoded_pixels(mixed_set):
    report = dataset.scan(mixed_set, split=0.0, progress=False)
    chosen = report.pairs[:4]
    decoded = np.stack([img for img, _ in tf_data.decoded_dataset(chosen, SIZE).as_numpy_iterator()])
    x, _ = first_batch(tf_data.eval_dataset(chosen, IMAGENET_MAX, SIZE, batch=4))
    np.testing.assert_allclose(x, IMAGENET_MAX.normalize(decoded), atol=1e-5, rtol=0)


def test_eval_input_matches_the_runtime_preprocessing(mixed_set):
    """Training sees what inference sees: tf.data (TF Lanczos) against the runtime's PIL Lanczos."""
    from RMBG.runtime.engines import Segmenter

    report = dataset.scan(mixed_set, split=0.0, progress=False)
    chosen = report.pairs[:4]
    info = ModelInfo("u2netp", 128, input_scale="max")
    x, _ = first_batch(tf_data.eval_dataset(chosen, info, 128, batch=4))
    segmenter = Segmenter(info, "reference")
    for got, pair in zip(x, chosen):
        expected = segmenter.preprocess(read_image(pair.image))
        # one grey level is 1/255/0.225 ~ 0.017 in these units
        assert np.abs(got - expected).mean() < 0.03


def test_cache_budget():
    assert tf_data.cache_fits(100, 320, budget=100 * 320 * 320 * 4)
    assert not tf_data.cache_fits(101, 320, budget=100 * 320 * 320 * 4)


def test_limit_pairs_is_a_stable_sample(mixed_set):
    report = dataset.scan(mixed_set, split=0.0, progress=False)
    a = dataset.limit_pairs(report.pairs, 5)
    assert a == dataset.limit_pairs(report.pairs, 5) and len(a) == 5
    assert [p.name for p in a] == sorted(p.name for p in a)
    assert dataset.limit_pairs(report.pairs, None) == report.pairs
