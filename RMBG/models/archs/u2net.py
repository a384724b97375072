"""U-2-Net and U-2-Net-P (Qin et al. 2020): residual U-blocks RSU-7/6/5/4/4F, six side outputs and a fused one.

The outputs are a list ``[fused, side1, ..., side6]``, each ``N x S x S x 1``
sigmoid probabilities at input resolution. Layer order and shapes follow the
reference PyTorch code one to one, so its weights map across
(:mod:`RMBG.models.onnx_import`). Only ``keras`` and ``keras.ops``: builds under the
TensorFlow and the JAX backends.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from RMBG.constants import IMPORTED_U2NETP_PATH
from RMBG.models.archs.spec import ArchSpec, check_input_size

#: PyTorch's BatchNorm defaults, so that imported statistics mean the same thing.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9

# ---------------------------------------------------------------------------
# U-2-Net tables (as in the reference ``u2net.py``)
# ---------------------------------------------------------------------------
#: RSU block kind -> height L (number of encoder convolutions after ``in``).
RSU_HEIGHT = {"rsu7": 7, "rsu6": 6, "rsu5": 5, "rsu4": 4, "rsu4f": 4}

#: arch -> stages in forward order: (stage name, RSU kind, mid channels, out channels).
U2NET_STAGES = {
    "u2net": (
        ("stage1", "rsu7", 32, 64),
        ("stage2", "rsu6", 32, 128),
        ("stage3", "rsu5", 64, 256),
        ("stage4", "rsu4", 128, 512),
        ("stage5", "rsu4f", 256, 512),
        ("stage6", "rsu4f", 256, 512),
        ("stage5d", "rsu4f", 256, 512),
        ("stage4d", "rsu4", 128, 256),
        ("stage3d", "rsu5", 64, 128),
        ("stage2d", "rsu6", 32, 64),
        ("stage1d", "rsu7", 16, 64),
    ),
    "u2netp": (
        ("stage1", "rsu7", 16, 64),
        ("stage2", "rsu6", 16, 64),
        ("stage3", "rsu5", 16, 64),
        ("stage4", "rsu4", 16, 64),
        ("stage5", "rsu4f", 16, 64),
        ("stage6", "rsu4f", 16, 64),
        ("stage5d", "rsu4f", 16, 64),
        ("stage4d", "rsu4", 16, 64),
        ("stage3d", "rsu5", 16, 64),
        ("stage2d", "rsu6", 16, 64),
        ("stage1d", "rsu7", 16, 64),
    ),
}
#: Number of encoder stages (the rest are decoder stages, deepest first).
U2NET_ENCODER_DEPTH = 6
#: Stage feeding side output k (k = 1..6).
U2NET_SIDE_SOURCES = ("stage1d", "stage2d", "stage3d", "stage4d", "stage5d", "stage6")
#: Published parameter counts (PyTorch ``parameters()``, i.e. Keras trainable weights).
PUBLISHED_PARAMS = {"u2net": 44.0e6, "u2netp": 1.13e6}


# ---------------------------------------------------------------------------
# U-2-Net building blocks (functional sub-builders over standard layers)
# ---------------------------------------------------------------------------
def rebnconv(x, filters: int, dilation: int, name: str):
    """REBNCONV: 3x3 conv (dilated, 'same' = PyTorch ``padding=dilation``), BatchNorm, ReLU."""
    from keras import layers

    x = layers.Conv2D(filters, 3, padding="same", dilation_rate=dilation, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def resize_like(x, target, name: str):
    """PyTorch's ``_upsample_like``: bilinear resize of ``x`` to ``target``'s spatial size.

    Keras' bilinear resize uses half-pixel centres, as ``F.interpolate(...,
    align_corners=False)`` (ONNX ``half_pixel``) does. A whole ratio is an
    ``UpSampling2D``; any other (IS-Net at sizes that are not a multiple of 64
    halves a map of odd size) is :func:`resize_by_matrices`. (Not
    ``keras.layers.Resizing``: as a preprocessing layer its ``call`` defaults
    to ``training=True``, which puts every later BatchNorm in training mode when
    the model is called without ``training``.)
    """
    from keras import layers

    height, width = int(target.shape[1]), int(target.shape[2])
    source = (int(x.shape[1]), int(x.shape[2]))
    if source == (height, width):
        return x
    if height % source[0] or width % source[1]:
        return resize_by_matrices(x, (height, width), name)
    factor = (height // source[0], width // source[1])
    return layers.UpSampling2D(factor, interpolation="bilinear", name=name)(x)


def interpolation_matrix(source: int, target: int) -> np.ndarray:
    """``target x source`` weights of a half-pixel bilinear resize along one axis.

    Output ``i`` samples ``(i + 0.5) * source / target - 0.5``, clamped to the
    first and last pixel (PyTorch ``align_corners=False``, TensorFlow
    ``half_pixel_centers``).
    """
    position = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0, source - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, source - 1)
    frac = position - low
    matrix = np.zeros((target, source), np.float64)
    np.add.at(matrix, (np.arange(target), low), 1 - frac)
    np.add.at(matrix, (np.arange(target), high), frac)
    return matrix.astype(np.float32)


def resize_by_matrices(x, size: tuple[int, int], name: str):
    """Bilinear resize of ``x`` to ``size`` by any ratio, as two fixed (non-trainable) matrix
    products (:func:`interpolation_matrix`), in standard layers that save, load and convert."""
    from keras import layers

    height, width, channels = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
    rows = layers.EinsumDense("nhwc,hH->nHwc", (size[0], width, channels), name=f"{name}_rows", trainable=False)
    x = rows(x)
    rows.set_weights([interpolation_matrix(height, size[0]).T])
    cols = layers.EinsumDense("nhwc,wW->nhWc", (size[0], size[1], channels), name=f"{name}_cols", trainable=False)
    x = cols(x)
    cols.set_weights([interpolation_matrix(width, size[1]).T])
    return x


def max_pool(x, name: str):
    """``MaxPool2d(2, stride=2, ceil_mode=True)``: 'same' padding rounds odd sizes up the same way."""
    from keras import layers

    return layers.MaxPooling2D(2, strides=2, padding="same", name=name)(x)


def rsu_conv_names(kind: str) -> list[str]:
    """Convolution suffixes of one RSU block in the reference forward order."""
    height = RSU_HEIGHT[kind]
    encoder = ["in"] + [str(i) for i in range(1, height + 1)]
    decoder = [f"{i}d" for i in range(height - 1, 0, -1)]
    return encoder + decoder


def rsu_block(x, kind: str, mid: int, out: int, name: str):
    """One residual U-block (RSU-L, or RSU-4F with dilations instead of pooling)."""
    from keras import layers

    height = RSU_HEIGHT[kind]
    dilated = kind.endswith("f")
    hxin = rebnconv(x, out, 1, f"{name}_in")

    # Encoder: conv 1..L; plain blocks pool after 1..L-2 and dilate the last by 2,
    # RSU-4F never pools and dilates conv i by 2**(i-1).
    encoded = []
    hx = hxin
    for i in range(1, height + 1):
        rate = 2 ** (i - 1) if dilated else (2 if i == height else 1)
        hx = rebnconv(hx, mid, rate, f"{name}_{i}")
        encoded.append(hx)
        if not dilated and i <= height - 2:
            hx = max_pool(hx, f"{name}_pool{i}")

    # Decoder: (L-1)d .. 1d, each on [upsampled deeper map, skip].
    hx = encoded[-1]
    for i in range(height - 1, 0, -1):
        skip = encoded[i - 1]
        hx = resize_like(hx, skip, f"{name}_up{i}")
        joined = layers.Concatenate(name=f"{name}_cat{i}")([hx, skip])
        rate = 2 ** (i - 1) if dilated else 1
        hx = rebnconv(joined, out if i == 1 else mid, rate, f"{name}_{i}d")
    return layers.Add(name=f"{name}_add")([hx, hxin])


def u2net_conv_names(arch: str) -> list[str]:
    """Every Conv2D layer name of a U-2-Net model, in the reference (ONNX graph) order."""
    names = [
        f"{stage}_{suffix}_conv"
        for stage, kind, _, _ in U2NET_STAGES[arch]
        for suffix in rsu_conv_names(kind)
    ]
    names += [f"side{k}_conv" for k in range(1, len(U2NET_SIDE_SOURCES) + 1)]
    return names + ["outconv"]


def u2net_conv_shapes(arch: str, in_channels: int = 3) -> list[tuple[int, int, int, int]]:
    """PyTorch kernel shapes ``(out, in, kh, kw)`` in :func:`u2net_conv_names` order.

    Computed from the tables alone (no model is built), so an importer can tell
    a u2net file from a u2netp one cheaply.
    """
    stages = U2NET_STAGES[arch]
    out_of = {}
    shapes = []
    for index, (stage, kind, mid, out) in enumerate(stages):
        if index == 0:
            cin = in_channels
        elif index < U2NET_ENCODER_DEPTH:
            cin = stages[index - 1][3]
        else:  # decoder: deeper map + the encoder stage of the same level
            skip = stage[:-1]
            cin = stages[index - 1][3] + out_of[skip]
        out_of[stage] = out
        height = RSU_HEIGHT[kind]
        shapes.append((out, cin, 3, 3))
        shapes.append((mid, out, 3, 3))
        shapes += [(mid, mid, 3, 3)] * (height - 1)
        shapes += [(mid, 2 * mid, 3, 3)] * (height - 2)
        shapes.append((out, 2 * mid, 3, 3))
    shapes += [(1, out_of[source], 3, 3) for source in U2NET_SIDE_SOURCES]
    return shapes + [(1, len(U2NET_SIDE_SOURCES), 1, 1)]


def u2net_stages(x, arch: str) -> dict:
    """The encoder and decoder stages of ``arch`` on ``x``: stage name -> its output."""
    from keras import layers

    stages = U2NET_STAGES[arch]
    features = {}
    for index, (stage, kind, mid, out) in enumerate(stages[:U2NET_ENCODER_DEPTH]):
        if index:
            x = max_pool(x, f"pool{index}{index + 1}")
        x = rsu_block(x, kind, mid, out, stage)
        features[stage] = x
    for stage, kind, mid, out in stages[U2NET_ENCODER_DEPTH:]:
        skip = features[stage[:-1]]
        x = resize_like(x, skip, f"{stage}_in_up")
        x = layers.Concatenate(name=f"{stage}_in_cat")([x, skip])
        x = rsu_block(x, kind, mid, out, stage)
        features[stage] = x
    return features


def side_logits(features: dict, target) -> list:
    """The six side convolutions (3x3 to one channel), each resized to ``target``'s size."""
    from keras import layers

    logits = []
    for k, source in enumerate(U2NET_SIDE_SOURCES, start=1):
        side = layers.Conv2D(1, 3, padding="same", name=f"side{k}_conv")(features[source])
        logits.append(resize_like(side, target, f"side{k}_up"))
    return logits


