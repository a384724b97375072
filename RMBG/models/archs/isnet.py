"""IS-Net (Qin et al. 2022, "Highly Accurate Dichotomous Image Segmentation"; ``ISNetDIS`` of xuebinqin/DIS).

IS-Net is U-2-Net's encoder and decoder (the same RSU-7..RSU-4F stages, the
same channel table as ``u2net``) behind a stride-2 3x3 stem ``conv_in``
(3 -> 64, no BatchNorm, no ReLU), without U-2-Net's fusing ``outconv``: the
mask is side output 1 (``stage1d`` -> 3x3 conv -> bilinear to the input ->
sigmoid). The reference builds a ``pool_in`` after the stem but its forward
does not use it, nor does the public ONNX export (imgly's ``isnet.onnx``:
``conv_in`` feeds ``stage1`` directly), so it is left out.

Outputs are ``[side1, ..., side6]``, each ``N x S x S x 1`` sigmoid
probabilities at input resolution; the mask is ``side1``. Layer names follow
U-2-Net's, so the reference's weights map across (:mod:`RMBG.models.onnx_import`).
Only ``keras`` and ``keras.ops``: builds under the TensorFlow and the JAX backends.
"""

from __future__ import annotations

from RMBG.models.archs.spec import ArchSpec, check_input_size
from RMBG.models.archs.u2net import (
    ENCODER_PREFIXES,
    side_logits,
    u2net_conv_names,
    u2net_conv_shapes,
    u2net_stages,
)

#: The stage table IS-Net shares with U-2-Net (:data:`RMBG.models.archs.u2net.U2NET_STAGES`).
STAGES = "u2net"
#: Channels of the stride-2 stem that feeds stage 1.
STEM_CHANNELS = 64
#: DIS trains and runs it at 1024 x 1024.
NATIVE_SIZE = 1024
#: The reference's training normalisation (DIS ``GOSNormalize([0.5]*3, [1.0]*3)`` on 0-1 pixels).
ISNET_MEAN = (0.5, 0.5, 0.5)
ISNET_STD = (1.0, 1.0, 1.0)


def isnet_conv_names() -> list[str]:
    """Every Conv2D layer name, in the reference (ONNX graph) order: the stem, the
    RSU stages, the six side convolutions (U-2-Net's list without ``outconv``)."""
    return ["conv_in"] + u2net_conv_names(STAGES)[:-1]


def isnet_conv_shapes(in_channels: int = 3) -> list[tuple[int, int, int, int]]:
    """PyTorch kernel shapes ``(out, in, kh, kw)`` in :func:`isnet_conv_names` order."""
    return [(STEM_CHANNELS, in_channels, 3, 3)] + u2net_conv_shapes(STAGES, in_channels=STEM_CHANNELS)[:-1]


def isnet_onnx_layout() -> list[tuple[str, tuple[int, int, int, int]]]:
    """``(layer name, kernel shape)`` of every convolution in the ONNX graph's order."""
    return list(zip(isnet_conv_names(), isnet_conv_shapes()))


def isnet(input_size: int = NATIVE_SIZE, in_channels: int = 3):
    """IS-Net (about 44 M parameters): outputs ``[side1..side6]``, the mask is ``side1``."""
    import keras
    from keras import layers

    size = check_input_size(input_size)
    inputs = keras.Input((size, size, in_channels), name="image")
    # PyTorch's Conv2d(padding=1, stride=2) pads one pixel on every side; Keras' "same"
    # would pad only the bottom/right of an even map, shifting the sampling grid.
    x = layers.ZeroPadding2D(1, name="conv_in_pad")(inputs)
    x = layers.Conv2D(STEM_CHANNELS, 3, strides=2, name="conv_in")(x)
    logits = side_logits(u2net_stages(x, STAGES), inputs)
    outputs = [
        layers.Activation("sigmoid", name=f"side{k}", dtype="float32")(logit)
        for k, logit in enumerate(logits, start=1)
    ]
    return keras.Model(inputs, outputs, name="isnet")


#: Place of this architecture in the registry (after U-2-Net's).
ORDER = 1

SPECS = (
    ArchSpec(
        name="isnet",
        factory=isnet,
        summary="IS-Net (DIS), 44 M parameters (imgly's isnet.onnx): outputs [side1..side6], the mask is side1",
        mean=ISNET_MEAN,
        std=ISNET_STD,
        encoder_prefixes=("conv_in", *ENCODER_PREFIXES),
        onnx_layout=isnet_onnx_layout,
    ),
)
