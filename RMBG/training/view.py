"""The model as training sees it: one joined output tensor, frozen layers, the optimizer.

:func:`training_model` joins a model's outputs into one ``N x S x S x K``
tensor (for the deep-supervision loss), sharing its layers;
:func:`freeze_batchnorm` and :func:`freeze_layers` decide what trains
(``"encoder"`` expands to the architecture's encoder layers, from its spec);
:func:`make_optimizer` builds a preset's optimizer.
"""

from __future__ import annotations

from typing import Any, Sequence

from RMBG.training.presets import Preset, expand_freeze


def training_model(model):
    """``model`` with its outputs as one float32 ``N x S x S x K`` tensor (shared layers)."""
    import keras

    outputs = list(model.outputs)
    if len(outputs) == 1:
        joined = outputs[0]
    else:
        joined = keras.layers.Concatenate(axis=-1, dtype="float32", name="deep_supervision")(outputs)
    return keras.Model(model.inputs, joined, name=f"{model.name}_train")


def all_layers(model):
    """Every layer of ``model``, nested ones included."""
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False, recursive=True))
    return list(model.layers)


def freeze_batchnorm(model) -> int:
    """Put every BatchNormalization in inference mode (frozen statistics and scales)."""
    import keras

    count = 0
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
            count += 1
    return count


def freeze_layers(model, prefixes: Sequence[str], arch: str) -> list[str]:
    """Freeze the layers whose name starts with one of ``prefixes`` (``"encoder"``: ``arch``'s
    encoder layers); a prefix matching nothing is an error (a typo must not silently train
    everything)."""
    prefixes = expand_freeze(prefixes, arch)
    frozen = []
    for prefix in prefixes:
        hits = [layer for layer in all_layers(model) if layer.name.startswith(prefix)]
        if not hits:
            raise ValueError(f"freeze prefix {prefix!r} matches no layer of {model.name}")
        for layer in hits:
            layer.trainable = False
            frozen.append(layer.name)
    return frozen


def make_optimizer(preset: Preset):
    """The optimizer of ``preset`` (adam, adamw, sgd with Nesterov momentum, lamb), clipped, with the
    weights' moving average when ``preset.ema`` is set."""
    import keras

    kwargs: dict[str, Any] = {"learning_rate": preset.lr}
    if preset.clipnorm:
        kwargs["clipnorm"] = preset.clipnorm
    if preset.ema:
        kwargs.update(use_ema=True, ema_momentum=preset.ema)
    if preset.optimizer == "adam":
        return keras.optimizers.Adam(**kwargs)
    if preset.optimizer == "adamw":
        return keras.optimizers.AdamW(weight_decay=preset.weight_decay or 1e-4, **kwargs)
    if preset.optimizer == "sgd":
        return keras.optimizers.SGD(momentum=0.9, nesterov=True, **kwargs)
    if preset.optimizer == "lamb":
        if not hasattr(keras.optimizers, "Lamb"):
            raise ValueError("this Keras has no keras.optimizers.Lamb")
        return keras.optimizers.Lamb(weight_decay=preset.weight_decay or None, **kwargs)
    raise ValueError(f"unknown optimizer {preset.optimizer!r}")

