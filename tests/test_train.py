"""RMBG.train, RMBG.training.losses, RMBG.training.presets: recipes, losses, real learning, fine-tuning,
resuming a killed run, and two workers on loopback ending with identical weights."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from shared_sets import link_pairs
from shared_sets import pairs as shared_pairs

from RMBG.commands.train import build_parser, config_from_args
from RMBG.commands.train import main as train_main
from RMBG.images import dataset
from RMBG.models.archs import REGISTRY, get_spec
from RMBG.train import train
from RMBG.training import presets, tf_data
from RMBG.training.config import TrainConfig
from RMBG.training.fit import fit
from RMBG.training.run_folder import RunStateError, prepare_run_folder, trim_log

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUBPROCESS_TIMEOUT = 300
#: Tiny, fast settings shared by the subprocess runs (u2netp at 32 px, SGD: the cheapest step to trace).
TINY = ["--preset", "sample", "--arch", "u2netp", "--optimizer", "sgd", "--freeze-bn", "--verbose", "2"]


def subprocess_env(**extra) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def log_epochs(path: Path) -> list[int]:
    with open(path, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


# ---------------------------------------------------------------------------
# Presets and configuration
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(presets.PRESETS))
@pytest.mark.parametrize("arch", [*REGISTRY, "seed"])
def test_every_preset_is_valid_for_every_arch(name, arch):
    from RMBG.models.archs.spec import check_input_size

    preset = presets.get_preset(name, arch)
    assert check_input_size(preset.image_size) == preset.image_size
    assert check_input_size(preset.train_size) == preset.train_size <= preset.image_size
    assert presets.preset_problems(preset) == []


def test_presets_carry_the_original_values_and_the_fine_tune_recipe():
    sample = presets.get_preset("sample", "seed")
    assert (sample.batch, sample.lr, sample.epochs, sample.split) == (2, 0.01, 10, 0.4)
    assert sample.image_size == presets.MIN_SIZE == 32  # 16 is not a valid size any more
    full = presets.get_preset("full", "seed")
    assert (full.image_size, full.batch, full.lr, full.epochs, full.split) == (512, 64, 1e-6, 100, 0.2)
    tune = presets.get_preset("finetune", "u2netp")
    assert (tune.image_size, tune.train_size, tune.freeze_bn) == (320, 288, True)
    assert presets.expand_freeze(tune.freeze, "u2netp") == tuple(f"stage{i}_" for i in range(1, 7))
    assert presets.get_preset("finetune", "u2netp", lr=3e-5, epochs=2).lr == 3e-5
    with pytest.raises(ValueError, match="multiple of 32"):
        presets.get_preset("sample", "u2netp", image_size=48)
    with pytest.raises(ValueError, match="unknown preset field"):
        presets.get_preset("sample", "u2netp", learning_rate=1)
    with pytest.raises(ValueError, match="loss"):
        presets.get_preset("sample", "u2netp", loss="bce+dice")
    with pytest.raises(ValueError, match="plain_background is a probability"):
        presets.get_preset("finetune", "u2netp", plain_background=1.5)
    with pytest.raises(ValueError, match=r"blend is the trained weights' share, in \[0, 1\], got 1.5"):
        presets.get_preset("finetune", "u2netp", blend=1.5)
    with pytest.raises(ValueError, match=r"ema is the moving average's momentum, in \[0, 1\) \(0: off\), got 1.0"):
        presets.get_preset("distill", "u2netp", ema=1.0)
    # the refine archs start from another network (their plain base): nothing to blend with
    assert presets.get_preset("finetune", "u2netp_refine").blend == 1.0


def test_cli_overrides_every_kind_of_field(tmp_path):
    args = build_parser().parse_args(
        [
            "--preset", "finetune", "--arch", "u2netp", "--data", "d", "--out", str(tmp_path),
            "--init", "m.keras", "--epochs", "3", "--lr", "2e-5", "--crop-size", "none",
            "--crop-scale", "0.5,1", "--freeze", "encoder,side1_", "--no-freeze-bn", "--no-flip",
            "--clipnorm", "0.5", "--loss", "bce+iou", "--side-weights", "fused", "--optimizer", "adamw",
            "--val-every-steps", "40", "--output-norm", "none", "--strategy", "mirrored", "--resume",
        ]
    )
    config = config_from_args(args)
    p = config.preset
    assert (p.epochs, p.lr, p.crop_size, p.train_size, p.crop_scale) == (3, 2e-5, None, 320, (0.5, 1.0))
    assert (p.freeze, p.freeze_bn, p.flip, p.clipnorm) == (("encoder", "side1_"), False, False, 0.5)
    assert (p.loss, p.side_weights, p.optimizer, p.val_every_steps, p.output_norm) == (
        "bce+iou", "fused", "adamw", 40, "none",
    )
    assert (config.init, config.strategy, config.resume) == ("m.keras", "mirrored", True)
    # untouched fields keep the preset's values
    assert p.batch == presets.get_preset("finetune", "u2netp").batch


def test_a_new_image_size_moves_the_crop_the_same_way_on_the_cli_and_in_the_widgets(tmp_path):
    """``--image-size 256`` on the finetune preset (288 crops of 320) trains on 224 crops of 256."""
    from RMBG.training.config import rescale_crop

    args = build_parser().parse_args(
        ["--preset", "finetune", "--arch", "u2netp", "--image-size", "256", "--data", "d", "--out", str(tmp_path)]
    )
    preset = config_from_args(args).preset
    assert (preset.image_size, preset.crop_size) == (256, 224)
    assert preset.crop_scale == (pytest.approx(0.7656), pytest.approx(0.7656))  # still the inference scale
    finetune = presets.get_preset("finetune", "u2netp")
    assert rescale_crop(finetune, 256) == {"crop_size": 224, "crop_scale": (0.7656, 0.7656)}
    assert rescale_crop(finetune, 320) == {}  # the preset's own size: nothing moves
    # an explicit crop wins over the rescale
    args = build_parser().parse_args(
        ["--preset", "finetune", "--image-size", "256", "--crop-size", "256", "--data", "d", "--out", str(tmp_path)]
    )
    assert config_from_args(args).preset.crop_size == 256


def test_a_pretrained_preset_starts_from_the_arch_spec_file_and_random_presets_do_not(tmp_path):
    from RMBG.constants import IMPORTED_U2NETP_PATH
    from RMBG.training.config import resolve_config

    if not IMPORTED_U2NETP_PATH.is_file():
        pytest.skip(f"{IMPORTED_U2NETP_PATH} is not shipped here")
    tune = resolve_config("finetune", "u2netp", "d", tmp_path)
    assert tune.preset.start == "pretrained" and tune.init == str(IMPORTED_U2NETP_PATH)
    assert resolve_config("finetune", "u2netp_refine", "d", tmp_path).init == str(IMPORTED_U2NETP_PATH)
    assert resolve_config("sample", "u2netp", "d", tmp_path).init is None
    assert resolve_config("finetune", "u2netp", "d", tmp_path, init="mine.keras").init == "mine.keras"
    with pytest.raises(ValueError, match="the finetune preset starts from pretrained weights: pass --init"):
        resolve_config("finetune", "u2net", "d", tmp_path)  # no pretrained u2net file here


def fake_model_file(path: Path, arch: str) -> Path:
    """A file whose model info says ``arch`` (enough for every check that reads no weights)."""
    import zipfile

    from RMBG.models.info import INFO_ENTRY, ModelInfo

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(INFO_ENTRY, ModelInfo(arch, 64).to_json())
    return path


@pytest.mark.parametrize(
    "problem",
    ["missing data folder", "start of another arch", "blend without a start", "crop larger than the image"],
)
def test_overwrite_with_a_bad_config_leaves_the_old_run_intact(tmp_path, problem, capsys):
    """Every problem is raised before ``--overwrite`` deletes the previous run or a photo is decoded."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    run = tmp_path / "run"
    (run / "backup").mkdir(parents=True)
    old = {"log.csv": "epoch,loss\n0,0.5\n", "model.keras": "old model", "data_report.txt": "old report",
           "backup/training_metadata.json": '{"epoch": 1}'}
    for name, text in old.items():
        (run / name).write_text(text)
    argv = ["--preset", "sample", "--arch", "u2netp", "--data", str(data), "--out", str(run), "--overwrite"]
    expected = {
        "missing data folder": (["--data", str(tmp_path / "absent")], "data folder not found"),
        "start of another arch": (["--init", str(fake_model_file(tmp_path / "big.keras", "u2net"))],
                                  "holds a u2net model, not u2netp"),
        "blend without a start": (["--blend", "0.5"], "it needs --init"),
        "crop larger than the image": (["--crop-size", "64"], "crop_size 64 is larger than image_size 32"),
    }
    extra, message = expected[problem]
    assert train_main(argv + extra) == 2
    assert message in capsys.readouterr().err
    assert {name: (run / name).read_text() for name in old} == old  # nothing deleted, nothing rewritten


