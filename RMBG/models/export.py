"""Export a ``.keras`` model to TFLite (LiteRT) or ONNX, carrying its ModelInfo.

``python -m RMBG export --model PATH --format tflite|onnx [--quantize none|fp16|int8] --out FILE``

The exported graph takes the model's normalised ``N x S x S x 3`` float32
input (the preprocessing stays in :meth:`ModelInfo.normalize`, the one
definition) and returns only the final mask map ``N x S x S`` (the side
outputs are dropped). The ModelInfo travels in a sidecar ``FILE.json`` beside
the export (and, for ONNX, also inside the file's metadata), with
``output_index`` 0 and a note on where it came from. :mod:`RMBG.runtime.engines`
reads it back.

Quantisation (TFLite only): ``fp16`` stores the weights as float16;
``int8`` is full-integer quantisation of weights (per channel) and activations
(per tensor), calibrated on real photos (``--calibration DIR``, by default
the shared unlabelled photos, so that the labelled sets the export is judged
on stay unseen), keeping float32 input and output. Plain int8 wrecks U-2-Net-P (mask MAE 0.077
against the Keras model; dynamic-range int8 0.087): a few decoder layers carry
activations far wider than their neighbours (the imported weights have biases
up to 1361). TFLite's QuantizationDebugger measures each layer's error on the
calibration photos and the layers whose error exceeds one quantisation step
stay float (7 of 119 for the imported model: MAE 0.002, about 2x faster than
fp32).

What more float buys (issue 16, measured on the default model): the int8
error is spread over the whole network. Keeping any one U-block float
changes the mask difference from fp32 by at most 0.0002 (noise), except the
full-resolution encoder stage, which takes 0.0002 off at 5x the time; more
calibration photos (32, 64) widen the activation ranges and score no better.
``scripts/runtime_quality.py`` gives the held-out figures.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import sys
from pathlib import Path

import numpy as np

from RMBG.images.io import ImageReadError, list_images, read_image, write_atomic
from RMBG.models.info import (
    ModelInfo,
    embed_onnx_info,
    select_output,
    sidecar_path,
    write_sidecar,
)

FORMATS = ("tflite", "onnx")

QUANTIZE = ("none", "fp16", "int8")

#: ONNX opset of the exports (onnxruntime 1.31 runs up to 21+).
ONNX_OPSET = 17

#: Photos fed through the model to calibrate int8 activations, and how many of
#: them measure each layer's quantisation error.
CALIBRATION_IMAGES = 8

DEBUG_IMAGES = 4

#: int8: a layer whose RMSE exceeds this many quantisation steps stays float.
INT8_MAX_LAYER_ERROR = 1.0


def int8_recipe() -> str:
    """A short tag of how int8 copies are made here (calibration source and count, fallback bound),
    part of the runtime cache's file names: a changed recipe makes a new copy instead of serving an old one."""
    from RMBG.constants import shared_data_dir

    shared = shared_data_dir()
    source = "u" if shared and list_images(shared / "unlabelled" / "images") else "s"
    return f"{source}{CALIBRATION_IMAGES}e{INT8_MAX_LAYER_ERROR:g}"


def exported_info(info: ModelInfo, source: str, fmt: str, quantize: str) -> ModelInfo:
    """The ModelInfo of an export: the same preprocessing, a single output."""
    note = f"exported from {source} to {fmt} ({quantize})"
    notes = f"{info.notes}; {note}" if info.notes else note
    return dataclasses.replace(info, output_index=0, notes=notes)


def serving_function(model, info: ModelInfo):
    """A ``tf.function`` from normalised input to the ``N x S x S`` mask map."""
    import tensorflow as tf

    size = int(info.input_size)
    spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="image")

    @tf.function(input_signature=[spec])
    def serve(image):
        return {"mask": select_output(model(image, training=False), info)}

    return serve


