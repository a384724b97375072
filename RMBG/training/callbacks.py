"""Callbacks of a training run: validation checks every N steps keeping the best weights, and a step timer.

:func:`evaluate_model` scores a training view on the validation split (loss,
MAE after the output scaling, IoU), eagerly. The validator runs it every
``val_every_steps`` steps and at each epoch end and keeps the best weights by
MAE (the starting weights count), writing them at epoch ends so that a
resumed run finds a best model consistent with its backup.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from RMBG.training.view import training_model


def _keras_callback_base():
    import keras

    return keras.callbacks.Callback


def evaluate_model(view, dataset, loss, channel: int, output_norm: str) -> dict[str, float]:
    """Mean per-image ``val_loss``, ``val_mae`` (after ``output_norm``) and ``val_iou`` of a
    training view (``N x S x S x K`` outputs), run eagerly (no tracing to pay for)."""
    from keras import ops

    from RMBG.training.losses import channel_iou, l1_term

    totals = {"val_loss": 0.0, "val_mae": 0.0, "val_iou": 0.0}
    count = 0
    for x, y in dataset:
        p = view(x, training=False)
        fused = p[..., channel : channel + 1]
        if output_norm == "minmax":
            lo = ops.min(fused, axis=(1, 2, 3), keepdims=True)
            hi = ops.max(fused, axis=(1, 2, 3), keepdims=True)
            fused = (fused - lo) / ops.maximum(hi - lo, 1e-8)
        fused = ops.clip(fused, 0.0, 1.0)
        y = ops.cast(y, "float32")
        totals["val_loss"] += float(ops.sum(loss.call(y, p)))
        totals["val_mae"] += float(ops.sum(l1_term(y, fused)))
        totals["val_iou"] += float(ops.sum(channel_iou(y, fused)))
        count += int(y.shape[0])
    return {k: v / max(count, 1) for k, v in totals.items()}


def validator_class():
    Callback = _keras_callback_base()

    class _Validator(Callback):
        """Checks the validation split every ``every`` steps and at each epoch end; puts
        ``val_loss``/``val_mae``/``val_iou`` into the epoch logs (for the callbacks after it)
        and keeps the weights with the best MAE so far (the starting weights count).

        The best weights wait in memory and are written (``best.keras``,
        ``best.json``) at epoch ends, where the backup is made too, so a resumed
        run finds a best model consistent with its backup. ``eval_model`` may be
        ``base`` itself (same size, one device): then nothing is copied to check.
        ``weights_of`` gives the weights to check (default: ``base``'s own; a run with
        the weights' moving average passes :func:`~RMBG.training.averaging.averaged_weights`).
        """

        def __init__(self, base, eval_model, dataset, loss, channel, info, every, work, first_step, save,
                     weights_of=None):
            super().__init__()
            self.base, self.eval_model, self.dataset = base, eval_model, dataset
            self.weights_of = weights_of or base.get_weights
            # checking other weights than base's own in base itself: swap them in and back
            self.swap = weights_of is not None and eval_model is base
            self.view = training_model(eval_model)
            self.loss, self.channel, self.info = loss, channel, info
            self.every, self.work, self.step, self.save = every, Path(work), first_step, save
            self.state_path = self.work / "best.json"
            self.best: dict[str, Any] = {}
            self.best_weights: list | None = None
            self.last: tuple[int, dict[str, float]] | None = None
            self.epoch = 0

        def check(self) -> dict[str, float]:
            if self.last is not None and self.last[0] == self.step:
                return self.last[1]
            self.sync()
            weights = self.weights_of()
            trained = self.base.get_weights() if self.swap else None
            if self.eval_model is not self.base or self.swap:
                self.eval_model.set_weights(weights)
            try:
                scores = evaluate_model(self.view, self.dataset, self.loss, self.channel, self.info.output_norm)
            finally:
                if trained is not None:
                    self.base.set_weights(trained)
            improved = not self.best or scores["val_mae"] < self.best["best_mae"]
            if improved:
                self.best_weights = weights
                self.best.update(best_mae=scores["val_mae"], best_step=self.step, best_epoch=self.epoch)
            self.best.setdefault("start_mae", scores["val_mae"])
            self.best.setdefault("start_step", self.step)
            self._log(scores, improved)
            self.last = (self.step, scores)
            return scores

        def sync(self) -> None:
            """Put the trained values back into the variables before reading them: mid-epoch, the JAX trainer
            holds them apart (the model's own are emptied) until an epoch ends or a callback asks for them."""
            trainer = getattr(self, "model", None)
            if trainer is not None and hasattr(trainer, "jax_state_sync"):
                trainer.jax_state_sync()

        def flush(self) -> None:
            """Write the best weights found since the last flush, if any."""
            if self.best_weights is None:
                return
            current = self.base.get_weights() if self.eval_model is self.base else None
            self.eval_model.set_weights(self.best_weights)
            try:
                self.save(self.eval_model, self.work / "best.keras")
            finally:
                if current is not None:
                    self.base.set_weights(current)
            self.state_path.write_text(json.dumps(self.best, indent=2))
            self.best_weights = None

        def _log(self, scores, improved):
            path = self.work / "val_steps.csv"
            new = not path.exists()
            with open(path, "a", newline="") as handle:
                writer = csv.writer(handle)
                if new:
                    writer.writerow(["step", "epoch", "val_loss", "val_mae", "val_iou", "best"])
                writer.writerow(
                    [self.step, self.epoch, *(f"{scores[k]:.6f}" for k in ("val_loss", "val_mae", "val_iou")), int(improved)]
                )
            mark = " (best)" if improved else ""
            print(
                f"  [val @ step {self.step}] loss {scores['val_loss']:.4f}  mae {scores['val_mae']:.4f}  "
                f"iou {scores['val_iou']:.4f}{mark}",
                flush=True,
            )

        def on_train_begin(self, logs=None):
            if self.state_path.is_file():
                self.best = json.loads(self.state_path.read_text())
            else:
                self.check()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            if self.every and self.step % self.every == 0:
                self.check()

        def on_epoch_end(self, epoch, logs=None):
            self.epoch = epoch
            scores = self.check()
            if logs is not None:
                logs.update(scores)
            self.flush()

        def on_train_end(self, logs=None):
            self.flush()

    return _Validator


def timer_class():
    Callback = _keras_callback_base()

    class _StepTimer(Callback):
        """Seconds per training step, the first (tracing) step of the run left out."""

        def __init__(self):
            super().__init__()
            self.times: list[float] = []
            self._start = 0.0

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self._start)

        @property
        def seconds_per_step(self) -> float | None:
            steady = self.times[1:]
            return float(np.median(steady)) if steady else None

    return _StepTimer


def time_limit_class():
    Callback = _keras_callback_base()

    class _TimeLimit(Callback):
        """Ends the run at the first epoch end after ``seconds`` (``--time-limit``), leaving its backup behind
        so that ``--resume`` continues it. Placed after ``BackupAndRestore``: the epoch is backed up first."""

        def __init__(self, seconds: float, epochs: int):
            super().__init__()
            self.seconds, self.epochs = float(seconds), int(epochs)
            self.started = time.monotonic()
            self.stopped_after: int | None = None  # the epochs done when it stopped the run (1-based)

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 < self.epochs and time.monotonic() - self.started >= self.seconds:
                self.stopped_after = epoch + 1
                self.model.stop_training = True

    return _TimeLimit