def test_original_api_maps_onto_a_config(tmp_path):
    job = train(64, 64, 4, 0.001, 3, 0.25, "some/data", out=tmp_path)
    p = job.config.preset
    assert (job.config.arch, p.image_size, p.batch, p.lr, p.epochs, p.split) == ("seed", 64, 4, 0.001, 3, 0.25)
    assert job.config.data == "some/data"
    with pytest.raises(ValueError, match="square"):
        train(64, 96, 4, 0.001, 3, 0.25, "some/data")


def test_run_folder_refuses_to_mix_runs_and_trims_on_resume(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss\n0,1.0\n1,0.9\n2,0.8\n")
    with pytest.raises(RunStateError, match="--resume"):
        prepare_run_folder(tmp_path, resume=False, overwrite=False)
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    assert prepare_run_folder(tmp_path, resume=True, overwrite=False) == 2
    assert log_epochs(log) == [0, 1]
    assert trim_log(log, 1) == 1 and log_epochs(log) == [0]
    assert prepare_run_folder(tmp_path, resume=False, overwrite=True) == 0
    assert not log.exists() and not (tmp_path / "backup").exists()


# ---------------------------------------------------------------------------
# Losses and metrics
# ---------------------------------------------------------------------------
def test_deep_supervision_loss_matches_numpy():
    from RMBG.training.losses import (
        DeepSupervisionLoss,
        channel_iou,
        channel_mae,
        side_weights,
    )

    rng = np.random.default_rng(0)
    y = (rng.random((2, 8, 8, 1)) > 0.5).astype(np.float32)
    p = rng.uniform(0.01, 0.99, (2, 8, 8, 3)).astype(np.float32)

    def bce(t, q):
        return -(t * np.log(q) + (1 - t) * np.log(1 - q)).mean(axis=(1, 2, 3))

    def iou(t, q):
        inter = (t * q).sum(axis=(1, 2, 3))
        return 1 - (inter + 1) / (t.sum(axis=(1, 2, 3)) + q.sum(axis=(1, 2, 3)) - inter + 1)

    weights = (1.0, 0.5, 0.0)
    got = np.asarray(DeepSupervisionLoss("bce+iou", weights).call(y, p))
    expected = sum(w * (bce(y, p[..., k : k + 1]) + iou(y, p[..., k : k + 1])) for k, w in enumerate(weights))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # "fused" weighs the fused channel only: the other channels do not matter
    fused = DeepSupervisionLoss("l1", side_weights("fused", 3, 0))
    changed = p.copy()
    changed[..., 1:] = 0.5
    np.testing.assert_allclose(np.asarray(fused.call(y, p)), np.asarray(fused.call(y, changed)))
    np.testing.assert_allclose(np.asarray(channel_mae(y, p, 1)), np.abs(y - p[..., 1:2]).mean(axis=(1, 2, 3)), rtol=1e-6)
    guess = p[..., :1] > 0.5
    truth = y > 0.5
    expected_iou = (guess & truth).sum(axis=(1, 2, 3)) / (guess | truth).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(np.asarray(channel_iou(y, p, 0)), expected_iou, rtol=1e-6)
    with pytest.raises(ValueError):
        side_weights("1,2", 3)


# ---------------------------------------------------------------------------
# Learning is real
# ---------------------------------------------------------------------------
def runtime_mae(model_path: Path, pairs) -> float:
    """Mean MAE of a saved model over (photo, mask) pairs at full size, through the runtime."""
    from RMBG.images.io import read_image, read_mask
    from RMBG.runtime.engines import KerasSegmenter

    segmenter = KerasSegmenter.from_file(model_path)
    return float(np.mean([np.abs(segmenter.predict_one(read_image(i)) - read_mask(m)).mean() for i, m in pairs]))


def test_u2netp_learns_eight_people_photos(tmp_path, shared_data):
    """100 steps on 8 real pairs at 32 px halve (at least) the full-size MAE on them."""
    import keras

    from RMBG.models.build import build_model, default_info, save_model

    chosen = shared_pairs(shared_data / "people", 8)
    root = link_pairs(chosen, tmp_path / "people8")
    keras.utils.set_random_seed(42)
    init = tmp_path / "init.keras"
    save_model(build_model("u2netp", 32), init, default_info("u2netp", 32))
    start = runtime_mae(init, chosen)

    config = TrainConfig.from_preset(
        "sample", "u2netp", root, tmp_path / "run", init=str(init), verbose=0,
        image_size=32, batch=8, epochs=1, steps_per_epoch=100, split=0.0,
        optimizer="sgd", lr=0.05, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), jitter=0.0,
    )
    result = fit(config)
    end = runtime_mae(result.model_path, chosen)
    assert len(result.history["loss"]) == 1 and result.steps_per_epoch == 100
    assert end < 0.5 * start, f"MAE {start:.3f} -> {end:.3f}"


