"""Training: the original ``train(...).train_model()`` API, :class:`TrainConfig`, :func:`fit`, the CLI.

A run reads a dataset folder through :mod:`RMBG.data`, builds (or loads with
``init``) a model from :mod:`RMBG.model`, trains it with the deep-supervision
loss of :mod:`RMBG.losses` and writes everything under its ``out`` folder:

- ``model.keras``: the model to use (best validation MAE seen, checked every
  ``val_every_steps`` steps and at each epoch end, the starting weights
  included), saved at ``image_size`` with its :class:`ModelInfo`; with a
  preset ``blend`` below 1 it is those weights blended with the start's
  (:mod:`RMBG.blend`) and ``tuned.keras`` keeps them unblended;
  ``last.keras``: the weights at the end;
- ``log.csv`` (one row per epoch, appended across resumes, no duplicates),
  ``val_steps.csv`` (every validation check), ``data_report.txt`` (pairs,
  skipped files and why), ``summary.json``;
- ``checkpoint.weights.h5`` (best ``val_loss``, as the original did) and
  ``backup/`` (BackupAndRestore: ``--resume`` continues a killed run at the
  epoch after the last one finished).

Training is TensorFlow code (``tf.distribute`` strategies: one device,
``MirroredStrategy`` across local GPUs, ``MultiWorkerMirroredStrategy`` from
``TF_CONFIG``); the models themselves stay backend-neutral Keras.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from RMBG.constants import DATA_DIR, SEED
from RMBG.presets import Preset, expand_freeze, get_preset, preset_fields

STRATEGIES = ("auto", "default", "mirrored", "multiworker")
#: Files of a run that ``overwrite=True`` removes before starting again.
RUN_FILES = (
    "log.csv",
    "val_steps.csv",
    "best.json",
    "best.keras",
    "model.keras",
    "tuned.keras",
    "last.keras",
    "checkpoint.weights.h5",
    "summary.json",
    "data_report.txt",
)
BACKUP_DIR = "backup"
WORKERS_DIR = "workers"


class RunStateError(RuntimeError):
    """The ``out`` folder holds a run that this call would mix with (say what to do)."""


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Everything a run needs: the recipe (:class:`Preset`) plus where and how to run it."""

    data: str
    out: str
    arch: str = "u2netp"
    preset: Preset = field(default_factory=lambda: get_preset("sample", "u2netp"))
    init: str | None = None
    resume: bool = False
    overwrite: bool = False
    mixed_precision: bool = False
    strategy: str = "auto"
    seed: int = SEED
    verbose: int | str = "auto"
    check_data: bool = True
    eval_batch: int | None = None
    build_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_preset(cls, name: str, arch: str, data, out, **overrides) -> "TrainConfig":
        """A config from preset ``name`` for ``arch``; ``overrides`` may set preset or config fields."""
        preset_keys = set(preset_fields())
        recipe = {k: v for k, v in overrides.items() if k in preset_keys}
        rest = {k: v for k, v in overrides.items() if k not in preset_keys}
        unknown = set(rest) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(data=str(data), out=str(out), arch=arch, preset=get_preset(name, arch, **recipe), **rest)

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["preset"] = self.preset.to_dict()
        return out


@dataclass
class FitResult:
    """What :func:`fit` returns: where the models are and how validation went."""

    out: Path
    model_path: Path
    last_path: Path
    history: dict[str, list[float]]
    start_val_mae: float | None
    best_val_mae: float | None
    best_step: int | None
    blended_val_mae: float | None
    steps_per_epoch: int
    seconds_per_step: float | None
    skipped: list[tuple[str, str]]


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------
def make_strategy(name: str = "auto"):
    """A ``tf.distribute`` strategy. Always a real strategy (one device at least), so that
    Keras builds optimizer and metric variables before tracing: one trace instead of two.

    ``multiworker`` must be created before any other TensorFlow work in the process.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    tasks = sum(len(v) for v in tf_config.get("cluster", {}).values())
    if name == "multiworker" or (name == "auto" and tasks > 1):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def worker_role(strategy) -> tuple[bool, str]:
    """``(is_chief, label)``: the chief writes ``out``; other workers their own sub-folder."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec or resolver.task_type is None:
        return True, "chief"
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in spec)
    return chief, f"{task_type}{task_id}"


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------
def training_model(model):
    """``model`` with its outputs as one float32 ``N x S x S x K`` tensor (shared layers)."""
    import keras

    outputs = list(model.outputs)
    if len(outputs) == 1:
        joined = outputs[0]
    else:
        joined = keras.layers.Concatenate(axis=-1, dtype="float32", name="deep_supervision")(outputs)
    return keras.Model(model.inputs, joined, name=f"{model.name}_train")


