"""Training on any Keras backend (issue 35): the JAX path with no TensorFlow installed, the PyDataset input
pipeline against tf.data, and the options that pick pipeline, XLA and mixed precision (refused with the fix)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from shared_sets import link_pairs
from shared_sets import pairs as shared_pairs

from RMBG.images import dataset
from RMBG.models.build import default_info
from RMBG.training import augment, backend, presets, py_augment, py_dataset, tf_data

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUBPROCESS_TIMEOUT = 600

#: A prelude that makes ``import tensorflow`` fail, as on a machine where TensorFlow is not installed: ``None`` in
#: ``sys.modules`` (what Python reads first, whatever finders are installed later) and a finder for submodules.
NO_TENSORFLOW = """
import sys
for _name in {BLOCKED}:
    sys.modules[_name] = None
class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED}:
            raise ImportError("No module named " + repr(name) + " (blocked by the test)")
        return None
sys.meta_path.insert(0, _NoTensorFlow())
"""


def run_without(blocked: set[str], body: str, **env) -> subprocess.CompletedProcess:
    """``python -c`` with the modules ``blocked`` unimportable, then ``body``."""
    code = NO_TENSORFLOW.replace("{BLOCKED}", repr(blocked)) + body
    environment = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), PYTHONUNBUFFERED="1", **env)
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=environment, capture_output=True,
                          text=True, timeout=SUBPROCESS_TIMEOUT)


def rmbg(argv: list[str]) -> str:
    """``body`` running ``python -m RMBG argv`` in the blocked interpreter, its exit code kept."""
    return f"import runpy\nsys.argv = ['RMBG', *{argv!r}]\nrunpy.run_module('RMBG', run_name='__main__')\n"


# ---------------------------------------------------------------------------
# JAX with no TensorFlow: python -m RMBG train works end to end
# ---------------------------------------------------------------------------
def test_jax_trains_two_epochs_with_checks_inside_them_without_tensorflow_and_the_model_loads(tmp_path, shared_data):
    """Checks every step, so two of them fall inside an epoch, where the JAX trainer keeps the trained values
    apart from the model's variables; the weights' moving average (``--ema``) is read there too."""
    chosen = shared_pairs(shared_data / "ecssd", 6)
    root = link_pairs(chosen, tmp_path / "data")
    out = tmp_path / "run"
    photo = str(chosen[0][0])
    argv = ["train", "--preset", "sample", "--arch", "u2netp", "--optimizer", "sgd", "--freeze-bn", "--verbose", "2",
            "--data", str(root), "--out", str(out), "--epochs", "2", "--steps-per-epoch", "2", "--split", "0.34",
            "--image-size", "64", "--batch", "2", "--workers", "2", "--val-every-steps", "1", "--ema", "0.5"]
    check = f"""
try:
    runpy.run_module('RMBG', run_name='__main__')
except SystemExit as exc:
    assert not exc.code, exc.code
from RMBG.images.io import read_image
from RMBG.model import load_model
from RMBG.runtime.engines import load_segmenter
model = load_model({str(out / "model.keras")!r})
image = read_image({photo!r})
mask = load_segmenter({str(out / "model.keras")!r}).predict_one(image)
print("RESULT " + json.dumps(dict(input=list(model.input_shape), image=list(image.shape), mask=list(mask.shape),
      lo=float(mask.min()), hi=float(mask.max()), tensorflow=sorted(m for m, v in sys.modules.items() if m.split(".")[0] == "tensorflow" and v is not None))))