def imported_u2netp(tmp_path: Path, peer_onnx: Path) -> Path:
    from RMBG.constants import IMPORTED_U2NETP_PATH

    if IMPORTED_U2NETP_PATH.is_file():
        return IMPORTED_U2NETP_PATH
    from RMBG.models.build import save_model
    from RMBG.models.onnx_import import import_u2net_onnx

    model = import_u2net_onnx(peer_onnx, arch="u2netp", input_size=320)
    return save_model(model, tmp_path / "u2netp-imported.keras", model.rmbg_info)


def tiny_fine_tune(tmp_path: Path, shared_data: Path, peer_onnx: Path, arch: str, run: str, **overrides):
    """``(source, root, config)``: a ``finetune`` run of ``arch`` from the imported u2netp
    weights on 8 ECSSD pairs at 64 px, one short epoch (``overrides`` for the rest)."""
    source = imported_u2netp(tmp_path, peer_onnx)
    root = link_pairs(shared_pairs(shared_data / "ecssd", 8), tmp_path / "ecssd8")
    config = TrainConfig.from_preset(
        "finetune", arch, root, tmp_path / run, init=str(source), verbose=0,
        image_size=64, crop_size=None, batch=4, epochs=1, split=0.5, val_limit=4, **overrides,
    )
    return source, root, config


