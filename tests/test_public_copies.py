"""LiteRT copies of the public networks (:mod:`RMBG.models.public_copies`, served by
:func:`RMBG.runtime.engines.public_fast_segmenter`): made once, with one progress line and none of the
converter's, and within the bound of onnxruntime's masks on real shared photos."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from RMBG.images.io import list_images, read_image, read_mask
from RMBG.runtime import engines

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: making U-2-Net's int8 copy takes 1-3 minutes on two busy cores
TIMEOUT = 1200
#: what the converter and LiteRT print on their own (issue 34: never shown)
CONVERTER_CHATTER = ("fully_quantize", "inference_type", "XNNPACK delegate", "I0000 ", "W0000 ",
                     "Ignored output_format", "absl::InitializeLog", "QuantizationDebugger")
#: The int8 copy against onnxruntime on a few photos. Issue 34's bound holds per category over the 177
#: validation photos (scripts/runtime_quality.py --name u2net: |dMAE| <= 0.0004, dmax-F >= -0.0004); on a
#: few photos one hard photo moves a category's mean, so these check the typical photo and the tail:
#: measured on these 6, median mask difference 0.0012, worst 0.0225 (a cat), mean score gap +0.0038.
MEDIAN_MASK_DIFFERENCE = 0.0015
WORST_MASK_DIFFERENCE = 0.05
MEAN_SCORE_GAP = 0.006


def _photos(shared_data: Path, per_set: int = 2) -> list[tuple[Path, Path]]:
    """A few labelled photos of each shared set, spread over it (none of them calibrates int8)."""
    pairs = []
    for name in ("people", "ecssd", "cats"):
        images = list_images(shared_data / name / "images")
        for image in images[:: max(1, len(images) // per_set)][:per_set]:
            pairs.append((image, shared_data / name / "masks" / f"{image.stem}.png"))
    return pairs


@pytest.fixture(scope="module")
def made_copy(tmp_path_factory, teacher_u2net, shared_data):
    """U-2-Net's copy made in a fresh cache by a fresh process: (cache folder, its finished process)."""
    cache = tmp_path_factory.mktemp("runtime-cache")
    photo = _photos(shared_data, 1)[0][0]
    code = ("from RMBG.runtime.engines import public_fast_segmenter\n"
            "from RMBG.images.io import read_image\n"
            f"s = public_fast_segmenter('u2net', {str(teacher_u2net)!r}, cache_dir={str(cache)!r})\n"
            f"print(type(s).__name__, s.precision(), s.name, float(s.predict([read_image({str(photo)!r})])[0].mean()))\n")
    env = {k: v for k, v in os.environ.items() if k not in {"TF_CPP_MIN_LOG_LEVEL", "RMBG_VERBOSE"}}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    return cache, done


def test_a_conversion_prints_one_progress_line_and_none_of_the_converters(made_copy):
    cache, done = made_copy
    kind, precision, name, mean = done.stdout.split()
    assert (kind, precision, name) == ("TFLiteSegmenter", "int8", "u2net")
    assert 0.0 < float(mean) < 1.0
    lines = done.stderr.splitlines()
    assert [line for line in lines if any(word in line for word in CONVERTER_CHATTER)] == [], done.stderr
    assert len(lines) == 1, done.stderr
    assert "model u2net: making u2net-" in lines[0] and lines[0].rstrip().endswith(" s"), lines[0]
    assert [p.name for p in cache.glob("*.tflite")] == [lines[0].split("making ")[1].split()[0]]


