"""RMBG.evaluation.backdrop: a flat backdrop found as ground truth, and what a mask leaks onto it."""

from __future__ import annotations

import numpy as np
import pytest

from RMBG.evaluation.backdrop import backdrop_leak, flat_backdrop
from RMBG.images.io import read_image


def ring_on_black(size: int = 40) -> np.ndarray:
    """A grey ring on black: its black hole is enclosed, so it is not backdrop."""
    image = np.zeros((size, size, 3), np.uint8)
    image[10:30, 10:30] = 180
    image[16:24, 16:24] = 3  # near-black but enclosed
    return image


def test_flat_backdrop_is_the_border_colour_connected_to_the_border():
    image = ring_on_black()
    backdrop = flat_backdrop(image)
    expected = np.ones((40, 40), bool)
    expected[10:30, 10:30] = False
    np.testing.assert_array_equal(backdrop, expected)
    # a white backdrop works the same
    np.testing.assert_array_equal(flat_backdrop(255 - image), expected)


def test_a_busy_border_has_no_backdrop_and_bad_arrays_are_refused():
    rng = np.random.default_rng(1)
    assert flat_backdrop(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)) is None
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        flat_backdrop(np.zeros((8, 8), np.uint8))


def test_backdrop_leak_counts_what_the_mask_puts_on_the_backdrop():
    backdrop = flat_backdrop(ring_on_black())
    mask = (~backdrop).astype(np.float32)
    assert backdrop_leak(mask, backdrop).pixels_over_half == 0
    mask[0:2, 0:10] = 0.8  # 20 backdrop pixels called foreground
    leak = backdrop_leak(mask, backdrop)
    assert leak.pixels_over_half == 20 and leak.backdrop_pixels == backdrop.sum()
    assert leak.mean_alpha == pytest.approx(20 * 0.8 / backdrop.sum())
    with pytest.raises(ValueError, match="differ in size"):
        backdrop_leak(mask[:10], backdrop)


def test_the_lion_demo_photo_has_a_black_backdrop_and_the_portrait_none(shared_data):
    lion = flat_backdrop(read_image(shared_data / "seed_test" / "images" / "1.png"))
    assert lion is not None and 0.5 < lion.mean() < 0.65
    assert lion[280:340, 462:470].mean() > 0.85  # the gap between the tail and the hind leg
    assert flat_backdrop(read_image(shared_data / "seed_test" / "images" / "3.jpg")) is None
