"""Pretrained weights: import the public U-2-Net / U-2-Net-P ONNX files (rembg's) and IS-Net (imgly's).

The public ``u2net.onnx`` / ``u2netp.onnx`` / ``isnet.onnx`` were exported
from PyTorch with BatchNorm folded into the convolutions: the file holds one
(kernel, bias) pair per convolution and no BatchNormalization nodes. Their
initializer names are mostly numeric, so the weights are mapped by walking the
graph's ``Conv`` nodes in order, which is the reference forward order that
each architecture's spec lists (``ArchSpec.onnx_layout``). imgly's IS-Net
stores float16 weights (and computes in float16 between casts); they are
imported as float32, and :func:`upcast_fp16_onnx` makes the float32 copy of
the file that the import equals.

Our models keep their BatchNorm layers (training from scratch needs them).
Imported into them, each BatchNorm is set either to the identity
(``bn="identity"``: gamma 1, beta 0, mean 0, variance 1 - epsilon, so it
passes its input through) or, with ``bn="split"``, each folded convolution is
split again into a unit-scale kernel and a per-channel BatchNorm scale
(gamma = the kernel's per-channel RMS, beta = the folded bias), which keeps
the function while giving every layer weights of similar size, friendlier to
fine-tuning. Either way, in inference mode the model computes what the ONNX
file computes; the choice is recorded in ``ModelInfo.config["bn_import"]``.

CLI::

    python -m RMBG import-weights ../shared/peers/u2netp.onnx --arch u2netp \
        --out Data/models/u2netp-imported.keras
    python -m RMBG import-weights ~/.u2net/isnet.onnx --out isnet.keras [--input-size 640]
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from RMBG.models.archs import REGISTRY
from RMBG.models.archs.spec import check_input_size
from RMBG.models.archs.u2net import BN_EPSILON
from RMBG.models.build import build_model
from RMBG.models.info import ModelInfo
from RMBG.models.names import U2NET_RECIPE, Recipe, recipe_for

#: Architectures with an ONNX importer (their specs say ``onnx_importable``).
IMPORTABLE_ARCHES = tuple(name for name, spec in REGISTRY.items() if spec.onnx_importable)

#: How imported BatchNorm layers are set (see the module docstring).
BN_MODES = ("identity", "split")

#: Largest max absolute difference against onnxruntime the CLI accepts after import.
VERIFY_TOLERANCE = 1e-4


class WeightImportError(ValueError):
    """An ONNX file cannot be imported; ``str()`` names the file and why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def load_onnx(onnx_path: str | os.PathLike):
    """The ``onnx.ModelProto`` of ``onnx_path``, or :class:`WeightImportError` naming the file."""
    import onnx

    path = Path(onnx_path)
    if not path.is_file():
        raise WeightImportError(path, "ONNX file not found")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends
        raise WeightImportError(path, f"not a readable ONNX model ({type(exc).__name__}: {exc})") from None


