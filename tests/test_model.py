"""RMBG.model and RMBG.models.archs: the registered architectures, their fidelity to the reference, and model files."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from RMBG.models.archs import REGISTRY, get_spec
from RMBG.models.archs.u2net import max_pool, resize_like
from RMBG.models.build import (
    build_model,
    count_params,
    default_info,
    load_model,
    save_model,
)
from RMBG.models.info import INFO_ENTRY, ModelFileError, ModelInfo, read_model_info

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUBPROCESS_TIMEOUT = 240


@functools.lru_cache(maxsize=None)
def built(arch: str, size: int):
    """One model per (arch, size) for the whole module (building costs seconds)."""
    import keras

    keras.utils.set_random_seed(7)
    return build_model(arch, input_size=size)


def run(model, batch):
    import keras

    outputs = model(batch, training=False)
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in outputs]
    return keras.ops.convert_to_numpy(outputs)


def random_batch(size: int, count: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, size, size, 3)).astype(np.float32)


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(PROJECT_ROOT), **extra)
    return env


# ---------------------------------------------------------------------------
# Shapes and parameter counts
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("arch,size", [("u2netp", 64), ("u2netp", 96), ("u2net", 64)])
def test_u2net_outputs_fused_then_six_sides_at_input_size(arch, size):
    model = built(arch, size)
    assert model.output_names == ["fused"] + [f"side{k}" for k in range(1, 7)]
    outputs = run(model, random_batch(size))
    assert len(outputs) == 7
    for out in outputs:
        assert out.shape == (2, size, size, 1)
        assert out.min() >= 0.0 and out.max() <= 1.0  # sigmoid probabilities
    # The maps depend on the input: two different images give different masks.
    assert np.abs(outputs[0][0] - outputs[0][1]).max() > 1e-4


@pytest.mark.parametrize("size", [64, 96])
def test_seed_outputs_four_stacked_sides(size):
    model = built("seed", size)
    out = run(model, random_batch(size))
    assert out.shape == (2, size, size, 4)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert [layer.name for layer in model.layers if layer.name.startswith("decoder") and layer.name.endswith("_out")] == [
        f"decoder{i}_out" for i in range(1, 5)
    ]
    # Filters 512/256/128/64 in the decoder, a 1024-filter dilated bridge at rates 3, 6, 9.
    assert [model.get_layer(f"decoder{i}_a_conv").filters for i in range(1, 5)] == [512, 256, 128, 64]
    assert [model.get_layer(f"bridge_rate{r}").dilation_rate for r in (3, 6, 9)] == [(3, 3), (6, 6), (9, 9)]


@pytest.mark.parametrize("arch", [name for name, spec in REGISTRY.items() if spec.published_params])
def test_parameter_counts_match_the_published_ones(arch):
    counts = count_params(built(arch, 64))
    # Trainable weights are PyTorch's parameters(); BN moving statistics are extra.
    assert counts["trainable"] == pytest.approx(get_spec(arch).published_params, rel=0.01)
    if arch == "u2netp":
        # The peer ONNX (BN folded) has 1,125,485: ours adds BN's gamma/beta (2 x 2,848).
        assert counts["trainable"] == 1_125_485 + counts["non_trainable"]
    counts_big = count_params(built(arch, 96)) if arch == "u2netp" else counts
    assert counts_big == counts  # the size changes shapes, not weights


@pytest.mark.parametrize("arch", list(REGISTRY))
def test_every_registered_arch_builds_and_its_info_picks_a_mask_map(arch):
    """Each spec's factory builds at 64 and its default ModelInfo's output is a 64x64 probability map."""
    from RMBG.models.info import select_output

    model = built(arch, 64)
    info = default_info(arch, 64)
    assert info.arch == arch and info.config["arch"] == arch and info.input_size == 64
    mask = select_output(run(model, random_batch(64)), info)
    assert mask.shape == (2, 64, 64)
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    spec = get_spec(arch)
    if spec.encoder_prefixes:  # what freeze=("encoder",) means must name real layers
        names = [layer.name for layer in model.layers]
        assert all(any(n.startswith(prefix) for n in names) for prefix in spec.encoder_prefixes)
    if spec.base is not None:
        base_layers = {layer.name for layer in built(spec.base, 64).layers if layer.weights}
        assert base_layers <= {layer.name for layer in model.layers}  # an init from the base copies by name


def test_wrong_arch_and_size_give_clear_errors():
    with pytest.raises(ValueError, match="unknown architecture 'u2netx'.*u2netp, u2net"):
        build_model("u2netx")
    for size in (100, 16, 0, -32):
        with pytest.raises(ValueError, match="multiple of 32"):
            build_model("u2netp", input_size=size)
    with pytest.raises(ValueError, match="integer"):
        build_model("u2netp", input_size=64.5)
    assert set(REGISTRY) == {"resnet50_unet", "u2net", "u2netp", "isnet", "u2net_refine", "u2netp_refine"}
    # the ResNet50 U-Net's old name still builds it, and its files say what it is
    assert get_spec("seed") is get_spec("resnet50_unet") and default_info("seed", 64).arch == "resnet50_unet"


# ---------------------------------------------------------------------------
# Fidelity of the building blocks to PyTorch
# ---------------------------------------------------------------------------
def torch_bilinear_reference(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """F.interpolate(mode='bilinear', align_corners=False) on an HxWxC array, in numpy."""

    def axis(n_in, n_out):
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        src = np.clip(src, 0, None)
        low = np.minimum(np.floor(src).astype(int), n_in - 1)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (src - low)[:, None]

    y0, y1, wy = axis(image.shape[0], out_h)
    x0, x1, wx = axis(image.shape[1], out_w)
    rows = image[y0] * (1 - wy[..., None]) + image[y1] * wy[..., None]
    return rows[:, x0] * (1 - wx) + rows[:, x1] * wx


@pytest.mark.parametrize("source,target", [(5, 10), (10, 320), (7, 14), (6, 9), (9, 17)])
def test_resize_like_matches_pytorch_bilinear(source, target):
    import keras

    image = np.random.default_rng(source).normal(size=(1, source, source, 3)).astype(np.float32)
    x = keras.Input((source, source, 3))
    anchor = keras.Input((target, target, 1))
    model = keras.Model([x, anchor], resize_like(x, anchor, "up"))
    ours = keras.ops.convert_to_numpy(model([image, np.zeros((1, target, target, 1), np.float32)]))
    np.testing.assert_allclose(ours[0], torch_bilinear_reference(image[0], target, target), atol=1e-5)


def test_resize_by_a_fractional_factor_is_fixed_matrices_that_save_and_load(tmp_path):
    """IS-Net at sizes that are not multiples of 64 halves odd maps (9 -> 17 back up): two
    non-trainable matrix products in standard layers, which survive a save and a load."""
    import keras

    x, anchor = keras.Input((9, 9, 2)), keras.Input((17, 17, 1))
    model = keras.Model([x, anchor], resize_like(x, anchor, "up"))
    assert [layer.name for layer in model.layers if layer.weights] == ["up_rows", "up_cols"]
    assert model.count_params() == 2 * 9 * 17 and not model.trainable_weights
    model.save(tmp_path / "resize.keras")
    loaded = keras.saving.load_model(tmp_path / "resize.keras")
    image = np.random.default_rng(0).normal(size=(1, 9, 9, 2)).astype(np.float32)
    feed = [image, np.zeros((1, 17, 17, 1), np.float32)]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(feed)), keras.ops.convert_to_numpy(model(feed)))


def test_calling_without_training_flag_is_inference():
    """No layer may switch BatchNorm to training mode when ``training`` is not given."""
    import keras

    model = built("u2netp", 64)
    before = [w.copy() for w in model.get_weights()]
    batch = random_batch(64, seed=2) * 5.0
    default = keras.ops.convert_to_numpy(model(batch)[0])
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)  # moving statistics untouched
    np.testing.assert_array_equal(default, run(model, batch)[0])


def test_max_pool_rounds_odd_sizes_up_like_ceil_mode():
    import keras

    image = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1) * -1.0  # all negative: padding must not win
    x = keras.Input((5, 5, 1))
    pooled = keras.ops.convert_to_numpy(keras.Model(x, max_pool(x, "pool"))(image))[0, ..., 0]
    expected = np.array([[-0, -2, -4], [-10, -12, -14], [-20, -22, -24]], np.float32)
    np.testing.assert_array_equal(pooled, expected)


# ---------------------------------------------------------------------------
# Serialisation
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["u2netp", "seed"])
def test_get_config_round_trip_rebuilds_the_same_model(arch):
    import keras

    model = built(arch, 64)
    config = json.loads(json.dumps(model.get_config()))  # plain JSON survives
    clone = keras.Model.from_config(config)
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert count_params(clone) == count_params(model)
    clone.set_weights(model.get_weights())
    batch = random_batch(64, seed=3)
    for mine, theirs in zip(np.atleast_1d(run(model, batch)), np.atleast_1d(run(clone, batch))):
        np.testing.assert_allclose(mine, theirs, atol=1e-6)


def test_save_and_load_give_identical_outputs_and_info(tmp_path):
    model = built("u2netp", 64)
    info = default_info("u2netp", 64, notes_extra=True)
    path = save_model(model, tmp_path / "m.keras", info)
    assert read_model_info(path) == info
    loaded = load_model(path)
    assert loaded.rmbg_info == info
    batch = random_batch(64, seed=5)
    for mine, theirs in zip(run(model, batch), run(loaded, batch)):
        np.testing.assert_array_equal(mine, theirs)
    with zipfile.ZipFile(path) as archive:
        assert INFO_ENTRY in archive.namelist()
        assert json.loads(archive.read(INFO_ENTRY))["arch"] == "u2netp"
        assert all(item.compress_type == zipfile.ZIP_DEFLATED for item in archive.infolist())
    assert path.stat().st_mode & 0o044  # readable by others, like any other output
    assert not [p for p in tmp_path.iterdir() if p.name != "m.keras"]  # no temporary left behind


def test_save_refuses_to_overwrite_and_bad_names(tmp_path):
    model = built("u2netp", 64)
    info = default_info("u2netp", 64)
    path = save_model(model, tmp_path / "m.keras", info)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="m.keras: already exists"):
        save_model(model, path, info)
    assert path.read_bytes() == before
    save_model(model, path, ModelInfo("u2netp", 64, notes="second"), overwrite=True)
    assert read_model_info(path).notes == "second"
    with pytest.raises(ValueError, match=r"m\.h5: model files must end in \.keras"):
        save_model(model, tmp_path / "m.h5", info)


def test_load_model_rejects_files_that_are_not_rmbg_models(tmp_path):
    plain = tmp_path / "plain.keras"
    built("u2netp", 64).save(plain)  # a Keras file without our ModelInfo
    with pytest.raises(ModelFileError, match=r"plain\.keras: not an RMBG model \(no rmbg_info\.json"):
        load_model(plain)
    text = tmp_path / "notes.keras"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match=r"notes\.keras: not a \.keras model file"):
        load_model(text)
    with pytest.raises(ModelFileError, match=r"absent\.keras: model file not found"):
        read_model_info(tmp_path / "absent.keras")
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr(INFO_ENTRY, json.dumps({"arch": "u2netp", "input_size": 64}))
    with pytest.raises(ModelFileError, match=r"broken\.keras: Keras could not load it"):
        load_model(broken)


def test_read_model_info_does_not_import_keras(tmp_path):
    path = save_model(built("u2netp", 64), tmp_path / "m.keras", default_info("u2netp", 64))
    code = (
        "import sys; from RMBG.model import read_model_info; "
        f"info = read_model_info({str(path)!r}); "
        "print(info.arch, info.input_size, 'keras' in sys.modules, 'tensorflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=clean_env(), timeout=SUBPROCESS_TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["u2netp", "64", "False", "False"]


def test_keras_segmenter_reads_the_finest_seed_channel():
    from RMBG.runtime.engines import KerasSegmenter

    model = built("seed", 64)
    info = default_info("seed", 64)
    assert (info.output_index, info.mean) == (3, None)
    batch = random_batch(64, seed=9)
    maps = KerasSegmenter(model, info, "seed")._infer(batch)
    np.testing.assert_array_equal(maps, run(model, batch)[..., 3])


# ---------------------------------------------------------------------------
# Other backends and offline behaviour (subprocesses: the backend is fixed per process)
# ---------------------------------------------------------------------------
JAX_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    from RMBG.model import build_model
    weights, batch, out = sys.argv[1:4]
    model = build_model("u2netp", input_size=64)
    model.load_weights(weights)
    np.save(out, model.predict(np.load(batch), verbose=0)[0])
    """
)


