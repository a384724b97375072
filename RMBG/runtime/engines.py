"""One interface over every model file we can run: :class:`Segmenter`.

Predict, evaluate, bench and the notebooks all go through here, so the
preprocessing (resize, normalise) and postprocessing (output scaling, resize
back to the photo) live in exactly one place. A new runtime is one small
subclass implementing :meth:`Segmenter._infer`.

Runtimes: :class:`KerasSegmenter` (``.keras``, run through a compiled
``tf.function`` on the TensorFlow backend), :class:`TFLiteSegmenter`
(``.tflite`` exports, LiteRT interpreter), :class:`OnnxSegmenter` (our
``.onnx`` exports) and :class:`OnnxPeerSegmenter` (public U-2-Net ONNX files
run as rembg runs them). :func:`load_segmenter` picks one by file type.

:func:`fast_segmenter` serves a ``.keras`` model through a TFLite copy
cached under ``Data/cache/runtime/`` (keyed by the model file's digest and the
runtime): fp32 gives the same masks (mean difference about 1e-6) at a lower
latency; int8, the default of ``remove``, ``demo`` and every front end
(:data:`DEFAULT_RUNTIME`), runs about 3.5x faster within issue 16's quality
bound. Neither needs a TensorFlow import once the copy exists; see
``scripts/bench_runtimes.py`` and ``scripts/runtime_quality.py``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from RMBG.models.info import (
    ModelInfo,
    onnx_embedded_info,
    require_sidecar,
    select_output,
    sidecar_path,
)
from RMBG.quiet import quiet_native_stderr
from RMBG.runtime.device import (
    CPU_PROVIDER,
    DeviceError,
    check_device,
    keras_device_line,
    onnx_providers,
)

#: Photos larger than this many times the model's input size are area-averaged
#: down to it before the Lanczos resize (see :meth:`Segmenter.preprocess`).
PRESHRINK_FACTOR = 4
#: Threads for the TFLite and ONNX interpreters (this project's machines have 2 cores).
#: Measured with the folder pipeline (issue 16): 2 threads beat 1 thread plus the
#: read/write threads (50 photos 0.84x against 1.05x of a serial 2-thread loop).
RUNTIME_THREADS = 2
#: Where :func:`fast_segmenter` keeps TFLite copies of ``.keras`` models.
RUNTIME_CACHE_DIR_NAME = "runtime"
#: Runtimes :func:`load_segmenter` accepts for ``.keras`` files: the model
#: itself, or a cached TFLite copy (fp32: the same masks; int8: about 3.5x
#: faster, masks within 0.0023 MAE of fp32, calibrated on the shared
#: unlabelled photos at first use, see :func:`RMBG.models.export.int8_recipe`).
KERAS_RUNTIMES = ("keras", "tflite", "tflite-int8")
#: How the removal pipeline (:class:`RMBG.removal.pipeline.Remover`) runs ``.keras``
#: models: through the cached TFLite int8 copy of :func:`fast_segmenter`
#: (issue 16). On all 885 shared labelled photos it scores as the fp32 Keras
#: model does within the issue's bound (MAE within 0.001, max-F no more than
#: 0.002 lower, per category; worst: cats MAE +0.0007, max-F -0.0011;
#: ``scripts/runtime_quality.py``) at 0.3x the model time, and needs no
#: TensorFlow once cached. The copy is made on first use (TensorFlow import,
#: calibration, about 1-2 minutes); ``tflite`` (fp32, the same masks as Keras
#: to 1e-6) and ``keras`` stay available.
DEFAULT_RUNTIME = "tflite-int8"


class Segmenter:
    """Runs a model on RGB uint8 images and returns full-size masks in [0, 1]."""

    #: short label for reports (file stem by default)
    name: str
    #: what runs the model, said once by the commands ("LiteRT int8 on CPU, 2 threads", ...)
    device_line: str = ""
    info: ModelInfo
    path: Path | None = None

    def __init__(self, info: ModelInfo, name: str, path: str | os.PathLike | None = None):
        self.info = info
        self.name = name
        self.path = Path(path) if path is not None else None
        # one model call at a time: interpreters (TFLite, onnxruntime sessions resized per batch)
        # are not safe to call from several threads, and cached segmenters are shared
        self._lock = threading.Lock()

    # -- to implement ----------------------------------------------------
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """Normalised ``NxSxSx3`` float32 input to raw ``NxSxS`` output maps."""
        raise NotImplementedError

    # -- shared pipeline -------------------------------------------------
    @property
    def input_size(self) -> int:
        return int(self.info.input_size)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One ``HxWx3`` uint8 RGB image to the model's ``SxSx3`` float32 input.

        Lanczos resize to ``S x S``. Photos wider or taller than
        ``PRESHRINK_FACTOR * S`` are first area-averaged down to that bound
        (in numpy, without a full-size PIL copy), which keeps memory and time
        low for very large photos and leaves the result practically unchanged.
        """
        size = self.input_size
        image = np.ascontiguousarray(image)
        bound = PRESHRINK_FACTOR * size
        height, width = image.shape[:2]
        if height > bound or width > bound:
            image = cv2.resize(image, (min(width, bound), min(height, bound)), interpolation=cv2.INTER_AREA)
        small = Image.fromarray(image).resize((size, size), Image.LANCZOS)
        return self.info.normalize(np.asarray(small))

    def predict_small(self, images: Sequence[np.ndarray], batch_size: int = 1) -> np.ndarray:
        """Masks at the model's own size, ``NxSxS`` float32 in [0, 1]."""
        outputs = []
        for start in range(0, len(images), max(1, batch_size)):
            chunk = images[start : start + max(1, batch_size)]
            outputs.append(self.masks_of_inputs(np.stack([self.preprocess(img) for img in chunk])))
        size = self.input_size
        return np.concatenate(outputs) if outputs else np.zeros((0, size, size), np.float32)

    def masks_of_inputs(self, batch: np.ndarray) -> np.ndarray:
        """Model-size masks ``NxSxS`` in [0, 1] of an already preprocessed ``NxSxSx3`` batch:
        one model call (one at a time across threads) and the output scaling."""
        with self._lock:
            maps = self._infer(np.asarray(batch, dtype=np.float32))
        return self.info.finish(maps)

    def predict(self, images: Sequence[np.ndarray], batch_size: int = 1) -> list[np.ndarray]:
        """Full-size masks, one ``HxW`` float32 array in [0, 1] per image."""
        small = self.predict_small(images, batch_size=batch_size)
        return [upsample_mask(mask, img.shape[:2]) for mask, img in zip(small, images)]

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        return self.predict([image])[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, input_size={self.input_size})"


