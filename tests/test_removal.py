"""The removal pipeline :class:`RMBG.removal.pipeline.Remover`: model -> small mask -> alpha -> output.

The shipped default model runs through its cached TFLite copy (the default
runtime), loaded once for the module; the photos are small real portraits
from ``../shared/data/people``, so each model call costs well under a second.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from RMBG.apps.batch.jobs import remove_background
from RMBG.images.io import read_image
from RMBG.removal.compose import alpha_to_uint8
from RMBG.removal.foreground import estimate_foreground, spread_band, spread_width
from RMBG.removal.pipeline import Remover
from RMBG.runtime import engines as RT

#: Masks of one photo computed alone and inside a batch, through the default runtime (the int8 LiteRT copy
#: of the shipped model): identical on this machine (max difference 0.0); another CPU's kernels for another
#: batch size may differ in the last float bits, far below anything visible (one grey level is 4e-3).
BATCH_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def remover() -> Remover:
    try:
        RT.default_model_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return Remover()


@pytest.fixture(scope="module")
def photo_paths(shared_data):
    paths = sorted((shared_data / "people" / "images").glob("*.jpg"))[:4]
    if len(paths) < 4:
        pytest.skip("../shared/data/people holds fewer than 4 photos")
    return paths


@pytest.fixture(scope="module")
def photos(photo_paths) -> list[np.ndarray]:
    """Four real portraits (landscape and portrait shapes, a few hundred px)."""
    return [read_image(path) for path in photo_paths]


@pytest.fixture(scope="module")
def singles(remover, photos) -> np.ndarray:
    """Each photo's small mask, predicted one photo per model call."""
    return np.stack([remover.small_masks([photo])[0] for photo in photos])


@pytest.fixture
def count_calls(monkeypatch):
    """Wrap a segmenter's ``_infer``; returns the list of batch sizes it was called with."""

    def install(segmenter) -> list[int]:
        sizes: list[int] = []
        real = segmenter._infer

        def counted(batch):
            sizes.append(batch.shape[0])
            return real(batch)

        monkeypatch.setattr(segmenter, "_infer", counted)
        return sizes

    return install


# ---------------------------------------------------------------------------
# The same pixels as remove_background
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode, options", [("rgba", {}), ("mask", {}), ("color", {"bg_color": "#00FF00"})])
def test_remove_gives_the_pixels_of_remove_background(remover, photos, mode, options):
    photo = photos[0]
    ours = remover.remove(photo, mode=mode, **options)
    theirs = remove_background(photo, mode=mode, **options)
    assert ours.mode == theirs.mode and ours.size == theirs.size == (photo.shape[1], photo.shape[0])
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


def test_remove_with_refine_and_threshold_matches_remove_background(photos):
    photo = photos[2]
    ours = Remover(refine="guided", threshold=0.5).remove(photo, mode="mask")
    theirs = remove_background(photo, mode="mask", refine="guided", threshold=0.5)
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))
    assert set(np.unique(np.asarray(ours))) == {0, 255}  # hard mask, with subject and background


def test_remove_rgba_is_the_photo_with_its_alpha(remover, photos):
    """The one-call output equals the steps run by hand: small mask -> finish -> compose; the colour
    is the photo's away from the edge and the estimated foreground's in the band around it (the soft
    pixels grown by a few of the model's pixels)."""
    photo = photos[1]
    rgba = np.asarray(remover.remove(photo, mode="rgba"))
    alpha8 = alpha_to_uint8(remover.finish(photo, remover.small_masks([photo])[0]))
    assert rgba.shape == photo.shape[:2] + (4,)
    assert np.array_equal(rgba[..., 3], alpha8)
    band = spread_band(alpha8, spread_width(*alpha8.shape, remover.input_size))
    assert band.any() and np.array_equal(rgba[~band, :3], photo[~band])
    assert np.array_equal(rgba[..., :3], estimate_foreground(photo, alpha8, model_side=remover.input_size))
    plain = np.asarray(Remover(foreground_estimation=False).remove(photo, mode="rgba"))
    assert np.array_equal(plain[..., :3], photo) and np.array_equal(plain[..., 3], alpha8)