"""
    body = f"import json, runpy\nsys.argv = ['RMBG', *{argv!r}]\n" + check
    done = run_without({"tensorflow", "tf_keras"}, body, KERAS_BACKEND="jax")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "train: model on keras jax on CPU" in output
    assert "training on keras jax: input py, XLA on, float32" in output
    result = json.loads(output.split("RESULT ", 1)[1].splitlines()[0])
    assert result["tensorflow"] == []
    assert result["input"] == [None, 64, 64, 3]
    assert result["mask"] == result["image"][:2]
    assert 0.0 <= result["lo"] <= result["hi"] <= 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["history"]["loss"]) == 2 and summary["steps_per_epoch"] == 2  # two epochs of two steps
    steps = [line.split(",") for line in (out / "val_steps.csv").read_text().splitlines()[1:]]
    assert [int(row[0]) for row in steps] == [0, 1, 2, 3, 4]  # steps 1 and 3 inside an epoch
    assert all(np.isfinite(float(row[3])) for row in steps)
    assert np.all(np.isfinite(summary["history"]["loss"]))


def test_missing_backend_or_pipeline_is_refused_with_the_fix_and_writes_nothing(tmp_path, shared_data):
    root = link_pairs(shared_pairs(shared_data / "ecssd", 4), tmp_path / "data")
    out = tmp_path / "run"
    base = ["train", "--data", str(root), "--out", str(out)]
    no_jax = run_without({"jax", "jaxlib"}, rmbg(base), KERAS_BACKEND="jax")
    assert no_jax.returncode == 2, no_jax.stderr[-3000:]
    assert "KERAS_BACKEND=jax: jax is not installed here" in no_jax.stderr and "jax-gpu" in no_jax.stderr
    no_tf = run_without({"tensorflow"}, rmbg(base + ["--pipeline", "tf.data"]), KERAS_BACKEND="jax")
    assert no_tf.returncode == 2, no_tf.stderr[-3000:]
    assert "--pipeline tf.data needs TensorFlow, which is not installed" in no_tf.stderr
    assert "--pipeline py" in no_tf.stderr
    assert not out.exists()


def test_precision_and_strategy_requests_the_device_cannot_do_are_refused(tmp_path, shared_data, capsys):
    from RMBG.commands.train import main as train_main

    root = link_pairs(shared_pairs(shared_data / "ecssd", 4), tmp_path / "data")
    out = tmp_path / "run"
    assert train_main(["--data", str(root), "--out", str(out), "--mixed-precision", "fp16"]) == 2
    assert "--mixed-precision fp16 needs a GPU" in capsys.readouterr().err
    assert train_main(["--data", str(root), "--out", str(out), "--pipeline", "py", "--strategy", "mirrored"]) == 2
    assert "--pipeline py feeds one device" in capsys.readouterr().err
    assert not out.exists()


def test_backend_choices():
    assert backend.choose_pipeline("auto", "tensorflow") == "tf.data"
    assert backend.choose_pipeline("auto", "jax") == backend.choose_pipeline("auto", "torch") == "py"
    assert backend.choose_jit("auto", "jax", False) and backend.choose_jit("auto", "tensorflow", True)
    assert not backend.choose_jit("auto", "tensorflow", False) and not backend.choose_jit("off", "jax", True)
    assert backend.precision_policy("auto", on_gpu=False) is None
    assert backend.precision_policy("auto", on_gpu=True, gpu_bf16=True) == "mixed_bfloat16"
    assert backend.precision_policy("auto", on_gpu=True, gpu_bf16=False) == "mixed_float16"
    assert backend.precision_policy(True, on_gpu=False) == "mixed_bfloat16"  # the old flag on a CPU
    assert backend.precision_policy("fp16", on_gpu=True, gpu_bf16=False) == "mixed_float16"
    with pytest.raises(ValueError, match="bf16: this GPU has no bfloat16.*use --mixed-precision fp16"):
        backend.precision_policy("bf16", on_gpu=True, gpu_bf16=False)
    with pytest.raises(ValueError, match="--strategy mirrored is tf.distribute: it needs KERAS_BACKEND=tensorflow"):
        backend.make_strategy("mirrored", "jax")
    assert backend.single_device(backend.make_strategy("auto", "jax"))


def test_cli_speed_options_and_the_full_preset_s_workers(tmp_path):
    from RMBG.commands.train import build_parser, config_from_args

    def config(*extra):
        return config_from_args(build_parser().parse_args(["--data", "d", "--out", str(tmp_path), *extra]))

    plain = config()
    assert (plain.mixed_precision, plain.jit_compile, plain.pipeline, plain.preset.workers) == ("auto", "auto", "auto", None)
    chosen = config("--mixed-precision", "--jit-compile", "off", "--pipeline", "py", "--workers", "3")
    assert (chosen.mixed_precision, chosen.jit_compile, chosen.pipeline, chosen.preset.workers) == ("on", "off", "py", 3)
    assert config("--mixed-precision", "fp16").mixed_precision == "fp16"
    assert presets.get_preset("full", "u2netp").workers == 8 and py_dataset.auto_workers(None) >= 1
    with pytest.raises(ValueError, match="workers must be at least 1"):
        presets.get_preset("full", "u2netp", workers=0)


# ---------------------------------------------------------------------------
# The PyDataset pipeline against tf.data
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photos(shared_data):
    report = dataset.scan(shared_data / "people", split=0.0, progress=False)
    return sorted(report.train, key=lambda p: p.image)[:6]


def grey_levels(x: np.ndarray, info) -> np.ndarray:
    """Normalised model input back to 0-255."""
    return (x * np.asarray(info.std, np.float32) + np.asarray(info.mean, np.float32)) * 255.0


def assert_same_photos(x, tx, info):
    """Within JPEG decoders: PIL (as at inference) and TensorFlow's differ by about a grey level (resizing agrees
    within one)."""
    difference = np.abs(grey_levels(x, info) - grey_levels(tx, info))
    assert difference.mean() < 1.5 and difference.max() <= 8.01, (difference.mean(), difference.max())


def test_eval_batches_match_tf_data(photos):
    info = default_info("u2netp", 96)
    ours = list(py_dataset.EvalBatches(photos, info, 96, batch=4))
    theirs = list(tf_data.iter_numpy(tf_data.eval_dataset(photos, info, 96, batch=4)))
    assert [x.shape for x, _ in ours] == [x.shape for x, _ in theirs] == [(4, 96, 96, 3), (2, 96, 96, 3)]
    for (x, y), (tx, ty) in zip(ours, theirs):
        assert_same_photos(x, tx, info)
        assert np.abs(y - ty).max() <= 1.01 / 255  # PNG masks: the same pixels, resized alike


def test_train_batches_without_augmentation_hold_the_tf_data_examples(photos):
    """Crop = the whole image, no flip, no jitter: one batch of each pipeline is the same six examples
    (in another shuffled order), and the next pass shuffles again."""
    info = default_info("u2netp", 64)
    plain = augment.Augment(crop_size=64, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=False, jitter=0.0)
    ours = py_dataset.TrainBatches(photos, info, 64, 6, plain, seed=3, workers=2)
    theirs = next(tf_data.iter_numpy(tf_data.train_dataset(photos, info, 64, 6, plain, seed=3)))

    def by_mask(batch):
        order = np.argsort([m.sum() for m in batch[1]])
        return batch[0][order], batch[1][order]

    x, y = by_mask(ours[0])
    tx, ty = by_mask(theirs)
    assert x.shape == tx.shape == (6, 64, 64, 3) and y.dtype == np.float32
    assert_same_photos(x, tx, info)
    assert np.abs(y - ty).max() <= 1.01 / 255
    assert np.array_equal(ours[0][1], py_dataset.TrainBatches(photos, info, 64, 6, plain, seed=3, workers=1)[0][1])
    assert not np.array_equal(ours[0][1], ours[1][1])  # reshuffled pass


def test_the_numpy_augmentations_are_tensorflow_s(photos):
    import tensorflow as tf

    image = np.random.default_rng(0).uniform(0, 255, (40, 56, 4)).astype(np.float32)
    for box in ([0.1, 0.2, 0.9, 0.7], [0.0, 0.0, 1.0, 1.0], [0.05, 0.3, 0.55, 0.99]):
        expected = tf.image.crop_and_resize(image[None], np.array([box], np.float32), [0], (32, 32))[0].numpy()
        assert np.abs(py_augment.crop_and_resize(image, box, 32) - expected).max() < 2e-3
    rgb = image[..., :3] / 255.0
    for delta in (0.02, -0.02, 0.4):
        assert np.abs(py_augment.adjust_hue(rgb, delta) - tf.image.adjust_hue(rgb, delta).numpy()).max() < 1e-5

    settings = augment.Augment.from_preset(presets.get_preset("sample"))
    draws = 1500
    ours = np.array([py_augment.crop_box(np.random.default_rng(k), (0.5, 1.0), (0.75, 1.333)) for k in range(draws)])
    theirs = np.array([augment.crop_box(tf.constant([k, 9]), (0.5, 1.0), (0.75, 1.333)).numpy() for k in range(draws)])

    def stats(boxes):
        h, w = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        return np.array([(h * w).mean(), np.log(w / h).mean(), np.log(w / h).std(), boxes[:, 0].mean(), boxes[:, 1].mean()])

    np.testing.assert_allclose(stats(ours), stats(theirs), atol=0.02)
    # whole examples: the mean and spread of brightness over many draws of a real photo agree
    photo, mask = py_dataset.load_pair(photos[0], 64)
    ours = [py_augment.augment(photo, mask, np.random.default_rng(k), settings)[0].mean() for k in range(300)]
    theirs = [augment.augment(photo, mask, tf.constant([k, 5]), settings)[0].numpy().mean() for k in range(300)]
    assert abs(np.mean(ours) - np.mean(theirs)) < 2.0 and abs(np.std(ours) - np.std(theirs)) < 0.25 * np.std(theirs)
