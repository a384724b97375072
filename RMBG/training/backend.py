"""How a run trains on the Keras backend in use: the input pipeline, XLA and mixed precision, each chosen
out loud and refused with the fix when it cannot work here (issue 35).

- Input pipeline (``--pipeline``): ``tf.data`` (:mod:`RMBG.training.tf_data`) with the TensorFlow
  backend, ``py`` (``keras.utils.PyDataset``, :mod:`RMBG.training.py_dataset`, no TensorFlow) with
  the others (JAX, torch); ``auto`` picks by backend, so TensorFlow stays the default where installed.
- XLA (``--jit-compile``): ``auto`` compiles on a GPU (TensorFlow) and always under JAX (whose
  uncompiled steps run op by op).
- Mixed precision (``--mixed-precision``): ``auto`` mixed on a GPU (bfloat16 where the GPU has it,
  else float16), float32 on a CPU; ``on`` also on a CPU (bfloat16); ``bf16`` / ``fp16`` as asked, or a
  clear error where the device has no such arithmetic.
- Strategy: TensorFlow's ``tf.distribute`` (:mod:`RMBG.training.distribute`); the other backends train
  on one device (:class:`SingleDevice`).
"""

from __future__ import annotations

import contextlib
import importlib.util

from RMBG.training.config import JIT_MODES, PIPELINES, PRECISIONS

#: Keras dtype policies of the mixed-precision modes.
POLICIES = {"bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
TF_INSTALL = "pip install tensorflow-cpu==2.21.0 (or the gpu extra)"


def keras_backend() -> str:
    import keras

    return keras.backend.backend()


def tensorflow_available() -> bool:
    """Whether ``import tensorflow`` can work here (without importing it)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def choose_pipeline(name: str, backend: str) -> str:
    """``"tf.data"`` or ``"py"`` for ``--pipeline name`` on ``backend``; ValueError naming the fix."""
    if name not in PIPELINES:
        raise ValueError(f"--pipeline {name!r}: choose one of {', '.join(PIPELINES)}")
    if name == "auto":
        return "tf.data" if backend == "tensorflow" else "py"
    if name == "tf.data" and not tensorflow_available():
        raise ValueError(f"--pipeline tf.data needs TensorFlow, which is not installed: {TF_INSTALL}, "
                         "or use --pipeline py")
    return name


def choose_jit(mode: str, backend: str, on_gpu: bool) -> bool:
    """Whether ``compile`` gets ``jit_compile=True`` (XLA)."""
    if mode not in JIT_MODES:
        raise ValueError(f"--jit-compile {mode!r}: choose one of {', '.join(JIT_MODES)}")
    if mode == "auto":
        return backend == "jax" or (backend == "tensorflow" and on_gpu)
    return mode == "on"


def precision_mode(mode) -> str:
    """A :data:`PRECISIONS` value (``True``/``False`` of older configs are ``on``/``off``)."""
    if mode is True:
        return "on"
    if mode is False or mode is None:
        return "off"
    if mode not in PRECISIONS:
        raise ValueError(f"--mixed-precision {mode!r}: choose one of {', '.join(PRECISIONS)}")
    return mode


def precision_policy(mode, on_gpu: bool, gpu_bf16: bool = True) -> str | None:
    """The Keras dtype policy for ``--mixed-precision mode`` (``None``: float32); ValueError naming the fix."""
    mode = precision_mode(mode)
    if mode == "off" or (mode == "auto" and not on_gpu):
        return None
    if mode in ("auto", "on"):
        return POLICIES["bf16" if (gpu_bf16 or not on_gpu) else "fp16"]
    if mode == "fp16" and not on_gpu:
        raise ValueError("--mixed-precision fp16 needs a GPU (a CPU has no fast float16 arithmetic): "
                         "use --mixed-precision bf16 on a CPU, or off")
    if mode == "bf16" and on_gpu and not gpu_bf16:
        raise ValueError("--mixed-precision bf16: this GPU has no bfloat16 arithmetic (compute capability "
                         "below 8.0): use --mixed-precision fp16")
    return POLICIES[mode]


def gpu_supports_bf16() -> bool:
    """Whether the first GPU of the backend in use has bfloat16 arithmetic (compute capability 8.0 or more)."""
    backend = keras_backend()
    try:
        if backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            return not gpus or float(getattr(gpus[0], "compute_capability", "8.0")) >= 8.0
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
            return tuple(details.get("compute_capability", (8, 0))) >= (8, 0)
        if backend == "torch":
            import torch

            return not torch.cuda.is_available() or torch.cuda.is_bf16_supported()
    except (ValueError, RuntimeError, IndexError):
        pass
    return True


class SingleDevice:
    """The stand-in for a ``tf.distribute`` strategy on the other backends: one device, no scope to enter."""

    num_replicas_in_sync = 1
    cluster_resolver = None

    def scope(self):
        return contextlib.nullcontext()


def make_strategy(name: str, backend: str):
    """TensorFlow's strategy (:func:`RMBG.training.distribute.make_strategy`), else :class:`SingleDevice`."""
    from RMBG.training.distribute import make_strategy as tf_strategy

    if backend == "tensorflow":
        return tf_strategy(name)
    if name in ("mirrored", "multiworker"):
        raise ValueError(f"--strategy {name} is tf.distribute: it needs KERAS_BACKEND=tensorflow "
                         f"(this run uses {backend}); use --strategy auto")
    return SingleDevice()


def single_device(strategy) -> bool:
    """Whether the strategy runs on one device (so the trained model itself can be checked and saved)."""
    if isinstance(strategy, SingleDevice):
        return True
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.OneDeviceStrategy)


def training_gpus(backend: str) -> tuple[list[str], bool]:
    """``(GPUs the backend will train on, whether the first has bfloat16)``, after ``--device`` hid them or not.

    TensorFlow's logical devices (what ``set_visible_devices`` left); the others' own device lists."""
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    else:
        from RMBG.runtime.device import keras_gpus

        gpus = keras_gpus()
    return gpus, (gpu_supports_bf16() if gpus else True)