# ---------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------
def test_batched_masks_equal_one_photo_at_a_time(remover, photos, singles):
    batched = Remover(batch_size=4).small_masks(photos)
    size = remover.input_size
    assert batched.shape == (4, size, size) and batched.dtype == np.float32
    assert np.abs(batched - singles).max() < BATCH_TOLERANCE
    # the masks are of their own photos, not one mask repeated
    assert np.abs(singles[0] - singles[1]).mean() > 0.05


@pytest.mark.parametrize("count, batch_size", [(5, 2), (3, 4)])
def test_a_batch_makes_one_model_call_per_batch_size_photos(photos, singles, count_calls, count, batch_size):
    remover = Remover(batch_size=batch_size)
    sizes = count_calls(remover.segmenter)
    chosen = [photos[i % len(photos)] for i in range(count)]
    masks = remover.small_masks(chosen)
    assert len(sizes) == math.ceil(count / batch_size)
    assert sizes == [min(batch_size, count - start) for start in range(0, count, batch_size)]
    expected = np.stack([singles[i % len(photos)] for i in range(count)])
    assert np.abs(masks - expected).max() < BATCH_TOLERANCE


def test_remove_many_runs_the_model_once_per_batch(photos, count_calls):
    remover = Remover(batch_size=2)
    sizes = count_calls(remover.segmenter)
    pictures = remover.remove_many(photos[:3], mode="mask")
    assert sizes == [2, 1]
    assert [p.size for p in pictures] == [(img.shape[1], img.shape[0]) for img in photos[:3]]


# ---------------------------------------------------------------------------
# One bad photo does not sink the batch
# ---------------------------------------------------------------------------
def test_try_small_masks_reports_the_bad_photo_and_keeps_the_others(remover, photos, singles, monkeypatch):
    bad = photos[1].copy()
    raised: list[Exception] = []
    real = remover.segmenter.preprocess

    def preprocess(image):
        if image is bad:
            raised.append(RuntimeError("the model cannot read this photo"))
            raise raised[-1]
        return real(image)

    monkeypatch.setattr(remover.segmenter, "preprocess", preprocess)
    results = remover.try_small_masks([photos[0], bad, photos[2]])
    assert len(results) == 3
    assert results[1] is raised[-1]
    assert np.abs(results[0] - singles[0]).max() < BATCH_TOLERANCE
    assert np.abs(results[2] - singles[2]).max() < BATCH_TOLERANCE


def test_try_small_masks_falls_back_to_single_photos_when_the_batch_fails(remover, photos, singles, monkeypatch):
    """A batch the model refuses as a whole (say, out of memory) is retried photo by photo."""
    real = remover.segmenter._infer
    batches: list[int] = []

    def infer(batch):
        batches.append(batch.shape[0])
        if batch.shape[0] > 1:
            raise MemoryError("batch too large")
        return real(batch)

    monkeypatch.setattr(remover.segmenter, "_infer", infer)
    results = remover.try_small_masks(photos[:2])
    assert batches == [2, 1, 1]
    for result, expected in zip(results, singles[:2]):
        assert isinstance(result, np.ndarray)
        assert np.abs(result - expected).max() < BATCH_TOLERANCE


def test_try_small_masks_of_one_failing_photo_is_its_exception(remover, photos, monkeypatch):
    error = ValueError("broken")

    def infer(batch):
        raise error

    monkeypatch.setattr(remover.segmenter, "_infer", infer)
    assert remover.try_small_masks([photos[0]]) == [error]
    assert remover.try_small_masks([]) == []


# ---------------------------------------------------------------------------
# finish: full size, threshold, refinement
# ---------------------------------------------------------------------------
def test_finish_gives_a_full_size_alpha(remover, photos, singles):
    assert len({photo.shape[:2] for photo in photos}) > 1  # several shapes, portrait and landscape
    for photo, small in zip(photos, singles):
        alpha = remover.finish(photo, small)
        assert alpha.shape == photo.shape[:2] and alpha.dtype == np.float32
        assert 0.0 <= alpha.min() and alpha.max() <= 1.0


def test_threshold_makes_the_alpha_hard_at_that_level(remover, photos, singles):
    soft = remover.finish(photos[0], singles[0])
    hard = Remover(threshold=0.5).finish(photos[0], singles[0])
    assert set(np.unique(hard)) == {0.0, 1.0}
    assert np.array_equal(hard, (soft >= 0.5).astype(np.float32))
    assert ((soft > 0.0) & (soft < 1.0)).any()  # the soft alpha had values in between


