"""Runtimes: loading by file type, the model cache, compiled Keras, TFLite batches, the fast copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from RMBG.images.io import read_image
from RMBG.models.info import ModelInfo
from RMBG.runtime import engines as RT


@pytest.fixture(scope="module")
def model_path() -> Path:
    try:
        return RT.default_model_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def photos(shared_data) -> list[np.ndarray]:
    chosen = sorted((shared_data / "people" / "images").glob("*.jpg"))[:2]
    chosen += sorted((shared_data / "cats" / "images").glob("*.jpg"))[:1]
    return [read_image(p) for p in chosen]


@pytest.fixture(scope="module")
def keras_segmenter(model_path) -> RT.KerasSegmenter:
    return RT.KerasSegmenter.from_file(model_path)


@pytest.fixture(scope="module")
def fast_copy(model_path, tmp_path_factory) -> tuple[RT.Segmenter, Path]:
    folder = tmp_path_factory.mktemp("runtime-cache")
    return RT.fast_segmenter(model_path, cache_dir=folder), folder


# ---------------------------------------------------------------------------
# Picking the final map
# ---------------------------------------------------------------------------
def test_select_output_picks_the_listed_output_or_the_channel():
    info = ModelInfo("u2netp", 4, output_index=0)
    fused, side = np.full((1, 4, 4, 1), 0.25), np.full((1, 4, 4, 1), 0.75)
    assert np.array_equal(RT.select_output([fused, side], info), fused[..., 0])
    assert np.array_equal(RT.select_output([side, fused], ModelInfo("u2netp", 4, output_index=1)), fused[..., 0])
    stacked = np.stack([np.full((1, 4, 4), v) for v in (0.1, 0.2, 0.3, 0.4)], axis=-1)  # seed: 4 channels
    assert np.array_equal(RT.select_output(stacked, ModelInfo("seed", 4, output_index=3)), stacked[..., 3])


def test_quantize_round_trip_is_within_half_a_step():
    detail = {"dtype": np.int8, "quantization": (0.05, -3)}
    x = np.linspace(-6, 6, 101, dtype=np.float32)
    q = RT._quantize(x, detail)
    assert q.dtype == np.int8
    assert np.abs(RT._dequantize(q, detail) - x).max() <= 0.025 + 1e-6


# ---------------------------------------------------------------------------
# Loading by file type
# ---------------------------------------------------------------------------
def test_peer_onnx_loads_as_peer_with_or_without_the_flag(peer_onnx):
    assert isinstance(RT.load_segmenter(peer_onnx, peer=True), RT.OnnxPeerSegmenter)
    assert isinstance(RT.load_segmenter(peer_onnx), RT.OnnxPeerSegmenter)  # no model info inside: run as rembg does


def test_bad_model_files_say_what_is_wrong(tmp_path, fast_copy):
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        RT.load_segmenter(tmp_path / "missing.tflite")
    odd = tmp_path / "model.pt"
    odd.write_bytes(b"weights")
    with pytest.raises(ValueError, match=r"model\.pt: unsupported model file type '\.pt'"):
        RT.load_segmenter(odd)
    segmenter, _ = fast_copy
    lonely = tmp_path / "lonely.tflite"
    shutil.copy(segmenter.path, lonely)  # without its sidecar
    with pytest.raises(ValueError, match="lonely.tflite.json is missing"):
        RT.load_segmenter(lonely)
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer at all")
    shutil.copy(segmenter.path.with_name(segmenter.path.name + ".json"), tmp_path / "broken.tflite.json")
    with pytest.raises(ValueError, match="broken.tflite: not a usable TFLite model"):
        RT.load_segmenter(broken)


def test_cache_reuses_models_and_stays_small(tmp_path, peer_onnx):
    RT.clear_cache()
    copies = []
    for i in range(RT._CACHE_SIZE + 1):
        copies.append(tmp_path / f"peer{i}.onnx")
        shutil.copy(peer_onnx, copies[-1])
    first = RT.load_segmenter(copies[0], peer=True)
    assert RT.load_segmenter(copies[0], peer=True) is first
    for path in copies[1:]:
        RT.load_segmenter(path, peer=True)
    assert len(RT._CACHE) == RT._CACHE_SIZE
    assert RT.load_segmenter(copies[0], peer=True) is not first  # evicted, loaded afresh
    RT.clear_cache()


# ---------------------------------------------------------------------------
# Keras, TFLite and the fast copy agree
# ---------------------------------------------------------------------------
def test_compiled_keras_equals_calling_the_model(keras_segmenter, photos):
    eager = RT.KerasSegmenter(keras_segmenter.model, keras_segmenter.info, "eager", compile=False)
    assert keras_segmenter._run is not None  # TensorFlow backend: compiled
    compiled = keras_segmenter.predict_small(photos, batch_size=3)
    assert np.abs(compiled - eager.predict_small(photos)).max() < 1e-4


def test_fast_copy_is_cached_by_digest_and_matches_keras(fast_copy, model_path, keras_segmenter, photos):
    segmenter, folder = fast_copy
    assert isinstance(segmenter, RT.TFLiteSegmenter)
    digest = RT.file_digest(model_path)
    assert segmenter.path == folder / f"{model_path.stem}-{digest}.tflite"
    assert segmenter.path.with_name(segmenter.path.name + ".json").is_file()
    stamp = segmenter.path.stat().st_mtime_ns
    again = RT.fast_segmenter(model_path, cache_dir=folder)
    assert again.path == segmenter.path and segmenter.path.stat().st_mtime_ns == stamp  # not converted again
    diff = np.abs(segmenter.predict_small(photos) - keras_segmenter.predict_small(photos))
    assert diff.mean() < 1e-4 and diff.max() < 0.01


def test_tflite_batches_equal_single_images(fast_copy, photos):
    segmenter, _ = fast_copy
    batched = segmenter.predict_small(photos, batch_size=3)
    single = np.stack([segmenter.predict_small([p])[0] for p in photos])
    assert batched.shape == (3, segmenter.input_size, segmenter.input_size)
    assert np.abs(batched - single).max() < 1e-4


def test_full_size_masks_follow_each_photo(fast_copy, photos):
    segmenter, _ = fast_copy
    masks = segmenter.predict(photos)
    for mask, photo in zip(masks, photos):
        assert mask.shape == photo.shape[:2] and mask.dtype == np.float32
        assert 0.0 <= mask.min() and mask.max() <= 1.0


def test_huge_photos_are_preshrunk_without_changing_the_input_much(fast_copy, photos):
    segmenter, _ = fast_copy
    import cv2

    photo = photos[0]
    big = cv2.resize(photo, (photo.shape[1] * 5, photo.shape[0] * 5), interpolation=cv2.INTER_CUBIC)
    assert max(big.shape[:2]) > RT.PRESHRINK_FACTOR * segmenter.input_size  # takes the pre-shrink path
    direct = np.asarray(
        RT.Image.fromarray(big).resize((segmenter.input_size,) * 2, RT.Image.LANCZOS), np.float32
    )
    via = segmenter.preprocess(big)
    assert np.abs(segmenter.info.normalize(direct) - via).mean() < 0.01
