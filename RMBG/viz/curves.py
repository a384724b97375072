"""Training curves of a run folder (``RMBG.train``'s CSV logs), drawn once or redrawn live while it trains.

:func:`training_curves` draws a run's ``log.csv`` (one row per epoch) and
``val_steps.csv`` (one row per validation check); :class:`LiveCurves`
redraws them in one notebook output from a background thread as the logs
grow, and :func:`fit_with_curves` trains with them on screen.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from RMBG.viz.drawing import message_figure

if TYPE_CHECKING:
    import pandas as pd

#: Files of a run folder (``RMBG.train``) that the curves read.
EPOCH_LOG = "log.csv"
STEP_LOG = "val_steps.csv"
#: Columns of the logs that are not curves.
NOT_CURVES = {"epoch", "step", "time", "seconds", "best"}


def read_log(csv_log: str | os.PathLike) -> "pd.DataFrame":
    """A training CSV log as a DataFrame (empty when the file is missing or has no rows yet)."""
    import pandas as pd

    path = Path(csv_log)
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return pd.DataFrame()


def _curve_groups(log: "pd.DataFrame") -> dict[str, list[str]]:
    """metric name -> its numeric columns (``loss`` -> ``loss``, ``val_loss``), in log order."""
    import pandas as pd

    groups: dict[str, list[str]] = {}
    for column in log.columns:
        if column in NOT_CURVES or not pd.api.types.is_numeric_dtype(log[column]):
            continue
        base = column[4:] if column.startswith("val_") else column
        groups.setdefault(base, []).append(column)
    return groups


def _log_files(source) -> tuple["pd.DataFrame", "pd.DataFrame", str]:
    """(epoch log, validation-check log, name) of a run folder, a CSV file or a DataFrame."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source, pd.DataFrame(), "log"
    path = Path(source)
    if path.is_dir():
        return read_log(path / EPOCH_LOG), read_log(path / STEP_LOG), path.name
    log = read_log(path)
    if "step" in log.columns and "epoch" in log.columns and "val_mae" in log.columns and "loss" not in log.columns:
        return pd.DataFrame(), log, path.name
    return log, pd.DataFrame(), path.name


def training_curves(source, title: str | None = None) -> Figure:
    """Training curves of a run: one panel per metric, training and validation together.

    ``source`` is a run folder of ``RMBG.train`` (its ``log.csv``, one row per
    epoch, and ``val_steps.csv``, one row per validation check), one such CSV
    file, or a DataFrame. Epochs are counted from 1; the learning rate gets a
    log scale; the validation checks get their own panel (MAE against step,
    the best ones marked). A run with no rows yet gives a figure that says so.
    """
    epochs, checks, name = _log_files(source)
    groups = _curve_groups(epochs) if not epochs.empty else {}
    panels = len(groups) + (0 if checks.empty or "val_mae" not in checks else 1)
    if panels == 0:
        return message_figure(f"{name}: no training log yet", size=(5, 1.5))
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows + 0.3), layout="constrained")
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax in axes[panels:]:
        ax.axis("off")
    xs = epochs["epoch"].to_numpy() + 1 if "epoch" in epochs else np.arange(1, len(epochs) + 1)
    for ax, (metric, columns) in zip(axes, groups.items()):
        for column in columns:
            label = "validation" if column.startswith("val_") else "training"
            ax.plot(xs, epochs[column].to_numpy(dtype=float), marker="o", markersize=3, label=label)
        if metric in {"lr", "learning_rate"}:
            ax.set_yscale("log")
        ax.set(title=metric, xlabel="epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if len(columns) > 1:
            ax.legend(fontsize=8)
    if panels > len(groups):
        ax = axes[len(groups)]
        steps, mae = checks["step"].to_numpy(), checks["val_mae"].to_numpy(dtype=float)
        ax.plot(steps, mae, marker="o", markersize=3, color="tab:orange", label="validation MAE")
        if "best" in checks:
            best = checks["best"].to_numpy() == 1
            ax.plot(steps[best], mae[best], "*", markersize=9, color="tab:green", label="best so far (kept)")
        ax.set(title="validation checks", xlabel="training step", ylabel="MAE")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or f"{name}: {len(epochs)} epochs logged, {len(checks)} validation checks", fontsize=10)
    return fig


class LiveCurves:
    """:func:`training_curves` of a run folder (or CSV log), redrawn in one notebook output as it grows.

    :meth:`update` redraws when the logs changed; :meth:`start` does it every
    few seconds from a background thread until :meth:`stop` (the run itself
    keeps the main thread, so interrupting the cell stops the run). Outside a
    notebook it only keeps the latest figure in ``self.figure``.
    """

    def __init__(self, source: str | os.PathLike, title: str | None = None):
        import threading

        self.source = Path(source)
        self.title = title
        self.figure: Figure | None = None
        self.updates = 0
        self._handle = None
        self._signature = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def _files(self) -> list[Path]:
        return [self.source / EPOCH_LOG, self.source / STEP_LOG] if self.source.is_dir() or not self.source.suffix \
            else [self.source]

    def signature(self) -> tuple:
        """Sizes and times of the log files: changes whenever a row is written."""
        return tuple((p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else None for p in self._files())

    def update(self, force: bool = False) -> bool:
        """Redraw when the logs changed since the last call (or ``force``); True when it redrew."""
        with self._lock:
            signature = self.signature()
            if signature == self._signature and not force:
                return False
            self._signature = signature
            self.figure = training_curves(self.source, self.title)
            self.updates += 1
            self._publish()
            return True

    def _publish(self) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        if self._handle is None:
            self._handle = display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)

    def start(self, every: float = 5.0) -> "LiveCurves":
        """Show the curves now and redraw them every ``every`` seconds in a background thread."""
        import threading

        self.update(force=True)
        self._stop.clear()

        def loop():
            while not self._stop.wait(every):
                self.update()

        self._thread = threading.Thread(target=loop, name="LiveCurves", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the background redraws and draw the final curves."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.update()


def live_training_curves(source: str | os.PathLike, title: str | None = None) -> LiveCurves:
    """A :class:`LiveCurves` for a run folder or CSV log (call ``.start()``, then ``.stop()``)."""
    return LiveCurves(source, title)


def fit_with_curves(config, every: float = 5.0):
    """``RMBG.training.fit.fit(config)`` with its training curves redrawn every ``every`` seconds.

    Returns the ``FitResult``; the curves stay in the cell output.
    """
    from RMBG.training.fit import fit

    curves = LiveCurves(config.out).start(every)
    try:
        return fit(config)
    finally:
        curves.stop()