def held_out_mae(root: Path, info):
    """``model -> MAE`` of its fused output on the validation half of a :func:`tiny_fine_tune` set."""
    from RMBG.training.callbacks import evaluate_model
    from RMBG.training.losses import DeepSupervisionLoss
    from RMBG.training.view import training_model

    report = dataset.scan(root, split=0.5, progress=False)
    val = tf_data.eval_dataset(report.val, info, 64, batch=4)
    loss = DeepSupervisionLoss("l1", (1.0,) + (0.0,) * 6)

    def val_mae(model):
        return evaluate_model(training_model(model), val, loss, 0, info.output_norm)["val_mae"]

    return val_mae


def test_fine_tune_from_imported_weights_never_ships_a_worse_model(tmp_path, shared_data, peer_onnx):
    from RMBG.models.build import build_model, load_model
    from RMBG.models.info import read_model_info

    # blend=1: model.keras is the best checkpoint itself (the blend has its own test below)
    source, root, config = tiny_fine_tune(
        tmp_path, shared_data, peer_onnx, "u2netp", "ft", steps_per_epoch=4, val_every_steps=2, blend=1.0
    )
    result = fit(config)
    assert result.blended_val_mae is None and not (tmp_path / "ft" / "tuned.keras").exists()

    # preprocessing of the imported file is kept; the saved model infers at image_size
    info = read_model_info(result.model_path)
    imported = read_model_info(source)
    assert (info.input_scale, info.mean, info.std, info.output_norm) == (
        imported.input_scale, imported.mean, imported.std, imported.output_norm,
    )
    assert info.input_size == 64 and info.arch == "u2netp"
    # and the file says where it came from
    assert info.config["init"] == source.name and info.config["preset"] == "finetune"
    assert info.notes.startswith(f"trained with the finetune preset from {source.name}")

    # validation MAE: checked at step 0, 2, 4; the shipped model is the best of them
    with open(tmp_path / "ft" / "val_steps.csv", newline="") as handle:
        checks = list(csv.DictReader(handle))
    assert [int(c["step"]) for c in checks] == [0, 2, 4]
    # and the photos they were made on are named, for `compare --leave-out`
    checked = (tmp_path / "ft" / "checked_photos.txt").read_text().split()
    held_out = dataset.scan(root, split=0.5, progress=False).val
    assert checked == [Path(pair.image).name for pair in held_out] and len(checked) == 4
    assert result.best_val_mae <= result.start_val_mae

    val_mae = held_out_mae(root, info)
    start_model = build_model("u2netp", 64)
    start_weights = load_model(source).get_weights()
    start_model.set_weights(start_weights)
    shipped, last = load_model(result.model_path), load_model(result.last_path)
    assert val_mae(start_model) == pytest.approx(result.start_val_mae, abs=1e-5)
    assert val_mae(shipped) == pytest.approx(result.best_val_mae, abs=1e-5)
    assert val_mae(shipped) <= val_mae(start_model) + 1e-6

    # the knobs did what they say: encoder and BatchNorm untouched, the decoder trained
    def weights_by_name(model):
        return {v.path: np.asarray(v) for v in model.weights}

    before, after = weights_by_name(start_model), weights_by_name(last)
    encoder = [k for k in before if k.startswith(get_spec("u2netp").encoder_prefixes)]
    batchnorm = [k for k in before if "_bn/" in k]
    decoder = [k for k in before if k.startswith("stage1d_") and k.endswith("kernel")]
    assert encoder and batchnorm and decoder
    assert all(np.array_equal(before[k], after[k]) for k in encoder + batchnorm)
    assert any(not np.array_equal(before[k], after[k]) for k in decoder)


