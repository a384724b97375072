"""Inference-only copies of a Keras model: BatchNorm folded away, the body in bfloat16.

:func:`fold_batchnorm` returns a clone of a functional model in which every
``BatchNormalization`` that only follows a ``Conv2D`` is folded into that
convolution's kernel and bias (``w * gamma / sqrt(var + eps)``,
``(b - mean) * gamma / sqrt(var + eps) + beta``) and removed: the same maps
to float32 rounding, and TensorFlow then fuses each convolution with its
bias and ReLU into one oneDNN kernel. Its ``compute_dtype`` puts every layer
but the ones named ``float_prefixes...`` (the output head) in that dtype policy.

:func:`bf16_copy` is that with ``bfloat16``: on a CPU that multiplies bfloat16
in hardware (Intel AMX, :func:`RMBG.machine.cpu_runs_bf16`) oneDNN runs
the convolutions several times faster than float32 (IS-Net at 1024: 0.35 s a
photo against onnxruntime's 1.26 s on this project's two cores; BatchNorm left
in, with its casts to float32 and back, 0.57 s). Issue 34 measures how far its
masks move (:mod:`RMBG.models.public_copies`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: Layers kept float32 in a bfloat16 copy, by name prefix: the side convolutions, their resizes and sigmoids.
OUTPUT_HEAD_PREFIXES = ("side", "outconv", "fused", "sides_cat")


def foldable_batchnorms(model) -> dict[str, str]:
    """``{batchnorm layer: the Conv2D it folds into}`` for each BatchNorm called once, on the output of a
    Conv2D (with a bias) that nothing else reads."""
    layers = model.get_config()["layers"]
    kinds = {layer["name"]: layer["class_name"] for layer in layers}
    readers: dict[str, int] = {}
    for layer in layers:
        for node in layer["inbound_nodes"]:
            for arg in [*node.get("args", ()), *node.get("kwargs", {}).values()]:
                for history in _histories(arg):
                    readers[history] = readers.get(history, 0) + 1
    folds = {}
    for layer in layers:
        if layer["class_name"] != "BatchNormalization" or len(layer["inbound_nodes"]) != 1:
            continue
        sources = _histories(layer["inbound_nodes"][0].get("args", ()))
        conv = sources[0] if len(sources) == 1 else None
        if conv and kinds.get(conv) == "Conv2D" and readers.get(conv) == 1 and model.get_layer(conv).use_bias:
            folds[layer["name"]] = conv
    return folds


def _histories(value) -> list[str]:
    """Names of the layers whose outputs a node argument (possibly nested) refers to."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value["config"]["keras_history"][0]]
        return [name for item in value.values() for name in _histories(item)]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in _histories(item)]
    return []


def folded_weights(conv_weights: list[np.ndarray], batchnorm) -> list[np.ndarray]:
    """A convolution's ``[kernel, bias]`` with the (inference-mode) BatchNorm after it folded in."""
    kernel, bias = (np.asarray(w, np.float64) for w in conv_weights)
    gamma, beta, mean, variance = (np.asarray(w, np.float64) for w in batchnorm.get_weights())
    scale = gamma / np.sqrt(variance + batchnorm.epsilon)
    return [(kernel * scale).astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)]


def fold_batchnorm(model, compute_dtype: str = "float32", float_prefixes: tuple[str, ...] = OUTPUT_HEAD_PREFIXES):
    """A clone of the functional ``model`` without its foldable BatchNorms (:func:`foldable_batchnorms`),
    every layer in ``compute_dtype`` except those named ``float_prefixes...`` (float32); carries
    ``model.rmbg_info`` (noting the copy) when the model has one."""
    import keras

    folds = foldable_batchnorms(model)
    into = {conv: norm for norm, conv in folds.items()}

    def clone(layer):
        config = layer.get_config()
        if "dtype" in config:
            config["dtype"] = "float32" if layer.name.startswith(float_prefixes) else compute_dtype
        return layer.__class__.from_config(config)

    def call(layer, *args, **kwargs):
        return args[0] if layer.name in folds else layer(*args, **kwargs)

    copy = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for layer in copy.layers:
        if not layer.weights:  # e.g. the input layer, which the clone renames
            continue
        weights = model.get_layer(layer.name).get_weights()
        if layer.name in into:
            weights = folded_weights(weights, model.get_layer(into[layer.name]))
        layer.set_weights(weights)
    info = getattr(model, "rmbg_info", None)
    if info is not None:
        note = f"inference copy: {len(folds)} BatchNorms folded, computed in {compute_dtype}"
        copy.rmbg_info = dataclasses.replace(info, notes="; ".join(filter(None, [info.notes, note])))
    return copy


def bf16_copy(model, float_prefixes: tuple[str, ...] = OUTPUT_HEAD_PREFIXES):
    """:func:`fold_batchnorm` computing in bfloat16 (weights stored as bfloat16), the output head float32."""
    return fold_batchnorm(model, "bfloat16", float_prefixes)