def all_layers(model):
    """Every layer of ``model``, nested ones included."""
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False, recursive=True))
    return list(model.layers)


def freeze_batchnorm(model) -> int:
    """Put every BatchNormalization in inference mode (frozen statistics and scales)."""
    import keras

    count = 0
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
            count += 1
    return count


def freeze_layers(model, prefixes: Sequence[str]) -> list[str]:
    """Freeze the layers whose name starts with one of ``prefixes``; a prefix matching
    nothing is an error (a typo must not silently train everything)."""
    prefixes = expand_freeze(prefixes)
    frozen = []
    for prefix in prefixes:
        hits = [layer for layer in all_layers(model) if layer.name.startswith(prefix)]
        if not hits:
            raise ValueError(f"freeze prefix {prefix!r} matches no layer of {model.name}")
        for layer in hits:
            layer.trainable = False
            frozen.append(layer.name)
    return frozen


def build_before_fit(view, strategy, batch: int, size: int) -> None:
    """Create the optimizer and metric variables before ``fit`` traces its step.

    Keras 3.15's own pre-build reduces the first distributed batch, an
    ``(x, y)`` tuple, with ``strategy.reduce``, which fails under
    ``MultiWorkerMirroredStrategy``; it only needs shapes, so build from zeros of
    the per-replica shape and make ``fit``'s pre-build a no-op. Building first
    also saves the second trace Keras does when variables appear while tracing.
    """
    per_replica = max(1, batch // strategy.num_replicas_in_sync)
    x = np.zeros((per_replica, size, size, 3), np.float32)
    y = np.zeros((per_replica, size, size, 1), np.float32)
    with strategy.scope():
        view._symbolic_build(data_batch=(x, y))
    view._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    if multi_worker(strategy):
        # Keras 3.15 averages every log of a step across workers with
        # strategy.reduce("MEAN", value, axis=0), which fails on scalars: give it
        # one-element vectors, which it averages into the scalar mean of the workers.
        import tensorflow as tf

        step = view.train_step

        def train_step(data):
            return {name: tf.reshape(value, [1]) for name, value in step(data).items()}

        view.train_step = train_step


def multi_worker(strategy) -> bool:
    """True under MultiWorkerMirroredStrategy with more than one worker."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        getattr(strategy.extended, "_num_workers", 1) > 1
    )


def make_optimizer(preset: Preset):
    """The optimizer of ``preset`` (adam, adamw, sgd with Nesterov momentum, lamb), clipped."""
    import keras

    kwargs: dict[str, Any] = {"learning_rate": preset.lr}
    if preset.clipnorm:
        kwargs["clipnorm"] = preset.clipnorm
    if preset.optimizer == "adam":
        return keras.optimizers.Adam(**kwargs)
    if preset.optimizer == "adamw":
        return keras.optimizers.AdamW(weight_decay=preset.weight_decay or 1e-4, **kwargs)
    if preset.optimizer == "sgd":
        return keras.optimizers.SGD(momentum=0.9, nesterov=True, **kwargs)
    if preset.optimizer == "lamb":
        if not hasattr(keras.optimizers, "Lamb"):
            raise ValueError("this Keras has no keras.optimizers.Lamb")
        return keras.optimizers.Lamb(weight_decay=preset.weight_decay or None, **kwargs)
    raise ValueError(f"unknown optimizer {preset.optimizer!r}")


def load_init_weights(model, path) -> None:
    """Weights of the model file ``path`` into ``model`` (same arch, any input size).

    Loading the whole file and copying its weights in order is faster here than
    ``model.load_weights`` on a ``.keras`` archive (about 3 s against 8 s for u2netp).
    """
    from RMBG.model import load_model

    source = load_model(path)
    if source.name == model.name or len(source.weights) == len(model.weights):
        model.set_weights(source.get_weights())
        return
    # A refined model (``*_refine``) starting from its plain base: copy the base's
    # layers by name; the head keeps its identity initialisation.
    for layer in source.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())


def base_arch(arch: str) -> str:
    """The architecture whose weights ``arch`` starts from (``u2netp_refine`` -> ``u2netp``)."""
    return arch.removesuffix("_refine")


def default_init(arch: str) -> Path:
    """The model a ``finetune`` run starts from when ``init`` is not given."""
    from RMBG.constants import IMPORTED_U2NETP_PATH

    if base_arch(arch) == "u2netp" and IMPORTED_U2NETP_PATH.is_file():
        return IMPORTED_U2NETP_PATH
    raise ValueError(
        f"the finetune preset starts from pretrained weights: pass --init PATH (a saved {arch} .keras model)"
    )


def run_info(config: TrainConfig, init_info=None):
    """The :class:`ModelInfo` the trained model is saved with."""
    from RMBG.model import default_info

    preset = config.preset
    if init_info is not None:
        start = Path(config.init).name if config.init else "a saved model"
        notes = f"trained with the {preset.name} preset from {start}"
        if init_info.notes:
            notes += f" ({init_info.notes})"
        info = replace(init_info, arch=config.arch, input_size=preset.image_size, notes=notes)
        info.config = {
            **init_info.config,
            "arch": config.arch,
            "input_size": preset.image_size,
            "init": start,
            "preset": preset.name,
        }
    else:
        info = default_info(config.arch, preset.image_size, **config.build_kwargs)
    if preset.output_norm != "keep":
        info = replace(info, output_norm=preset.output_norm)
    return info


def build_kwargs_of(info, extra: dict[str, Any]) -> dict[str, Any]:
    """Build arguments recorded in a ModelInfo's config, plus ``extra``.

    Only the arguments the architecture's factory takes are kept (an imported
    model's config also records where its weights came from)."""
    import inspect

    from RMBG.model import FACTORIES

    accepted = set(inspect.signature(FACTORIES[info.arch]).parameters) - {"input_size"}
    kwargs = {k: v for k, v in (info.config or {}).items() if k in accepted}
    kwargs.update(extra)
    return kwargs


# ---------------------------------------------------------------------------
# Validation callback (step-level checks, best model by MAE)
# ---------------------------------------------------------------------------
def _keras_callback_base():
    import keras

    return keras.callbacks.Callback


def evaluate_model(view, dataset, loss, channel: int, output_norm: str) -> dict[str, float]:
    """Mean per-image ``val_loss``, ``val_mae`` (after ``output_norm``) and ``val_iou`` of a
    training view (``N x S x S x K`` outputs), run eagerly (no tracing to pay for)."""
    from keras import ops

    from RMBG.losses import channel_iou, l1_term

    totals = {"val_loss": 0.0, "val_mae": 0.0, "val_iou": 0.0}
    count = 0
    for x, y in dataset:
        p = view(x, training=False)
        fused = p[..., channel : channel + 1]
        if output_norm == "minmax":
            lo = ops.min(fused, axis=(1, 2, 3), keepdims=True)
            hi = ops.max(fused, axis=(1, 2, 3), keepdims=True)
            fused = (fused - lo) / ops.maximum(hi - lo, 1e-8)
        fused = ops.clip(fused, 0.0, 1.0)
        y = ops.cast(y, "float32")
        totals["val_loss"] += float(ops.sum(loss.call(y, p)))
        totals["val_mae"] += float(ops.sum(l1_term(y, fused)))
        totals["val_iou"] += float(ops.sum(channel_iou(y, fused)))
        count += int(y.shape[0])
    return {k: v / max(count, 1) for k, v in totals.items()}


def _validator_class():
    Callback = _keras_callback_base()

    class _Validator(Callback):
        """Checks the validation split every ``every`` steps and at each epoch end; puts
        ``val_loss``/``val_mae``/``val_iou`` into the epoch logs (for the callbacks after it)
        and keeps the weights with the best MAE so far (the starting weights count).

        The best weights wait in memory and are written (``best.keras``,
        ``best.json``) at epoch ends, where the backup is made too, so a resumed
        run finds a best model consistent with its backup. ``eval_model`` may be
        ``base`` itself (same size, one device): then nothing is copied to check.
        """

        def __init__(self, base, eval_model, dataset, loss, channel, info, every, work, first_step, save):
            super().__init__()
            self.base, self.eval_model, self.dataset = base, eval_model, dataset
            self.view = training_model(eval_model)
            self.loss, self.channel, self.info = loss, channel, info
            self.every, self.work, self.step, self.save = every, Path(work), first_step, save
            self.state_path = self.work / "best.json"
            self.best: dict[str, Any] = {}
            self.best_weights: list | None = None
            self.last: tuple[int, dict[str, float]] | None = None
            self.epoch = 0

        def check(self) -> dict[str, float]:
            if self.last is not None and self.last[0] == self.step:
                return self.last[1]
            if self.eval_model is not self.base:
                self.eval_model.set_weights(self.base.get_weights())
            scores = evaluate_model(self.view, self.dataset, self.loss, self.channel, self.info.output_norm)
            improved = not self.best or scores["val_mae"] < self.best["best_mae"]
            if improved:
                self.best_weights = self.base.get_weights()
                self.best.update(best_mae=scores["val_mae"], best_step=self.step, best_epoch=self.epoch)
            self.best.setdefault("start_mae", scores["val_mae"])
            self.best.setdefault("start_step", self.step)
            self._log(scores, improved)
            self.last = (self.step, scores)
            return scores

        def flush(self) -> None:
            """Write the best weights found since the last flush, if any."""
            if self.best_weights is None:
                return
            current = self.base.get_weights() if self.eval_model is self.base else None
            self.eval_model.set_weights(self.best_weights)
            try:
                self.save(self.eval_model, self.work / "best.keras")
            finally:
                if current is not None:
                    self.base.set_weights(current)
            self.state_path.write_text(json.dumps(self.best, indent=2))
            self.best_weights = None

        def _log(self, scores, improved):
            path = self.work / "val_steps.csv"
            new = not path.exists()
            with open(path, "a", newline="") as handle:
                writer = csv.writer(handle)
                if new:
                    writer.writerow(["step", "epoch", "val_loss", "val_mae", "val_iou", "best"])
                writer.writerow(
                    [self.step, self.epoch, *(f"{scores[k]:.6f}" for k in ("val_loss", "val_mae", "val_iou")), int(improved)]
                )
            mark = " (best)" if improved else ""
            print(
                f"  [val @ step {self.step}] loss {scores['val_loss']:.4f}  mae {scores['val_mae']:.4f}  "
                f"iou {scores['val_iou']:.4f}{mark}",
                flush=True,
            )

        def on_train_begin(self, logs=None):
            if self.state_path.is_file():
                self.best = json.loads(self.state_path.read_text())
            else:
                self.check()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            if self.every and self.step % self.every == 0:
                self.check()

        def on_epoch_end(self, epoch, logs=None):
            self.epoch = epoch
            scores = self.check()
            if logs is not None:
                logs.update(scores)
            self.flush()

        def on_train_end(self, logs=None):
            self.flush()

    return _Validator


def _timer_class():
    Callback = _keras_callback_base()

    class _StepTimer(Callback):
        """Seconds per training step, the first (tracing) step of the run left out."""

        def __init__(self):
            super().__init__()
            self.times: list[float] = []
            self._start = 0.0

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self._start)

        @property
        def seconds_per_step(self) -> float | None:
            steady = self.times[1:]
            return float(np.median(steady)) if steady else None

    return _StepTimer


