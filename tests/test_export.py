"""TFLite and ONNX exports: same masks as the Keras model, model info carried, CLI.

The exports are made once per module (they are slow): fp32 through the CLI,
fp16, int8 and ONNX from the loaded model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from RMBG.commands.export import main as export_main
from RMBG.images.io import read_image
from RMBG.models.export import export_loaded
from RMBG.models.info import read_sidecar, sidecar_path
from RMBG.runtime.engines import (
    KerasSegmenter,
    OnnxSegmenter,
    TFLiteSegmenter,
    load_segmenter,
)

#: Largest mean absolute mask difference from the Keras model. Measured on these five photos with the shipped
#: model (2-core CPU machine): fp32 TFLite 3.3e-7 and fp32 ONNX 2.1e-7 (only float summation order differs),
#: fp16 2.1e-4, int8 8.7e-4; each bound leaves room for other CPUs' kernels, none room for a wrong graph.
FP32_MAE = 1e-5
MAX_MAE = {"tflite-none": FP32_MAE, "tflite-fp16": 0.002, "tflite-int8": 0.005, "onnx-none": FP32_MAE}


@pytest.fixture(scope="module")
def keras_model(model_path):
    from RMBG.models.build import load_model

    return load_model(model_path)


@pytest.fixture(scope="module")
def photos(shared_data) -> list[np.ndarray]:
    """Five real photos (people, ECSSD, cats), from the end of each set: int8
    calibration spreads over the sets from their start, so these stay unseen."""
    chosen = []
    for name, count in (("people", 2), ("ecssd", 2), ("cats", 1)):
        chosen += sorted((shared_data / name / "images").glob("*.jpg"))[-count:]
    return [read_image(p) for p in chosen]


@pytest.fixture(scope="module")
def reference(keras_model, photos) -> np.ndarray:
    segmenter = KerasSegmenter(keras_model, keras_model.rmbg_info, "reference")
    return segmenter.predict_small(photos)


@pytest.fixture(scope="module")
def exports(tmp_path_factory, keras_model, model_path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("exports")
    made = {}
    cli_out = folder / "model-none.tflite"
    assert export_main(["--model", str(model_path), "--format", "tflite", "--out", str(cli_out)]) == 0
    made["tflite-none"] = cli_out
    for quantize in ("fp16", "int8"):
        made[f"tflite-{quantize}"] = export_loaded(keras_model, folder / f"model-{quantize}.tflite", quantize=quantize)
    made["onnx-none"] = export_loaded(keras_model, folder / "model.onnx")
    return made


@pytest.mark.parametrize("kind", list(MAX_MAE))
def test_export_masks_match_the_keras_model(kind, exports, photos, reference):
    segmenter = load_segmenter(exports[kind])
    assert isinstance(segmenter, OnnxSegmenter if kind.startswith("onnx") else TFLiteSegmenter)
    masks = segmenter.predict_small(photos)
    assert masks.shape == reference.shape
    per_image = np.abs(masks - reference).mean(axis=(1, 2))
    assert per_image.mean() < MAX_MAE[kind], per_image
    assert per_image.max() < 2 * MAX_MAE[kind], per_image


def test_quantised_exports_are_smaller(exports):
    size = {kind: path.stat().st_size for kind, path in exports.items()}
    assert size["tflite-fp16"] < 0.6 * size["tflite-none"]
    assert size["tflite-int8"] < 0.45 * size["tflite-none"]
    # fp32 holds every weight: about 4 bytes per parameter of U-2-Net-P (1.13 M)
    assert size["tflite-none"] > 4 * 1.0e6 and size["onnx-none"] > 4 * 1.0e6


def test_exports_carry_the_model_info(exports, keras_model):
    original = keras_model.rmbg_info
    for kind, path in exports.items():
        info = read_sidecar(path)
        assert info is not None, f"{sidecar_path(path)} missing"
        assert (info.arch, info.input_size, info.mean, info.std) == (
            original.arch, original.input_size, original.mean, original.std)
        assert (info.input_scale, info.output_norm, info.output_index) == (original.input_scale, original.output_norm, 0)
        assert "exported from" in info.notes
    import onnx

    embedded = {p.key: p.value for p in onnx.load(str(exports["onnx-none"])).metadata_props}
    assert json.loads(embedded["rmbg_info"]) == json.loads(read_sidecar(exports["onnx-none"]).to_json())


def test_onnx_export_runs_without_its_sidecar(exports, tmp_path, photos, reference):
    alone = tmp_path / "alone.onnx"
    alone.write_bytes(exports["onnx-none"].read_bytes())
    segmenter = load_segmenter(alone)
    assert isinstance(segmenter, OnnxSegmenter)  # the info inside the file, not the peer fallback
    assert np.abs(segmenter.predict_small(photos[:1]) - reference[:1]).mean() < FP32_MAE


def test_export_refuses_to_overwrite(exports, keras_model):
    target = exports["tflite-fp16"]
    before = target.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        export_loaded(keras_model, target, quantize="fp16")
    assert target.read_bytes() == before


def test_export_cli_explains_bad_requests(tmp_path, model_path, capsys):
    assert export_main(["--model", str(model_path), "--format", "onnx", "--quantize", "int8",
                        "--out", str(tmp_path / "m.onnx")]) == 1
    assert "--quantize none only" in capsys.readouterr().err
    assert export_main(["--model", str(model_path), "--out", str(tmp_path / "m.pb")]) == 1
    assert "unknown export format 'pb'" in capsys.readouterr().err
    assert export_main(["--model", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "m.tflite")]) == 1
    assert "missing.keras" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_remove_runs_an_exported_model(exports, tmp_path, shared_data, keras_model):
    from RMBG.commands.remove import main as remove_main
    from RMBG.removal.pipeline import finish_mask

    source = sorted((shared_data / "people" / "images").glob("*.jpg"))[-1]
    out = tmp_path / "out"
    assert remove_main([str(source), "--out", str(out), "--model", str(exports["tflite-fp16"]),
                        "--mode", "mask", "--quiet"]) == 0
    image = read_image(source)
    keras_small = KerasSegmenter(keras_model, keras_model.rmbg_info, "k").predict_small([image])[0]
    expected = finish_mask(image, keras_small)
    got = np.asarray(Image.open(out / f"{source.stem}.png"), np.float32) / 255
    assert got.shape == expected.shape
    assert np.abs(got - expected).mean() < 0.005
