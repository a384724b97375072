"""One training run: :func:`fit` builds the model, the data and the callbacks from a checked
:class:`~RMBG.training.config.TrainConfig`, trains, and writes the run folder."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from RMBG.images import dataset
from RMBG.models.archs import canonical_name
from RMBG.training import augment, py_dataset, tf_data
from RMBG.training.backend import (
    choose_jit,
    choose_pipeline,
    make_strategy,
    precision_policy,
    single_device,
    training_gpus,
)
from RMBG.training.averaging import averaged_weights
from RMBG.training.callbacks import evaluate_model, time_limit_class, timer_class, validator_class
from RMBG.training.config import (
    TrainConfig,
    check_config,
    default_start,
)
from RMBG.training.distribute import (
    build_before_fit,
    multi_worker,
    worker_role,
)
from RMBG.training.run_folder import (
    BACKUP_DIR,
    CHECKED_PHOTOS,
    WORKERS_DIR,
    prepare_run_folder,
)
from RMBG.training.view import (
    freeze_batchnorm,
    freeze_layers,
    make_optimizer,
    training_model,
)


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
    #: the epochs done when ``--time-limit`` stopped the run (resumable), else None
    stopped_after: int | None = None


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
    from RMBG.models.build import copy_weights, load_model

    source = load_model(path)
    from_base = canonical_name(source.rmbg_info.arch) != canonical_name(arch)
    copy_weights(source, model, by_name=from_base)


def run_info(config: TrainConfig, init_info=None):
    """The :class:`ModelInfo` the trained model is saved with."""
    from RMBG.models.build import default_info

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
    from RMBG.models.build import factory_arguments

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
    and checked (:func:`RMBG.training.config.check_config`) before the run folder
    or the dataset is touched.
    """
    from RMBG.models.info import read_model_info

    if config.init is None:
        start = default_start(config.preset, canonical_name(config.arch))
        config = replace(config, init=str(start)) if start is not None else config
    check_config(config)
    init_info = read_model_info(config.init) if config.init else None

    import keras

    backend = keras.backend.backend()
    # the strategy before other TensorFlow work: MultiWorkerMirroredStrategy needs that
    strategy = make_strategy(config.strategy, backend)
    pipeline = choose_pipeline(config.pipeline, backend)
    if pipeline == "py" and not single_device(strategy):
        raise ValueError("--pipeline py feeds one device: use --pipeline tf.data with --strategy mirrored/multiworker")
    gpus, gpu_bf16 = training_gpus(backend)
    policy = precision_policy(config.mixed_precision, bool(gpus), gpu_bf16)
    jit = choose_jit(config.jit_compile, backend, bool(gpus))

    from RMBG.models.build import build_model, save_model
    from RMBG.training.losses import (
        DeepSupervisionLoss,
        metrics,
        parse_terms,
        side_weights,
    )

    preset = config.preset
    is_chief, role = worker_role(strategy)
    out = Path(config.out)
    work = out if is_chief else out / WORKERS_DIR / role
    first_epoch = prepare_run_folder(work, config.resume, config.overwrite)
    keras.utils.set_random_seed(config.seed)
    if config.init:
        print(f"{preset.name}: starting from {config.init}", flush=True)

    # -- data --------------------------------------------------------------
    report = dataset.scan(config.data, split=preset.split, seed=config.seed, check=config.check_data)
    (work / "data_report.txt").write_text(report.summary() + "\n")
    print(report.summary(), flush=True)
    if not report.train:
        raise ValueError(f"{config.data}: no usable training pairs")
    val_pairs = dataset.limit_pairs(report.val, preset.val_limit, config.seed)
    # the photos the checks choose checkpoints on: `compare --leave-out` keeps them out of the shipping rule
    (work / CHECKED_PHOTOS).write_text("".join(f"{Path(pair.image).name}\n" for pair in val_pairs))

    # -- model -------------------------------------------------------------
    info = run_info(config, init_info)
    kwargs = build_kwargs_of(info, config.build_kwargs)

    print(f"training on keras {backend}: input {pipeline}, XLA {'on' if jit else 'off'}, "
          f"{policy or 'float32'}", flush=True)
    previous_policy = keras.config.dtype_policy()
    if policy:
        keras.mixed_precision.set_global_policy(policy)
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
                optimizer=make_optimizer(preset), loss=loss, metrics=metrics(channel), jit_compile=jit
            )
            build_before_fit(view, strategy, preset.batch, preset.train_size)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    if preset.train_size == preset.image_size and policy is None and single_device(strategy):
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
    settings = augment.Augment.from_preset(preset)
    replicas = strategy.num_replicas_in_sync
    if preset.batch % replicas:
        raise ValueError(f"batch {preset.batch} does not split over {replicas} replicas")

    steps = preset.steps_per_epoch or max(1, len(report.train) // preset.batch)
    done_steps = first_epoch * steps  # batches a resumed run has already trained on
    eval_batch = config.eval_batch or preset.batch
    if pipeline == "py":
        train_ds = py_dataset.TrainBatches(
            report.train, info, preset.image_size, preset.batch, settings, config.seed, preset.cache,
            preset.workers, first_batch=done_steps,
        )
        val_ds = py_dataset.EvalBatches(val_pairs, info, preset.image_size, eval_batch, preset.cache) if val_pairs else None
    else:
        def make_train(context=None):
            return tf_data.train_dataset(
                report.train, info, preset.image_size, preset.batch, settings, config.seed, preset.cache, context,
                first_batch=done_steps,
            )

        train_ds = make_train() if single_device(strategy) else strategy.distribute_datasets_from_function(make_train)
        val_ds = tf_data.eval_dataset(val_pairs, info, preset.image_size, eval_batch, preset.cache) if val_pairs else None

    # -- callbacks ---------------------------------------------------------
    def save(model, path):
        save_model(model, path, info, overwrite=True)

    def trained_weights():
        """What the run has learnt so far: the weights' moving average with ``ema``, else the weights."""
        return averaged_weights(base, view.optimizer) if preset.ema else base.get_weights()

    monitor = "val_loss" if val_ds is not None else "loss"
    timer = timer_class()()
    callbacks = []
    validator = None
    if val_ds is not None:
        validator = validator_class()(
            base, eval_model, val_ds, loss, channel, info, preset.val_every_steps, work, done_steps, save,
            weights_of=trained_weights if preset.ema else None,
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
        # A run with a time limit keeps its backup when the limit stops it (removed below when it finishes).
        keras.callbacks.BackupAndRestore(str(work / BACKUP_DIR), delete_checkpoint=config.time_limit is None),
    ]
    time_limit = None
    if config.time_limit is not None:
        time_limit = time_limit_class()(config.time_limit * 60, preset.epochs)
        callbacks.append(time_limit)  # after the backup: the epoch it stops at is backed up
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

    stopped_after = time_limit.stopped_after if time_limit is not None else None
    if stopped_after is not None:
        print(f"time limit ({config.time_limit:g} min) reached: stopped after epoch {stopped_after} of "
              f"{preset.epochs}; the backup is kept, --resume continues the run", flush=True)
    elif time_limit is not None:
        shutil.rmtree(work / BACKUP_DIR, ignore_errors=True)  # finished: as BackupAndRestore does without a limit

    # -- outputs -----------------------------------------------------------
    eval_model.set_weights(trained_weights())
    last_path = work / "last.keras"
    save(eval_model, last_path)
    model_path = work / "model.keras"
    best = validator.best if validator is not None else {}
    chosen = work / "best.keras" if (work / "best.keras").is_file() else last_path
    blended_mae = None
    if preset.blend < 1.0:
        from RMBG.models.blend import blend_weights, blended_info
        from RMBG.models.build import load_model

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
        stopped_after=stopped_after,
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
        "stopped_after": stopped_after,
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return result
