"""``tf.distribute`` for training: the strategy, each worker's role, and Keras 3.15 workarounds.

Training runs under a real strategy always (one device at least):
``OneDeviceStrategy``, ``MirroredStrategy`` across local GPUs, or
``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``. :func:`build_before_fit`
works around two Keras 3.15 problems under several workers (see its
docstring). The models themselves stay backend-neutral Keras.
"""

from __future__ import annotations

import json
import os

import numpy as np

from RMBG.training.config import STRATEGIES


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
    if not hasattr(strategy, "extended"):  # not a tf.distribute strategy (RMBG.training.backend.SingleDevice)
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        getattr(strategy.extended, "_num_workers", 1) > 1
    )