def test_guided_refinement_changes_the_alpha_a_little(remover, photos, singles):
    for photo, small in zip(photos[:3], singles[:3]):
        plain = remover.finish(photo, small)
        guided = remover.finish(photo, small, refine="guided")
        assert guided.shape == plain.shape
        assert 0.0 <= guided.min() and guided.max() <= 1.0
        difference = np.abs(guided - plain)
        assert difference.max() > 0.05  # the edges moved
        assert difference.mean() < 0.05  # but it is the same subject
        # a remover built with refine="guided" does the same by default
        assert np.array_equal(Remover(refine="guided").finish(photo, small), guided)


# ---------------------------------------------------------------------------
# Bad options are refused, naming the bad value
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, message",
    [
        ({"refine": "sharpen"}, r"unknown refine 'sharpen'.*none, guided, matting"),
        ({"threshold": 1.5}, r"threshold 1\.5: expected a value between 0 and 1"),
        ({"threshold": -0.1}, r"threshold -0\.1"),
        ({"batch_size": 0}, r"batch size 0: must be at least 1"),
    ],
)
def test_bad_options_are_refused_at_construction(options, message):
    with pytest.raises(ValueError, match=message):
        Remover(**options)


def test_finish_refuses_an_unknown_refine(remover, photos, singles):
    with pytest.raises(ValueError, match="unknown refine 'blurry'"):
        remover.finish(photos[0], singles[0], refine="blurry")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mode": "sepia"}, r"unknown mode 'sepia'; choose one of rgba, mask"),
        ({"mode": "image"}, r"mode 'image' needs a background picture"),
        ({"mode": "color", "bg_color": "#12345"}, r"colour '#12345'"),
        ({"mode": "color", "bg_color": (0, 300, 0)}, r"colour \(0, 300, 0\)"),
    ],
)
def test_bad_output_options_are_refused_before_the_model_runs(remover, photos, singles, count_calls, options, message):
    sizes = count_calls(remover.segmenter)
    with pytest.raises(ValueError, match=message):
        remover.remove(photos[0], **options)
    assert sizes == []  # refused before any model call
    alpha = remover.finish(photos[0], singles[0])
    with pytest.raises(ValueError, match=message):
        Remover.compose(photos[0], alpha, **options)


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------
def test_alpha_is_the_same_for_every_form_of_one_picture(remover, photo_paths, photos):
    path, photo = photo_paths[0], photos[0]
    with Image.open(path) as opened:
        opened.load()
    rgba = np.dstack([photo, np.random.default_rng(0).integers(0, 256, photo.shape[:2], dtype=np.uint8)])
    forms = {
        "str path": str(path),
        "Path": path,
        "PIL image": opened,
        "uint8 array": photo,
        "RGBA array": rgba,  # its alpha is dropped, not used as the mask
    }
    alphas = dict(zip(forms, remover.alphas(list(forms.values()))))
    reference = alphas["uint8 array"]
    assert reference.shape == photo.shape[:2]
    for name, alpha in alphas.items():
        assert np.array_equal(alpha, reference), name


def test_a_greyscale_picture_is_read_as_grey_rgb(remover, photos):
    grey = np.asarray(Image.fromarray(photos[0]).convert("L"))
    as_rgb = np.repeat(grey[..., None], 3, axis=2)
    forms = [grey, Image.fromarray(grey, mode="L"), as_rgb]
    alphas = remover.alphas(forms)
    assert all(alpha.shape == grey.shape for alpha in alphas)
    for alpha in alphas[:2]:
        assert np.array_equal(alpha, alphas[2])


def test_bad_arrays_are_refused_with_their_shape(remover):
    with pytest.raises(ValueError, match=r"shape \(4, 4, 2\)"):
        remover.alpha(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="no pixels"):
        remover.alpha(np.zeros((0, 5, 3), np.uint8))


# ---------------------------------------------------------------------------
# The model is loaded once
# ---------------------------------------------------------------------------
def test_removers_over_one_model_share_one_segmenter(remover):
    first = Remover()
    other = Remover(refine="guided", threshold=0.5, batch_size=4)
    assert other.segmenter is first.segmenter
    assert Remover(RT.default_model_path()).segmenter is first.segmenter  # the same file, named
    assert RT.load_segmenter(None, runtime=RT.DEFAULT_RUNTIME) is first.segmenter
    assert other.name == first.name == RT.default_model_path().stem
