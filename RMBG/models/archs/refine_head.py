"""A trainable refinement head on a frozen U-2-Net: the ``u2net_refine`` / ``u2netp_refine`` architectures.

(Not to be confused with :mod:`RMBG.removal.edges`, which refines a mask's edges
after the fact, with no training.)

Fine-tuning the imported U-2-Net-P weights end to end makes them worse on
held-out photos (see ``../shared/README.md``): their folded convolutions have
very uneven scales and BCE makes the over-confident model hedge. This module
keeps the pretrained network exactly as it is and learns a small residual
correction on top of it:

``refined_logit = clip(fused_logit) + head(clip(side logits), clip(fused_logit))``

The default head is a per-pixel network (three 1x1 layers of 16 channels):
a learned, non-linear re-fusion of the seven side logits, which U-2-Net
itself fuses with one linear 1x1 convolution. Its last layer starts at zero,
so the untrained refined model reproduces the pretrained one and every
training step starts from the peer. Because the base is frozen, a step
back-propagates through the head only.

A spatial head (3x3 dilated layers that also read the photo, ``kernel_size=3,
dilations=(1, 2, 4, 8, 1), with_image=True``) lowers MAE as much but costs
ranking quality (max-F on people, S-measure): see ``Data/models/README.md``.

Only standard Keras layers are used, so files load without custom objects and
the model runs under TensorFlow and JAX.
"""

from __future__ import annotations

import math

from RMBG.models.archs.spec import ArchSpec
from RMBG.models.archs.u2net import ENCODER_PREFIXES, imported_u2netp, u2net, u2netp

#: Logits are clipped to +-this before entering the head (probability 1e-4 .. 1 - 1e-4).
LOGIT_CLIP = math.log((1 - 1e-4) / 1e-4)
#: Logits are divided by this so the head sees values of order one.
LOGIT_SCALE = 8.0
#: Default head: channels per layer, number of layers, kernel size, and whether it reads the photo.
HEAD_WIDTH = 16
HEAD_DEPTH = 3
HEAD_KERNEL = 1
HEAD_WITH_IMAGE = False
#: Names of the base layers the head reads (see :func:`RMBG.models.archs.u2net._u2net`).
FUSED_LOGIT_LAYER = "outconv"
SIDE_LOGITS_LAYER = "sides_cat"


def _clipped(x, name: str, scale: float = 1.0):
    """``clip(x, -LOGIT_CLIP, LOGIT_CLIP) * scale`` from standard layers only."""
    from keras import layers

    c = LOGIT_CLIP
    x = layers.Rescaling(1.0, offset=c, name=f"{name}_shift")(x)
    x = layers.ReLU(max_value=2 * c, name=f"{name}_clip")(x)
    return layers.Rescaling(scale, offset=-c * scale, name=f"{name}_unshift")(x)


