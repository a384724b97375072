"""Which device runs a model, chosen out loud: ``--device auto|cpu|gpu``.

``auto`` prefers a GPU when the engine can use one, ``cpu`` never uses one, and ``gpu``
fails with :class:`DeviceError` (naming the option and the fix) when no GPU is usable:
never a silent fall back to the CPU, the bug rembg's users keep reporting. Each
``Segmenter`` says what runs it (:attr:`~RMBG.runtime.engines.Segmenter.device_line`), and
the commands print that line once.
"""

from __future__ import annotations

DEVICES = ("auto", "cpu", "gpu")
#: onnxruntime's accelerated providers, preferred in this order when installed (CUDA, ROCm, Apple, Windows).
GPU_PROVIDERS = ("CUDAExecutionProvider", "ROCMExecutionProvider", "CoreMLExecutionProvider",
                 "DmlExecutionProvider")
CPU_PROVIDER = "CPUExecutionProvider"


class DeviceError(ValueError):
    """The device asked for cannot run this model here."""


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise DeviceError(f"--device {device!r}: choose one of {', '.join(DEVICES)}")
    return device


def onnx_providers(device: str = "auto", available: list[str] | None = None) -> list[str]:
    """The onnxruntime providers for ``device``, best first, from the installed ones (``available``)."""
    check_device(device)
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    accelerated = [name for name in GPU_PROVIDERS if name in available]
    if device == "gpu" and not accelerated:
        raise DeviceError(
            "--device gpu: this onnxruntime has no GPU provider (installed: " + ", ".join(available) + "); "
            "install onnxruntime-gpu (CUDA) or onnxruntime-rocm, or use --device cpu"
        )
    return ([] if device == "cpu" else accelerated[:1]) + [CPU_PROVIDER]


def keras_gpus() -> list[str]:
    """Names of the GPUs the Keras backend in use can run on ("" list when none)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        names = []
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu)
            names.append(details.get("device_name", gpu.name))
        return names
    if backend == "jax":
        import jax

        return [str(getattr(d, "device_kind", d)) for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def keras_device_line(device: str = "auto", gpus: list[str] | None = None) -> str:
    """``"keras tensorflow on CPU"`` or ``"keras jax on GPU 0: NVIDIA H100"`` for ``device``; DeviceError for
    ``gpu`` without one. ``cpu`` hides the GPUs from the backend before it places anything."""
    import keras

    check_device(device)
    backend = keras.backend.backend()
    if device == "cpu":
        hide_gpus(backend)
        return f"keras {backend} on CPU"
    gpus = keras_gpus() if gpus is None else gpus
    if gpus:
        return f"keras {backend} on GPU 0: {gpus[0]}"
    if device == "gpu":
        raise DeviceError(f"--device gpu: keras {backend} sees no GPU here; install the GPU build "
                          "(README: pip install -e \".[gpu]\" or \".[jax-gpu]\") or use --device cpu")
    return f"keras {backend} on CPU"


def hide_gpus(backend: str) -> None:
    """Keep the backend off every GPU (``--device cpu``)."""
    if backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # already initialised: nothing was placed on a GPU by us yet
            pass
    elif backend == "jax":
        import jax

        try:
            jax.config.update("jax_platforms", "cpu")
        except RuntimeError:  # backends already initialised: their default device stays
            pass