def read_onnx_convs(onnx_path: str | os.PathLike, proto=None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(kernel initializer name, kernel OIHW, bias)`` for every Conv node, in graph order.

    Half-precision initializers (imgly's IS-Net) come back as float32 (exact: every
    float16 is a float32). ``proto`` is the loaded file when the caller has it.
    """
    from onnx import numpy_helper

    path = Path(onnx_path)
    graph = (proto if proto is not None else load_onnx(path)).graph
    tensors = {init.name: init for init in graph.initializer}
    convs = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        if len(node.input) < 3 or node.input[1] not in tensors or node.input[2] not in tensors:
            raise WeightImportError(
                path, f"Conv node {node.name or node.output[0]!r} has no constant kernel and bias"
            )
        kernel = numpy_helper.to_array(tensors[node.input[1]]).astype(np.float32)
        bias = numpy_helper.to_array(tensors[node.input[2]]).astype(np.float32)
        convs.append((node.input[1], kernel, bias))
    return convs


def onnx_input_size(proto) -> int | None:
    """The square input size a loaded ONNX file declares (``None`` when it is not fixed)."""
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return int(dims[-1].dim_value) if dims and dims[-1].dim_value > 0 else None


def conv_layout(arch: str) -> list[tuple[str, tuple[int, int, int, int]]]:
    """``(layer name, kernel shape)`` per convolution of an importable ``arch``, in graph order."""
    return REGISTRY[arch].onnx_layout()


def detect_arch(convs) -> str | None:
    """The importable architecture whose convolution shapes match ``convs``, or ``None``."""
    found = [tuple(kernel.shape) for _, kernel, _ in convs]
    for arch in IMPORTABLE_ARCHES:
        if found == [shape for _, shape in conv_layout(arch)]:
            return arch
    return None


def _describe_mismatch(convs, arch: str) -> str:
    expected = conv_layout(arch)
    found = [tuple(kernel.shape) for _, kernel, _ in convs]
    if len(found) != len(expected):
        return f"it has {len(found)} convolutions, {arch} has {len(expected)}"
    for index, (got, (name, want)) in enumerate(zip(found, expected)):
        if got != want:
            return f"convolution {index} ({name}) is {got}, {arch} needs {want}"
    return "shapes differ"


def _bn_weights(kernel_hwio: np.ndarray, bias: np.ndarray, mode: str):
    """(conv kernel, conv bias, [gamma, beta, mean, variance]) reproducing a folded conv."""
    channels = kernel_hwio.shape[-1]
    variance = np.full(channels, 1.0 - BN_EPSILON, np.float32)
    mean = np.zeros(channels, np.float32)
    if mode == "identity":
        gamma, beta = np.ones(channels, np.float32), np.zeros(channels, np.float32)
        return kernel_hwio, bias, [gamma, beta, mean, variance]
    scale = np.sqrt(np.mean(np.square(kernel_hwio), axis=(0, 1, 2))).astype(np.float32)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    zero_bias = np.zeros_like(bias)
    return kernel_hwio / scale, zero_bias, [scale, bias.astype(np.float32), mean, variance]


def set_u2net_weights(model, convs, arch: str, bn: str = "identity") -> None:
    """Copy folded ONNX ``convs`` (in graph order) into a ``model`` of ``arch`` (U-2-Net,
    U-2-Net-P or IS-Net: the layer names come from its spec's ``onnx_layout``)."""
    if bn not in BN_MODES:
        raise ValueError(f"bn must be one of {', '.join(BN_MODES)}, not {bn!r}")
    names = [name for name, _ in conv_layout(arch)]
    layer_names = {layer.name for layer in model.layers}
    for name, (_, kernel, bias) in zip(names, convs, strict=True):
        conv = model.get_layer(name)
        kernel_hwio = np.transpose(kernel, (2, 3, 1, 0))  # OIHW -> HWIO
        bn_name = name[: -len("_conv")] + "_bn" if name.endswith("_conv") else None
        if bn_name in layer_names:
            kernel_hwio, conv_bias, bn_weights = _bn_weights(kernel_hwio, bias, bn)
            conv.set_weights([kernel_hwio, conv_bias])
            model.get_layer(bn_name).set_weights(bn_weights)
        else:
            conv.set_weights([kernel_hwio, bias])


def _file_sha256(path: Path, length: int = 16) -> str:
    digest = hashlib.sha256(path.read_bytes())
    return digest.hexdigest()[:length]


def imported_info(arch: str, input_size: int, onnx_path: Path, bn: str, recipe: Recipe = U2NET_RECIPE,
                  source_input_size: int | None = None) -> ModelInfo:
    """The ModelInfo of an imported model: the publisher's exact pre/postprocessing (``recipe``:
    rembg's for U-2-Net files, imgly's for IS-Net), at ``input_size``."""
    return replace(
        recipe.info(arch, input_size),
        config={
            "arch": arch,
            "input_size": input_size,
            "bn_import": bn,
            "source": onnx_path.name,
            "source_sha256": _file_sha256(onnx_path),
            "source_input_size": source_input_size,
        },
        notes=f"weights imported from {onnx_path.name} (BatchNorm folded in the source; bn={bn})",
    )


def import_onnx(
    onnx_path: str | os.PathLike, arch: str | None = None, input_size: int | None = None, bn: str = "identity"
):
    """Build ``arch`` and load a public ONNX file's weights into it (U-2-Net, U-2-Net-P, IS-Net).

    ``arch=None`` takes the architecture the file holds; a file of another one
    raises :class:`WeightImportError` saying which it is. ``input_size=None``
    keeps the file's own (320 for rembg's files, 1024 for IS-Net). Returns the
    Keras model with its :class:`ModelInfo` as ``model.rmbg_info``: the
    publisher's processing (:func:`RMBG.models.names.recipe_for` of the file),
    e.g. for IS-Net bilinear resize, ``(x - 128) / 256``, the sigmoid map as is.
    """
    path = Path(onnx_path)
    if arch is not None and arch not in IMPORTABLE_ARCHES:
        raise ValueError(f"no ONNX importer for arch {arch!r}: choose one of {', '.join(IMPORTABLE_ARCHES)}")
    if input_size is not None:
        check_input_size(input_size)
    proto = load_onnx(path)
    convs = read_onnx_convs(path, proto)
    found = detect_arch(convs)
    if found is None:
        wanted = arch or " or ".join(IMPORTABLE_ARCHES)
        reason = _describe_mismatch(convs, arch) if arch else f"{len(convs)} convolutions"
        raise WeightImportError(path, f"not a {wanted} ONNX file ({reason})")
    if arch is not None and found != arch:
        raise WeightImportError(
            path, f"holds {found} weights, not {arch} ({_describe_mismatch(convs, arch)}); use --arch {found}"
        )
    native = onnx_input_size(proto)
    del proto
    size = check_input_size(input_size or native or 320)
    model = build_model(found, input_size=size)
    set_u2net_weights(model, convs, found, bn=bn)
    model.rmbg_info = imported_info(found, size, path, bn, recipe_for(path, native), native)
    return model


def import_u2net_onnx(
    onnx_path: str | os.PathLike, arch: str | None = "u2netp", input_size: int = 320, bn: str = "identity"
):
    """:func:`import_onnx` of rembg's U-2-Net / U-2-Net-P files (ImageNet mean/std after dividing
    by the image maximum, min-max output: rembg's processing), at 320 by default."""
    return import_onnx(onnx_path, arch, input_size=input_size, bn=bn)


def import_isnet_onnx(onnx_path: str | os.PathLike, input_size: int = 1024, bn: str = "identity"):
    """:func:`import_onnx` of imgly's IS-Net file (``isnet.onnx``, fp16 weights made float32):
    a Keras IS-Net at ``input_size`` (any multiple of 32) with ``model.rmbg_info`` saying
    arch ``isnet``, bilinear resize, ``(x - 128) / 256``, the sigmoid map as is."""
    return import_onnx(onnx_path, "isnet", input_size=input_size, bn=bn)


def upcast_fp16_onnx(proto):
    """A float32 copy of a float16 ONNX model (``onnx.ModelProto``): float16 initializers,
    constants and value types become float32 and every ``Cast`` to float16 a cast to float32,
    so onnxruntime computes the same graph with the same (upcast) weights in float32."""
    import onnx
    from onnx import TensorProto, numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    graph = copy.graph

    def upcast(tensor):
        if tensor.data_type == TensorProto.FLOAT16:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name))

    for tensor in graph.initializer:
        upcast(tensor)
    for node in graph.node:
        for attribute in node.attribute:
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == TensorProto.FLOAT16:
                attribute.i = TensorProto.FLOAT
            if attribute.type == onnx.AttributeProto.TENSOR:
                upcast(attribute.t)
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    return copy


def onnx_session(onnx_path: str | os.PathLike, upcast: bool = False, threads: int | None = None):
    """An onnxruntime CPU session of ``onnx_path`` (``upcast``: of its float32 copy, :func:`upcast_fp16_onnx`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    source = upcast_fp16_onnx(load_onnx(onnx_path)).SerializeToString() if upcast else str(onnx_path)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def onnx_max_difference(model, onnx_path: str | os.PathLike, batch: np.ndarray, upcast: bool = False) -> float:
    """Max absolute difference of the mask output (the first) against onnxruntime on ``batch``
    (NHWC); ``upcast`` compares with the file's float32 copy (:func:`upcast_fp16_onnx`)."""
    import keras

    session = onnx_session(onnx_path, upcast=upcast)
    name = session.get_inputs()[0].name
    worst = 0.0
    for index in range(batch.shape[0]):
        one = batch[index : index + 1]
        ours = keras.ops.convert_to_numpy(model(one, training=False)[0])[..., 0]
        nchw = np.ascontiguousarray(np.transpose(one, (0, 3, 1, 2)))
        theirs = session.run(None, {name: nchw})[0][:, 0]
        worst = max(worst, float(np.max(np.abs(ours - theirs))))
    return worst
