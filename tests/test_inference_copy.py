"""Inference copies (:mod:`RMBG.models.inference_copy`): BatchNorm folded into the convolutions gives the
same maps; the bfloat16 copy keeps its head float32 and stays close; and where it is used (:mod:`RMBG.machine`)."""

from __future__ import annotations

import numpy as np
import pytest

from RMBG import machine
from RMBG.images.io import list_images, read_image

#: Folding changes float32 rounding only (measured on the photos below: at most 1.2e-4 on a pixel of a side
#: map, 1e-7 on average).
FOLD_TOLERANCE = 1e-3
FOLD_MEAN_TOLERANCE = 1e-5
#: bfloat16 keeps 8 bits of mantissa: the mean map difference on these photos is about 0.002.
BF16_MEAN_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def split_u2netp(peer_onnx):
    """rembg's U-2-Net-P imported with real (non-identity) BatchNorms: ``bn="split"``."""
    pytest.importorskip("keras")
    from RMBG.models.onnx_import import import_u2net_onnx

    return import_u2net_onnx(peer_onnx, arch="u2netp", input_size=320, bn="split")


@pytest.fixture(scope="module")
def batch(split_u2netp, shared_data):
    """Three real photos (a person, an object, a cat), normalised as the model expects."""
    info = split_u2netp.rmbg_info
    photos = [list_images(shared_data / name / "images")[3] for name in ("people", "ecssd", "cats")]
    from PIL import Image

    images = [np.asarray(Image.fromarray(read_image(p)).resize((320, 320), Image.BILINEAR)) for p in photos]
    return info.normalize(np.stack(images).astype(np.float32))


def _maps(model, x):
    return [np.asarray(out, np.float32) for out in model(x, training=False)]


def test_folding_removes_every_batchnorm_and_keeps_the_maps(split_u2netp, batch):
    import keras

    from RMBG.models.inference_copy import fold_batchnorm, foldable_batchnorms

    norms = [layer for layer in split_u2netp.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert any(not np.allclose(layer.get_weights()[0], 1) for layer in norms)  # real statistics to fold
    assert len(foldable_batchnorms(split_u2netp)) == len(norms)
    folded = fold_batchnorm(split_u2netp)
    assert not [layer for layer in folded.layers if isinstance(layer, keras.layers.BatchNormalization)]
    before, after = _maps(split_u2netp, batch), _maps(folded, batch)
    assert len(before) == len(after)
    for a, b in zip(before, after):
        assert float(np.max(np.abs(a - b))) < FOLD_TOLERANCE and float(np.mean(np.abs(a - b))) < FOLD_MEAN_TOLERANCE
    assert 0.01 < float(before[0].mean()) < 0.99  # real maps, not constants
    assert "BatchNorms folded" in folded.rmbg_info.notes and folded.rmbg_info.input_size == 320


def test_a_batchnorm_whose_convolution_is_read_elsewhere_is_kept():
    keras = pytest.importorskip("keras")
    from keras import layers

    from RMBG.models.inference_copy import fold_batchnorm, foldable_batchnorms

    inputs = keras.Input((8, 8, 3))
    shared = layers.Conv2D(4, 3, padding="same", name="shared_conv")(inputs)
    normed = layers.BatchNormalization(name="kept_bn")(shared)
    alone = layers.Conv2D(4, 3, padding="same", name="alone_conv")(inputs)
    folded_bn = layers.BatchNormalization(name="folded_bn")(alone)
    model = keras.Model(inputs, layers.Add()([normed, shared, folded_bn]))
    rng = np.random.default_rng(0)
    for name in ("kept_bn", "folded_bn"):
        model.get_layer(name).set_weights([rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4),
                                           rng.uniform(0.5, 2, 4)])
    assert foldable_batchnorms(model) == {"folded_bn": "alone_conv"}
    copy = fold_batchnorm(model)
    assert [layer.name for layer in copy.layers if isinstance(layer, layers.BatchNormalization)] == ["kept_bn"]
    x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    assert float(np.max(np.abs(np.asarray(model(x)) - np.asarray(copy(x))))) < FOLD_TOLERANCE


def test_the_bf16_copy_computes_in_bfloat16_with_a_float_head(split_u2netp, batch):
    from keras.backend import standardize_dtype

    from RMBG.models.inference_copy import bf16_copy

    copy = bf16_copy(split_u2netp)
    policies = {layer.name: layer.dtype_policy.name for layer in copy.layers}
    assert policies["stage1_in_conv"] == "bfloat16" and policies["stage1_in_conv"] == policies["stage6_1_conv"]
    assert policies["outconv"] == policies["side1_conv"] == policies["fused"] == "float32"
    assert standardize_dtype(copy.get_layer("stage1_in_conv").kernel.dtype) == "bfloat16"
    reference, maps = _maps(split_u2netp, batch)[0], copy(batch, training=False)[0]
    assert standardize_dtype(maps.dtype) == "float32"
    difference = np.abs(np.asarray(maps) - reference)
    assert 0 < float(difference.mean()) < BF16_MEAN_TOLERANCE  # it did change precision, and stayed close


CPUINFO = "processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile\nbugs\t\t: none\n"


def test_bf16_copies_run_only_on_tensorflow_with_onednn_on_a_cpu_with_amx(monkeypatch):
    assert machine.cpu_flags(CPUINFO) >= {"amx_bf16", "avx512f"} and machine.cpu_flags("no flags here") == set()
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert machine.cpu_runs_bf16({"avx512f", "amx_bf16"}) and not machine.cpu_runs_bf16({"avx512f", "avx512_bf16"})
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert not machine.cpu_runs_bf16({"amx_bf16"})
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert not machine.cpu_runs_bf16({"amx_bf16"})


def test_isnet_gets_the_bf16_copy_only_where_it_runs_fast(monkeypatch):
    from RMBG.models.public_copies import conversion_for

    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setattr(machine, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    here = conversion_for("isnet")
    assert (here.quantize, here.suffix, here.tag()) == ("bf16", ".keras", "bf16")
    monkeypatch.setattr(machine, "cpu_flags", lambda: {"avx2"})
    elsewhere = conversion_for("isnet")
    assert (elsewhere.quantize, elsewhere.suffix) == ("fp32", ".onnx")
    assert conversion_for("u2net").quantize == "int8"  # the other name does not move