# ---------------------------------------------------------------------------
# Run folder bookkeeping
# ---------------------------------------------------------------------------
def _csv_epochs(path: Path) -> list[int]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle) if row.get("epoch", "").strip()]


def trim_log(path: Path, first_epoch: int) -> int:
    """Drop rows of ``log.csv`` at or after ``first_epoch`` (about to be run again); returns how many."""
    if not path.is_file():
        return 0
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return 0
    header, body = rows[0], rows[1:]
    column = header.index("epoch") if "epoch" in header else 0
    keep = [row for row in body if row and int(row[column]) < first_epoch]
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([header] + keep)
    return len(body) - len(keep)


def prepare_run_folder(work: Path, resume: bool, overwrite: bool) -> int:
    """Check ``work`` against ``resume``/``overwrite``; returns the epoch training starts at."""
    work.mkdir(parents=True, exist_ok=True)
    meta = work / BACKUP_DIR / "training_metadata.json"
    epochs_logged = _csv_epochs(work / "log.csv")
    if overwrite and not resume:
        for name in RUN_FILES:
            (work / name).unlink(missing_ok=True)
        shutil.rmtree(work / BACKUP_DIR, ignore_errors=True)
        return 0
    if resume:
        if meta.is_file():
            first = int(json.loads(meta.read_text())["epoch"])
            dropped = trim_log(work / "log.csv", first)
            if dropped:
                print(f"resume: dropped {dropped} log row(s) of epochs >= {first + 1} (run again)")
            return first
        if epochs_logged:
            raise RunStateError(
                f"{work}: nothing to resume (no {BACKUP_DIR}/ left: the run finished); use a new --out"
            )
        for name in ("log.csv", "val_steps.csv", "best.json"):
            (work / name).unlink(missing_ok=True)
        print(f"resume: no backup in {work}, starting from the beginning")
        return 0
    if meta.is_file() or epochs_logged:
        raise RunStateError(
            f"{work} already holds a run: pass --resume to continue it, --overwrite to start again, "
            "or choose another --out"
        )
    for name in ("log.csv", "val_steps.csv", "best.json"):
        (work / name).unlink(missing_ok=True)
    return 0


