"""Pretrained weights: import the public U-2-Net / U-2-Net-P ONNX files (rembg's).

The public ``u2net.onnx`` / ``u2netp.onnx`` were exported from PyTorch with
BatchNorm folded into the convolutions: the file holds one (kernel, bias) pair
per convolution and no BatchNormalization nodes. Their initializer names are
mostly numeric, so the weights are mapped by walking the graph's ``Conv``
nodes in order, which is the reference forward order that
:func:`RMBG.models.archs.u2net.u2net_conv_names` lists.

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
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from RMBG.constants import IMAGENET_MEAN, IMAGENET_STD
from RMBG.models.archs import REGISTRY
from RMBG.models.archs.spec import check_input_size
from RMBG.models.archs.u2net import BN_EPSILON, u2net_conv_names, u2net_conv_shapes
from RMBG.models.build import build_model
from RMBG.models.info import ModelInfo

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


def read_onnx_convs(onnx_path: str | os.PathLike) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(kernel initializer name, kernel OIHW, bias)`` for every Conv node, in graph order."""
    import onnx
    from onnx import numpy_helper

    path = Path(onnx_path)
    if not path.is_file():
        raise WeightImportError(path, "ONNX file not found")
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # protobuf DecodeError and friends
        raise WeightImportError(path, f"not a readable ONNX model ({type(exc).__name__}: {exc})") from None
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


def detect_arch(convs) -> str | None:
    """The U-2-Net variant whose convolution shapes match ``convs``, or ``None``."""
    found = [tuple(kernel.shape) for _, kernel, _ in convs]
    for arch in IMPORTABLE_ARCHES:
        if found == u2net_conv_shapes(arch):
            return arch
    return None


def _describe_mismatch(convs, arch: str) -> str:
    expected = u2net_conv_shapes(arch)
    found = [tuple(kernel.shape) for _, kernel, _ in convs]
    if len(found) != len(expected):
        return f"it has {len(found)} convolutions, {arch} has {len(expected)}"
    for index, (got, want) in enumerate(zip(found, expected)):
        if got != want:
            return f"convolution {index} ({u2net_conv_names(arch)[index]}) is {got}, {arch} needs {want}"
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
    """Copy folded ONNX ``convs`` (in graph order) into a U-2-Net ``model`` of ``arch``."""
    if bn not in BN_MODES:
        raise ValueError(f"bn must be one of {', '.join(BN_MODES)}, not {bn!r}")
    names = u2net_conv_names(arch)
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


def imported_info(arch: str, input_size: int, onnx_path: Path, bn: str) -> ModelInfo:
    """The ModelInfo of an imported model: rembg's exact pre/postprocessing."""
    return ModelInfo(
        arch=arch,
        input_size=input_size,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        output_index=0,
        output_norm="minmax",
        input_scale="max",
        config={
            "arch": arch,
            "input_size": input_size,
            "bn_import": bn,
            "source": onnx_path.name,
            "source_sha256": _file_sha256(onnx_path),
        },
        notes=f"weights imported from {onnx_path.name} (BatchNorm folded in the source; bn={bn})",
    )


def import_u2net_onnx(
    onnx_path: str | os.PathLike, arch: str | None = "u2netp", input_size: int = 320, bn: str = "identity"
):
    """Build ``arch`` and load a public U-2-Net ONNX file's weights into it.

    ``arch=None`` takes the variant the file holds. A file of the other
    variant raises :class:`WeightImportError` saying which one it is. Returns
    the Keras model, its :class:`ModelInfo` set as ``model.rmbg_info``
    (ImageNet mean/std after dividing by the image maximum, min-max output:
    rembg's processing).
    """
    path = Path(onnx_path)
    if arch is not None and arch not in IMPORTABLE_ARCHES:
        raise ValueError(f"no ONNX importer for arch {arch!r}: choose one of {', '.join(IMPORTABLE_ARCHES)}")
    size = check_input_size(input_size)
    convs = read_onnx_convs(path)
    found = detect_arch(convs)
    if found is None:
        wanted = arch or "u2net or u2netp"
        reason = _describe_mismatch(convs, arch) if arch else f"{len(convs)} convolutions"
        raise WeightImportError(path, f"not a {wanted} ONNX file ({reason})")
    if arch is not None and found != arch:
        raise WeightImportError(
            path, f"holds {found} weights, not {arch} ({_describe_mismatch(convs, arch)}); use --arch {found}"
        )
    model = build_model(found, input_size=size)
    set_u2net_weights(model, convs, found, bn=bn)
    model.rmbg_info = imported_info(found, size, path, bn)
    return model


def onnx_max_difference(model, onnx_path: str | os.PathLike, batch: np.ndarray) -> float:
    """Max absolute difference of the fused output against onnxruntime on ``batch`` (NHWC)."""
    import keras
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    ours = keras.ops.convert_to_numpy(model(batch, training=False)[0])[..., 0]
    worst = 0.0
    for index in range(batch.shape[0]):
        nchw = np.ascontiguousarray(np.transpose(batch[index : index + 1], (0, 3, 1, 2)))
        theirs = session.run(None, {name: nchw})[0][:, 0]
        worst = max(worst, float(np.max(np.abs(ours[index : index + 1] - theirs))))
    return worst