def test_fine_tune_saves_the_best_weights_blended_with_the_start(tmp_path, shared_data, peer_onnx):
    """The finetune preset's ``blend``: model.keras = share * best + (1 - share) * start, scored."""
    from RMBG.models.build import load_model
    from RMBG.models.info import read_model_info

    share = presets.get_preset("finetune", "u2netp").blend
    assert 0.0 < share < 1.0
    source, root, config = tiny_fine_tune(
        tmp_path, shared_data, peer_onnx, "u2netp", "blend", steps_per_epoch=3, val_every_steps=3, lr=1e-3
    )
    result = fit(config)
    tuned_path = tmp_path / "blend" / "tuned.keras"
    start, tuned, shipped = (load_model(p) for p in (source, tuned_path, result.model_path))
    moved = 0
    for a, b, m in zip(start.get_weights(), tuned.get_weights(), shipped.get_weights()):
        np.testing.assert_allclose(m, (1 - share) * a + share * b, rtol=1e-6, atol=1e-6)
        moved += not np.array_equal(a, b)
    assert moved > 0, "the run trained nothing: the blend check would be empty"
    info = read_model_info(result.model_path)
    assert info.config["blend"] == {"start": source.name, "share": share}
    assert info.config["preset"] == "finetune" and info.input_size == 64

    # the reported scores are those of the files
    val_mae = held_out_mae(root, info)
    assert val_mae(tuned) == pytest.approx(result.best_val_mae, abs=1e-5)
    assert val_mae(shipped) == pytest.approx(result.blended_val_mae, abs=1e-5)
    summary = json.loads((tmp_path / "blend" / "summary.json").read_text())
    assert summary["blended_val_mae"] == pytest.approx(result.blended_val_mae)


