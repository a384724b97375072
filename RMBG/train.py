"""Training: :func:`fit`, the original ``train(...).train_model()`` API, and ``python -m RMBG train``.

A run reads a dataset folder through :mod:`RMBG.data`, builds (or loads with
``init``) a model from :mod:`RMBG.model`, trains it with the deep-supervision
loss of :mod:`RMBG.losses` and writes everything under its ``out`` folder:

- ``model.keras``: the model to use (best validation MAE seen, checked every
  ``val_every_steps`` steps and at each epoch end, the starting weights
  included), saved at ``image_size`` with its :class:`ModelInfo`; with a
  preset ``blend`` below 1 it is those weights blended with the start's
  (:mod:`RMBG.weight_blend`) and ``tuned.keras`` keeps them unblended;
  ``last.keras``: the weights at the end;
- ``log.csv`` (one row per epoch, appended across resumes, no duplicates),
  ``val_steps.csv`` (every validation check), ``data_report.txt`` (pairs,
  skipped files and why), ``summary.json``;
- ``checkpoint.weights.h5`` (best ``val_loss``, as the original did) and
  ``backup/`` (BackupAndRestore: ``--resume`` continues a killed run at the
  epoch after the last one finished).

The config is resolved and checked before anything is touched
(:mod:`RMBG.trainconfig`); the run folder's rules live in
:mod:`RMBG.runfolder`, the strategies in :mod:`RMBG.distribute`, the
validation checks in :mod:`RMBG.train_callbacks`, the trained view of the
model in :mod:`RMBG.training_view`. Training is TensorFlow code; the models
themselves stay backend-neutral Keras.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from RMBG.archs import arch_names, canonical_name
from RMBG.constants import DATA_DIR, SEED
from RMBG.distribute import build_before_fit, make_strategy, multi_worker, worker_role
from RMBG.presets import Preset, preset_fields
from RMBG.runfolder import BACKUP_DIR, RUN_FILES, WORKERS_DIR, RunStateError, prepare_run_folder, trim_log  # noqa: F401
from RMBG.train_callbacks import evaluate_model, timer_class, validator_class
from RMBG.trainconfig import STRATEGIES, TrainConfig, check_config, default_start, resolve_config
from RMBG.training_view import freeze_batchnorm, freeze_layers, make_optimizer, training_model  # noqa: F401


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------
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
# Start weights and the saved model's info
# ---------------------------------------------------------------------------
def load_init_weights(model, path, arch: str) -> None:
    """Weights of the model file ``path`` into ``model`` (an ``arch`` model, any input size).

    A file of ``arch`` itself gives every weight, in order; a file of ``arch``'s
    base architecture (its spec's ``base``: a head on a base network) gives the
    base's layers by name, and the rest keep their initialisation. Loading the
    whole file and copying its weights is faster here than ``model.load_weights``
    on a ``.keras`` archive (about 3 s against 8 s for u2netp).
    """
    from RMBG.model import copy_weights, load_model

    source = load_model(path)
    from_base = canonical_name(source.rmbg_info.arch) != canonical_name(arch)
    copy_weights(source, model, by_name=from_base)


def run_info(config: TrainConfig, init_info=None):
    """The :class:`ModelInfo` the trained model is saved with."""
    from RMBG.model import default_info

    preset = config.preset
    if init_info is not None:
        start = Path(config.init).name if config.init else "a saved model"
        notes = f"trained with the {preset.name} preset from {start}"
        if init_info.notes:
            notes += f" ({init_info.notes})"
        arch = canonical_name(config.arch)
        info = replace(init_info, arch=arch, input_size=preset.image_size, notes=notes)
        info.config = {
            **init_info.config,
            "arch": arch,
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
    from RMBG.model import factory_arguments

    accepted = factory_arguments(info.arch)
    kwargs = {k: v for k, v in (info.config or {}).items() if k in accepted}
    kwargs.update(extra)
    return kwargs



# ---------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------
def fit(config: TrainConfig) -> FitResult:
    """Train as ``config`` says; see the module docstring for what lands in ``config.out``.

    The config is completed (the start file of a ``start="pretrained"`` preset)
    and checked (:func:`RMBG.trainconfig.check_config`) before the run folder
    or the dataset is touched.
    """
    from RMBG.modelinfo import read_model_info

    if config.init is None:
        start = default_start(config.preset, canonical_name(config.arch))
        config = replace(config, init=str(start)) if start is not None else config
    check_config(config)
    init_info = read_model_info(config.init) if config.init else None

    strategy = make_strategy(config.strategy)  # before other TensorFlow work: MultiWorkerMirroredStrategy needs that

    import keras
    import tensorflow as tf

    from RMBG import data as data_mod
    from RMBG.losses import DeepSupervisionLoss, metrics, parse_terms, side_weights
    from RMBG.model import build_model, save_model

    preset = config.preset
    is_chief, role = worker_role(strategy)
    out = Path(config.out)
    work = out if is_chief else out / WORKERS_DIR / role
    first_epoch = prepare_run_folder(work, config.resume, config.overwrite)
    keras.utils.set_random_seed(config.seed)
    if config.init:
        print(f"{preset.name}: starting from {config.init}", flush=True)

    # -- data --------------------------------------------------------------
    report = data_mod.scan(config.data, split=preset.split, seed=config.seed, check=config.check_data)
    (work / "data_report.txt").write_text(report.summary() + "\n")
    print(report.summary(), flush=True)
    if not report.train:
        raise ValueError(f"{config.data}: no usable training pairs")
    val_pairs = data_mod.limit_pairs(report.val, preset.val_limit, config.seed)

    # -- model -------------------------------------------------------------
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
                load_init_weights(base, config.init, config.arch)
            # kept for the blend at the end (a resumed run restores its backup only in fit)
            start_weights = base.get_weights() if preset.blend < 1.0 else None
            n_bn = freeze_batchnorm(base) if preset.freeze_bn else 0
            frozen = freeze_layers(base, preset.freeze, config.arch) if preset.freeze else []
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
    timer = timer_class()()
    callbacks = []
    validator = None
    if val_ds is not None:
        validator = validator_class()(
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
        from RMBG.weight_blend import blend_weights, blended_info
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

    Trains the original ResNet50 U-Net (``seed``, now ``resnet50_unet``; or ``arch``) on the dataset at
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
        self.config = resolve_config(
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
    from RMBG.presets import PRESETS

    parser = argparse.ArgumentParser(
        prog="python -m RMBG train",
        description="Train or fine-tune a model from a preset; any preset field can be overridden.",
    )
    parser.add_argument("--preset", default="sample", choices=list(PRESETS))
    parser.add_argument("--arch", default="u2netp", choices=arch_names(aliases=True),
                        help="architecture (RMBG.archs.REGISTRY; 'seed' is the old name of resnet50_unet)")
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
    return resolve_config(
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
