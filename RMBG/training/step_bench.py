"""Training steps timed on one backend: the project's model, loss, freezing and optimizer (as
:func:`RMBG.training.fit.fit` sets them up) on batches held in memory, so that backends and settings compare
on the same data (``scripts/bench_train.py``, ``scripts/gpu_check.sh``). No TensorFlow unless it is the backend.

:func:`prepared_batches` makes the batches once with the PyDataset pipeline (the same arrays in every
process for a seed); :func:`time_steps` trains on them and reports images per second (the compiling steps
left out), the loss at the start and after N steps (a faster setting that learns nothing shows), the
validation MAE after training, and the peak memory of the device.
"""

from __future__ import annotations

import resource
import time
from typing import Any, Sequence

import numpy as np

from RMBG.training.backend import choose_jit, precision_policy, training_gpus
from RMBG.training.callbacks import evaluate_model
from RMBG.training.fit import build_kwargs_of, load_init_weights
from RMBG.training.presets import Preset
from RMBG.training.py_dataset import TrainBatches
from RMBG.training.view import (
    freeze_batchnorm,
    freeze_layers,
    make_optimizer,
    training_model,
)

#: Steps left out of the timing: the first traces and compiles, the second may still settle.
WARMUP_STEPS = 2


def prepared_batches(source, info, preset: Preset, count: int, seed: int, workers: int | None = None):
    """``count`` training batches of ``source`` (pairs or :class:`ArrayPairs`) as numpy arrays, and the
    seconds the PyDataset pipeline took to make them (its images per second: ``count * batch / seconds``)."""
    from RMBG.training.augment import Augment

    batches = TrainBatches(source, info, preset.image_size, preset.batch, Augment.from_preset(preset), seed,
                           workers=workers)
    for index in range(min(count, 2)):  # decode (and cache) every pair first: the rate is the steady one
        batches[index]
    start = time.perf_counter()
    made = [batches[index] for index in range(count)]
    return made, time.perf_counter() - start


def peak_memory() -> dict[str, float]:
    """Peak memory: the process's resident set (GiB) and, on a GPU, the backend's peak device bytes (GiB)."""
    out = {"host_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            if gpus:
                out["gpu_gib"] = gpus[0].memory_stats().get("peak_bytes_in_use", 0) / 2**30
        elif backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_logical_devices("GPU"):
                out["gpu_gib"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**30
    except (RuntimeError, ValueError, KeyError, AttributeError):
        pass
    return out


def time_steps(arch: str, preset: Preset, batches: Sequence, steps: int, info, precision="off", jit="auto",
               init: str | None = None, val: Sequence | None = None, seed: int = 42) -> dict[str, Any]:
    """Train ``arch`` (from ``init`` or random weights) for ``steps`` steps on ``batches`` (cycled) as ``preset``
    says (freezing, loss, optimizer), with ``precision`` and ``jit`` (:mod:`RMBG.training.backend`)."""
    import keras

    from RMBG.models.build import build_model
    from RMBG.training.losses import DeepSupervisionLoss, parse_terms, side_weights

    backend = keras.backend.backend()
    gpus, gpu_bf16 = training_gpus(backend)
    policy = precision_policy(precision, bool(gpus), gpu_bf16)
    use_jit = choose_jit(jit, backend, bool(gpus))
    keras.utils.set_random_seed(seed)
    previous = keras.config.dtype_policy()
    if policy:
        keras.mixed_precision.set_global_policy(policy)
    try:
        base = build_model(arch, preset.train_size, **build_kwargs_of(info, {}))
        if init:
            load_init_weights(base, init, arch)
        if preset.freeze_bn:
            freeze_batchnorm(base)
        if preset.freeze:
            freeze_layers(base, preset.freeze, arch)
        view = training_model(base)
        outputs = int(view.outputs[0].shape[-1])
        channel = int(info.output_index) if outputs > 1 else 0
        loss = DeepSupervisionLoss(parse_terms(preset.loss), side_weights(preset.side_weights, outputs, channel))
        view.compile(optimizer=make_optimizer(preset), loss=loss, jit_compile=use_jit)
        losses, times = [], []
        for step in range(steps + WARMUP_STEPS):
            x, y = batches[step % len(batches)]
            start = time.perf_counter()
            logs = view.train_on_batch(x, y, return_dict=True)  # returns floats: the step has finished
            times.append(time.perf_counter() - start)
            losses.append(float(logs["loss"]))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    steady = float(np.median(times[WARMUP_STEPS:])) if steps else float("nan")
    result = {
        "backend": backend, "device": f"GPU: {gpus[0]}" if gpus else "CPU", "precision": policy or "float32",
        "jit": use_jit, "batch": int(batches[0][0].shape[0]), "size": int(batches[0][0].shape[1]), "steps": steps,
        "compile_s": float(sum(times[:WARMUP_STEPS])), "seconds_per_step": steady,
        "images_per_s": batches[0][0].shape[0] / steady, "first_loss": losses[0],
        "last_loss": float(np.mean(losses[-3:])), **peak_memory(),
    }
    if val is not None:
        scored = build_model(arch, int(val[0][0].shape[1]), **build_kwargs_of(info, {}))
        scored.set_weights(base.get_weights())
        result["val_mae"] = evaluate_model(training_model(scored), val, loss, channel, info.output_norm)["val_mae"]
    return result
