"""A light refinement head on a frozen U-2-Net: the fine-tuning recipe that works.

Fine-tuning the imported U-2-Net-P weights end to end makes them worse on
held-out photos (see ``../shared/README.md``): their folded convolutions have
very uneven scales and BCE makes the over-confident model hedge. This module
keeps the pretrained network exactly as it is and learns a small residual
correction on top of it:

``refined_logit = clip(fused_logit) + head(image, clip(side logits), clip(fused_logit))``

The head is a stack of dilated 3x3 convolutions (receptive field about 35 px
at the model's input size) whose last 1x1 convolution starts at zero, so the
untrained refined model reproduces the pretrained one and every training step
starts from the peer. Because the base is frozen, a step back-propagates
through the head only: a few times cheaper than training the whole network.

Only standard Keras layers are used, so files load without custom objects and
the model runs under TensorFlow and JAX.
"""

from __future__ import annotations

import math

#: Logits are clipped to +-this before entering the head (probability 1e-4 .. 1 - 1e-4).
LOGIT_CLIP = math.log((1 - 1e-4) / 1e-4)
#: Logits are divided by this so the head sees values of order one.
LOGIT_SCALE = 8.0
#: Default head: channels per layer and the dilation of each 3x3 layer.
HEAD_WIDTH = 16
HEAD_DILATIONS = (1, 2, 4, 8, 1)
#: Names of the base layers the head reads (see :func:`RMBG.model._u2net`).
FUSED_LOGIT_LAYER = "outconv"
SIDE_LOGITS_LAYER = "sides_cat"


def _clipped(x, name: str, scale: float = 1.0):
    """``clip(x, -LOGIT_CLIP, LOGIT_CLIP) * scale`` from standard layers only."""
    from keras import layers

    c = LOGIT_CLIP
    x = layers.Rescaling(1.0, offset=c, name=f"{name}_shift")(x)
    x = layers.ReLU(max_value=2 * c, name=f"{name}_clip")(x)
    return layers.Rescaling(scale, offset=-c * scale, name=f"{name}_unshift")(x)


def attach_refiner(base, width: int = HEAD_WIDTH, dilations=HEAD_DILATIONS, freeze_base: bool = True):
    """A model ``[refined, fused, side1..side6]`` made of ``base`` and a new head.

    ``base`` is a U-2-Net family model from :func:`RMBG.model.build_model`
    (or loaded from a file); its layers are shared, not copied. With
    ``freeze_base`` the base is not trainable (and its BatchNorm layers run in
    inference mode).
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

    fused_clipped = _clipped(fused_logit, "refine_fused")
    features = layers.Concatenate(name="refine_in")(
        [
            base.input,
            _clipped(side_logits, "refine_sides", 1.0 / LOGIT_SCALE),
            layers.Rescaling(1.0 / LOGIT_SCALE, name="refine_fused_scaled")(fused_clipped),
        ]
    )
    x = features
    for index, rate in enumerate(dilations, start=1):
        x = layers.Conv2D(
            width, 3, padding="same", dilation_rate=rate, activation="relu", name=f"refine_conv{index}"
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