def u2net_onnx_layout(arch: str) -> list[tuple[str, tuple[int, int, int, int]]]:
    """``(layer name, kernel shape)`` of every convolution of ``arch`` in the ONNX graph's order."""
    return list(zip(u2net_conv_names(arch), u2net_conv_shapes(arch)))


def _u2net(arch: str, input_size: int, in_channels: int = 3):
    import keras
    from keras import layers

    size = check_input_size(input_size)
    inputs = keras.Input((size, size, in_channels), name="image")
    logits = side_logits(u2net_stages(inputs, arch), inputs)
    fused = layers.Concatenate(name="sides_cat")(logits)
    fused = layers.Conv2D(1, 1, name="outconv")(fused)
    outputs = [layers.Activation("sigmoid", name="fused", dtype="float32")(fused)]
    outputs += [
        layers.Activation("sigmoid", name=f"side{k}", dtype="float32")(logit)
        for k, logit in enumerate(logits, start=1)
    ]
    return keras.Model(inputs, outputs, name=arch)


def u2net(input_size: int = 320, in_channels: int = 3):
    """U-2-Net (about 44.0 M parameters): outputs ``[fused, side1..side6]``."""
    return _u2net("u2net", input_size, in_channels)


def u2netp(input_size: int = 320, in_channels: int = 3):
    """U-2-Net-P (about 1.13 M parameters): outputs ``[fused, side1..side6]``."""
    return _u2net("u2netp", input_size, in_channels)