def test_the_copy_is_made_once_and_found_again_without_converting(made_copy, teacher_u2net, monkeypatch, capsys):
    cache, _ = made_copy
    from RMBG.models import public_copies

    def refuse(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(public_copies, "convert_public", refuse)
    before = sorted(cache.iterdir())
    segmenter = engines.public_fast_segmenter("u2net", teacher_u2net, cache_dir=cache)
    assert isinstance(segmenter, engines.TFLiteSegmenter) and segmenter.precision() == "int8"
    assert segmenter.path == engines.public_copy_path("u2net", teacher_u2net, cache)
    assert sorted(cache.iterdir()) == before  # nothing new, nothing half-written
    assert capsys.readouterr().err == ""  # no progress line: nothing was made


def test_the_name_runs_the_copy_and_the_peer_runs_the_publishers_file(made_copy, monkeypatch):
    cache, _ = made_copy
    monkeypatch.setattr(engines, "runtime_cache_dir", lambda: cache)
    engines.clear_cache()
    try:
        ours, peer = engines.load_segmenter("u2net"), engines.load_segmenter("u2net", peer=True)
    finally:
        engines.clear_cache()
    assert isinstance(ours, engines.TFLiteSegmenter) and ours.path.parent == cache
    assert isinstance(peer, engines.OnnxPeerSegmenter)
    assert ours.input_size == peer.input_size == 320 and ours.resample == peer.resample


def test_the_int8_copy_keeps_onnxruntimes_masks_within_the_bound(made_copy, teacher_u2net, shared_data):
    from RMBG.evaluation.metrics import score_image

    cache, _ = made_copy
    ours = engines.public_fast_segmenter("u2net", teacher_u2net, cache_dir=cache)
    peer = engines.OnnxPeerSegmenter(teacher_u2net)
    differences, score_gaps = [], []
    for image_path, mask_path in _photos(shared_data):
        image, truth = read_image(image_path), read_mask(mask_path)
        mine, theirs = ours.predict([image])[0], peer.predict([image])[0]
        differences.append(float(np.mean(np.abs(mine - theirs))))
        to8 = lambda m: np.rint(m * 255).astype(np.uint8)  # noqa: E731 (as remove writes the alpha)
        score_gaps.append(score_image(to8(mine), truth).mae - score_image(to8(theirs), truth).mae)
    assert float(np.median(differences)) <= MEDIAN_MASK_DIFFERENCE, differences
    assert max(differences) <= WORST_MASK_DIFFERENCE, differences  # no photo wrecked
    assert abs(float(np.mean(score_gaps))) <= MEAN_SCORE_GAP, score_gaps



@pytest.fixture(scope="module")
def isnet_file() -> Path:
    from RMBG.models.fetch import teacher_home

    path = teacher_home() / "isnet.onnx"
    if not path.is_file():
        pytest.skip(f"{path} is absent: python -m RMBG fetch-teacher isnet gets it")
    return path


def test_the_fp32_copy_of_isnet_gives_the_fp16_files_maps_with_one_output(isnet_file, shared_data, tmp_path):
    import onnx

    from RMBG.models.names import ISNET_RECIPE
    from RMBG.models.public_copies import fp32_onnx_copy

    copy = fp32_onnx_copy(isnet_file, tmp_path / "isnet-fp32.onnx")
    graph = onnx.load(str(copy)).graph
    assert [value.name for value in graph.output] == ["output"]
    assert {tensor.data_type for tensor in graph.initializer} == {onnx.TensorProto.FLOAT}
    assert [p.name for p in tmp_path.iterdir()] == ["isnet-fp32.onnx"]  # nothing half-written beside it
    image = read_image(_photos(shared_data, 1)[0][0])
    ours = engines.OnnxPeerSegmenter(copy, recipe=ISNET_RECIPE).predict([image])[0]
    theirs = engines.OnnxPeerSegmenter(isnet_file).predict([image])[0]
    assert 0.0 < float(theirs.mean()) < 1.0
    assert float(np.max(np.abs(ours - theirs))) < 2e-3  # fp16 rounding inside the publisher's file


def test_a_name_gets_its_first_qualified_row(monkeypatch, tmp_path):
    from RMBG.models import public_copies as P

    unmeasured = P.Conversion("x", "int8", "not measured", importer=lambda path: None, qualified=False)
    fallback = P.Conversion("x", "fp32", "an ONNX copy", maker=lambda src, out: out)
    monkeypatch.setitem(P.CONVERSIONS, "x", (unmeasured, fallback))
    assert P.conversion_for("x") is fallback and (fallback.suffix, fallback.tag()) == (".onnx", "fp32")
    assert unmeasured.suffix == ".tflite" and unmeasured.tag().startswith("int8-")
    assert P.conversion_for("default") is None
    with pytest.raises(ValueError, match="model 'default': no faster copy"):
        P.convert_public("default", tmp_path / "a.onnx", tmp_path / "b.tflite")


def test_the_bf16_copy_of_isnet_keeps_onnxruntimes_masks(isnet_file, shared_data, tmp_path, monkeypatch):
    from RMBG import machine

    # the copy isnet gets on an AMX CPU (RMBG.machine.cpu_runs_bf16), made here on any CPU: elsewhere
    # bfloat16 runs slower, not differently
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setattr(machine, "cpu_flags", lambda: {"amx_bf16"})
    ours = engines.public_fast_segmenter("isnet", isnet_file, cache_dir=tmp_path)
    assert isinstance(ours, engines.KerasSegmenter) and ours.path.name.endswith("-bf16.keras")
    assert ours.device_line.endswith("on CPU (bf16 copy)"), ours.device_line
    peer = engines.OnnxPeerSegmenter(isnet_file)
    assert ours.input_size == peer.input_size == 1024 and ours.resample == peer.resample
    differences = []
    for image_path, _ in _photos(shared_data, 1):
        image = read_image(image_path)
        mine, theirs = ours.predict([image])[0], peer.predict([image])[0]
        assert 0.0 < float(theirs.mean()) < 1.0
        differences.append(float(np.mean(np.abs(mine - theirs))))
    # issue 34's bound for isnet is 0.002; on the 177 validation photos the copy is 0.0001-0.0003 away
    assert max(differences) < 0.002, differences