def attach_refiner(
    base,
    width: int = HEAD_WIDTH,
    depth: int = HEAD_DEPTH,
    kernel_size: int = HEAD_KERNEL,
    dilations=None,
    with_image: bool = HEAD_WITH_IMAGE,
    freeze_base: bool = True,
):
    """A model ``[refined, fused, side1..side6]`` made of ``base`` and a new head.

    ``base`` is a U-2-Net family model from :func:`RMBG.models.build.build_model`
    (or loaded from a file); its layers are shared, not copied. The head has
    ``depth`` ReLU layers of ``width`` channels with ``kernel_size`` kernels
    (``dilations``: one rate per layer, which then sets the depth; default 1
    each), reading the clipped logits and, ``with_image``, the input photo.
    With ``freeze_base`` the base is not trainable (and its BatchNorm layers
    run in inference mode).
    """
    import keras
    from keras import layers

    try:
        fused_logit = base.get_layer(FUSED_LOGIT_LAYER).output
        side_logits = base.get_layer(SIDE_LOGITS_LAYER).output
    except ValueError:
        raise ValueError(
            f"{base.name}: a refiner needs a U-2-Net family base with layers "
            f"{FUSED_LOGIT_LAYER!r} and {SIDE_LOGITS_LAYER!r}"
        ) from None
    if freeze_base:
        base.trainable = False

    rates = tuple(int(r) for r in dilations) if dilations else (1,) * int(depth)
    if not rates or width < 1 or kernel_size < 1 or min(rates) < 1:
        raise ValueError(
            f"a refinement head needs width, kernel_size and depth/dilations >= 1, got "
            f"width={width}, kernel_size={kernel_size}, dilations={rates}"
        )
    fused_clipped = _clipped(fused_logit, "refine_fused")
    inputs = [base.input] if with_image else []
    inputs += [
        _clipped(side_logits, "refine_sides", 1.0 / LOGIT_SCALE),
        layers.Rescaling(1.0 / LOGIT_SCALE, name="refine_fused_scaled")(fused_clipped),
    ]
    x = layers.Concatenate(name="refine_in")(inputs)
    for index, rate in enumerate(rates, start=1):
        x = layers.Conv2D(
            width,
            kernel_size,
            padding="same",
            dilation_rate=rate,
            activation="relu",
            name=f"refine_conv{index}",
        )(x)
    delta = layers.Conv2D(
        1, 1, kernel_initializer="zeros", bias_initializer="zeros", name="refine_delta"
    )(x)
    refined = layers.Add(name="refine_add")([fused_clipped, delta])
    refined = layers.Activation("sigmoid", name="refined", dtype="float32")(refined)
    outputs = [refined] + list(base.outputs)
    return keras.Model(base.input, outputs, name=f"{base.name}_refine")


def head_layers(model) -> list:
    """The refinement head's layers (the ones training updates)."""
    return [layer for layer in model.layers if layer.name.startswith("refine")]


def u2net_refine(input_size: int = 320, **head):
    """U-2-Net with a refinement head (:func:`attach_refiner`)."""
    return attach_refiner(u2net(input_size), **head)


def u2netp_refine(input_size: int = 320, **head):
    """U-2-Net-P with a refinement head (:func:`attach_refiner`)."""
    return attach_refiner(u2netp(input_size), **head)


#: ``finetune`` for the refine archs: frozen base, trained head. Only what differs from
#: ``finetune`` (BatchNorm frozen, L1 + IoU on the fused map, every held-out photo checked,
#: are kept from it): the refinement recipe of Data/models/README.md.
REFINE_RECIPE = dict(
    blend=1.0,  # the start is the plain base, another network: nothing to blend with
    freeze=(),
    optimizer="adam",
    lr=1e-3,
    clipnorm=None,
    output_norm="none",
    jitter=0.0,
)
REFINE_FINETUNE = dict(REFINE_RECIPE, val_every_steps=100, epochs=5, early_stop=4)

#: Place of these architectures in the registry (and in the CLI's choices).
ORDER = 20

SPECS = (
    ArchSpec(
        name="u2netp_refine",
        factory=u2netp_refine,
        summary="U-2-Net-P frozen, with a trainable per-pixel refinement head: outputs [refined, fused, side1..side6]",
        encoder_prefixes=ENCODER_PREFIXES,
        pretrained=imported_u2netp,
        base="u2netp",
        preset_overrides={"finetune": REFINE_FINETUNE, "quick-finetune": REFINE_RECIPE, "distill": REFINE_FINETUNE},
    ),
    ArchSpec(
        name="u2net_refine",
        factory=u2net_refine,
        summary="U-2-Net frozen, with a trainable per-pixel refinement head: outputs [refined, fused, side1..side6]",
        encoder_prefixes=ENCODER_PREFIXES,
        base="u2net",
        preset_overrides={"finetune": REFINE_FINETUNE, "quick-finetune": REFINE_RECIPE, "distill": REFINE_FINETUNE},
    ),
)
