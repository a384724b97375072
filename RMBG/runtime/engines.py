"""The runtimes behind the one interface :class:`~RMBG.runtime.segmenter.Segmenter`, and loading by name or file.

Predict, evaluate, bench and the notebooks all go through here, so the
preprocessing (resize, normalise) and postprocessing (output scaling, resize
back to the photo) live in exactly one place. A new runtime is one small
subclass implementing :meth:`Segmenter._infer`.

Runtimes: :class:`KerasSegmenter` (``.keras``, run through a compiled
``tf.function`` on the TensorFlow backend), :class:`TFLiteSegmenter`
(``.tflite`` exports, LiteRT interpreter), :class:`OnnxSegmenter` (our
``.onnx`` exports) and :class:`OnnxPeerSegmenter` (public ONNX files run as
their publishers run them: rembg's U-2-Net, imgly's IS-Net).
:func:`load_segmenter` picks one by file type, and takes model names
(:mod:`RMBG.models.names`) and ``A+B`` means (:mod:`RMBG.runtime.ensemble`).
The base class lives in :mod:`RMBG.runtime.segmenter`.

:func:`fast_segmenter` serves a ``.keras`` model through a TFLite copy
cached under ``Data/cache/runtime/`` (keyed by the model file's digest and the
runtime): fp32 gives the same masks (mean difference about 1e-6) at a lower
latency; int8, the default of ``remove``, ``demo`` and every front end
(:data:`DEFAULT_RUNTIME`), runs about 3.5x faster within issue 16's quality
bound. Neither needs a TensorFlow import once the copy exists; see
``scripts/bench_runtimes.py`` and ``scripts/runtime_quality.py``.
:func:`public_fast_segmenter` does the same for the publishers' ONNX files
behind the names ``u2net`` and ``isnet``: imported into Keras, converted
once (:mod:`RMBG.models.public_copies`), cached beside the default's copy.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from RMBG.models.info import (
    ModelInfo,
    onnx_embedded_info,
    require_sidecar,
    select_output,
    sidecar_path,
)
from RMBG.models.names import Recipe, is_name_spec, members, recipe_for, resolve_file
from RMBG.models.public_copies import conversion_for
from RMBG.quiet import converter_silence, quiet_native_stderr
from RMBG.runtime.device import (
    CPU_PROVIDER,
    DeviceError,
    check_device,
    keras_device_line,
    onnx_providers,
)
from RMBG.runtime.ensemble import EnsembleSegmenter
from RMBG.runtime.segmenter import (  # noqa: F401 (re-exported)
    PRESHRINK_FACTOR,
    Segmenter,
    upsample_mask,
)

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
    """A public ONNX file (NCHW, batch 1, no model info) run the way its publisher runs it.

    ``recipe`` (a :class:`RMBG.models.names.Recipe`) gives the resize, the
    input scaling and the output scaling; by default the names table's row of
    the file, else by its input size (:func:`RMBG.models.names.recipe_for`):
    rembg's U-2-Net files (Lanczos, divide by the maximum, ImageNet
    statistics, min-max out) or imgly's IS-Net (bilinear to 1024,
    ``(x - 128) / 256``, the sigmoid map as is).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None, recipe: Recipe | None = None,
                 device: str = "auto"):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: peer model not found")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = onnx_providers(device)  # a DeviceError stays one (not "unusable model")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"{path}: not a usable ONNX model ({exc})") from None
        feed = self.session.get_inputs()[0]
        size = feed.shape[-1] if isinstance(feed.shape[-1], int) else None
        recipe = recipe or recipe_for(path, size)
        self._input_name = feed.name
        self._input_dtype = np.float16 if feed.type == "tensor(float16)" else np.float32
        outputs = [out.name for out in self.session.get_outputs()]
        self._output_name = recipe.output if recipe.output in outputs else outputs[0]
        self.resample = getattr(Image, recipe.resample.upper())
        super().__init__(recipe.info("onnx-peer", size), path.stem, path)
        self.device_line = onnx_device_line(self.session, threads)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        nchw = np.transpose(batch, (0, 3, 1, 2)).astype(self._input_dtype)
        # The public exports have a fixed batch of 1: run image by image.
        maps = [self.session.run([self._output_name], {self._input_name: nchw[i : i + 1]})[0]
                for i in range(batch.shape[0])]
        return np.concatenate(maps)[:, 0].astype(np.float32, copy=False)


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
    """The shipped default model, or the imported u2netp until it exists (the names table's ``default``)."""
    return resolve_file("default")


def runtime_cache_dir() -> Path:
    """``Data/cache/runtime``: TFLite copies of ``.keras`` models made by :func:`fast_segmenter`."""
    from RMBG.constants import DATA_DIR

    return DATA_DIR / "cache" / RUNTIME_CACHE_DIR_NAME