#: Layer-name prefixes of the six encoder stages (``freeze=("encoder",)`` expands to these).
ENCODER_PREFIXES = tuple(f"stage{i}_" for i in range(1, U2NET_ENCODER_DEPTH + 1))
#: U-2-Net's own recipe for the ``full`` preset: Adam 1e-3, 320 px with random 288 crops,
#: batch 12, BCE on all 7 outputs; lr 0.01 diverges for its Adam, so the quick sample keeps 1e-3.
U2NET_PRESET_OVERRIDES = {
    "full": dict(image_size=320, crop_size=288, crop_scale=(0.81, 0.81), crop_ratio=(1.0, 1.0), batch=12, lr=1e-3),
    "sample": dict(lr=1e-3),
    # distillation trains the last two encoder stages too (attempts 3, 4 and 7 of the model card)
    "distill": dict(freeze=ENCODER_PREFIXES[:-2]),
}


def imported_u2netp() -> Path:
    """The imported rembg u2netp weights shipped in ``Data/models``."""
    return IMPORTED_U2NETP_PATH


#: Place of these architectures in the registry (and in the CLI's choices).
ORDER = 0

SPECS = (
    ArchSpec(
        name="u2netp",
        factory=u2netp,
        summary="U-2-Net-P, 1.13 M parameters (rembg's u2netp): outputs [fused, side1..side6]",
        encoder_prefixes=ENCODER_PREFIXES,
        pretrained=imported_u2netp,
        onnx_layout=partial(u2net_onnx_layout, "u2netp"),
        preset_overrides=U2NET_PRESET_OVERRIDES,
        published_params=1.13e6,
    ),
    ArchSpec(
        name="u2net",
        factory=u2net,
        summary="U-2-Net, 44.0 M parameters (rembg's default u2net): outputs [fused, side1..side6]",
        encoder_prefixes=ENCODER_PREFIXES,
        onnx_layout=partial(u2net_onnx_layout, "u2net"),
        preset_overrides=U2NET_PRESET_OVERRIDES,
        published_params=44.0e6,
    ),
)
