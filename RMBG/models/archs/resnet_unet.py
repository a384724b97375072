"""The original project's model (it called it "U-2-Net"): a ResNet50 U-Net, registered as ``resnet50_unet``.

A keras.applications ResNet50 encoder, a dilated bridge, four residual
decoder blocks and four side outputs concatenated into one ``N x S x S x 4``
map (channel 3 is the finest, the mask). Its old name ``seed`` is still
accepted (commands and model files that say ``seed`` keep working).
"""

from __future__ import annotations

import os
from pathlib import Path

from RMBG.models.archs.spec import ArchSpec, check_input_size

#: ResNet50 layers whose outputs feed the decoder, finest first (the input itself is the finest skip).
SKIP_LAYERS = ("conv1_relu", "conv2_block3_out", "conv3_block4_out")
BRIDGE_LAYER = "conv4_block6_out"
BRIDGE_FILTERS = 1024
BRIDGE_RATES = (3, 6, 9)
DECODER_FILTERS = (512, 256, 128, 64)
#: File keras.applications caches ResNet50's notop ImageNet weights under.
RESNET50_NOTOP_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


# ---------------------------------------------------------------------------
# seed: the original ResNet50 U-Net
# ---------------------------------------------------------------------------
def conv_bn_relu(x, filters: int, kernel: int, name: str, relu: bool = True):
    """Conv (no bias), BatchNorm and optionally ReLU."""
    from keras import layers

    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def dilated_bridge(x, filters: int = BRIDGE_FILTERS, rates=BRIDGE_RATES, name: str = "bridge"):
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


def resnet50_unet(
    input_size: int = 320,
    encoder_weights: str | None = None,
    decoder_filters=DECODER_FILTERS,
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
    if len(decoder_filters) != len(SKIP_LAYERS) + 1:
        raise ValueError(f"decoder_filters needs {len(SKIP_LAYERS) + 1} values, got {decoder_filters!r}")
    inputs = keras.Input((size, size, 3), name="image")

    previous_timeout = socket.getdefaulttimeout()
    if encoder_weights == "imagenet" and not _imagenet_weights_available():
        socket.setdefaulttimeout(download_timeout)
    try:
        encoder = _resnet50_encoder(inputs, encoder_weights)
    finally:
        socket.setdefaulttimeout(previous_timeout)

    skips = [inputs] + [encoder.get_layer(name).output for name in SKIP_LAYERS]
    x = dilated_bridge(encoder.get_layer(BRIDGE_LAYER).output)
    sides = []
    for index, (filters, skip) in enumerate(zip(decoder_filters, reversed(skips)), start=1):
        x = residual_decoder_block(x, skip, int(filters), f"decoder{index}")
        side = layers.Conv2D(1, 1, name=f"side{index}_conv")(x)
        factor = size // int(side.shape[1])
        if factor > 1:
            side = layers.UpSampling2D(factor, interpolation="bilinear", name=f"side{index}_up")(side)
        sides.append(layers.Activation("sigmoid", name=f"side{index}", dtype="float32")(side))
    outputs = layers.Concatenate(name="sides", dtype="float32")(sides)
    return keras.Model(inputs, outputs, name="resnet50_unet")


#: ResNet50's layers up to the bridge (what ``freeze=("encoder",)`` freezes).
ENCODER_PREFIXES = ("conv1_", "pool1_", "conv2_", "conv3_", "conv4_")

#: The original project's name for this function.
seed_unet = resnet50_unet

#: Place of these architectures in the registry (and in the CLI's choices).
ORDER = 10

SPECS = (
    ArchSpec(
        name="resnet50_unet",
        factory=resnet50_unet,
        summary="the original project's ResNet50 U-Net: one N x S x S x 4 map of side outputs (channel 3 = mask)",
        mean=None,
        std=None,
        output_index=3,
        encoder_prefixes=ENCODER_PREFIXES,
        aliases=("seed",),
        # no imported weights: the fine-tunes train everything, slowly
        preset_overrides={
            name: dict(freeze=(), freeze_bn=False, optimizer="adam", lr=1e-5) for name in ("finetune", "quick-finetune", "distill")
        },
    ),
)
