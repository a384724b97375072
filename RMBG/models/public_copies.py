"""LiteRT copies of the public networks behind the names ``u2net`` and ``isnet``.

The publishers' ONNX files run through onnxruntime as they ship (that stays
the way ``--peer u2net`` runs them: the baseline). ``--model u2net`` runs a
copy made here instead: the file's weights imported into the Keras port
(:mod:`RMBG.models.onnx_import`), converted to LiteRT by
:func:`RMBG.models.export.export_loaded` at the precision its row names,
calibrated (int8) on the shared unlabelled photos as the default's copy is,
or a bfloat16 Keras copy (:func:`RMBG.models.inference_copy.bf16_copy`,
BatchNorm folded) where the CPU multiplies bfloat16 in hardware.

Rows per name (:data:`CONVERSIONS`, in order of preference): the importer,
the precision, and why that precision (measured by
``scripts/runtime_quality.py --name``: the copy's scores within 0.001 MAE
and 0.002 max-F of the float model's, per category, on the validation rows
of the shared photos; a row not yet measured so has ``qualified=False`` and
is never made by name). IS-Net's int8 copy breaks the bound (its row says
by how much), so its copy is the bfloat16 Keras copy on a CPU with AMX
(a row with ``runs_here``) and elsewhere an fp32 ONNX file made from the fp16
one (:func:`fp32_onnx_copy`), run by onnxruntime the publisher's way. A name
with no row runs its file through onnxruntime. :mod:`RMBG.runtime.engines`
caches the copies (:func:`RMBG.runtime.engines.public_fast_segmenter`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from RMBG.images.io import write_atomic
from RMBG.models.export import export_loaded, int8_recipe
from RMBG.machine import cpu_runs_bf16


def _import_u2net(onnx_path: Path):
    from RMBG.models.onnx_import import import_u2net_onnx

    return import_u2net_onnx(onnx_path, arch="u2net")


def _import_isnet(onnx_path: Path):
    from RMBG.models import onnx_import

    return onnx_import.import_isnet_onnx(onnx_path, input_size=1024)


def bf16_keras_copy(importer: Callable[[Path], object]) -> Callable[[Path, Path], Path]:
    """A maker of the bfloat16 ``.keras`` copy (:func:`RMBG.models.inference_copy.bf16_copy`) of the model
    ``importer`` reads from a publisher's file, written atomically with its ModelInfo."""

    def make(onnx_path: Path, out: Path) -> Path:
        from RMBG.models.build import save_model
        from RMBG.models.inference_copy import bf16_copy

        copy = bf16_copy(importer(onnx_path))
        return save_model(copy, out, copy.rmbg_info, overwrite=True)

    return make


def fp32_onnx_copy(onnx_path: Path, out: Path, output: str = "output") -> Path:
    """The float32 copy of an fp16 ONNX file (:func:`RMBG.models.onnx_import.upcast_fp16_onnx`) keeping
    only the graph output ``output`` (onnxruntime then drops the side branches), written atomically."""
    import onnx

    from RMBG.models.onnx_import import load_onnx, upcast_fp16_onnx

    model = upcast_fp16_onnx(load_onnx(onnx_path))
    graph = model.graph
    kept = [value for value in graph.output if value.name == output]
    if not kept:
        raise ValueError(f"{onnx_path}: no graph output named {output!r}")
    del graph.output[:]
    graph.output.extend(kept)
    del graph.value_info[:]  # shapes of the dropped branches too: onnxruntime infers what it needs
    write_atomic(out, lambda tmp: onnx.save(model, str(tmp)), overwrite=True)
    return out


@dataclass(frozen=True)
class Conversion:
    """How the file of one name becomes its faster copy: a LiteRT file through the Keras port
    (``importer``), or a file another way (``maker``: an onnxruntime file, a bfloat16 Keras file)."""

    name: str
    #: ``int8``, ``fp16`` (LiteRT, :data:`RMBG.models.export.QUANTIZE`), ``fp32`` (an ONNX copy) or
    #: ``bf16`` (a Keras copy)
    quantize: str
    #: why this precision (the measurement)
    why: str
    #: the publisher's ONNX file -> a Keras model carrying ``rmbg_info`` (LiteRT copies)
    importer: Callable[[Path], object] | None = None
    #: (the publisher's file, the copy's path) -> the copy written (copies that are not LiteRT files)
    maker: Callable[[Path, Path], Path] | None = None
    #: the copy's file suffix when ``maker`` writes it
    maker_suffix: str = ".onnx"
    #: int8: tensors kept float by name (words in their names; :func:`RMBG.models.export.tflite_bytes`)
    keep_float: tuple[str, ...] = ()
    #: whether the copy was measured within issue 34's bound (a row that was not is never made by name)
    qualified: bool = True
    #: whether the copy runs fast on this machine (e.g. bfloat16 needs matrix units); checked when a name loads
    runs_here: Callable[[], bool] = lambda: True

    @property
    def suffix(self) -> str:
        return self.maker_suffix if self.maker is not None else ".tflite"

    def tag(self) -> str:
        """The precision part of the copy's file name (int8 copies carry their calibration recipe too)."""
        if self.quantize != "int8":
            return self.quantize
        words = hashlib.sha256(",".join(self.keep_float).encode()).hexdigest()[:6] if self.keep_float else ""
        return f"int8-{int8_recipe()}" + (f"-f{words}" if words else "")  # a changed choice makes a new copy