def test_averaged_weights_are_the_moving_average_of_the_trained_variables_only():
    """``averaged_weights``: after steps w1, w2 each trained variable is m * w1 + (1 - m) * w2 (the first
    step copies); frozen layers and BatchNorm statistics are the model's own values."""
    import keras

    from RMBG.training.averaging import averaged_weights

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="frozen"),
                              keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(1, name="head")])
    model.get_layer("frozen").trainable = False
    momentum = 0.75
    model.compile(optimizer=keras.optimizers.SGD(0.5, use_ema=True, ema_momentum=momentum), loss="mse")
    x, y = np.random.default_rng(0).normal(size=(2, 8, 4)), np.ones((2, 8, 1))
    assert all(np.array_equal(a, b) for a, b in zip(averaged_weights(model, model.optimizer), model.get_weights()))
    after = []
    for step in range(2):
        model.train_on_batch(x[step], y[step])
        after.append(model.get_weights())
    averaged = averaged_weights(model, model.optimizer)
    trained = {id(v) for v in model.trainable_variables}
    assert len(trained) == 4 and len(model.weights) == 8  # head and BatchNorm scales train
    for variable, got, w1, w2 in zip(model.weights, averaged, *after):
        if id(variable) in trained:
            assert not np.allclose(w1, w2), variable.path
            np.testing.assert_allclose(got, momentum * w1 + (1 - momentum) * w2, rtol=1e-6, err_msg=variable.path)
        else:
            np.testing.assert_array_equal(got, w2, err_msg=variable.path)
    # without the average the weights are the model's
    plain = keras.optimizers.SGD(0.5)
    assert all(np.array_equal(a, b) for a, b in zip(averaged_weights(model, plain), model.get_weights()))