def upsample_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a small float mask to ``(height, width)`` with bilinear interpolation."""
    height, width = int(shape[0]), int(shape[1])
    if mask.shape == (height, width):
        return mask.astype(np.float32, copy=False)
    big = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(big, 0.0, 1.0, out=big)


# ---------------------------------------------------------------------------
# Runtimes
# ---------------------------------------------------------------------------
class KerasSegmenter(Segmenter):
    """A ``.keras`` file written by :func:`RMBG.models.build.save_model` (or a live model).

    On the TensorFlow backend the model runs inside a ``tf.function`` traced
    once for any batch size (about 2x faster than calling the model eagerly,
    and several times faster than ``model.predict`` on single images); on
    other backends it is called directly.
    """

    def __init__(self, model, info: ModelInfo, name: str, path=None, compile: bool = True, device: str = "auto"):
        super().__init__(info, name, path)
        self.device_line = keras_device_line(device)
        self.model = model
        self._run = self._compiled() if compile else None

    @classmethod
    def from_file(cls, path: str | os.PathLike, compile: bool = True, device: str = "auto") -> "KerasSegmenter":
        from RMBG.models.build import load_model

        check_device(device)
        model = load_model(path)
        return cls(model, model.rmbg_info, Path(path).stem, path, compile=compile, device=device)

    def _compiled(self):
        import keras

        if keras.backend.backend() != "tensorflow":
            return None
        import tensorflow as tf

        size = self.input_size
        spec = tf.TensorSpec([None, size, size, 3], tf.float32)
        return tf.function(lambda x: select_output(self.model(x, training=False), self.info), input_signature=[spec])

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import keras

        if self._run is not None:
            return self._run(batch).numpy()
        maps = select_output(self.model(batch, training=False), self.info)
        return keras.ops.convert_to_numpy(maps)


class TFLiteSegmenter(Segmenter):
    """A ``.tflite`` export (:mod:`RMBG.models.export`) run by the LiteRT interpreter.

    The ModelInfo comes from the sidecar ``FILE.json`` beside the file. Float
    and integer-quantised inputs/outputs are both handled.
    """

    def __init__(self, path: str | os.PathLike, info: ModelInfo | None = None, threads: int = RUNTIME_THREADS,
                 device: str = "auto"):
        from ai_edge_litert.interpreter import Interpreter

        path = Path(path)
        if check_device(device) == "gpu":
            raise DeviceError(f"--device gpu: {path.name} is a LiteRT file and LiteRT runs on the CPU here; use "
                              "--runtime keras (with the GPU build) or an .onnx export with onnxruntime-gpu")
        info = info or require_sidecar(path)
        try:
            with quiet_native_stderr():
                self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"{path}: not a usable TFLite model ({exc})") from None
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self._batch = None
        super().__init__(info, path.stem, path)
        self.device_line = f"LiteRT {self.precision()} on CPU, {threads} threads"

    def precision(self) -> str:
        """``int8``, ``fp16`` or ``fp32``: the narrowest type among the file's tensors."""
        types = {detail["dtype"] for detail in self.interpreter.get_tensor_details()}
        return "int8" if np.int8 in types or np.uint8 in types else "fp16" if np.float16 in types else "fp32"

    def _ensure_batch(self, n: int) -> None:
        if n != self._batch:
            size = self.input_size
            self.interpreter.resize_tensor_input(self._input["index"], [n, size, size, 3])
            with quiet_native_stderr():
                self.interpreter.allocate_tensors()
            self._batch = n
            self._output = self.interpreter.get_output_details()[0]

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        self._ensure_batch(batch.shape[0])
        self.interpreter.set_tensor(self._input["index"], _quantize(batch, self._input))
        self.interpreter.invoke()
        maps = _dequantize(self.interpreter.get_tensor(self._output["index"]), self._output)
        return maps[..., 0] if maps.ndim == 4 else maps


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x.astype(np.float32, copy=False)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / scale + zero), info.min, info.max).astype(dtype)