ISNET_BF16_WHY = (
    "a bfloat16 Keras copy with BatchNorm folded (RMBG.models.inference_copy), run by TensorFlow's oneDNN "
    "kernels, where the CPU multiplies bfloat16 in hardware (AMX): on the 177 validation photos "
    "(scripts/runtime_quality.py --name isnet) person/object/cat dMAE +0.0000/-0.0001/-0.0000, dmax-F "
    "-0.0000/+0.0002/-0.0000, mask difference from onnxruntime 0.0001/0.0002/0.0003 (the bound: 0.001 / "
    "-0.002); remove --model isnet on 50 photos 0.437x the wall time of imgly's fp16 way (30.3 s vs 69.3 s, "
    "413-426 vs 1361-1384 ms a photo after an 8-9 s start; scripts/bench_big_models.py --models isnet --n 50). "
    "BatchNorm left unfolded costs 0.57 s a photo instead of 0.35 (its casts to float32 and back)")

#: Per name, its conversions in order of preference: the first qualified one is made.
CONVERSIONS: dict[str, tuple[Conversion, ...]] = {
    "u2net": (Conversion(
        "u2net", "int8",
        "int8 with its output head float (the side maps, their fusion and the sigmoid: an int8 sigmoid "
        "alone rounds the map to 1/256; mask MAE against onnxruntime 0.0011 -> 0.0007 on 8 photos at the "
        "same speed, 0.3-0.4 s vs 2-2.5 s a photo on two busy cores); fp16 keeps the masks (0.0002) but "
        "runs no faster than onnxruntime (XNNPACK widens fp16 weights to fp32). On the 177 validation "
        "photos (scripts/runtime_quality.py --name u2net) person/object/cat: dMAE +0.0002/-0.0004/+0.0002, "
        "dmax-F -0.0004/+0.0003/+0.0003 (the bound: 0.001 / -0.002), mask difference from onnxruntime "
        "0.0009/0.0013/0.0032 (int8 has a tail: a few hard photos reach 0.01-0.02), 0.75 vs 3.9 s a photo",
        importer=_import_u2net, keep_float=("side", "outconv", "fused", "Identity")),),
    "isnet": (
        Conversion("isnet", "int8",
                   "int8 as for u2net: OUTSIDE issue 34's bound, so never made by name. Measured on 30 "
                   "validation photos (10 each of person/object/cat, against onnxruntime fp16 at 3.1 s a photo, two "
                   "busy cores): this row 0.44 s a photo, dMAE -0.0005/-0.0017/+0.0007, dmax-F "
                   "-0.0030/-0.0053/-0.0094, mask difference 0.005/0.014/0.014. Keeping more float did not reach "
                   "the bound: + the stem 0.43 s (dmax-F down to -0.0077 on cats); + the last decoder stage "
                   "(stage1d) 0.85 s, mask difference 0.003/0.011/0.012, cat dmax-F -0.0030, object dMAE -0.0025; "
                   "+ the residual adds, or + every upsampling and concatenation: no better; weights-only int8 "
                   "(dynamic range) 1.7 s and worse (0.017 on people); every tensor over 0.25 quantisation "
                   "steps kept float too (92 of 337) with 16 calibration photos: 0.56 s against onnxruntime's "
                   "1.21 s on a quiet machine, but mask difference 0.03 and dMAE +0.019 to +0.025 (60 validation "
                   "photos): worse, not better. fp16 LiteRT keeps the maps but runs no "
                   "faster than onnxruntime (4.4 s vs 4.3 s, XNNPACK widens fp16 to fp32)", importer=_import_isnet,
                   keep_float=("side", "outconv", "fused", "Identity"),
                   qualified=False),
        Conversion("isnet", "bf16", ISNET_BF16_WHY, maker=bf16_keras_copy(_import_isnet), maker_suffix=".keras",
                   runs_here=cpu_runs_bf16),
        Conversion("isnet", "fp32",
                   "while no LiteRT copy keeps the bound: the fp16 file made fp32 for onnxruntime, side outputs "
                   "dropped: the same maps (MAE 2e-5), remove --model isnet 0.91x the wall time of imgly's fp16 way on 10 "
                   "photos (scripts/bench_big_models.py; rounds 0.79 and 1.04 on a busy machine)",
                   maker=fp32_onnx_copy),
    ),
}


def conversion_for(name: str) -> Conversion | None:
    """The first qualified row of ``name`` that runs here, else ``None``."""
    return next((row for row in CONVERSIONS.get(name, ()) if row.qualified and row.runs_here()), None)


def convert_public(
    name: str,
    onnx_path: str | os.PathLike,
    out: str | os.PathLike,
    quantize: str | None = None,
    calibration: str | os.PathLike | None = None,
) -> Path:
    """Write the copy of the public file ``onnx_path`` (the model ``name``) to ``out`` (and a LiteRT
    copy's sidecar), atomically; ``quantize`` overrides a LiteRT row's precision (quality runs compare them)."""
    row = conversion_for(name)
    if row is None:
        raise ValueError(f"model {name!r}: no faster copy "
                         f"(names with one: {', '.join(n for n in CONVERSIONS if conversion_for(n))})")
    onnx_path = Path(onnx_path)
    if row.maker is not None:
        return row.maker(onnx_path, Path(out))
    model = row.importer(onnx_path)
    return export_loaded(model, out, "tflite", quantize or row.quantize, calibration, overwrite=True,
                         source=onnx_path.name, keep_float=row.keep_float)
