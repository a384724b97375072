"""The architectures, one factory over them, and the ``.keras`` model files.

Three architectures, each built by its own factory and reachable through
:func:`build_model`:

``seed``
    The original project's model (it called it "U-2-Net"): a ResNet50 U-Net
    with a dilated bridge, four residual decoder blocks and four side outputs
    concatenated into one ``N x S x S x 4`` map (channel 3 is the finest).
``u2net`` / ``u2netp``
    The published U-2-Net and U-2-Net-P (Qin et al. 2020): residual U-blocks
    RSU-7/6/5/4/4F, six side outputs and a fused output. The outputs are a
    list ``[fused, side1, ..., side6]``, each ``N x S x S x 1`` sigmoid
    probabilities at input resolution. Layer order and shapes follow the
    reference PyTorch code one to one, so its weights map across
    (:mod:`RMBG.weights`).

All model code uses ``keras`` and ``keras.ops`` only, so it builds under the
TensorFlow and the JAX backends. Input sizes are fixed (a multiple of 32) so
that every resize has known shapes.

Model files are ``.keras`` archives with one extra entry, ``rmbg_info.json``
(:data:`RMBG.modelinfo.INFO_ENTRY`), holding the :class:`ModelInfo`;
:func:`read_model_info` reads it without importing Keras.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from RMBG.modelinfo import INFO_ENTRY, ModelInfo

#: Architectures :func:`build_model` knows (``*_refine``: a U-2-Net with the
#: refinement head of :mod:`RMBG.refiner`, outputs ``[refined, fused, side1..side6]``).
ARCHES = ("seed", "u2net", "u2netp", "u2net_refine", "u2netp_refine")
#: Every input size must be a multiple of this (five 2x poolings, then even maps).
SIZE_MULTIPLE = 32
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
# seed tables
# ---------------------------------------------------------------------------
#: ResNet50 layers whose outputs feed the decoder, finest first (the input itself is the finest skip).
SEED_SKIP_LAYERS = ("conv1_relu", "conv2_block3_out", "conv3_block4_out")
SEED_BRIDGE_LAYER = "conv4_block6_out"
SEED_BRIDGE_FILTERS = 1024
SEED_BRIDGE_RATES = (3, 6, 9)
SEED_DECODER_FILTERS = (512, 256, 128, 64)
#: File keras.applications caches ResNet50's notop ImageNet weights under.
RESNET50_NOTOP_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------
def check_arch(arch: str) -> str:
    """``arch`` when known, else a ValueError listing the valid names."""
    if arch not in ARCHES:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHES)}")
    return arch


def check_input_size(input_size: int) -> int:
    """``input_size`` as an int when it is a positive multiple of 32, else a ValueError."""
    if isinstance(input_size, bool) or int(input_size) != input_size:
        raise ValueError(f"input_size must be an integer, not {input_size!r}")
    size = int(input_size)
    if size < SIZE_MULTIPLE or size % SIZE_MULTIPLE:
        raise ValueError(
            f"input_size must be a positive multiple of {SIZE_MULTIPLE} (got {size}; "
            f"try {max(SIZE_MULTIPLE, round(size / SIZE_MULTIPLE) * SIZE_MULTIPLE)})"
        )
    return size


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
    align_corners=False)`` (ONNX ``pytorch_half_pixel``) does. With input sizes
    a multiple of 32 every ratio is a whole number, so this is an
    ``UpSampling2D``. (Not ``keras.layers.Resizing``: as a preprocessing layer
    its ``call`` defaults to ``training=True``, which puts every later
    BatchNorm in training mode when the model is called without ``training``.)
    """
    from keras import layers

    height, width = int(target.shape[1]), int(target.shape[2])
    source = (int(x.shape[1]), int(x.shape[2]))
    if source == (height, width):
        return x
    if height % source[0] or width % source[1]:
        raise ValueError(
            f"{name}: cannot upsample {source} to {(height, width)} by a whole factor "
            f"(input sizes must be a multiple of {SIZE_MULTIPLE})"
        )
    factor = (height // source[0], width // source[1])
    return layers.UpSampling2D(factor, interpolation="bilinear", name=name)(x)


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


def _u2net(arch: str, input_size: int, in_channels: int = 3):
    import keras
    from keras import layers

    size = check_input_size(input_size)
    stages = U2NET_STAGES[arch]
    inputs = keras.Input((size, size, in_channels), name="image")

    features = {}
    x = inputs
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

    logits = []
    for k, source in enumerate(U2NET_SIDE_SOURCES, start=1):
        side = layers.Conv2D(1, 3, padding="same", name=f"side{k}_conv")(features[source])
        logits.append(resize_like(side, inputs, f"side{k}_up"))
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


# ---------------------------------------------------------------------------
# seed: the original ResNet50 U-Net
# ---------------------------------------------------------------------------
def conv_bn_relu(x, filters: int, kernel: int, name: str, relu: bool = True):
    """Conv (no bias), BatchNorm and optionally ReLU."""
    from keras import layers

    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def dilated_bridge(x, filters: int = SEED_BRIDGE_FILTERS, rates=SEED_BRIDGE_RATES, name: str = "bridge"):
    """3x3 convs at several dilation rates, concatenated, then 1x1 conv, BN, ReLU."""
    from keras import layers

    branches = [
        layers.Conv2D(filters, 3, padding="same", dilation_rate=rate, name=f"{name}_rate{rate}")(x)
        for rate in rates
    ]
    x = layers.Concatenate(name=f"{name}_cat")(branches)
    return conv_bn_relu(x, filters, 1, f"{name}_merge")


def residual_decoder_block(x, skip, filters: int, name: str):
    """Bilinear x2, concatenate the skip, two 3x3 conv+BN+ReLU plus a 1x1 conv+BN shortcut."""
    from keras import layers

    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_up")(x)
    x = layers.Concatenate(name=f"{name}_cat")([x, skip])
    shortcut = conv_bn_relu(x, filters, 1, f"{name}_shortcut", relu=False)
    y = conv_bn_relu(x, filters, 3, f"{name}_a")
    y = conv_bn_relu(y, filters, 3, f"{name}_b")
    return layers.Add(name=f"{name}_out")([y, shortcut])


def _resnet50_encoder(inputs, encoder_weights: str | None):
    """keras.applications' ResNet50 on ``inputs``; ImageNet weights must be loadable offline."""
    import keras

    if encoder_weights not in (None, "imagenet") and not Path(str(encoder_weights)).is_file():
        raise ValueError(
            f"encoder_weights must be None, 'imagenet' or a weights file, not {encoder_weights!r}"
        )
    try:
        return keras.applications.ResNet50(
            include_top=False, weights=encoder_weights, input_tensor=inputs
        )
    except Exception as exc:  # download or file errors: say what to do instead
        if encoder_weights is None:
            raise
        raise RuntimeError(
            f"could not load ResNet50 encoder weights {encoder_weights!r} ({type(exc).__name__}: "
            f"{exc}). Offline, place {RESNET50_NOTOP_FILE} in {_keras_cache_dir() / 'models'} or "
            f"build with encoder_weights=None (random encoder)."
        ) from exc


def _keras_cache_dir() -> Path:
    """Where keras.applications caches downloads (``KERAS_HOME`` as read when Keras started)."""
    try:
        from keras.src.backend.config import keras_home

        return Path(keras_home()).expanduser()
    except ImportError:  # private helper moved: fall back to Keras' documented default
        return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()


def _imagenet_weights_available() -> bool:
    """True when ResNet50's notop ImageNet weights are already in the Keras cache."""
    return (_keras_cache_dir() / "models" / RESNET50_NOTOP_FILE).is_file()


def seed_unet(
    input_size: int = 320,
    encoder_weights: str | None = None,
    decoder_filters=SEED_DECODER_FILTERS,
    download_timeout: float = 10.0,
):
    """The original project's ResNet50 U-Net: one ``N x S x S x 4`` map of side outputs.

    Channels are the side outputs upsampled x8, x4, x2 and x1, each a 1x1 conv
    with a sigmoid (the 1x1 conv runs before the bilinear upsampling, which
    gives the same result since both are linear, at a fraction of the cost).
    ``encoder_weights="imagenet"`` needs the Keras cache or a network: when the
    weights are not cached it tries a download with ``download_timeout``
    seconds per socket operation and fails with a message suggesting ``None``.
    """
    import socket

    import keras
    from keras import layers

    size = check_input_size(input_size)
    if len(decoder_filters) != len(SEED_SKIP_LAYERS) + 1:
        raise ValueError(f"decoder_filters needs {len(SEED_SKIP_LAYERS) + 1} values, got {decoder_filters!r}")
    inputs = keras.Input((size, size, 3), name="image")

    previous_timeout = socket.getdefaulttimeout()
    if encoder_weights == "imagenet" and not _imagenet_weights_available():
        socket.setdefaulttimeout(download_timeout)
    try:
        encoder = _resnet50_encoder(inputs, encoder_weights)
    finally:
        socket.setdefaulttimeout(previous_timeout)

    skips = [inputs] + [encoder.get_layer(name).output for name in SEED_SKIP_LAYERS]
    x = dilated_bridge(encoder.get_layer(SEED_BRIDGE_LAYER).output)
    sides = []
    for index, (filters, skip) in enumerate(zip(decoder_filters, reversed(skips)), start=1):
        x = residual_decoder_block(x, skip, int(filters), f"decoder{index}")
        side = layers.Conv2D(1, 1, name=f"side{index}_conv")(x)
        factor = size // int(side.shape[1])
        if factor > 1:
            side = layers.UpSampling2D(factor, interpolation="bilinear", name=f"side{index}_up")(side)
        sides.append(layers.Activation("sigmoid", name=f"side{index}", dtype="float32")(side))
    outputs = layers.Concatenate(name="sides", dtype="float32")(sides)
    return keras.Model(inputs, outputs, name="seed")


# ---------------------------------------------------------------------------
# The one factory
# ---------------------------------------------------------------------------
def u2net_refine(input_size: int = 320, **head):
    """U-2-Net with a refinement head (:func:`RMBG.refiner.attach_refiner`)."""
    from RMBG.refiner import attach_refiner

    return attach_refiner(u2net(input_size), **head)


def u2netp_refine(input_size: int = 320, **head):
    """U-2-Net-P with a refinement head (:func:`RMBG.refiner.attach_refiner`)."""
    from RMBG.refiner import attach_refiner

    return attach_refiner(u2netp(input_size), **head)


FACTORIES = {
    "seed": seed_unet,
    "u2net": u2net,
    "u2netp": u2netp,
    "u2net_refine": u2net_refine,
    "u2netp_refine": u2netp_refine,
}


def build_model(arch: str, input_size: int = 320, **kwargs):
    """Build ``arch`` (one of :data:`ARCHES`) for square ``input_size`` inputs."""
    factory = FACTORIES[check_arch(arch)]
    return factory(input_size=check_input_size(input_size), **kwargs)


def default_info(arch: str, input_size: int = 320, **config: Any) -> ModelInfo:
    """The :class:`ModelInfo` of a freshly built model (trained ones may override it).

    U-2-Net models take ImageNet-normalised input and their output 0 (fused);
    ``seed`` takes 0-1 input and its channel 3 (the finest side output).
    """
    check_arch(arch)
    size = check_input_size(input_size)
    full_config = {"arch": arch, "input_size": size, **config}
    if arch == "seed":
        return ModelInfo(arch, size, mean=None, std=None, output_index=3, config=full_config)
    return ModelInfo(arch, size, output_index=0, config=full_config)


def count_params(model) -> dict[str, int]:
    """``{"trainable", "non_trainable", "total"}`` parameter counts of a Keras model."""
    import numpy as np

    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    frozen = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return {"trainable": trainable, "non_trainable": frozen, "total": trainable + frozen}


# ---------------------------------------------------------------------------
# Model files
# ---------------------------------------------------------------------------
#: Custom objects needed to load our files (the architectures use standard layers only).
CUSTOM_OBJECTS: dict[str, Any] = {}


class ModelFileError(ValueError):
    """A file is not a usable RMBG model; ``str()`` names the file and why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def save_model(model, path: str | os.PathLike, info: ModelInfo, overwrite: bool = False) -> Path:
    """Write ``model`` as a ``.keras`` file carrying ``info``, atomically.

    Refuses to replace an existing file unless ``overwrite`` is true.
    """
    from RMBG.imageio import write_atomic

    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: model files must end in .keras")
    if not isinstance(info, ModelInfo):
        raise TypeError(f"info must be a ModelInfo, not {type(info).__name__}")

    def write(tmp: Path) -> None:
        raw = tmp.with_name(tmp.stem + ".raw.keras")
        try:
            model.save(raw, overwrite=True)
            _repack(raw, tmp, {INFO_ENTRY: info.to_json()})
        finally:
            raw.unlink(missing_ok=True)

    saved = write_atomic(path, write, overwrite=overwrite)
    model.rmbg_info = info
    return saved


def _repack(source: Path, target: Path, extra: dict[str, str]) -> None:
    """Copy a Keras archive into ``target`` deflated (Keras stores it uncompressed), adding ``extra``."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            if item.filename not in extra:
                with src.open(item) as reader, out.open(item.filename, "w") as writer:
                    while block := reader.read(1 << 20):
                        writer.write(block)
        for name, text in extra.items():
            out.writestr(name, text)


def read_model_info(path: str | os.PathLike) -> ModelInfo:
    """The :class:`ModelInfo` stored in a model file, without importing Keras."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "model file not found")
    try:
        with zipfile.ZipFile(path) as archive:
            if INFO_ENTRY not in archive.namelist():
                raise ModelFileError(
                    path, f"not an RMBG model (no {INFO_ENTRY} inside; save it with RMBG.model.save_model)"
                )
            text = archive.read(INFO_ENTRY).decode("utf-8")
    except zipfile.BadZipFile:
        raise ModelFileError(path, "not a .keras model file (not a zip archive)") from None
    try:
        return ModelInfo.from_json(text)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(path, f"{INFO_ENTRY} is invalid ({exc})") from None


def load_model(path: str | os.PathLike):
    """Load a model written by :func:`save_model`; its ModelInfo is ``model.rmbg_info``."""
    import keras

    path = Path(path)
    info = read_model_info(path)
    try:
        model = keras.saving.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)
    except Exception as exc:
        raise ModelFileError(path, f"Keras could not load it ({type(exc).__name__}: {exc})") from exc
    model.rmbg_info = info
    return model