def _dequantize(x: np.ndarray, detail: dict) -> np.ndarray:
    if x.dtype == np.float32:
        return x.copy()
    scale, zero = detail["quantization"]
    return (x.astype(np.float32) - zero) * scale


def onnx_device_line(session, threads: int | None) -> str:
    """``"onnxruntime CPUExecutionProvider, 2 threads"``: the provider that runs the session first."""
    provider = session.get_providers()[0]
    return f"onnxruntime {provider}" + (f", {threads} threads" if threads and provider == CPU_PROVIDER else "")


class OnnxSegmenter(Segmenter):
    """An ``.onnx`` export of our own (:mod:`RMBG.models.export`): NHWC input, one mask output.

    The ModelInfo is read from the file's metadata, else from its sidecar.
    """

    def __init__(self, path: str | os.PathLike, info: ModelInfo | None = None, threads: int = RUNTIME_THREADS,
                 device: str = "auto"):
        import onnxruntime as ort

        path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        providers = onnx_providers(device)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"{path}: not a usable ONNX model ({exc})") from None
        info = info or onnx_embedded_info(self.session) or require_sidecar(path)
        self._input_name = self.session.get_inputs()[0].name
        super().__init__(info, path.stem, path)
        self.device_line = onnx_device_line(self.session, threads)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        maps = self.session.run(None, {self._input_name: batch.astype(np.float32, copy=False)})[0]
        return maps[..., 0] if maps.ndim == 4 else maps


class OnnxPeerSegmenter(Segmenter):
    """A public U-2-Net ONNX file run as rembg runs it (NCHW, divide by max, min-max out)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, device: str = "auto"):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: peer model not found")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=onnx_providers(device))
        shape = self.session.get_inputs()[0].shape
        size = shape[-1] if isinstance(shape[-1], int) else 320
        info = ModelInfo(
            arch="onnx-peer", input_size=size, output_index=0, output_norm="minmax", input_scale="max"
        )
        super().__init__(info, path.stem, path)
        self.device_line = onnx_device_line(self.session, threads)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        feed = {self.session.get_inputs()[0].name: np.transpose(batch, (0, 3, 1, 2))}
        # The public export has a fixed batch of 1: run image by image.
        maps = [
            self.session.run(None, {k: v[i : i + 1] for k, v in feed.items()})[self.info.output_index]
            for i in range(batch.shape[0])
        ]
        return np.concatenate(maps)[:, 0]


# ---------------------------------------------------------------------------
# Loading by file type, with a small cache
# ---------------------------------------------------------------------------
_CACHE: "OrderedDict[tuple, Segmenter]" = OrderedDict()
_CACHE_SIZE = 3


def file_digest(path: str | os.PathLike, length: int = 16) -> str:
    """Short SHA-256 of a file's bytes (used to key prediction caches)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def default_model_path() -> Path:
    """The shipped default model, or the imported u2netp until it exists."""
    from RMBG.constants import DEFAULT_MODEL_PATH, IMPORTED_U2NETP_PATH

    for candidate in (DEFAULT_MODEL_PATH, IMPORTED_U2NETP_PATH):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no default model: {DEFAULT_MODEL_PATH} is missing (run `python -m RMBG import-weights "
        f"../shared/peers/u2netp.onnx --arch u2netp --out {IMPORTED_U2NETP_PATH}` to make one)"
    )