def calibration_photos(folder: str | os.PathLike | None, count: int | None = None) -> list[Path]:
    """Real photos for int8 calibration (:data:`CALIBRATION_IMAGES` of them): ``folder``, else the
    shared unlabelled photos (kept apart from the labelled sets the exports are judged on), else
    the shared labelled sets and the packaged samples."""
    from RMBG.constants import SAMPLES_DIR, shared_data_dir

    count = CALIBRATION_IMAGES if count is None else int(count)

    if folder is not None:
        found = list_images(folder, recursive=True)
        if not found:
            raise ValueError(f"{folder}: no images to calibrate int8 quantisation with")
        candidates = [found]
    else:
        shared = shared_data_dir()
        unlabelled = list_images(shared / "unlabelled" / "images") if shared else []
        if unlabelled:
            candidates = [unlabelled]
        else:
            candidates = [list_images(shared / name / "images") for name in ("people", "ecssd", "cats")] if shared else []
            candidates.append(list_images(SAMPLES_DIR))
    # Photos spread over each set, taken from every set in turn, so that calibration sees all kinds.
    spread = [group[:: max(1, len(group) // count)] for group in candidates]
    chosen = [p for row in itertools.zip_longest(*spread) for p in row if p is not None][:count]
    if not chosen:
        raise ValueError(
            "int8 needs real photos to calibrate: pass --calibration DIR (none found in ../shared/data or Data/samples)"
        )
    return chosen


def _representative_dataset(info: ModelInfo, photos: list[Path]):
    from PIL import Image

    size = int(info.input_size)

    def generate():
        for path in photos:
            try:
                image = read_image(path)
            except ImageReadError as exc:
                print(f"calibration: skipping {exc}", file=sys.stderr)
                continue
            small = np.asarray(Image.fromarray(image).resize((size, size), Image.LANCZOS))
            yield [info.normalize(small)[None].astype(np.float32)]

    return generate


def tflite_bytes(model, info: ModelInfo, quantize: str = "none", calibration=None,
                 keep_float: tuple[str, ...] = ()) -> tuple[bytes, str]:
    """The TFLite flatbuffer of ``model`` and a note on its quantisation (see the module docstring);
    int8 keeps float, besides the noisy layers, the tensors whose names contain a ``keep_float`` word."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    if quantize not in QUANTIZE:
        raise ValueError(f"unknown quantize {quantize!r}; choose one of {', '.join(QUANTIZE)}")
    # Freeze the weights into the graph: Keras 3 variables handed to the
    # converter as a trackable object stay resource reads in the flatbuffer
    # (a 0.4 MB file that fails with READ_VARIABLE at run time), and the
    # conversion takes ten times longer.
    frozen = convert_variables_to_constants_v2(serving_function(model, info).get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if quantize == "int8":
        return _int8_bytes(converter, info, calibration_photos(calibration), keep_float)
    if quantize == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert(), quantize


def layer_error(row: dict) -> float:
    """RMSE of a layer's quantised output in quantisation steps (a QuantizationDebugger row)."""
    try:
        scale = float(row["scale"])
        return float(np.sqrt(float(row["mean_squared_error"])) / scale) if scale > 0 else 0.0
    except (KeyError, TypeError, ValueError):
        return 0.0


def _int8_bytes(converter, info: ModelInfo, photos: list[Path], keep_float: tuple[str, ...] = ()) -> tuple[bytes, str]:
    """Full-integer int8, keeping the layers whose quantisation error is too large (and those
    named by ``keep_float``) in float."""
    import csv
    import io
    import warnings

    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative_dataset(info, photos)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter deprecation, inside the debugger
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=_representative_dataset(info, photos[:DEBUG_IMAGES])
        )
        debugger.run()
        table = io.StringIO()
        debugger.layer_statistics_dump(table)
        table.seek(0)
        rows = list(csv.DictReader(table))
        noisy = sorted({row["tensor_name"] for row in rows if layer_error(row) > INT8_MAX_LAYER_ERROR})
        named = sorted({row["tensor_name"] for row in rows if any(word in row["tensor_name"] for word in keep_float)})
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=sorted({*noisy, *named}))
        data = debugger.get_nondebug_quantized_model()
    note = (
        f"int8, calibrated on {len(photos)} photos; {len(noisy)} of {len(rows)} quantised tensors "
        f"kept float (error > {INT8_MAX_LAYER_ERROR} quantisation steps)"
        + (f", {len(named)} more by name ({', '.join(keep_float)})" if keep_float else "")
    )
    return data, note


def onnx_bytes(model, info: ModelInfo, embed: ModelInfo | None = None) -> bytes:
    """The ONNX model of ``model`` through ``tf2onnx.convert.from_function``, with ``embed``
    (the export's ModelInfo, by default ``info``) in its metadata."""
    import tensorflow as tf
    import tf2onnx

    serve = serving_function(model, info)
    size = int(info.input_size)
    spec = (tf.TensorSpec([None, size, size, 3], tf.float32, name="image"),)
    proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=ONNX_OPSET)
    embed_onnx_info(proto, embed or info)
    return proto.SerializeToString()


def _check_request(out: Path, fmt: str | None, quantize: str, overwrite: bool) -> str:
    fmt = fmt or out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"{out}: unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if quantize not in QUANTIZE:
        raise ValueError(f"unknown quantize {quantize!r}; choose one of {', '.join(QUANTIZE)}")
    if fmt == "onnx" and quantize != "none":
        raise ValueError("ONNX export supports --quantize none only (quantise with the TFLite format)")
    for target in (out, sidecar_path(out)):
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target}: already exists (pass --overwrite to replace it)")
    return fmt


def export_loaded(
    model,
    out: str | os.PathLike,
    fmt: str | None = None,
    quantize: str = "none",
    calibration: str | os.PathLike | None = None,
    overwrite: bool = False,
    source: str = "a Keras model",
    keep_float: tuple[str, ...] = (),
) -> Path:
    """Export a loaded model (with ``model.rmbg_info``) to ``out`` and its sidecar ``out.json``.

    Both files are written atomically; existing ones are refused unless ``overwrite``.
    ``keep_float``: see :func:`tflite_bytes`.
    """
    out = Path(out)
    fmt = _check_request(out, fmt, quantize, overwrite)
    info = model.rmbg_info
    if fmt == "tflite":
        data, how = tflite_bytes(model, info, quantize, calibration, keep_float)
        new_info = exported_info(info, source, fmt, how)
    else:
        new_info = exported_info(info, source, fmt, "float32")
        data = onnx_bytes(model, info, embed=new_info)
    write_atomic(out, lambda tmp: tmp.write_bytes(data), overwrite=overwrite)
    write_sidecar(out, new_info, overwrite=overwrite)
    return out


def export_model(
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    fmt: str | None = None,
    quantize: str = "none",
    calibration: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Export the ``.keras`` model at ``model_path`` to ``out`` (format from its suffix if not given)."""
    from RMBG.models.build import load_model

    model_path = Path(model_path)
    _check_request(Path(out), fmt, quantize, overwrite)  # fail before the slow load
    model = load_model(model_path)
    return export_loaded(model, out, fmt, quantize, calibration, overwrite, source=model_path.name)
