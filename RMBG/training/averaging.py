"""Polyak averaging of a run's weights (``Preset.ema``): what its checks, best checkpoint and saved files hold.

The optimizer keeps the exponential moving average of the trained variables
(Keras ``use_ema``, updated after every step; the first step copies the
weights). :func:`averaged_weights` reads it back in the order of
``model.get_weights()``, with the model's own values where nothing is averaged
(frozen layers, BatchNorm statistics) and before the first step.
"""

from __future__ import annotations

import numpy as np


def averaged_weights(model, optimizer) -> list[np.ndarray]:
    """``model.get_weights()`` with each trained variable replaced by ``optimizer``'s moving average of it."""
    from keras import ops

    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer keeps it inside
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not getattr(optimizer, "use_ema", False) or not averages or int(ops.convert_to_numpy(optimizer.iterations)) == 0:
        return model.get_weights()
    average_of = {
        id(variable): average
        for variable, average in zip(optimizer._trainable_variables, averages)
        if average is not None
    }
    return [np.asarray(ops.convert_to_numpy(average_of.get(id(v), v))) for v in model.weights]