# ---------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------
def fit(config: TrainConfig) -> FitResult:
    """Train as ``config`` says; see the module docstring for what lands in ``config.out``."""
    strategy = make_strategy(config.strategy)  # first: MultiWorkerMirroredStrategy needs that

    import keras
    import tensorflow as tf

    from RMBG import data as data_mod
    from RMBG.losses import DeepSupervisionLoss, metrics, parse_terms, side_weights
    from RMBG.model import build_model, read_model_info, save_model

    preset = config.preset
    is_chief, role = worker_role(strategy)
    out = Path(config.out)
    work = out if is_chief else out / WORKERS_DIR / role
    first_epoch = prepare_run_folder(work, config.resume, config.overwrite)
    keras.utils.set_random_seed(config.seed)

    # -- data --------------------------------------------------------------
    report = data_mod.scan(config.data, split=preset.split, seed=config.seed, check=config.check_data)
    (work / "data_report.txt").write_text(report.summary() + "\n")
    print(report.summary(), flush=True)
    if not report.train:
        raise ValueError(f"{config.data}: no usable training pairs")
    val_pairs = data_mod.limit_pairs(report.val, preset.val_limit, config.seed)

    # -- model -------------------------------------------------------------
    if preset.name == "finetune" and not config.init:
        config = replace(config, init=str(default_init(config.arch)))
        print(f"finetune: starting from {config.init}", flush=True)
    init_info = read_model_info(config.init) if config.init else None
    if init_info is not None and init_info.arch not in {config.arch, base_arch(config.arch)}:
        raise ValueError(f"{config.init} holds a {init_info.arch} model, not {config.arch}")
    if preset.blend < 1.0 and (init_info is None or init_info.arch != config.arch):
        raise ValueError(
            f"blend {preset.blend} mixes the trained weights with the start's: it needs --init, "
            f"a saved {config.arch} model (use --blend 1 to save the trained weights as they are)"
        )
    info = run_info(config, init_info)
    kwargs = build_kwargs_of(info, config.build_kwargs)

    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision:
        gpu = bool(tf.config.list_logical_devices("GPU"))
        keras.mixed_precision.set_global_policy("mixed_float16" if gpu else "mixed_bfloat16")
    try:
        with strategy.scope():
            base = build_model(config.arch, preset.train_size, **kwargs)
            if config.init:
                load_init_weights(base, config.init)
            # kept for the blend at the end (a resumed run restores its backup only in fit)
            start_weights = base.get_weights() if preset.blend < 1.0 else None
            n_bn = freeze_batchnorm(base) if preset.freeze_bn else 0
            frozen = freeze_layers(base, preset.freeze) if preset.freeze else []
            view = training_model(base)
            outputs = int(view.outputs[0].shape[-1])
            channel = int(info.output_index) if outputs > 1 else 0
            loss = DeepSupervisionLoss(
                parse_terms(preset.loss), side_weights(preset.side_weights, outputs, channel)
            )
            view.compile(
                optimizer=make_optimizer(preset), loss=loss, metrics=metrics(channel), jit_compile=False
            )
            build_before_fit(view, strategy, preset.batch, preset.train_size)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    if (
        preset.train_size == preset.image_size
        and not config.mixed_precision
        and isinstance(strategy, tf.distribute.OneDeviceStrategy)
    ):
        eval_model = base  # same function at the same size: check and save it directly
    else:
        eval_model = build_model(config.arch, preset.image_size, **kwargs)
    print(
        f"{config.arch}: train at {preset.train_size}, save at {preset.image_size}; "
        f"{len(view.trainable_weights)} trainable tensors"
        + (f", {n_bn} BatchNorm frozen" if n_bn else "")
        + (f", {len(frozen)} layers frozen" if frozen else ""),
        flush=True,
    )

    # -- datasets ----------------------------------------------------------
    settings = data_mod.Augment.from_preset(preset)
    replicas = strategy.num_replicas_in_sync
    if preset.batch % replicas:
        raise ValueError(f"batch {preset.batch} does not split over {replicas} replicas")

    def make_train(context=None):
        return data_mod.train_dataset(
            report.train, info, preset.image_size, preset.batch, settings, config.seed, preset.cache, context
        )

    if isinstance(strategy, tf.distribute.OneDeviceStrategy):
        train_ds = make_train()
    else:
        train_ds = strategy.distribute_datasets_from_function(make_train)
    steps = preset.steps_per_epoch or max(1, len(report.train) // preset.batch)
    val_ds = (
        data_mod.eval_dataset(val_pairs, info, preset.image_size, config.eval_batch or preset.batch, preset.cache)
        if val_pairs
        else None
    )

    # -- callbacks ---------------------------------------------------------
    def save(model, path):
        save_model(model, path, info, overwrite=True)

    monitor = "val_loss" if val_ds is not None else "loss"
    timer = _timer_class()()
    callbacks = []
    validator = None
    if val_ds is not None:
        validator = _validator_class()(
            base, eval_model, val_ds, loss, channel, info, preset.val_every_steps, work, first_epoch * steps, save
        )
        callbacks.append(validator)
    callbacks.append(
        keras.callbacks.ModelCheckpoint(
            str(work / "checkpoint.weights.h5"), monitor=monitor, save_best_only=True, save_weights_only=True
        )
    )
    if val_ds is not None or not multi_worker(strategy):
        # Under several workers each one decides on its own logs: only the validation
        # scores (same weights, same images) are equal everywhere, so only they may
        # change the learning rate or stop the run.
        callbacks += [
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=preset.lr_factor, patience=preset.lr_patience, min_lr=preset.min_lr
            ),
            keras.callbacks.EarlyStopping(monitor=monitor, patience=preset.early_stop),
        ]
    else:
        print("multi-worker run without a validation split: no ReduceLROnPlateau/EarlyStopping", flush=True)
    callbacks += [
        keras.callbacks.CSVLogger(str(work / "log.csv"), append=True),
        keras.callbacks.TerminateOnNaN(),
        timer,
        # Last, so that an epoch is backed up only once everything above (log row,
        # best model, learning rate) has recorded it: a kill in between makes the
        # resumed run redo that epoch, and prepare_run_folder drops its old log row.
        keras.callbacks.BackupAndRestore(str(work / BACKUP_DIR)),
    ]
    if first_epoch:
        print(f"resuming at epoch {first_epoch + 1} of {preset.epochs}", flush=True)
    verbose = config.verbose
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() or "ipykernel" in sys.modules else 2

    # -- train -------------------------------------------------------------
    history = view.fit(
        train_ds,
        epochs=preset.epochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the dataset shuffles itself (seeded)
    )

    # -- outputs -----------------------------------------------------------
    eval_model.set_weights(base.get_weights())
    last_path = work / "last.keras"
    save(eval_model, last_path)
    model_path = work / "model.keras"
    best = validator.best if validator is not None else {}
    chosen = work / "best.keras" if (work / "best.keras").is_file() else last_path
    blended_mae = None
    if preset.blend < 1.0:
        from RMBG.blend import blend_weights, blended_info
        from RMBG.model import load_model

        tuned_path = work / "tuned.keras"
        shutil.copyfile(chosen, tuned_path)
        eval_model.set_weights(blend_weights(start_weights, load_model(tuned_path).get_weights(), preset.blend))
        save_model(eval_model, model_path, blended_info(info, Path(config.init).name, preset.blend), overwrite=True)
        if validator is not None:
            blended_mae = evaluate_model(validator.view, val_ds, loss, channel, info.output_norm)["val_mae"]
            print(f"  [val, blend {preset.blend:g} with the start] mae {blended_mae:.4f}", flush=True)
    else:
        shutil.copyfile(chosen, model_path)
    result = FitResult(
        out=work,
        model_path=model_path,
        last_path=last_path,
        history={k: [float(v) for v in vals] for k, vals in history.history.items()},
        start_val_mae=best.get("start_mae"),
        best_val_mae=best.get("best_mae"),
        best_step=best.get("best_step"),
        blended_val_mae=blended_mae,
        steps_per_epoch=steps,
        seconds_per_step=timer.seconds_per_step,
        skipped=list(report.skipped),
    )
    summary = {
        "config": config.to_dict(),
        "role": role,
        "pairs": {"train": len(report.train), "val": len(report.val), "val_used": len(val_pairs)},
        "skipped": [list(item) for item in report.skipped],
        "start_val_mae": result.start_val_mae,
        "best_val_mae": result.best_val_mae,
        "best_step": result.best_step,
        "blended_val_mae": result.blended_val_mae,
        "steps_per_epoch": steps,
        "seconds_per_step": result.seconds_per_step,
        "history": result.history,
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return result


# ---------------------------------------------------------------------------
# The original API
# ---------------------------------------------------------------------------
class train:  # noqa: N801 - the original project's name
    """The original entry point: ``train(IMG_H, IMG_W, BATCH, LR, EPOCH, SPLIT, PATH).train_model()``.

    Trains the original ``seed`` architecture (or ``arch``) on the dataset at
    ``PATH`` from the ``full`` preset with these five values replacing its own.
    What the original got wrong is fixed: images are read as RGB (not BGR),
    masks are scaled to [0, 1], and the deep supervision reads one mask per
    image instead of a copy per output. Models are square: ``IMG_H`` must
    equal ``IMG_W``.
    """

    def __init__(self, IMG_H, IMG_W, BATCH, LR, EPOCH, SPLIT, PATH, *, arch="seed", out=None, preset="full", **overrides):  # noqa: N803
        if int(IMG_H) != int(IMG_W):
            raise ValueError(f"models take square inputs: IMG_H ({IMG_H}) must equal IMG_W ({IMG_W})")
        self.IMG_H, self.IMG_W, self.BATCH, self.LR = int(IMG_H), int(IMG_W), int(BATCH), float(LR)
        self.EPOCH, self.SPLIT, self.PATH = int(EPOCH), float(SPLIT), str(PATH)
        out = out or DATA_DIR / "runs" / f"{arch}-{self.IMG_H}"
        self.config = TrainConfig.from_preset(
            preset,
            arch,
            self.PATH,
            out,
            image_size=self.IMG_H,
            crop_size=None,
            batch=self.BATCH,
            lr=self.LR,
            epochs=self.EPOCH,
            split=self.SPLIT,
            **overrides,
        )

    def train_model(self) -> FitResult:
        return fit(self.config)


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------
def _optional(kind):
    def parse(text: str):
        return None if str(text).lower() in {"none", "null", ""} else kind(text)

    parse.__name__ = kind.__name__
    return parse


def _pair(text: str) -> tuple[float, float]:
    values = [float(v) for v in str(text).split(",")]
    if len(values) == 1:
        values *= 2
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected 'low,high', got {text!r}")
    return (values[0], values[1])


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in str(text).split(",") if v.strip())


