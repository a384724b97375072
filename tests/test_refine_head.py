"""The refinement head: starts as the base, trains only itself, saves and loads."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from RMBG.models.archs.refine_head import LOGIT_CLIP, attach_refiner, head_layers  # noqa: E402
from RMBG.models.build import build_model, default_info, load_model, save_model  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def refined():
    keras.utils.set_random_seed(0)
    return build_model("u2netp_refine", input_size=SIZE)


def _inputs(n=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, SIZE, SIZE, 3)).astype("float32")


def test_untrained_head_reproduces_the_base(refined):
    x = _inputs()
    outputs = [np.asarray(o) for o in refined(x, training=False)]
    assert len(outputs) == 8 and all(o.shape == (2, SIZE, SIZE, 1) for o in outputs)
    low, high = 1 / (1 + np.exp(LOGIT_CLIP)), 1 / (1 + np.exp(-LOGIT_CLIP))
    np.testing.assert_allclose(outputs[0], np.clip(outputs[1], low, high), atol=1e-6)


def test_only_the_head_is_trainable(refined):
    trainable = {w.path.split("/")[0] for w in refined.trainable_weights}
    assert trainable and all(name.startswith("refine") for name in trainable)
    assert {layer.name for layer in head_layers(refined)} >= {"refine_conv1", "refine_delta"}
    # The base's weights are all frozen but still there.
    assert len(refined.non_trainable_weights) > 100


def test_a_trained_head_changes_the_output_and_survives_save_load(refined, tmp_path):
    delta = refined.get_layer("refine_delta")
    kernel, bias = delta.get_weights()
    delta.set_weights([np.full_like(kernel, 0.05), np.full_like(bias, 0.3)])
    try:
        x = _inputs(seed=1)
        before = np.asarray(refined(x, training=False)[0])
        assert np.abs(before - np.asarray(refined(x, training=False)[1])).max() > 1e-3
        path = save_model(refined, tmp_path / "r.keras", default_info("u2netp_refine", SIZE))
        loaded = load_model(path)
        np.testing.assert_allclose(np.asarray(loaded(x, training=False)[0]), before, atol=1e-6)
        assert loaded.rmbg_info.arch == "u2netp_refine" and loaded.rmbg_info.output_index == 0
    finally:
        delta.set_weights([kernel, bias])


def test_a_base_without_u2net_layers_is_refused():
    inputs = keras.Input((SIZE, SIZE, 3))
    plain = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs), name="plain")
    with pytest.raises(ValueError, match="plain: a refiner needs a U-2-Net family base"):
        attach_refiner(plain)


def test_default_head_is_a_per_pixel_fusion_of_the_seven_logits(refined):
    # 6 side logits + the fused one, no photo channels; every head layer is 1x1.
    assert refined.get_layer("refine_in").output.shape[-1] == 7
    convs = [layer for layer in head_layers(refined) if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 4 and all(tuple(layer.kernel_size) == (1, 1) for layer in convs)


def test_spatial_head_reads_the_photo_with_dilated_kernels():
    base = build_model("u2netp", input_size=SIZE)
    spatial = attach_refiner(base, kernel_size=3, dilations=(1, 2), with_image=True)
    assert spatial.get_layer("refine_in").output.shape[-1] == 10
    assert tuple(spatial.get_layer("refine_conv2").dilation_rate) == (2, 2)
    assert tuple(spatial.get_layer("refine_conv1").kernel_size) == (3, 3)


@pytest.mark.parametrize("bad", [dict(width=0), dict(kernel_size=0), dict(depth=0), dict(dilations=(1, 0))])
def test_impossible_head_shapes_are_refused(bad):
    base = build_model("u2netp", input_size=SIZE)
    with pytest.raises(ValueError, match="refinement head needs"):
        attach_refiner(base, **bad)