def cached_copy(target: Path, make, what: str) -> Path:
    """``target`` when it exists; else made once by ``make(target)`` (which writes it atomically),
    with one progress line of its own on stderr and none of the converter's
    (:func:`RMBG.quiet.converter_silence`: shown only when the conversion fails)."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"{what}: making {target.name} in {target.parent} (once; a minute or a few) ...", end="",
          file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        with converter_silence():
            make(target)
    except BaseException:
        print(" failed", file=sys.stderr, flush=True)
        raise
    print(f" done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return target


def fast_segmenter(
    path: str | os.PathLike, cache_dir: str | os.PathLike | None = None, quantize: str = "none"
) -> Segmenter:
    """The ``.keras`` model at ``path`` served through a cached TFLite copy.

    The copy (fp32 by default, or ``quantize="int8"``) is made on first use
    (fp32 about 20 s: TensorFlow import, model load, conversion; int8 about a
    minute) and kept as ``cache_dir/STEM-DIGEST[-int8].tflite`` with its
    sidecar (int8 copies also carry their recipe, :func:`RMBG.models.export.int8_recipe`),
    so a changed model file gets a new copy (:func:`cached_copy`). When conversion fails the
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
        from RMBG.models.export import export_model

        cached_copy(target, lambda out: export_model(path, out, "tflite", quantize, overwrite=True),
                    f"model {path.name}")
        segmenter = TFLiteSegmenter(target)
    except Exception as exc:  # any conversion failure: keep working on the slower path
        warnings.warn(f"{path}: TFLite copy failed ({exc}); running the Keras model instead", stacklevel=2)
        return KerasSegmenter.from_file(path)
    segmenter.name = path.stem
    return segmenter


def public_copy_path(name: str, path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the copy of the public file ``path`` of the model ``name`` is cached:
    ``NAME-DIGEST-PRECISION.tflite`` (or ``.onnx``), keyed by the file's bytes and how the copy is made."""
    folder = Path(cache_dir) if cache_dir is not None else runtime_cache_dir()
    row = conversion_for(name)
    return folder / f"{name}-{file_digest(path)}-{row.tag()}{row.suffix}"


def public_fast_segmenter(name: str, path: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                          device: str = "auto") -> Segmenter:
    """The public file ``path`` of the model ``name`` (``u2net``, ...) served through its cached copy
    (:mod:`RMBG.models.public_copies`: LiteRT, a bfloat16 Keras file where the CPU has AMX, or an fp32
    ONNX file run the publisher's way), with the
    publisher's resize; onnxruntime runs the file instead where a GPU is asked for or found (it can
    use one), or when the copy cannot be made (with a warning saying why)."""
    import warnings

    from RMBG.models.public_copies import convert_public

    path = Path(path)
    recipe = recipe_for(path)
    if onnx_providers(device)[0] != CPU_PROVIDER:
        return OnnxPeerSegmenter(path, device=device)
    target = public_copy_path(name, path, cache_dir)
    try:
        cached_copy(target, lambda out: convert_public(name, path, out), f"model {name}")
        if target.suffix == ".onnx":
            segmenter = OnnxPeerSegmenter(target, recipe=recipe, device=device)
        elif target.suffix == ".keras":
            segmenter = KerasSegmenter.from_file(target, device=device)
        else:
            segmenter = TFLiteSegmenter(target)
        if target.suffix != ".tflite":  # a LiteRT line names its precision already
            segmenter.device_line += f" ({conversion_for(name).quantize} copy)"
    except Exception as exc:  # any conversion failure: keep working on the publisher's path
        warnings.warn(f"model {name}: making its copy failed ({exc}); running {path} through onnxruntime", stacklevel=2)
        return OnnxPeerSegmenter(path, device=device)
    segmenter.resample = getattr(Image, recipe.resample.upper())
    segmenter.name = name
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
    """A :class:`Segmenter` for a model name, a path, a Segmenter, or ``None`` (the default model).

    Names (:mod:`RMBG.models.names`: ``default``, ``u2netp``, ``u2net``,
    ``isnet``) stand for their files; a public network's name (each name with a
    qualified row in :data:`RMBG.models.public_copies.CONVERSIONS`: ``u2net``'s
    LiteRT copy, ``isnet``'s bfloat16 Keras copy on an AMX CPU, else its fp32 ONNX copy) runs through its cached copy
    (:func:`public_fast_segmenter`) unless ``peer=True`` (``--peer u2net``: the
    publisher's way, through onnxruntime; so does the file given by path).
    ``A+B`` is the pixel-wise mean of the
    members' maps (:class:`RMBG.runtime.ensemble.EnsembleSegmenter`, each
    member loaded as here). A missing file of a name says which
    ``fetch-teacher`` command gets it; an unknown name lists the names.

    The file type picks the runtime: ``.keras`` (``runtime="keras"``, or
    ``"tflite"`` / ``"tflite-int8"`` for the cached TFLite copy of
    :func:`fast_segmenter`),
    ``.tflite``, ``.onnx`` (our exports; files without model info, or
    ``peer=True``, run as their publishers run them, :class:`OnnxPeerSegmenter`).
    Files are loaded
    once and kept in a small LRU cache keyed by path, size, modification time
    and runtime (``.keras`` only), so repeated calls reuse the model and memory stays bounded.
    ``device``
    (:data:`RMBG.runtime.device.DEVICES`) picks where it runs; ``gpu`` raises
    :class:`~RMBG.runtime.device.DeviceError` where no GPU can run it (never a silent CPU run).
    """
    if isinstance(model, Segmenter):
        return model
    if model is not None and is_name_spec(str(model)):
        parts = members(str(model))
        if len(parts) > 1:
            return EnsembleSegmenter([load_segmenter(part, peer=peer, runtime=runtime, device=device) for part in parts])
        model = resolve_file(parts[0])
        public = parts[0] if not peer and conversion_for(parts[0]) is not None else None
    else:
        public = None
    path = Path(model) if model is not None else default_model_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    stat = path.stat()
    keras_runtime = runtime if path.suffix.lower() == ".keras" else None  # the others ignore it
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, peer, keras_runtime, check_device(device), public)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    segmenter = public_fast_segmenter(public, path, device=device) if public else _open(path, peer, runtime, device)
    _CACHE[key] = segmenter
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return segmenter


def clear_cache() -> None:
    _CACHE.clear()