#: How each preset field is parsed on the command line.
FIELD_TYPES = {
    "crop_size": _optional(int),
    "clipnorm": _optional(float),
    "steps_per_epoch": _optional(int),
    "val_every_steps": _optional(int),
    "val_limit": _optional(int),
    "crop_scale": _pair,
    "crop_ratio": _pair,
    "freeze": _names,
}


def build_parser() -> argparse.ArgumentParser:
    from RMBG.model import ARCHES
    from RMBG.presets import PRESETS

    parser = argparse.ArgumentParser(
        prog="python -m RMBG train",
        description="Train or fine-tune a model from a preset; any preset field can be overridden.",
    )
    parser.add_argument("--preset", default="sample", choices=list(PRESETS))
    parser.add_argument("--arch", default="u2netp", choices=list(ARCHES))
    parser.add_argument("--data", required=True, help="dataset folder (images/, masks/, optional index.csv)")
    parser.add_argument("--out", required=True, help="run folder (models, logs, backup)")
    parser.add_argument("--init", default=None, help="start from this .keras model (keeps its preprocessing)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    parser.add_argument("--overwrite", action="store_true", help="start again in an --out that holds a run")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--strategy", default="auto", choices=list(STRATEGIES))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--no-check", dest="check_data", action="store_false", help="skip decoding every file first")
    parser.add_argument("--eval-batch", type=int, default=None)
    parser.add_argument("--verbose", type=int, default=None, choices=[0, 1, 2])
    group = parser.add_argument_group("preset overrides")
    defaults = Preset()
    for name in preset_fields():
        flag = "--" + name.replace("_", "-")
        value = getattr(defaults, name)
        if isinstance(value, bool):
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS)
        else:
            kind = FIELD_TYPES.get(name, type(value))
            group.add_argument(flag, dest=name, type=kind, default=argparse.SUPPRESS, metavar=name.upper())
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    # absent options are not in the namespace (SUPPRESS), so "--crop-size none" can set None
    overrides = {name: getattr(args, name) for name in preset_fields() if hasattr(args, name)}
    return TrainConfig.from_preset(
        args.preset,
        args.arch,
        args.data,
        args.out,
        init=args.init,
        resume=args.resume,
        overwrite=args.overwrite,
        mixed_precision=args.mixed_precision,
        strategy=args.strategy,
        seed=args.seed,
        check_data=args.check_data,
        eval_batch=args.eval_batch,
        verbose="auto" if args.verbose is None else args.verbose,
        **overrides,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        result = fit(config)
    except (ValueError, FileNotFoundError, RunStateError) as exc:
        if os.environ.get("RMBG_DEBUG"):
            raise
        print(f"train: {exc}", file=sys.stderr)
        return 2
    print(f"model: {result.model_path}")
    if result.best_val_mae is not None:
        print(
            f"validation MAE: start {result.start_val_mae:.4f}, best {result.best_val_mae:.4f} "
            f"(step {result.best_step})"
            + (f"; blended with the start {result.blended_val_mae:.4f}" if result.blended_val_mae is not None else "")
        )
    if result.seconds_per_step is not None:
        print(f"seconds per step: {result.seconds_per_step:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