def test_a_run_with_ema_checks_and_saves_the_averaged_weights(tmp_path, shared_data, peer_onnx):
    """``--ema m`` over two steps: last.keras is m * (weights after step 1) + (1 - m) * (after step 2),
    from the same run without the average stopped after one and two steps; the reported MAE is the file's."""
    from RMBG.models.build import load_model
    from RMBG.models.info import read_model_info

    momentum = 0.6
    common = dict(val_every_steps=1, blend=1.0, lr=1e-3)
    lasts = {}
    for run, steps, ema in (("one", 1, 0.0), ("two", 2, 0.0), ("ema", 2, momentum)):
        source, root, config = tiny_fine_tune(tmp_path / run, shared_data, peer_onnx, "u2netp", run,
                                              steps_per_epoch=steps, ema=ema, **common)
        result = fit(config)
        lasts[run] = load_model(result.last_path).get_weights()
    start = load_model(source).get_weights()
    moved = 0
    for w0, w1, w2, got in zip(start, lasts["one"], lasts["two"], lasts["ema"]):
        np.testing.assert_allclose(got, momentum * w1 + (1 - momentum) * w2, rtol=1e-4, atol=1e-6)
        moved += not np.allclose(w1, w2)
    assert moved > 0, "two steps changed nothing: the average would equal the weights"
    # the checks scored the averaged weights: the best file's MAE is the one reported
    val_mae = held_out_mae(root, read_model_info(result.model_path))
    assert val_mae(load_model(result.model_path)) == pytest.approx(result.best_val_mae, abs=1e-5)
    with open(tmp_path / "ema" / "ema" / "val_steps.csv", newline="") as handle:
        final = float(list(csv.DictReader(handle))[-1]["val_mae"])
    assert val_mae(load_model(result.last_path)) == pytest.approx(final, abs=1e-5)


def test_blend_without_start_weights_is_refused_before_training(tmp_path, shared_data):
    root = link_pairs(shared_pairs(shared_data / "ecssd", 4), tmp_path / "data")
    config = TrainConfig.from_preset("sample", "u2netp", root, tmp_path / "run", verbose=0, blend=0.5)
    with pytest.raises(ValueError, match="blend 0.5 mixes the trained weights with the start's: it needs --init"):
        fit(config)
    assert not (tmp_path / "run" / "log.csv").exists()


def test_refine_fine_tune_trains_only_the_head_and_keeps_the_base_exact(tmp_path, shared_data, peer_onnx):
    """``--arch u2netp_refine`` from plain imported u2netp weights: base copied and frozen."""
    from RMBG.models.build import load_model
    from RMBG.models.info import read_model_info

    source, _, config = tiny_fine_tune(
        tmp_path, shared_data, peer_onnx, "u2netp_refine", "refine", steps_per_epoch=3, val_every_steps=3
    )
    result = fit(config)
    info = read_model_info(result.last_path)
    assert (info.arch, info.output_norm, info.input_scale) == ("u2netp_refine", "none", "max")
    base, last = load_model(source), load_model(result.last_path)
    for layer in base.layers:
        for mine, theirs in zip(last.get_layer(layer.name).get_weights(), layer.get_weights()):
            np.testing.assert_array_equal(mine, theirs, err_msg=layer.name)
    head = [w for w in last.weights if w.path.startswith("refine_") and "kernel" in w.path]
    assert head and any(np.abs(np.asarray(w)).max() > 0 for w in head if "refine_delta" in w.path)
    assert result.best_val_mae <= result.start_val_mae