def runtime_cache_dir() -> Path:
    """``Data/cache/runtime``: TFLite copies of ``.keras`` models made by :func:`fast_segmenter`."""
    from RMBG.constants import DATA_DIR

    return DATA_DIR / "cache" / RUNTIME_CACHE_DIR_NAME


def fast_segmenter(
    path: str | os.PathLike, cache_dir: str | os.PathLike | None = None, quantize: str = "none"
) -> Segmenter:
    """The ``.keras`` model at ``path`` served through a cached TFLite copy.

    The copy (fp32 by default, or ``quantize="int8"``) is made on first use
    (fp32 about 20 s: TensorFlow import, model load, conversion; int8 about a
    minute) and kept as ``cache_dir/STEM-DIGEST[-int8].tflite`` with its
    sidecar (int8 copies also carry their recipe, :func:`RMBG.models.export.int8_recipe`),
    so a changed model file gets a new copy. When conversion fails the
    Keras runtime is used and a warning says why.
    """
    import warnings

    path = Path(path)
    folder = Path(cache_dir) if cache_dir is not None else runtime_cache_dir()
    if quantize == "int8":
        from RMBG.models.export import int8_recipe

        tag = f"-int8-{int8_recipe()}"
    else:
        tag = "" if quantize == "none" else f"-{quantize}"
    target = folder / f"{path.stem}-{file_digest(path)}{tag}.tflite"
    try:
        if not target.is_file():
            from RMBG.models.export import export_model

            export_model(path, target, "tflite", quantize, overwrite=True)
        segmenter = TFLiteSegmenter(target)
    except Exception as exc:  # any conversion failure: keep working on the slower path
        warnings.warn(f"{path}: TFLite copy failed ({exc}); running the Keras model instead", stacklevel=2)
        return KerasSegmenter.from_file(path)
    segmenter.name = path.stem
    return segmenter


def _open(path: Path, peer: bool, runtime: str, device: str) -> Segmenter:
    suffix = path.suffix.lower()
    if suffix == ".keras":
        if runtime not in KERAS_RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r} for {path}; choose one of {', '.join(KERAS_RUNTIMES)}")
        if runtime == "keras":
            return KerasSegmenter.from_file(path, device=device)
        if device == "gpu":
            raise DeviceError(f"--device gpu: runtime {runtime!r} is LiteRT, which runs on the CPU here; "
                              f"add --runtime keras (with the GPU build installed) to run {path.name} on a GPU")
        return fast_segmenter(path, quantize="int8" if runtime == "tflite-int8" else "none")
    if suffix == ".tflite":
        return TFLiteSegmenter(path, device=device)
    if suffix == ".onnx":
        if peer:
            return OnnxPeerSegmenter(path, device=device)
        try:
            return OnnxSegmenter(path, device=device)
        except ValueError:
            if sidecar_path(path).exists():
                raise
            # No model info anywhere: a public U-2-Net file, run as rembg runs it.
            return OnnxPeerSegmenter(path, device=device)
    raise ValueError(
        f"{path}: unsupported model file type {suffix!r} (expected .keras, .tflite or .onnx)"
    )


def load_segmenter(model=None, peer: bool = False, runtime: str = "keras", device: str = "auto") -> Segmenter:
    """A :class:`Segmenter` for a path, a Segmenter, or ``None`` (the default model).

    The file type picks the runtime: ``.keras`` (``runtime="keras"``, or
    ``"tflite"`` / ``"tflite-int8"`` for the cached TFLite copy of
    :func:`fast_segmenter`),
    ``.tflite``, ``.onnx`` (our exports; files without model info, or
    ``peer=True``, run as rembg runs public U-2-Net files). Files are loaded
    once and kept in a small LRU cache keyed by path, size, modification time
    and runtime, so repeated calls reuse the model and memory stays bounded. ``device``
    (:data:`RMBG.runtime.device.DEVICES`) picks where it runs; ``gpu`` raises
    :class:`~RMBG.runtime.device.DeviceError` where no GPU can run it (never a silent CPU run).
    """
    if isinstance(model, Segmenter):
        return model
    path = Path(model) if model is not None else default_model_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, peer, runtime, check_device(device))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    segmenter = _open(path, peer, runtime, device)
    _CACHE[key] = segmenter
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return segmenter


def clear_cache() -> None:
    _CACHE.clear()