def test_u2netp_under_jax_equals_tensorflow(tmp_path):
    pytest.importorskip("jax")
    import keras

    assert keras.backend.backend() == "tensorflow"
    model = build_model("u2netp", input_size=64)  # its own copy: the weights are changed below
    # Non-trivial BatchNorm statistics, so inference-mode BN is part of the check.
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if layer.name.endswith("_bn"):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma * rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                               rng.normal(0, 0.1, beta.shape).astype(np.float32),
                               rng.normal(0, 0.1, mean.shape).astype(np.float32),
                               rng.uniform(0.5, 2.0, var.shape).astype(np.float32)])
    weights = tmp_path / "u2netp.weights.h5"
    model.save_weights(weights)
    batch = random_batch(64, seed=11)
    np.save(tmp_path / "batch.npy", batch)
    expected = run(model, batch)[0]
    assert expected.std() > 1e-3  # not a constant map

    done = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(weights), str(tmp_path / "batch.npy"), str(tmp_path / "jax.npy")],
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
        env=clean_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = np.load(tmp_path / "jax.npy")
    assert result.shape == expected.shape
    assert np.abs(result - expected).max() < 1e-4


def test_seed_imagenet_weights_fail_offline_with_advice(monkeypatch):
    from RMBG.models.archs import resnet_unet as model_module

    if model_module._imagenet_weights_available():
        pytest.skip("ResNet50 ImageNet weights are cached here, so building with them succeeds")
    offline = "http://127.0.0.1:9"  # the discard port: refused at once, so no download and no hang
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, offline)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="could not load ResNet50 encoder weights 'imagenet'") as failure:
        build_model("seed", input_size=64, encoder_weights="imagenet")
    assert "encoder_weights=None" in str(failure.value)
    assert not model_module._imagenet_weights_available()  # nothing half-downloaded left


def test_seed_rejects_unknown_encoder_weights():
    with pytest.raises(ValueError, match="encoder_weights must be None, 'imagenet' or a weights file"):
        build_model("seed", input_size=64, encoder_weights="instagram")