# ---------------------------------------------------------------------------
# Resume after a kill (subprocesses), bad data in the set, MirroredStrategy on CPU
# ---------------------------------------------------------------------------
def test_killed_run_resumes_at_epoch_two_without_duplicate_log_rows(tmp_path, shared_data):
    root = link_pairs(shared_pairs(shared_data / "people", 8), tmp_path / "data")
    (root / "images" / "person_9999.jpg").write_text("this is not a photo")
    (root / "masks" / "person_9999.png").symlink_to(shared_pairs(shared_data / "people", 1)[0][1])
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "RMBG", "train", *TINY, "--data", str(root), "--out", str(out),
        "--epochs", "2", "--steps-per-epoch", "12", "--split", "0.25", "--val-limit", "2",
        "--strategy", "mirrored", "--freeze", "encoder",
    ]
    meta = out / "backup" / "training_metadata.json"
    first = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    epoch_done = False
    while first.poll() is None and time.monotonic() < deadline and not epoch_done:
        try:
            epoch_done = json.loads(meta.read_text())["epoch"] >= 1
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first_output = first.communicate(timeout=60)[0]
    assert epoch_done, first_output[-3000:]
    assert first.returncode == -signal.SIGKILL, "the run ended before it could be killed in epoch 2"
    assert log_epochs(out / "log.csv") == [0]
    assert "person_9999.jpg" in first_output  # the unreadable photo is named...
    assert "person_9999.jpg" in (out / "data_report.txt").read_text()

    second = subprocess.run(
        command + ["--resume"], cwd=PROJECT_ROOT, env=subprocess_env(), capture_output=True, text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "resuming at epoch 2 of 2" in second.stdout
    assert "Epoch 2/2" in second.stdout and "Epoch 1/2" not in second.stdout
    assert log_epochs(out / "log.csv") == [0, 1]  # no duplicate epoch
    with open(out / "val_steps.csv", newline="") as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == [0, 12, 24]
    assert not (out / "backup").exists()  # finished: the backup is gone
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs"]["train"] + summary["pairs"]["val"] == 8  # ...and skipped
    assert [Path(p).name for p, _ in summary["skipped"]] == ["person_9999.jpg"]


def test_a_time_limit_stops_at_an_epoch_end_and_resume_finishes_the_run(tmp_path, shared_data, capsys):
    root = link_pairs(shared_pairs(shared_data / "people", 6), tmp_path / "data")
    out = tmp_path / "run"
    argv = [*TINY, "--data", str(root), "--out", str(out), "--epochs", "3", "--steps-per-epoch", "1",
            "--split", "0.34", "--image-size", "32"]
    assert train_main([*argv, "--time-limit", "0"]) == 2
    assert "--time-limit is in minutes and must be positive" in capsys.readouterr().err

    assert train_main([*argv, "--time-limit", "0.0001"]) == 0  # 6 ms: past it at the first epoch end
    assert "stopped after epoch 1 of 3; the backup is kept, --resume continues" in capsys.readouterr().out
    assert log_epochs(out / "log.csv") == [0]
    assert json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"] >= 0
    assert json.loads((out / "summary.json").read_text())["stopped_after"] == 1
    assert (out / "last.keras").is_file() and (out / "model.keras").is_file()

    assert train_main([*argv, "--resume", "--time-limit", "60"]) == 0
    assert "resuming at epoch 2 of 3" in capsys.readouterr().out
    assert log_epochs(out / "log.csv") == [0, 1, 2]
    assert not (out / "backup").exists()  # finished within its limit: the backup is gone, as without one
    assert json.loads((out / "summary.json").read_text())["stopped_after"] is None


# ---------------------------------------------------------------------------
# Two workers on loopback
# ---------------------------------------------------------------------------
def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_two_workers_end_with_identical_weights(tmp_path, shared_data):
    from RMBG.models.build import load_model

    root = link_pairs(shared_pairs(shared_data / "people", 10), tmp_path / "data")
    out = tmp_path / "mw"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    command = [
        sys.executable, "-m", "RMBG", "train", *TINY, "--data", str(root), "--out", str(out),
        "--epochs", "1", "--steps-per-epoch", "3", "--batch", "4", "--split", "0.2", "--val-limit", "1",
        "--strategy", "multiworker",
    ]
    workers = [
        subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=subprocess_env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = []
    try:
        for proc in workers:
            outputs.append(proc.communicate(timeout=SUBPROCESS_TIMEOUT)[0])
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
    for proc, text in zip(workers, outputs):
        assert proc.returncode == 0, text[-3000:]

    chief = load_model(out / "last.keras").get_weights()
    other = load_model(out / "workers" / "worker1" / "last.keras").get_weights()
    assert len(chief) == len(other) > 600
    for a, b in zip(chief, other):
        np.testing.assert_array_equal(a, b)
    # and they trained: the validation MAE moved from its start
    for folder in (out, out / "workers" / "worker1"):
        with open(folder / "val_steps.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [int(r["step"]) for r in rows] == [0, 3]
        assert rows[0]["val_mae"] != rows[1]["val_mae"]
