"""Deep-supervision losses and the fused-output metrics (``keras.ops`` only).

Training models see their outputs as one ``N x S x S x K`` tensor (the seven
U-2-Net maps or the four ``seed`` sides concatenated along channels, see
``RMBG.training.view.training_model``); the target is the mask, ``N x S x S x 1`` in
[0, 1]. :class:`DeepSupervisionLoss` applies the chosen terms to every
channel with a weight each, as U-2-Net does (BCE on the fused map and on
every side map). The metrics look at one channel: the final (fused) mask.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

#: Clipping of probabilities inside the logarithms.
EPSILON = 1e-7
#: Smoothing of the soft IoU (keeps empty masks finite).
IOU_SMOOTH = 1.0
#: Threshold of the IoU metric.
IOU_THRESHOLD = 0.5


def bce_term(y, p):
    """Per-image binary cross-entropy, ``N``."""
    p = ops.clip(p, EPSILON, 1.0 - EPSILON)
    loss = -(y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p))
    return ops.mean(loss, axis=(1, 2, 3))


def iou_term(y, p):
    """Per-image soft IoU loss ``1 - |y p| / (|y| + |p| - |y p|)``, ``N``."""
    inter = ops.sum(y * p, axis=(1, 2, 3))
    union = ops.sum(y, axis=(1, 2, 3)) + ops.sum(p, axis=(1, 2, 3)) - inter
    return 1.0 - (inter + IOU_SMOOTH) / (union + IOU_SMOOTH)


def l1_term(y, p):
    """Per-image mean absolute error, ``N`` (the metric itself, as a loss)."""
    return ops.mean(ops.abs(y - p), axis=(1, 2, 3))


TERMS = {"bce": bce_term, "iou": iou_term, "l1": l1_term}


def parse_terms(spec: str) -> tuple[str, ...]:
    """``"bce+iou"`` -> ``("bce", "iou")``; unknown names raise ValueError."""
    terms = tuple(t.strip() for t in str(spec).split("+") if t.strip())
    unknown = [t for t in terms if t not in TERMS]
    if not terms or unknown:
        raise ValueError(f"loss must be terms from {sorted(TERMS)} joined by '+', got {spec!r}")
    return terms


def side_weights(spec, outputs: int, fused: int = 0) -> tuple[float, ...]:
    """Per-output weights: ``"all"`` (1 each), ``"fused"`` (1 on channel ``fused``), or a list."""
    if isinstance(spec, str) and spec == "all":
        return (1.0,) * outputs
    if isinstance(spec, str) and spec == "fused":
        return tuple(1.0 if k == fused else 0.0 for k in range(outputs))
    values = [float(v) for v in (spec.split(",") if isinstance(spec, str) else spec)]
    if len(values) != outputs:
        raise ValueError(f"side_weights has {len(values)} values but the model has {outputs} outputs")
    if min(values) < 0 or max(values) <= 0:
        raise ValueError(f"side_weights must be non-negative with one positive, got {values}")
    return tuple(values)


def _as_4d(y_true, y_pred):
    y = ops.cast(y_true, "float32")
    p = ops.cast(y_pred, "float32")
    if len(y.shape) == 3:
        y = ops.expand_dims(y, -1)
    return y, p


@keras.saving.register_keras_serializable(package="RMBG")
class DeepSupervisionLoss(keras.losses.Loss):
    """Sum over output channels ``k`` of ``weights[k] * sum(term(mask, output_k))``.

    Returns one value per image; Keras averages them over the batch.
    """

    def __init__(self, terms="bce", weights: Sequence[float] = (1.0,), name="deep_supervision", **kwargs):
        super().__init__(name=name, **kwargs)
        self.terms = parse_terms(terms) if isinstance(terms, str) else tuple(terms)
        self.weights = tuple(float(w) for w in weights)

    def call(self, y_true, y_pred):
        y, p = _as_4d(y_true, y_pred)
        if p.shape[-1] is not None and p.shape[-1] != len(self.weights):
            raise ValueError(f"{len(self.weights)} output weights for {p.shape[-1]} output channels")
        total = 0.0
        for k, weight in enumerate(self.weights):
            if weight == 0:
                continue
            side = p[..., k : k + 1]
            for term in self.terms:
                total = total + weight * TERMS[term](y, side)
        return total

    def get_config(self):
        config = super().get_config()
        config.update(terms="+".join(self.terms), weights=list(self.weights))
        return config


def channel_mae(y_true, y_pred, channel: int = 0):
    """Per-image MAE of output ``channel`` against the mask."""
    y, p = _as_4d(y_true, y_pred)
    return l1_term(y, p[..., channel : channel + 1])


def channel_iou(y_true, y_pred, channel: int = 0, threshold: float = IOU_THRESHOLD):
    """Per-image IoU of ``output > threshold`` and ``mask > 0.5`` (1 when both are empty)."""
    y, p = _as_4d(y_true, y_pred)
    truth = ops.cast(y > 0.5, "float32")
    guess = ops.cast(p[..., channel : channel + 1] > threshold, "float32")
    inter = ops.sum(truth * guess, axis=(1, 2, 3))
    union = ops.sum(ops.maximum(truth, guess), axis=(1, 2, 3))
    return ops.where(union > 0, inter / ops.maximum(union, 1.0), ops.ones_like(union))


def metrics(channel: int = 0) -> list:
    """``[mae, iou]`` metric objects on output ``channel`` (the fused mask)."""
    return [
        keras.metrics.MeanMetricWrapper(channel_mae, name="mae", channel=channel),
        keras.metrics.MeanMetricWrapper(channel_iou, name="iou", channel=channel),
    ]
