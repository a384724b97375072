"""Training: :func:`fit`, the original ``train(...).train_model()`` API, and ``python -m RMBG train``.

A run reads a dataset folder through :mod:`RMBG.training.tf_data` (or
:mod:`RMBG.training.py_dataset`), builds (or loads with ``init``) a model from :mod:`RMBG.model`, trains it with the deep-supervision
loss of :mod:`RMBG.training.losses` and writes everything under its ``out`` folder:

- ``model.keras``: the model to use (best validation MAE seen, checked every
  ``val_every_steps`` steps and at each epoch end, the starting weights
  included), saved at ``image_size`` with its :class:`ModelInfo`; with a
  preset ``blend`` below 1 it is those weights blended with the start's
  (:mod:`RMBG.models.blend`) and ``tuned.keras`` keeps them unblended;
  ``last.keras``: the weights at the end;
- ``log.csv`` (one row per epoch, appended across resumes, no duplicates),
  ``val_steps.csv`` (every validation check), ``data_report.txt`` (pairs,
  skipped files and why), ``summary.json``;
- ``checkpoint.weights.h5`` (best ``val_loss``, as the original did) and
  ``backup/`` (BackupAndRestore: ``--resume`` continues a killed run at the
  epoch after the last one finished).

The config is resolved and checked before anything is touched
(:mod:`RMBG.training.config`); the run folder's rules live in
:mod:`RMBG.training.run_folder`, the strategies in :mod:`RMBG.training.distribute`, the
validation checks in :mod:`RMBG.training.callbacks`, the trained view of the
model in :mod:`RMBG.training.view`. Training runs on any Keras backend: tf.data and
``tf.distribute`` with TensorFlow, a ``keras.utils.PyDataset`` on one device with JAX or torch
(:mod:`RMBG.training.backend`, no TensorFlow needed).
"""

from __future__ import annotations

from RMBG.constants import DATA_DIR
from RMBG.training.config import (
    resolve_config,
)
from RMBG.training.fit import FitResult, fit


# ---------------------------------------------------------------------------
# The original API
# ---------------------------------------------------------------------------
class train:  # noqa: N801 - the original project's name
    """The original entry point: ``train(IMG_H, IMG_W, BATCH, LR, EPOCH, SPLIT, PATH).train_model()``.

    Trains the original ResNet50 U-Net (``seed``, now ``resnet50_unet``; or ``arch``) on the dataset at
    ``PATH`` from the ``full`` preset with these five values replacing its own.
    What the original got wrong is fixed: images are read as RGB (not BGR),
    masks are scaled to [0, 1], and the deep supervision reads one mask per
    image instead of a copy per output. Models are square: ``IMG_H`` must
    equal ``IMG_W``.
    """

    def __init__(self, IMG_H, IMG_W, BATCH, LR, EPOCH, SPLIT, PATH, *, arch="seed", out=None, preset="full", **overrides):  # noqa: N803
        if int(IMG_H) != int(IMG_W):
            raise ValueError(f"models take square inputs: IMG_H ({IMG_H}) must equal IMG_W ({IMG_W})")
        self.IMG_H, self.IMG_W, self.BATCH, self.LR = int(IMG_H), int(IMG_W), int(BATCH), float(LR)
        self.EPOCH, self.SPLIT, self.PATH = int(EPOCH), float(SPLIT), str(PATH)
        out = out or DATA_DIR / "runs" / f"{arch}-{self.IMG_H}"
        self.config = resolve_config(
            preset,
            arch,
            self.PATH,
            out,
            image_size=self.IMG_H,
            crop_size=None,
            batch=self.BATCH,
            lr=self.LR,
            epochs=self.EPOCH,
            split=self.SPLIT,
            **overrides,
        )

    def train_model(self) -> FitResult:
        return fit(self.config)
